//! Shared helpers: a broker per test, a tracker of processed messages, and ferrafka-testing's
//! `unique` names, `wait_until` and `Noop` consumer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{ConsumeResult, Consumer, Context, Messages, Producer, Record};
pub use ferrafka_testing::{Noop, unique, wait_until};

/// A test's broker (the embedded one, or the Apache Kafka cluster `FERRAFKA_TEST_KAFKA` names)
/// plus an admin client and a producer on it.
pub struct Cluster {
    pub broker: ferrafka_testing::Broker,
    pub admin: Admin,
    pub producer: Producer,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A runtime, the test's broker, and a fresh topic named after `prefix` on it.
pub fn with_topic(prefix: &str, partitions: i32) -> (tokio::runtime::Runtime, Cluster, String) {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique(prefix);
    cluster.create_topic(&rt, &topic, partitions);
    (rt, cluster, topic)
}

impl Cluster {
    pub fn start() -> Self {
        Self::on(ferrafka_testing::broker())
    }

    /// Apache Kafka whichever half of the suite runs: for what only a real coordinator does.
    pub fn kafka() -> Self {
        Self::on(ferrafka_testing::kafka())
    }

    fn on(broker: ferrafka_testing::Broker) -> Self {
        init_logging();
        let admin = Admin::connect(&broker.bootstrap_servers()).expect("admin connects");
        // Normal batching and compression: the embedded broker serves fetches from inside
        // record batches exactly.
        let kafka = std::collections::BTreeMap::from([
            ("bootstrap.servers".to_string(), broker.bootstrap_servers()),
            ("linger.ms".to_string(), "5".to_string()),
            ("compression.type".to_string(), "lz4".to_string()),
        ]);
        let producer = Producer::new(&kafka).expect("producer");
        Cluster {
            broker,
            admin,
            producer,
        }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.bootstrap_servers()
    }

    pub fn create_topic(&self, rt: &tokio::runtime::Runtime, name: &str, partitions: i32) {
        rt.block_on(self.admin.create_topic(&TopicSpec::new(name, partitions)))
            .expect("topic created");
    }

    /// Produces messages numbered `from..to`, keyed `key-{n % keys}`, payload `{n}`.
    pub fn produce_numbered(
        &self,
        rt: &tokio::runtime::Runtime,
        topic: &str,
        from: u64,
        to: u64,
        keys: u64,
    ) {
        let payloads: Vec<(String, String)> = (from..to)
            .map(|n| (format!("key-{}", n % keys), n.to_string()))
            .collect();
        let records = payloads
            .iter()
            .map(|(k, p)| Record::to(topic).key(k).payload(p));
        rt.block_on(self.producer.produce_many(records))
            .expect("all produced");
    }
}

impl Cluster {
    /// Produces messages numbered `from..to` with payload `{n}` to partition `n % partitions`.
    pub fn produce_spread(
        &self,
        rt: &tokio::runtime::Runtime,
        topic: &str,
        from: u64,
        to: u64,
        partitions: u64,
    ) {
        let payloads: Vec<(i32, String)> = (from..to)
            .map(|n| ((n % partitions) as i32, n.to_string()))
            .collect();
        let records = payloads
            .iter()
            .map(|(p, payload)| Record::to(topic).partition(*p).payload(payload));
        rt.block_on(self.producer.produce_many(records))
            .expect("all produced");
    }
}

pub fn init_logging() {
    let filter = tracing_subscriber_filter();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

fn tracing_subscriber_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
}

/// One processed message: which server instance, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub instance: u32,
    pub partition: i32,
    pub offset: i64,
    pub number: u64,
}

/// Collects what consumers processed, across instances and restarts.
#[derive(Clone, Default)]
pub struct Tracker(pub Arc<Mutex<Vec<Seen>>>);

impl Tracker {
    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    pub fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }

    /// How often each number was processed.
    pub fn counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for s in self.0.lock().unwrap().iter() {
            *counts.entry(s.number).or_insert(0) += 1;
        }
        counts
    }

    /// Records every message of a batch; the payload is its number.
    pub fn record(&self, instance: u32, messages: &Messages) -> ConsumeResult {
        let mut seen = self.0.lock().unwrap();
        for m in messages {
            let number: u64 = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            seen.push(Seen {
                instance,
                partition: m.partition(),
                offset: m.offset(),
                number,
            });
        }
        Ok(())
    }

    pub fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.len() >= n)
    }
}

/// Records every message it processes; optionally sleeps per batch.
pub struct Recording {
    pub instance: u32,
    pub tracker: Tracker,
    pub batch_sleep: Duration,
}

impl Consumer for Recording {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if !self.batch_sleep.is_zero() {
            tokio::time::sleep(self.batch_sleep).await;
        }
        self.tracker.record(self.instance, messages)
    }
}

/// Checks that no offset was skipped: within one instance's run of a partition the next
/// offset is at most one past the previous (a step back is a retry or a re-delivery), and
/// across all instances each partition's processed offsets form one gap-free run from its
/// first offset to its last.
pub fn assert_contiguous_per_partition(seen: &[Seen]) {
    let mut last: HashMap<(u32, i32), i64> = HashMap::new();
    let mut offsets: HashMap<i32, std::collections::BTreeSet<i64>> = HashMap::new();
    for s in seen {
        if let Some(prev) = last.insert((s.instance, s.partition), s.offset) {
            assert!(
                s.offset <= prev + 1,
                "partition {} jumped from offset {prev} to {} on instance {}: {} skipped",
                s.partition,
                s.offset,
                s.instance,
                s.offset - prev - 1
            );
        }
        offsets.entry(s.partition).or_default().insert(s.offset);
    }
    for (partition, offsets) in offsets {
        let (first, last) = (offsets.first().unwrap(), offsets.last().unwrap());
        let missing: Vec<i64> = (*first..*last).filter(|o| !offsets.contains(o)).collect();
        assert!(
            missing.is_empty(),
            "partition {partition}: offsets {missing:?} between {first} and {last} were never processed"
        );
    }
}

/// Reads every message of a topic back with a plain rdkafka consumer.
pub use ferrafka_testing::read_topic;
