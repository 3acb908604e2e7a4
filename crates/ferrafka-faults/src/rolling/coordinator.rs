//! The group coordinator a rolling restart runs on, and what it says about rebalances.

use std::path::PathBuf;

use ferrafka::admin::TopicSpec;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use super::PARTITIONS;

/// Where the group runs.
pub enum Coordinator {
    /// librdkafka's mock cluster: no static membership, no KIP-848, and it refuses commits
    /// while the group joins.
    Mock(MockCluster<'static, DefaultProducerContext>),
    /// Apache Kafka, with the `server.log` of every node, where the coordinator logs each
    /// generation and group epoch.
    Kafka {
        /// The cluster (the suite's, or one started for the test).
        broker: Box<ferrafka_testing::Broker>,
        /// Every node's `server.log`.
        logs: Vec<PathBuf>,
    },
}

impl Coordinator {
    /// A fresh mock cluster with one broker.
    pub fn mock() -> Self {
        Coordinator::Mock(MockCluster::new(1).expect("mock cluster"))
    }

    /// Apache Kafka ([`ferrafka_testing::kafka`]). Panics when its logs cannot be found.
    pub fn kafka() -> Self {
        let broker = ferrafka_testing::kafka();
        let logs = broker.server_logs().unwrap_or_else(|| {
            panic!(
                "the brokers' server.log files are needed to count rebalances: set {} to the \
                 `scripts/kafka --dir` of the {} cluster, or unset {1} to let the test start one",
                ferrafka_testing::KAFKA_DIR_VARIABLE,
                ferrafka_testing::KAFKA_VARIABLE,
            )
        });
        Coordinator::Kafka {
            broker: Box::new(broker),
            logs,
        }
    }

    /// True on librdkafka's mock cluster.
    pub fn is_mock(&self) -> bool {
        matches!(self, Coordinator::Mock(_))
    }

    /// The `bootstrap.servers` value.
    pub fn bootstrap(&self) -> String {
        match self {
            Coordinator::Mock(mock) => mock.bootstrap_servers(),
            Coordinator::Kafka { broker, .. } => broker.bootstrap_servers(),
        }
    }

    /// Creates `topic` with the suite's six partitions.
    pub(super) fn create_topic(&self, rt: &tokio::runtime::Runtime, topic: &str) {
        match self {
            Coordinator::Mock(mock) => mock
                .create_topic(topic, PARTITIONS as i32, 1)
                .expect("mock topic"),
            Coordinator::Kafka { broker, .. } => {
                let spec = TopicSpec::new(topic, PARTITIONS as i32);
                rt.block_on(broker.admin().create_topic(&spec))
                    .expect("topic created");
            }
        }
    }

    /// The group's latest generation (classic protocol) or group epoch (KIP-848) its Kafka
    /// coordinator logged; `None` on the mock cluster.
    pub fn group_epoch(&self, group: &str) -> Option<u64> {
        let Coordinator::Kafka { logs, .. } = self else {
            return None;
        };
        let text: String = logs
            .iter()
            .map(|log| std::fs::read_to_string(log).unwrap_or_default())
            .collect();
        Some(latest_epoch(&text, group))
    }
}

/// The highest generation or group epoch of `group` in a Kafka coordinator's log: classic
/// groups log `Stabilized group G generation N` (and `Group G with generation N is now empty`),
/// KIP-848 groups `[GroupId G] Bumped group epoch to N`.
fn latest_epoch(log: &str, group: &str) -> u64 {
    let markers = [
        format!("Stabilized group {group} generation "),
        format!("Group {group} with generation "),
        format!("[GroupId {group}] Bumped group epoch to "),
    ];
    let number_after = |line: &str, marker: &str| -> Option<u64> {
        let rest = &line[line.find(marker)? + marker.len()..];
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    };
    log.lines()
        .flat_map(|line| markers.iter().filter_map(|m| number_after(line, m)))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::latest_epoch;

    #[test]
    fn epochs_are_read_per_group_from_both_protocols() {
        let log = "\
[t] INFO [GroupCoordinator id=0] Stabilized group g-1 generation 1 with 2 members. (x)
[t] INFO [GroupCoordinator id=0] Stabilized group g-10 generation 9 with 2 members. (x)
[t] INFO [GroupCoordinator id=0] Stabilized group g-1 generation 3 with 1 members. (x)
[t] INFO [GroupCoordinator id=0] [GroupId n-1] Bumped group epoch to 4 with metadata hash 1. (x)
[t] INFO [GroupCoordinator id=0] [GroupId n-1] Bumped group epoch to 5 with metadata hash 0. (x)
[t] INFO [GroupCoordinator id=0] Group g-1 with generation 4 is now empty. (x)";
        assert_eq!(latest_epoch(log, "g-1"), 4);
        assert_eq!(latest_epoch(log, "g-10"), 9);
        assert_eq!(latest_epoch(log, "n-1"), 5);
        assert_eq!(latest_epoch(log, "missing"), 0);
    }
}
