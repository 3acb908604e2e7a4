//! [`Cluster`]: the one seam through which ferrafka reads and changes a cluster — metadata,
//! settings, watermarks, consumer groups, committed offsets, and topic changes — implemented by
//! [`Admin`] and, in tests, by an in-memory cluster.
//!
//! Every failure is a typed [`Error`](crate::Error): [`Error::Admin`](crate::Error::Admin) with
//! librdkafka's error as its source when the client failed.

use std::collections::BTreeMap;
use std::future::Future;

use rdkafka::message::Message as _;

use super::{
    Admin, BrokerInfo, ConfigOp, GroupDescription, GroupSummary, OffsetSpec, PartitionLag,
    Permissions, ResourceKind, TopicInfo, TopicSpec,
};
use crate::error::Result;

/// A message as far as its position and age go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageStamp {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms since the epoch), `None` when it carries none.
    pub timestamp: Option<i64>,
}

/// Reads and changes a cluster.
pub trait Cluster: Sync {
    /// The topics as the metadata shows them, internal ones included, sorted by name.
    fn topics(&self) -> impl Future<Output = Result<Vec<TopicInfo>>> + Send;
    /// The brokers as the metadata shows them.
    fn brokers(&self) -> impl Future<Output = Result<Vec<BrokerInfo>>> + Send;
    /// One broker's settings (by node id) that have a value, as it reports them.
    fn broker_settings(
        &self,
        broker: i32,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;
    /// The first message at or after `offset` in one partition, `None` when none came back.
    fn message_stamp(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> impl Future<Output = Result<Option<MessageStamp>>> + Send;
    /// A topic's settings that have a value, as the broker reports them.
    fn topic_settings(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>>> + Send;
    /// The low and high watermark of one partition.
    fn watermarks(
        &self,
        topic: &str,
        partition: i32,
    ) -> impl Future<Output = Result<(i64, i64)>> + Send;
    /// The consumer groups as listed.
    fn groups(&self) -> impl Future<Output = Result<Vec<GroupSummary>>> + Send;
    /// One consumer group in detail, `None` when the cluster does not know it.
    fn group(&self, group: &str) -> impl Future<Output = Result<Option<GroupDescription>>> + Send;
    /// A group's committed offsets and lag in each partition of `topic`.
    fn committed(
        &self,
        group: &str,
        topic: &str,
    ) -> impl Future<Output = Result<Vec<PartitionLag>>> + Send;
    /// What this client's principal may do with each of `names`, resources of one `kind`.
    fn permissions(
        &self,
        kind: ResourceKind,
        names: &[String],
    ) -> impl Future<Output = Result<BTreeMap<String, Permissions>>> + Send;
    /// Creates a topic and waits until it is usable.
    fn create(&self, spec: &TopicSpec) -> impl Future<Output = Result<()>> + Send;
    /// Grows a topic to `total` partitions.
    fn grow(&self, topic: &str, total: i32) -> impl Future<Output = Result<()>> + Send;
    /// Changes topic settings.
    fn alter(&self, topic: &str, ops: &[ConfigOp]) -> impl Future<Output = Result<()>> + Send;
    /// Deletes a topic and waits until it is gone.
    fn delete(&self, topic: &str) -> impl Future<Output = Result<()>> + Send;
}

impl Cluster for Admin {
    async fn topics(&self) -> Result<Vec<TopicInfo>> {
        self.cluster_info().map(|c| c.topics)
    }

    async fn brokers(&self) -> Result<Vec<BrokerInfo>> {
        self.cluster_info().map(|c| c.brokers)
    }

    async fn broker_settings(&self, broker: i32) -> Result<BTreeMap<String, String>> {
        Ok(self
            .describe_broker_config(broker)
            .await?
            .into_iter()
            .filter_map(|(k, v)| v.value.map(|v| (k, v)))
            .collect())
    }

    async fn message_stamp(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<Option<MessageStamp>> {
        let messages = self.read_messages(topic, partition, OffsetSpec::At(offset), 1)?;
        Ok(messages.first().map(|m| MessageStamp {
            offset: m.offset(),
            timestamp: m.timestamp().to_millis().filter(|t| *t >= 0),
        }))
    }

    async fn topic_settings(&self, topic: &str) -> Result<BTreeMap<String, String>> {
        Ok(self
            .describe_topic_config(topic)
            .await?
            .into_iter()
            .filter_map(|(k, v)| v.value.map(|v| (k, v)))
            .collect())
    }

    async fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        Admin::watermarks(self, topic, partition)
    }

    async fn groups(&self) -> Result<Vec<GroupSummary>> {
        self.list_groups()
    }

    async fn group(&self, group: &str) -> Result<Option<GroupDescription>> {
        self.describe_group(group)
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<PartitionLag>> {
        self.lags(group, &[topic])
    }

    async fn permissions(
        &self,
        kind: ResourceKind,
        names: &[String],
    ) -> Result<BTreeMap<String, Permissions>> {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        Admin::permissions(self, kind, &names)
    }

    async fn create(&self, spec: &TopicSpec) -> Result<()> {
        self.create_topic(spec).await
    }

    async fn grow(&self, topic: &str, total: i32) -> Result<()> {
        self.grow_partitions(topic, total).await
    }

    async fn alter(&self, topic: &str, ops: &[ConfigOp]) -> Result<()> {
        self.alter_topic_config(topic, ops).await
    }

    async fn delete(&self, topic: &str) -> Result<()> {
        self.delete_topic(topic).await
    }
}
