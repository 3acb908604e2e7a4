//! A cluster in memory implementing [`Cluster`], shared by the tests of everything that reads
//! or changes a cluster through that seam. Reads can be made to fail, per read and resource, to
//! test how callers treat facts they cannot learn.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::cluster::{Cluster, MessageStamp};
use super::{
    BrokerInfo, ConfigOp, GroupDescription, GroupMember, GroupSummary, PartitionInfo, PartitionLag,
    Permissions, ResourceKind, TopicInfo, TopicSpec,
};
use crate::error::{Error, Result};

/// A read of [`Cluster`] that [`Memory::failing`] can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Read {
    Topics,
    TopicSettings,
    Watermarks,
    Groups,
    Group,
    Committed,
    Brokers,
    BrokerSettings,
    Messages,
}

impl Read {
    fn operation(self) -> &'static str {
        match self {
            Read::Topics => "fetch metadata",
            Read::TopicSettings => "describe topic config",
            Read::Watermarks => "fetch watermarks",
            Read::Groups => "list groups",
            Read::Group => "describe group",
            Read::Committed => "fetch committed offsets",
            Read::Brokers => "fetch metadata",
            Read::BrokerSettings => "describe broker config",
            Read::Messages => "read messages",
        }
    }
}

/// One topic in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Topic {
    pub(crate) partitions: i32,
    pub(crate) replication_factor: i32,
    pub(crate) settings: BTreeMap<String, String>,
    /// Low and high watermark by partition; absent partitions are empty (0, 0).
    pub(crate) watermarks: BTreeMap<i32, (i64, i64)>,
}

#[derive(Debug, Default)]
struct State {
    topics: BTreeMap<String, Topic>,
    groups: BTreeMap<String, GroupDescription>,
    /// Committed offsets by (group, topic), then partition.
    committed: BTreeMap<(String, String), BTreeMap<i32, i64>>,
    /// Settings of the one broker, node 1.
    broker_settings: BTreeMap<String, String>,
    /// Message timestamps by topic, partition and offset (`None`: no timestamp).
    messages: BTreeMap<(String, i32, i64), Option<i64>>,
    /// What the principal may do, by resource; absent ones allow Read, Write and Describe.
    permissions: BTreeMap<(ResourceKind, String), Permissions>,
    /// Reads that fail, by read and resource ("" for every resource), with the reason.
    failing: BTreeMap<(Read, String), String>,
}

/// A cluster in memory; changes are logged as `create t`, `grow t n`, `alter t [ops]`,
/// `delete t`.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    state: Mutex<State>,
    log: Mutex<Vec<String>>,
}

impl Memory {
    /// Adds a topic with settings.
    pub(crate) fn with_topic(
        self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        settings: &[(&str, &str)],
    ) -> Self {
        self.state().topics.insert(
            name.into(),
            Topic {
                partitions,
                replication_factor,
                settings: settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                watermarks: BTreeMap::new(),
            },
        );
        self
    }

    /// Adds a stable consumer group with one member per entry of `members`, each reading the
    /// topics listed.
    pub(crate) fn with_group(self, name: &str, members: &[&[&str]]) -> Self {
        self.state()
            .groups
            .insert(name.into(), group(name, "Stable", "range", members));
        self
    }

    /// Adds (or replaces) a group as described.
    pub(crate) fn with_group_description(self, description: GroupDescription) -> Self {
        self.state()
            .groups
            .insert(description.name.clone(), description);
        self
    }

    /// Sets a partition's watermarks.
    pub(crate) fn with_watermarks(self, topic: &str, partition: i32, low: i64, high: i64) -> Self {
        self.state()
            .topics
            .entry(topic.into())
            .or_default()
            .watermarks
            .insert(partition, (low, high));
        self
    }

