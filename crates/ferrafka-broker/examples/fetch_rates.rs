//! Measures the embedded broker with batched producers: what a fetch from inside a batch
//! returns, and produce and consume rates.
//!
//! ```text
//! cargo run --release -p ferrafka-broker --example fetch_rates            # 200,000 messages
//! cargo run --release -p ferrafka-broker --example fetch_rates -- 500000
//! ```
//!
//! Phase 1 writes 10,000 records (`linger.ms=5`) and fetches from offset 5,001. Phase 2 writes
//! N 100-byte records (`linger.ms=5`, lz4) and reads them all back, once with librdkafka's
//! default `fetch.wait.max.ms` (500) and once with 10.

use std::time::{Duration, Instant};

use ferrafka_broker::EmbeddedBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

/// A phase that sees no new record for this long has read everything it will get.
const QUIET: Duration = Duration::from_secs(3);

fn main() {
    let messages: i64 = std::env::args()
        .nth(1)
        .map_or(200_000, |n| n.parse().expect("a message count"));
    let broker = EmbeddedBroker::start().expect("broker starts");
    let servers = broker.bootstrap_servers();

    create_topic(&servers, "inside-a-batch");
    produce(
        &servers,
        "inside-a-batch",
        10_000,
        &[("linger.ms", "5")],
        b"x",
    );
    let (count, first) = consume(&servers, "inside-a-batch", 5_001, &[]).0;
    println!("fetch from 5,001 of 10,000 batched records: {count} records, the first at {first:?}");

    create_topic(&servers, "rates");
    let payload = [b'p'; 100];
    let batched = [("linger.ms", "5"), ("compression.type", "lz4")];
    let took = produce(&servers, "rates", messages, &batched, &payload);
    println!(
        "produce {messages} x 100 B (linger.ms=5, lz4): {:.2} s, {:.0} msg/s",
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64()
    );
    for wait in ["500", "10"] {
        let ((count, _), took) = consume(&servers, "rates", 0, &[("fetch.wait.max.ms", wait)]);
        println!(
            "consume {count} from offset 0 (fetch.wait.max.ms={wait}): {:.2} s, {:.0} msg/s",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64()
        );
    }
}

fn create_topic(servers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let topics = [NewTopic::new(topic, 1, TopicReplication::Fixed(1))];
    for result in runtime
        .block_on(admin.create_topics(&topics, &AdminOptions::new()))
        .expect("create topics")
    {
        result.expect("topic created");
    }
}

/// Sends `messages` records to partition 0 and returns the time until all were acknowledged.
fn produce(
    servers: &str,
    topic: &str,
    messages: i64,
    properties: &[(&str, &str)],
    payload: &[u8],
) -> Duration {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", servers);
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let producer: BaseProducer = config.create().expect("producer");
    let started = Instant::now();
    for _ in 0..messages {
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .partition(0)
            .payload(payload);
        while let Err((e, returned)) = producer.send(record) {
            assert_eq!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::QueueFull));
            record = returned;
            producer.poll(Duration::from_millis(1));
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    started.elapsed()
}

/// Reads partition 0 from `from` until no record came for [`QUIET`]; returns (records, first
/// offset) and the time from the assignment to the last record.
fn consume(
    servers: &str,
    topic: &str,
    from: i64,
    properties: &[(&str, &str)],
) -> ((u64, Option<i64>), Duration) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("group.id", format!("{topic}-{from}-{properties:?}"))
        .set("enable.auto.commit", "false");
    for (key, value) in properties {
        config.set(*key, *value);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, 0, Offset::Offset(from))
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let started = Instant::now();
    let (mut count, mut first, mut last_seen) = (0, None, started);
    while last_seen.elapsed() < QUIET {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("no consumer error");
            first.get_or_insert(message.offset());
            count += 1;
            last_seen = Instant::now();
        }
    }
    ((count, first), last_seen.duration_since(started))
}
