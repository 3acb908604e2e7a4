//! Failures stay local and boring: retries with backoff, the dead-letter queue, panics, consumer
//! pause and seek, quiet mode.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::consumer::SeekTo;
use ferrafka::routing::{DeadLetterQueue, dlq_headers};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};
use rdkafka::Message as _;
use rdkafka::message::Headers as _;

use crate::support::*;

/// Attempts per number: all of them, and those where it ran alone in its batch.
#[derive(Default)]
struct Attempts {
    total: HashMap<u64, u32>,
    alone: HashMap<u64, u32>,
}

/// Fails (or panics) on chosen numbers; records what it processed and every attempt it saw.
struct Picky {
    tracker: Tracker,
    poison: Vec<u64>,
    panic: bool,
    attempts: Arc<Mutex<Attempts>>,
}

impl Consumer for Picky {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut numbers = Vec::new();
        for m in messages {
            let n: u64 = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            let mut attempts = self.attempts.lock().unwrap();
            *attempts.total.entry(n).or_default() += 1;
            if messages.len() == 1 {
                *attempts.alone.entry(n).or_default() += 1;
            }
            drop(attempts);
            if self.poison.contains(&n) {
                if self.panic {
                    panic!("cannot digest {n}");
                }
                return Err(format!("poison message {n} (attempt {})", ctx.attempt()).into());
            }
            numbers.push((m.partition(), m.offset(), n));
        }
        let mut seen = self.tracker.0.lock().unwrap();
        for (partition, offset, number) in numbers {
            seen.push(Seen {
                instance: 1,
                partition,
                offset,
                number,
            });
        }
        Ok(())
    }
}

fn picky_app(
    cluster: &Cluster,
    topic: &str,
    poison: Vec<u64>,
    panic: bool,
    dlq: Option<DeadLetterQueue>,
    tracker: &Tracker,
    attempts: &Arc<Mutex<Attempts>>,
) -> App {
    let (tracker, attempts, topic, bootstrap, group) = (
        tracker.clone(),
        attempts.clone(),
        topic.to_string(),
        cluster.bootstrap(),
        unique("picky"),
    );
    App::builder()
        .setup(move |c| {
            c.client_id("picky")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            // A client lost to a fatal error never leaves the group: keep its session short.
            c.kafka("session.timeout.ms", "6000")
                .kafka("heartbeat.interval.ms", "500");
            c.pause_timeout(Duration::from_millis(50))
                .pause_max_timeout(Duration::from_millis(200));
        })
        .routes(move |r| {
            let route = r.topic(topic).consumer(move || Picky {
                tracker: tracker.clone(),
                poison: poison.clone(),
                panic,
                attempts: attempts.clone(),
            });
            if let Some(dlq) = dlq.clone() {
                route.dead_letter_queue(dlq);
            }
        })
        .build_with_env([])
}

#[test]
fn a_poison_message_reaches_the_dead_letter_queue_after_exactly_max_retries_and_the_rest_flows_in_order()
 {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("poison");
    let dlq_topic = format!("{topic}-dlq");
    cluster.create_topic(&rt, &topic, 2);
    cluster.create_topic(&rt, &dlq_topic, 1);
    // Keys spread numbers over both partitions; 25 sits mid-batch.
    cluster.produce_numbered(&rt, &topic, 0, 100, 10);
    let tracker = Tracker::default();
    let attempts = Arc::new(Mutex::new(Attempts::default()));
    let app = picky_app(
        &cluster,
        &topic,
        vec![25],
        false,
        Some(DeadLetterQueue::to(&dlq_topic).max_retries(2)),
        &tracker,
        &attempts,
    );
    let server = app.start(&Filters::default()).unwrap();

    assert!(
        tracker.wait_for(99, Duration::from_secs(60)),
        "good messages processed: {}",
        tracker.len()
    );
    // Asks for two, so a duplicate dead letter would be seen.
    let dead = read_topic(
        &cluster.bootstrap(),
        &dlq_topic,
        1,
        2,
        Duration::from_secs(10),
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);

    let counts = tracker.counts();
    assert_eq!(counts.len(), 99);
    assert!(!counts.contains_key(&25));
    let (total, alone) = {
        let a = attempts.lock().unwrap();
        (a.total[&25], a.alone[&25])
    };
    assert_eq!(
        alone, 3,
        "dead-lettered after failing alone 1 + max_retries = 3 times"
    );
    assert!(
        total <= alone + 1,
        "at most one attempt in its original batch: {total}"
    );

    assert_eq!(dead.len(), 1, "exactly the poison message is dead-lettered");
    let m = &dead[0];
    assert_eq!(m.payload(), Some(&b"25"[..]));
    assert_eq!(m.key(), Some(&b"key-5"[..]));
    let headers: HashMap<String, String> = m
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    assert_eq!(headers[dlq_headers::SOURCE_TOPIC], topic);
    assert_eq!(headers[dlq_headers::ATTEMPTS], total.to_string());
    assert!(
        headers[dlq_headers::ERROR].contains("poison message 25"),
        "{headers:?}"
    );
    assert!(
        headers.contains_key(dlq_headers::SOURCE_OFFSET)
            && headers.contains_key(dlq_headers::SOURCE_PARTITION)
    );
    assert!(headers[dlq_headers::SOURCE_CONSUMER_GROUP].starts_with("picky"));
    assert!(headers[dlq_headers::FAILED_AT].parse::<u64>().is_ok());
    // The dead-lettered message is done too: with it, no offset is missing.
    let mut seen = tracker.all();
    seen.push(Seen {
        instance: 1,
        partition: headers[dlq_headers::SOURCE_PARTITION].parse().unwrap(),
        offset: headers[dlq_headers::SOURCE_OFFSET].parse().unwrap(),
        number: 25,
    });
    seen.sort_by_key(|s| (s.partition, s.offset));
    assert_contiguous_per_partition(&seen);
}

