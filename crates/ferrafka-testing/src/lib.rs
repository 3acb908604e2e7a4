//! Test helpers for ferrafka apps, in one dev-dependency.
//!
//! - Without a broker: [`Tester`] runs your app's routed consumers through the server's own
//!   processing on a virtual clock, and [`context`] builds a `Context` for a unit test of one
//!   `consume` call (both re-exported from `ferrafka::testing`).
//! - With a broker: [`broker`] starts the embedded Kafka-protocol broker on a free loopback port,
//!   with helpers to create topics and read them back.
//!
//! ```no_run
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let broker = ferrafka_testing::broker();
//! broker.create_topic("orders", 3).await;
//! // … run your app against `broker.bootstrap_servers()`, then:
//! let out = broker.read_topic("receipts", 1, 10, std::time::Duration::from_secs(10));
//! assert_eq!(out.len(), 10);
//! # });
//! ```

use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::rdkafka::message::OwnedMessage;
use ferrafka::rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
pub use ferrafka::testing::*;
pub use ferrafka_broker::EmbeddedBroker;

/// A running embedded broker with an admin client; stopped when dropped.
#[derive(Debug)]
pub struct Broker {
    broker: EmbeddedBroker,
    admin: Admin,
}

/// Starts an embedded broker for one test. Panics with the reason when it cannot start.
pub fn broker() -> Broker {
    let broker = EmbeddedBroker::start().unwrap_or_else(|e| panic!("{e}"));
    let admin = Admin::connect(&broker.bootstrap_servers())
        .unwrap_or_else(|e| panic!("admin client for the embedded broker: {e}"));
    Broker { broker, admin }
}

impl Broker {
    /// The `bootstrap.servers` value for your app and clients.
    pub fn bootstrap_servers(&self) -> String {
        self.broker.bootstrap_servers()
    }

    /// Creates `name` with `partitions` partitions (the broker does not auto-create topics).
    /// Panics when the broker refuses.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        self.admin
            .create_topic(&TopicSpec::new(name, partitions))
            .await
            .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    }

    /// Reads `topic`'s partitions `0..partitions` from the start until `expected` messages
    /// arrived or `timeout` passed; sorted by partition and offset. Blocks the thread.
    pub fn read_topic(
        &self,
        topic: &str,
        partitions: i32,
        expected: usize,
        timeout: Duration,
    ) -> Vec<OwnedMessage> {
        read_topic(
            &self.bootstrap_servers(),
            topic,
            partitions,
            expected,
            timeout,
        )
    }
}

/// Reads `topic`'s partitions `0..partitions` from the start on any broker with a plain rdkafka
/// consumer, until `expected` messages arrived or `timeout` passed; sorted by partition and
/// offset. Blocks the thread.
pub fn read_topic(
    bootstrap_servers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set(
            "group.id",
            format!("ferrafka-testing-reader-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("valid partition");
    }
    consumer.assign(&tpl).expect("assign the reader");
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out.sort_by_key(|m| (m.partition(), m.offset()));
    out
}
