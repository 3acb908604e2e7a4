//! Test helpers for ferrafka apps, in one dev-dependency.
//!
//! - Without a broker: [`Tester`] runs your app's routed consumers through the server's own
//!   processing on a virtual clock, and [`context`] builds a `Context` for a unit test of one
//!   `consume` call (both re-exported from `ferrafka::testing`).
//! - With a broker: [`broker`] gives a test its broker, with helpers to create topics and read
//!   them back: the embedded Kafka-protocol broker on a free loopback port, or, with
//!   `FERRAFKA_TEST_BROKER=kafka` (the Kafka half of the suite, see `scripts/test`), Apache
//!   Kafka. [`kafka`] is for tests that need a real coordinator, replication or transactions.
//!   Apache Kafka is the cluster `FERRAFKA_TEST_KAFKA` names (`host:port,...`), else a one-node
//!   cluster started for the test with the repository's `scripts/kafka`.
//!
//! - Either way: [`unique`] names topics and groups, [`wait_until`] polls for a condition,
//!   and [`Noop`] is a consumer for routes a test needs but does not process.
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

use std::path::PathBuf;
use std::time::{Duration, Instant};

mod kafka;
mod secure;

pub use kafka::KafkaCluster;
pub use secure::{ADMIN_USER, APP_USER, SecureKafka, TLS_CLIENT};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::rdkafka::message::OwnedMessage;
use ferrafka::rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
pub use ferrafka::testing::*;
pub use ferrafka_broker::EmbeddedBroker;

/// The variable naming a running Apache Kafka cluster (`host:port,...`) for the tests.
pub const KAFKA_VARIABLE: &str = "FERRAFKA_TEST_KAFKA";
/// The variable naming the `scripts/kafka --dir` of the `FERRAFKA_TEST_KAFKA` cluster, where
/// [`Broker::server_logs`] finds the brokers' logs (`scripts/test` sets both).
pub const KAFKA_DIR_VARIABLE: &str = "FERRAFKA_TEST_KAFKA_DIR";
/// The variable choosing the broker [`broker`] gives: `kafka` or `embedded` (the default).
pub const BROKER_VARIABLE: &str = "FERRAFKA_TEST_BROKER";

/// A test's broker with an admin client: an embedded broker (stopped when dropped) or an
/// Apache Kafka cluster.
#[derive(Debug)]
pub struct Broker {
    cluster: Cluster,
    bootstrap: String,
    admin: Admin,
}

/// Which broker a [`Broker`] is.
#[derive(Debug)]
enum Cluster {
    /// Kept for its `Drop`, which stops the broker.
    Embedded { _broker: EmbeddedBroker },
    /// Named by `FERRAFKA_TEST_KAFKA`: shared by the tests, which use unique topic and group
    /// names.
    Kafka,
    /// Started by [`kafka`] for this test; stopped when dropped.
    Started { cluster: kafka::KafkaCluster },
}

/// The broker for one test: a fresh embedded broker, or Apache Kafka (see [`kafka`]) with
/// `FERRAFKA_TEST_BROKER=kafka`. Panics with the reason when it cannot start.
pub fn broker() -> Broker {
    match std::env::var(BROKER_VARIABLE).as_deref() {
        Ok("kafka") => kafka(),
        Ok("embedded" | "") | Err(_) => {
            let broker = EmbeddedBroker::start().unwrap_or_else(|e| panic!("{e}"));
            let bootstrap = broker.bootstrap_servers();
            Broker::connect(Cluster::Embedded { _broker: broker }, bootstrap)
        }
        Ok(other) => panic!("{BROKER_VARIABLE}={other}: use `kafka` or `embedded`"),
    }
}

/// A real Apache Kafka cluster, for tests that need its coordinator, replication or
/// transactions: the one `FERRAFKA_TEST_KAFKA` names, else a one-node cluster started with
/// `scripts/kafka` for this test (Java 17 and Maven; about 5 s) and stopped when dropped.
/// Never skips: panics with the reason when no Kafka can start.
pub fn kafka() -> Broker {
    match std::env::var(KAFKA_VARIABLE) {
        Ok(bootstrap) if !bootstrap.is_empty() => Broker::connect(Cluster::Kafka, bootstrap),
        _ => {
            let cluster = kafka::KafkaCluster::start(1).unwrap_or_else(|e| panic!("{e}"));
            let bootstrap = cluster.bootstrap.clone();
            Broker::connect(Cluster::Started { cluster }, bootstrap)
        }
    }
}

impl Broker {
    fn connect(cluster: Cluster, bootstrap: String) -> Self {
        let admin = Admin::connect(&bootstrap)
            .unwrap_or_else(|e| panic!("admin client for the broker at {bootstrap}: {e}"));
        Broker {
            cluster,
            bootstrap,
            admin,
        }
    }

    /// The `bootstrap.servers` value for your app and clients.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.clone()
    }

    /// True when this is Apache Kafka, not the embedded broker.
    pub fn is_kafka(&self) -> bool {
        !matches!(self.cluster, Cluster::Embedded { .. })
    }

    /// The `server.log` of every Kafka node, where the group coordinator logs each generation
    /// (classic protocol) and group epoch (KIP-848): rebalances counted by the broker.
    /// `None` for the embedded broker, or a `FERRAFKA_TEST_KAFKA` cluster without
    /// `FERRAFKA_TEST_KAFKA_DIR`.
    pub fn server_logs(&self) -> Option<Vec<PathBuf>> {
        let logs = match &self.cluster {
            Cluster::Embedded { .. } => return None,
            Cluster::Kafka => {
                kafka::server_logs(&PathBuf::from(std::env::var_os(KAFKA_DIR_VARIABLE)?))
            }
            Cluster::Started { cluster } => cluster.server_logs(),
        };
        Some(logs).filter(|l| !l.is_empty())
    }

    /// The admin client of this broker.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Creates `name` with `partitions` partitions (the embedded broker does not auto-create
    /// topics).
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

/// A name unique to this test process, for the topics and groups of tests sharing a broker:
/// `prefix-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `condition` until it holds or `timeout` passed, then checks it once more (it may have
/// come true during the last sleep); returns its last answer. Blocks the thread.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    // 50 ms: conditions may read record files or ask the broker, and a finer poll takes CPU
    // from the servers under test for no gain in tests that wait seconds.
    const POLL: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(POLL);
    }
    condition()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_carry_the_prefix_and_pid() {
        let (a, b) = (unique("orders"), unique("orders"));
        assert_ne!(a, b);
        assert!(
            a.starts_with(&format!("orders-{}-", std::process::id())),
            "{a}"
        );
    }

    #[test]
    fn wait_until_checks_once_more_after_the_deadline() {
        let mut calls = 0;
        assert!(wait_until(Duration::ZERO, || {
            calls += 1;
            true
        }));
        assert_eq!(calls, 1);
        let mut polls = 0;
        assert!(!wait_until(Duration::from_millis(120), || {
            polls += 1;
            false
        }));
        assert!(polls >= 2, "{polls} polls");
    }
}