#[test]
fn without_a_dead_letter_queue_a_panicking_partition_retries_while_the_others_flow() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("panic");
    cluster.create_topic(&rt, &topic, 3);
    cluster.produce_spread(&rt, &topic, 0, 90, 3); // n lands on partition n % 3
    let tracker = Tracker::default();
    let attempts = Arc::new(Mutex::new(Attempts::default()));
    let app = picky_app(&cluster, &topic, vec![4], true, None, &tracker, &attempts);
    let server = app.start(&Filters::default()).unwrap();
    // Everything except the partition holding 4 gets through; that one stays stuck at 4.
    std::thread::sleep(Duration::from_secs(4));
    let stuck_attempts = attempts.lock().unwrap().total[&4];
    assert_eq!(
        server.shutdown(),
        ServerExit::Clean,
        "a panic never takes the process down"
    );

    let seen = tracker.all();
    let partitions: std::collections::BTreeSet<i32> = seen.iter().map(|s| s.partition).collect();
    assert_eq!(
        partitions,
        [0, 2].into(),
        "the healthy partitions made progress, the poisoned one (1) none"
    );
    let stuck_partition = 1; // where 4 lives: n % 3
    let (other, stuck): (Vec<_>, Vec<_>) =
        seen.iter().partition(|s| s.partition != stuck_partition);
    assert_eq!(
        other.len(),
        60,
        "the two healthy partitions were fully processed"
    );
    assert!(
        stuck.iter().all(|s| s.number < 4),
        "nothing after the poison message was processed: {stuck:?}"
    );
    assert!(
        stuck_attempts >= 3,
        "retried with backoff, attempts so far: {stuck_attempts}"
    );
    assert!(!tracker.counts().contains_key(&4));
}

/// Seeks back to the start once, after its first batch, then pauses itself briefly.
struct Rewinder {
    tracker: Tracker,
    rewound: Arc<AtomicUsize>,
}

impl Consumer for Rewinder {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        self.tracker.record(1, messages)?;
        if self.rewound.fetch_add(1, Ordering::SeqCst) == 0 {
            ctx.seek(SeekTo::Earliest);
            ctx.pause(Duration::from_millis(300));
        }
        Ok(())
    }
}

#[test]
fn a_consumer_can_seek_its_partition_back_and_pause_it() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("seek");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, 30, 1);
    let tracker = Tracker::default();
    let rewound = Arc::new(AtomicUsize::new(0));
    let (t, r, topic2, bootstrap, group) = (
        tracker.clone(),
        rewound.clone(),
        topic.clone(),
        cluster.bootstrap(),
        unique("seek-group"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("seek")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
        })
        .routes(move |routes| {
            routes.topic(topic2).consumer(move || Rewinder {
                tracker: t.clone(),
                rewound: r.clone(),
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        tracker.wait_for(40, Duration::from_secs(30)),
        "processed {}",
        tracker.len()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let offsets: Vec<i64> = tracker.all().iter().map(|s| s.offset).collect();
    assert_eq!(
        &offsets[..10],
        &(0..10).collect::<Vec<_>>()[..],
        "first batch"
    );
    assert_eq!(
        &offsets[10..],
        &(0..30).collect::<Vec<_>>()[..],
        "after the seek: from the start again, in order"
    );
}

#[test]
fn a_fatal_client_error_rebuilds_the_listener_and_nothing_is_lost() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("fatal");
    cluster.create_topic(&rt, &topic, 2);
    cluster.produce_spread(&rt, &topic, 0, 100, 2);
    let tracker = Tracker::default();
    let attempts = Arc::new(Mutex::new(Attempts::default()));
    let app = picky_app(&cluster, &topic, vec![], false, None, &tracker, &attempts);
    let server = app.start(&Filters::default()).unwrap();
    assert!(tracker.wait_for(100, Duration::from_secs(30)));

    // A real librdkafka fatal error (as a fenced static member gets) in the listener's client.
    server.drill_fatal_error();
    std::thread::sleep(Duration::from_secs(2));
    cluster.produce_spread(&rt, &topic, 100, 200, 2);
    assert!(
        wait_until(Duration::from_secs(60), || tracker.counts().len() == 200),
        "after the rebuild: {} distinct processed",
        tracker.counts().len()
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let counts = tracker.counts();
    assert!((0..200).all(|n| counts.contains_key(&n)), "nothing lost");
}
