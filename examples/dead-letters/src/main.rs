//! Retries and dead letters, end to end:
//!
//! ```sh
//! cargo run -p example-dead-letters                      # embedded broker
//! FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=host:9092 cargo run -p example-dead-letters
//! ```
//!
//! It produces 20 orders, one of them malformed. The consumer fails on the malformed one, so
//! ferrafka pauses the partition, retries the batch after a backoff (`pause_timeout`, doubling),
//! then retries the failing message alone; after `max_retries` it produces it to the
//! dead-letter topic with headers saying where it came from and why, and only then marks it
//! consumed. The partition goes on: every good order is processed exactly once, in order.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, OffsetSpec, TopicSpec};
use ferrafka::routing::dlq_headers;
use ferrafka::{
    App, ConsumeResult, Consumer, Context, DeadLetterQueue, Filters, Messages, Producer, Record,
    ServerExit,
};
use rdkafka::Message as _;
use rdkafka::message::Headers as _;

const ORDERS: &str = "orders";
const DEAD_LETTERS: &str = "orders-dlq";
const BAD: u32 = 7;

/// Parses each order's amount; an order that is not a number fails the batch.
struct Orders {
    processed: Arc<Mutex<Vec<u32>>>,
}

impl Consumer for Orders {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut batch = Vec::new();
        for m in messages {
            let text = std::str::from_utf8(m.payload_or_empty())?;
            let id: u32 = text.parse().map_err(|e| format!("order {text:?}: {e}"))?;
            batch.push(id);
        }
        // Marked only when the whole batch succeeded: a failed batch runs again.
        self.processed.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dead-letters: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // The embedded broker when none is configured; it stops when dropped.
    let (bootstrap, _embedded) = match std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS") {
        Ok(servers) => (servers, None),
        Err(_) => {
            let broker = ferrafka_broker::EmbeddedBroker::start()?;
            (broker.bootstrap_servers(), Some(broker))
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let admin = Admin::connect(&bootstrap)?;
    // Fresh topics, so a second run against the same broker starts from nothing.
    let run_id = std::process::id();
    let (orders, dead_letters) = (
        format!("{ORDERS}-{run_id}"),
        format!("{DEAD_LETTERS}-{run_id}"),
    );
    for topic in [&orders, &dead_letters] {
        runtime.block_on(admin.ensure_topic(&TopicSpec::new(topic.as_str(), 1)))?;
    }
    let producer = Producer::new(&[("bootstrap.servers".into(), bootstrap.clone())].into())?;
    for id in 0..20u32 {
        let payload = if id == BAD {
            "seven".to_string()
        } else {
            id.to_string()
        };
        runtime.block_on(producer.produce(Record::to(&orders).payload(payload.as_bytes())))?;
    }

    let processed = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let (processed, orders, dead_letters) = (processed.clone(), orders.clone(), dead_letters);
        let bootstrap = bootstrap.clone();
        App::builder()
            .setup(move |c| {
                c.client_id("dead-letters")
                    .kafka("bootstrap.servers", bootstrap)
                    .max_wait_time(Duration::from_millis(100))
                    // Short pauses for the example; production keeps the 1 s..30 s defaults.
                    .pause_timeout(Duration::from_millis(100))
                    .pause_max_timeout(Duration::from_millis(400));
            })
            .routes(move |r| {
                r.topic(orders)
                    .consumer(move || Orders {
                        processed: processed.clone(),
                    })
                    .dead_letter_queue(DeadLetterQueue::to(dead_letters).max_retries(2));
            })
            .build()
    };
    let server = app.start(&Filters::default())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while processed.lock().unwrap().len() < 19 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exit = server.shutdown();
    let processed = processed.lock().unwrap().clone();
    let expected: Vec<u32> = (0..20).filter(|id| *id != BAD).collect();
    println!("processed, in order: {processed:?}");
    if processed != expected || exit != ServerExit::Clean {
        return Err(format!("expected {expected:?} and a clean stop, got {exit:?}").into());
    }

    let dead = admin.read_messages(
        &format!("{DEAD_LETTERS}-{run_id}"),
        0,
        OffsetSpec::Earliest,
        1,
    )?;
    let message = dead
        .first()
        .ok_or("nothing reached the dead-letter topic")?;
    let header = |name: &str| {
        message.headers().and_then(|h| {
            h.iter()
                .find(|header| header.key == name)
                .and_then(|header| header.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        })
    };
    println!(
        "dead-lettered: {:?} from {} offset {} after {} attempts: {}",
        String::from_utf8_lossy(message.payload().unwrap_or_default()),
        header(dlq_headers::SOURCE_TOPIC).unwrap_or_default(),
        header(dlq_headers::SOURCE_OFFSET).unwrap_or_default(),
        header(dlq_headers::ATTEMPTS).unwrap_or_default(),
        header(dlq_headers::ERROR).unwrap_or_default(),
    );
    Ok(())
}
