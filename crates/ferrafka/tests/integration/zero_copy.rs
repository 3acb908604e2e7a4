//! Messages are librdkafka's own, read in place: what a consumer reads must be exactly what was
//! produced, and what it keeps (detached copies of messages and batches) must outlive the batch
//! and the server, without holding the client open.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::producer::Record;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Message, Messages, ServerExit};

use crate::support::*;

/// Checks every message in place and keeps detached copies of the messages and of the batch.
struct Keeper {
    kept: Arc<Mutex<Vec<Message>>>,
    batches: Arc<Mutex<Vec<Messages>>>,
}

impl Consumer for Keeper {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            check(m);
        }
        self.kept
            .lock()
            .unwrap()
            .extend(messages.iter().map(Message::detach));
        self.batches.lock().unwrap().push(messages.detach());
        Ok(())
    }
}

/// What `produce` below wrote for message `n`.
fn check(m: &Message) {
    let n = m.offset();
    assert_eq!(m.payload(), Some(format!("payload-{n}").as_bytes()));
    assert_eq!(m.key_str(), Some(format!("key-{n}").as_str()));
    let headers: Vec<(String, Vec<u8>)> = m
        .headers()
        .map(|h| (h.key.into_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    assert_eq!(
        headers,
        vec![
            ("trace".to_string(), b"first".to_vec()),
            ("trace".to_string(), format!("last-{n}").into_bytes()),
            ("empty".to_string(), Vec::new()),
        ]
    );
    assert_eq!(m.header("trace"), Some(format!("last-{n}").as_bytes()));
    assert_eq!(m.header("missing"), None);
    assert_eq!(m.timestamp().millis(), Some(1_700_000_000_000 + n));
}

#[test]
fn messages_read_in_place_and_their_clones_outlive_the_server() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("zero-copy");
    cluster.create_topic(&rt, &topic, 1);
    for n in 0..50i64 {
        let (payload, key, last) = (
            format!("payload-{n}"),
            format!("key-{n}"),
            format!("last-{n}"),
        );
        let record = Record::to(&topic)
            .payload(&payload)
            .key(&key)
            .header("trace", "first")
            .header("trace", &last)
            .header("empty", "")
            .timestamp(1_700_000_000_000 + n);
        rt.block_on(cluster.producer.produce(record)).unwrap();
    }
    let kept: Arc<Mutex<Vec<Message>>> = Arc::default();
    let batches: Arc<Mutex<Vec<Messages>>> = Arc::default();
    let (k, b, topic2, bootstrap, group) = (
        Arc::clone(&kept),
        Arc::clone(&batches),
        topic.clone(),
        cluster.bootstrap(),
        unique("zero-copy"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("zero-copy")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(7).max_wait_time(Duration::from_millis(50));
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || Keeper {
                kept: k.clone(),
                batches: b.clone(),
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || kept.lock().unwrap().len() >= 50),
        "consumed {} of 50",
        kept.lock().unwrap().len()
    );
    // Destroying a librdkafka client waits for every message it handed out: if a clone shared
    // librdkafka's message, shutdown would never return.
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(server.shutdown()));
    let exit = finished.recv_timeout(Duration::from_secs(30));
    assert_eq!(
        exit,
        Ok(ServerExit::Clean),
        "shutdown must finish while the consumer keeps clones"
    );
    let kept = kept.lock().unwrap();
    assert_eq!(
        kept.iter().map(Message::offset).collect::<Vec<_>>(),
        (0..50).collect::<Vec<_>>()
    );
    kept.iter().for_each(check);
    let batches = batches.lock().unwrap();
    assert_eq!(batches.iter().map(Messages::len).sum::<usize>(), 50);
    batches.iter().flat_map(Messages::iter).for_each(check);
}