    /// Records a group's committed offset in one partition.
    pub(crate) fn with_committed(
        self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Self {
        self.state()
            .committed
            .entry((group.into(), topic.into()))
            .or_default()
            .insert(partition, offset);
        self
    }

    /// Sets one setting of an existing topic.
    pub(crate) fn alter_setting(self, topic: &str, name: &str, value: &str) -> Self {
        self.state()
            .topics
            .get_mut(topic)
            .expect("an existing topic")
            .settings
            .insert(name.into(), value.into());
        self
    }

    /// Sets what the principal may do with one resource.
    pub(crate) fn with_permissions(
        self,
        kind: ResourceKind,
        name: &str,
        permissions: Permissions,
    ) -> Self {
        self.state()
            .permissions
            .insert((kind, name.to_string()), permissions);
        self
    }

    /// Sets a setting of the broker.
    pub(crate) fn with_broker_setting(self, name: &str, value: &str) -> Self {
        self.state()
            .broker_settings
            .insert(name.into(), value.into());
        self
    }

    /// Puts a message with `timestamp` (ms) at `offset`.
    pub(crate) fn with_message(
        self,
        topic: &str,
        partition: i32,
        offset: i64,
        timestamp: Option<i64>,
    ) -> Self {
        self.state()
            .messages
            .insert((topic.into(), partition, offset), timestamp);
        self
    }

    /// Makes `read` of `resource` ("" for every resource) fail with `reason`.
    pub(crate) fn failing(self, read: Read, resource: &str, reason: &str) -> Self {
        self.state()
            .failing
            .insert((read, resource.into()), reason.into());
        self
    }

    /// The changes made so far.
    pub(crate) fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// A topic as it is now.
    pub(crate) fn topic(&self, name: &str) -> Option<Topic> {
        self.state().topics.get(name).cloned()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }

    fn check(&self, read: Read, resource: &str) -> Result<()> {
        let state = self.state();
        let reason = state
            .failing
            .get(&(read, resource.to_string()))
            .or_else(|| state.failing.get(&(read, String::new())));
        match reason {
            None => Ok(()),
            Some(reason) => Err(Error::Admin {
                operation: read.operation(),
                resource: resource.into(),
                reason: reason.clone(),
                source: None,
            }),
        }
    }

    fn missing(operation: &'static str, topic: &str) -> Error {
        Error::Admin {
            operation,
            resource: topic.into(),
            reason: "unknown topic".into(),
            source: None,
        }
    }
}

/// A group description with one member per entry of `members`, each reading the topics listed.
pub(crate) fn group(
    name: &str,
    state: &str,
    assignor: &str,
    members: &[&[&str]],
) -> GroupDescription {
    GroupDescription {
        name: name.into(),
        state: state.into(),
        protocol_type: "consumer".into(),
        group_protocol: "classic".into(),
        assignor: assignor.into(),
        members: members
            .iter()
            .enumerate()
            .map(|(i, topics)| GroupMember {
                id: format!("{name}-{i}"),
                client_id: format!("client-{i}"),
                host: "/127.0.0.1".into(),
                topics: Some(topics.iter().map(|t| t.to_string()).collect()),
            })
            .collect(),
    }
}

impl Cluster for Memory {
    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        self.check(Read::Topics, "")?;
        Ok(self
            .state()
            .topics
            .iter()
            .map(|(name, t)| TopicInfo {
                name: name.clone(),
                partitions: (0..t.partitions)
                    .map(|id| PartitionInfo {
                        id,
                        leader: 1,
                        replicas: (1..=t.replication_factor).collect(),
                        isr: (1..=t.replication_factor).collect(),
                    })
                    .collect(),
            })
            .collect())
    }

    async fn brokers(&self) -> Result<Vec<BrokerInfo>> {
        self.check(Read::Brokers, "")?;
        Ok(vec![BrokerInfo {
            id: 1,
            host: "localhost".into(),
            port: 9092,
        }])
    }

    async fn broker_settings(&self, broker: i32) -> Result<BTreeMap<String, String>> {
        self.check(Read::BrokerSettings, &format!("broker {broker}"))?;
        Ok(self.state().broker_settings.clone())
    }

