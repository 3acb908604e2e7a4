//! [`Live`]: the live checks' view of a [`Cluster`], turning each read into a fact or the
//! reason it is unknown.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::admin::{Cluster, GroupDescription, MessageStamp, Permissions, ResourceKind, TopicInfo};
use crate::error::error_chain;

/// A broker's id and the settings it reported.
type BrokerConfig = (i32, BTreeMap<String, String>);

/// What the live checks read, over any [`Cluster`]: each read blocks on a runtime of its own,
/// and its error is the reason the fact is unknown (a fact the cluster did not deliver is an
/// error, never an empty answer).
pub(crate) struct Live<'a, C: Cluster> {
    cluster: &'a C,
    /// Answers broker-config requests: a client with a shorter timeout, because some brokers
    /// (tansu 0.6.0) never answer DescribeConfigs on brokers.
    brokers: &'a C,
    runtime: tokio::runtime::Runtime,
    /// The first broker's id and settings, read once: several checks ask for one setting
    /// each, and a broker that never answers (tansu) costs the timeout only once.
    broker_config: std::sync::OnceLock<Result<BrokerConfig, String>>,
}

impl<C: Cluster> std::fmt::Debug for Live<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

impl<'a, C: Cluster> Live<'a, C> {
    /// Reads `cluster`, and broker settings through `brokers`.
    pub(crate) fn new(cluster: &'a C, brokers: &'a C) -> crate::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Server {
                reason: "cannot start a runtime".into(),
                source: Some(e),
            })?;
        Ok(Live {
            cluster,
            brokers,
            runtime,
            broker_config: std::sync::OnceLock::new(),
        })
    }

    pub(super) fn wait<T>(
        &self,
        f: impl std::future::Future<Output = crate::Result<T>>,
    ) -> Result<T, String> {
        self.runtime.block_on(f).map_err(|e| error_chain(&e))
    }

    /// Every topic with its partitions and replicas.
    pub(super) fn topics(&self) -> Result<Vec<TopicInfo>, String> {
        self.wait(self.cluster.topics())
    }

    /// What the principal may do with each of `names`.
    pub(super) fn permissions(
        &self,
        kind: ResourceKind,
        names: &[String],
    ) -> Result<BTreeMap<String, Permissions>, String> {
        self.wait(self.cluster.permissions(kind, names))
    }

    /// A topic's settings as the broker reports them (some brokers report only explicit ones).
    pub(super) fn topic_settings(&self, topic: &str) -> Result<BTreeMap<String, String>, String> {
        self.wait(self.cluster.topic_settings(topic))
    }

    /// One broker's setting `name` (the first broker's: the checks read cluster-wide defaults).
    pub(super) fn broker_setting(&self, name: &str) -> Result<String, String> {
        let (id, config) = self
            .broker_config
            .get_or_init(|| self.read_broker_config())
            .as_ref()
            .map_err(Clone::clone)?;
        config
            .get(name)
            .cloned()
            .ok_or_else(|| format!("broker {id} did not report {name}"))
    }

    fn read_broker_config(&self) -> Result<BrokerConfig, String> {
        let brokers = self.wait(self.cluster.brokers())?;
        let broker = brokers.first().ok_or("the cluster reported no broker")?;
        let config = self
            .runtime
            .block_on(self.brokers.broker_settings(broker.id))
            .map_err(|e| {
                format!(
                    "broker {} did not describe its configuration: {}",
                    broker.id,
                    error_chain(&e)
                )
            })?;
        Ok((broker.id, config))
    }

    /// The brokers' `offsets.retention.minutes`.
    pub(super) fn offsets_retention(&self) -> Result<Duration, String> {
        let value = self.broker_setting("offsets.retention.minutes")?;
        value
            .trim()
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|_| format!("offsets.retention.minutes={value:?} is not a number"))
    }

    /// A consumer group, `None` when the cluster does not know it.
    pub(super) fn group(&self, group: &str) -> Result<Option<GroupDescription>, String> {
        self.wait(self.cluster.group(group))
    }

    /// The timestamp (ms) of the message expected at `offset` of `topic`/`partition`.
    pub(super) fn timestamp_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<i64, String> {
        let stamp = self.wait(self.cluster.message_stamp(topic, partition, offset))?;
        timestamp_of(stamp, topic, partition, offset)
    }

    /// The newest message's timestamp (ms since the epoch) in each partition of `topic` that
    /// has one.
    pub(super) fn newest_timestamps(&self, topic: &str) -> Result<Vec<(i32, i64)>, String> {
        let info = self
            .topics()?
            .into_iter()
            .find(|t| t.name == topic)
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        let mut out = Vec::new();
        for p in &info.partitions {
            let (low, high) = self.wait(self.cluster.watermarks(topic, p.id))?;
            if high <= low {
                continue; // Empty: nothing to judge.
            }
            out.push((p.id, self.timestamp_at(topic, p.id, high - 1)?));
        }
        Ok(out)
    }

    /// For each partition of `topic` where `group` committed an offset and has not read
    /// everything: the timestamp (ms) of the first message it has not processed.
    pub(super) fn first_unprocessed(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, i64)>, String> {
        let mut out = Vec::new();
        for lag in self.wait(self.cluster.committed(group, topic))? {
            let (Some(committed), Some(behind)) = (lag.committed, lag.lag) else {
                continue; // Nothing committed here: the group never stopped in it.
            };
            if behind <= 0 {
                continue;
            }
            out.push((
                lag.partition,
                self.timestamp_at(topic, lag.partition, committed)?,
            ));
        }
        Ok(out)
    }
}

/// The timestamp (ms) of `stamp`, read from `topic`/`partition` where a message was expected at
/// `offset`; an error when none came back or it carries no timestamp.
pub(super) fn timestamp_of(
    stamp: Option<MessageStamp>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, String> {
    let stamp = stamp
        .ok_or_else(|| format!("{topic}/{partition}: no message came back from offset {offset}"))?;
    stamp.timestamp.ok_or_else(|| {
        format!(
            "{topic}/{partition}: the message at offset {} carries no timestamp",
            stamp.offset
        )
    })
}