    /// Only the message exactly at `offset`: the fake has no compaction gaps.
    async fn message_stamp(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<MessageStamp>> {
        self.check(Read::Messages, topic)?;
        Ok(self
            .state()
            .messages
            .get(&(topic.to_string(), partition, offset))
            .map(|timestamp| MessageStamp {
                offset,
                timestamp: *timestamp,
            }))
    }

    async fn topic_settings(&self, topic: &str) -> Result<BTreeMap<String, String>> {
        self.check(Read::TopicSettings, topic)?;
        self.state()
            .topics
            .get(topic)
            .map(|t| t.settings.clone())
            .ok_or_else(|| Memory::missing(Read::TopicSettings.operation(), topic))
    }

    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.check(Read::Watermarks, topic)?;
        let state = self.state();
        let t = state
            .topics
            .get(topic)
            .ok_or_else(|| Memory::missing(Read::Watermarks.operation(), topic))?;
        Ok(t.watermarks.get(&partition).copied().unwrap_or((0, 0)))
    }

    async fn groups(&self) -> Result<Vec<GroupSummary>> {
        self.check(Read::Groups, "")?;
        Ok(self
            .state()
            .groups
            .values()
            .map(|g| GroupSummary {
                name: g.name.clone(),
                state: g.state.clone(),
                protocol_type: g.protocol_type.clone(),
                members: g.members.len(),
            })
            .collect())
    }

    async fn group(&self, group: &str) -> Result<Option<GroupDescription>> {
        self.check(Read::Group, group)?;
        Ok(self.state().groups.get(group).cloned())
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<PartitionLag>> {
        self.check(Read::Committed, group)?;
        self.check(Read::Committed, topic)?;
        let state = self.state();
        let t = state
            .topics
            .get(topic)
            .ok_or_else(|| Memory::missing(Read::Committed.operation(), topic))?;
        let committed = state.committed.get(&(group.to_string(), topic.to_string()));
        Ok((0..t.partitions)
            .map(|partition| {
                let high = t.watermarks.get(&partition).map_or(0, |w| w.1);
                let offset = committed.and_then(|c| c.get(&partition).copied());
                PartitionLag {
                    topic: topic.into(),
                    partition,
                    committed: offset,
                    high_watermark: high,
                    lag: offset.map(|c| high - c),
                }
            })
            .collect())
    }

    async fn permissions(
        &self,
        kind: ResourceKind,
        names: &[String],
    ) -> Result<BTreeMap<String, Permissions>> {
        let state = self.state();
        Ok(names
            .iter()
            .map(|n| {
                let found = state.permissions.get(&(kind, n.clone())).cloned();
                let everything = ["READ", "WRITE", "DESCRIBE"].map(String::from).into();
                (n.clone(), found.unwrap_or(Permissions::Allowed(everything)))
            })
            .collect())
    }

    async fn create(&self, spec: &TopicSpec) -> Result<()> {
        self.record(format!("create {}", spec.name));
        self.state().topics.insert(
            spec.name.clone(),
            Topic {
                partitions: spec.partitions,
                replication_factor: spec.replication_factor,
                settings: spec.settings.clone(),
                watermarks: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn grow(&self, topic: &str, total: i32) -> Result<()> {
        self.record(format!("grow {topic} {total}"));
        let mut state = self.state();
        let t = state
            .topics
            .get_mut(topic)
            .ok_or_else(|| Memory::missing("grow partitions", topic))?;
        t.partitions = total;
        Ok(())
    }

    async fn alter(&self, topic: &str, ops: &[ConfigOp]) -> Result<()> {
        self.record(format!("alter {topic} {ops:?}"));
        let mut state = self.state();
        let t = state
            .topics
            .get_mut(topic)
            .ok_or_else(|| Memory::missing("alter topic config", topic))?;
        for op in ops {
            match op {
                ConfigOp::Set(k, v) => {
                    t.settings.insert(k.clone(), v.clone());
                }
                ConfigOp::Delete(k) => {
                    t.settings.remove(k);
                }
            }
        }
        Ok(())
    }

    async fn delete(&self, topic: &str) -> Result<()> {
        self.record(format!("delete {topic}"));
        self.state().topics.remove(topic);
        Ok(())
    }
}
