//! Cluster administration that works without a server: topics, their settings, cluster
//! metadata, watermarks, offsets by time, reading messages, and consumer groups.
//!
//! [`Admin`] is a facade over four files: `topics` (create, delete, grow partitions),
//! `configs` (describe and alter topic settings), `groups` (list, describe, lag, move offsets,
//! delete) and `ffi` (the one call rdkafka does not wrap). Operations that change topics wait
//! until fresh metadata shows the result instead of sleeping a fixed time, because Kafka
//! propagates topic metadata asynchronously.
//!
//! Every failure is an [`Error::Admin`] naming the operation and the resource, with librdkafka's
//! error as its typed `source` when the client failed, or an [`Error::NotSupported`] when the
//! broker lacks the API.

mod cluster;
mod configs;
mod descriptions;
mod groups;
mod offsets;
mod permissions;
mod topics;

#[cfg(test)]
pub(crate) mod memory;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{Error, Result};
use crate::kafka::{FailureWatch, WatchedContext, known_offset};

pub use cluster::{Cluster, MessageStamp};
pub use configs::{ConfigOp, ConfigValue};
pub use descriptions::{GroupDescription, GroupMember, GroupSummary, PartitionLag};
pub use groups::CommittedOffset;
pub use permissions::{Permissions, ResourceKind};

/// A topic to create: what a declaration resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic-level settings such as `retention.ms`.
    pub settings: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with `partitions` partitions, replication factor 1 and no settings.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor: 1,
            settings: BTreeMap::new(),
        }
    }
}

/// A position in a partition: where to read from or where to move a group to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The oldest retained message (the low watermark).
    Earliest,
    /// The end of the partition (the high watermark). For reading, the last N messages.
    Latest,
    /// An exact offset.
    At(i64),
    /// The first message with a timestamp at or after this time.
    Time(SystemTime),
}

/// One broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
}

/// One partition as the metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// Node id of the leader, -1 while there is none.
    pub leader: i32,
    /// Node ids of the replicas.
    pub replicas: Vec<i32>,
    /// Node ids of the in-sync replicas.
    pub isr: Vec<i32>,
}

/// One topic as the metadata shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Its partitions, by id.
    pub partitions: Vec<PartitionInfo>,
}

impl TopicInfo {
    /// The replication factor: the replica count of its first partition.
    pub fn replication_factor(&self) -> i32 {
        self.partitions
            .first()
            .map_or(0, |p| p.replicas.len() as i32)
    }
}

/// Brokers and topics of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// The brokers.
    pub brokers: Vec<BrokerInfo>,
    /// The topics, internal ones included, sorted by name.
    pub topics: Vec<TopicInfo>,
}

/// Admin operations against one cluster.
pub struct Admin {
    client: Arc<AdminClient<DefaultClientContext>>,
    /// Reads metadata; its context keeps the configuration failures (rejected credentials,
    /// untrusted certificates) a failed read is explained with.
    metadata: BaseConsumer<WatchedContext>,
    failures: Arc<FailureWatch>,
    kafka: BTreeMap<String, String>,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The error for a failed client call: `NotSupported` when librdkafka says the broker lacks the
/// API, `Admin` with `error` as its cause otherwise.
pub(crate) fn kafka_error(
    operation: &'static str,
    resource: impl Into<String>,
    error: &KafkaError,
) -> Error {
    let code = match error {
        // Admin futures report a failed request as `AdminOp`, which `rdkafka_error_code` skips.
        KafkaError::AdminOp(code) => Some(*code),
        other => other.rdkafka_error_code(),
    };
    if is_unsupported(code) {
        return Error::NotSupported {
            operation,
            resource: resource.into(),
            reason: error.to_string(),
        };
    }
    Error::Admin {
        operation,
        resource: resource.into(),
        reason: String::new(),
        source: Some(Box::new(error.clone())),
    }
}

/// Like [`kafka_error`] for one resource's failed result: its error code (the cause) and the
/// broker's message, kept as the reason only when it says more than the code.
pub(crate) fn code_error(
    operation: &'static str,
    resource: impl Into<String>,
    code: Option<RDKafkaErrorCode>,
    message: String,
) -> Error {
    let resource = resource.into();
    if is_unsupported(code) {
        return Error::NotSupported {
            operation,
            resource,
            reason: message,
        };
    }
    let Some(code) = code else {
        return Error::Admin {
            operation,
            resource,
            reason: message,
            source: None,
        };
    };
    let reason = if message == code.to_string() {
        String::new()
    } else {
        message
    };
    Error::Admin {
        operation,
        resource,
        reason,
        source: Some(Box::new(KafkaError::AdminOp(code))),
    }
}

fn is_unsupported(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion)
    )
}

/// The librdkafka error code behind `error`, if an admin call failed with one.
pub(crate) fn error_code(error: &Error) -> Option<RDKafkaErrorCode> {
    match error {
        Error::Admin {
            source: Some(source),
            ..
        } => match **source {
            KafkaError::AdminOp(code) => Some(code),
            ref other => other.rdkafka_error_code(),
        },
        _ => None,
    }
}

impl Admin {
    /// Connects with the given librdkafka properties (consumer-only ones are kept for the
    /// short-lived consumers that group operations use, and left out of the admin client).
    ///
    /// Every property is validated first: invalid ones are reported together as
    /// [`Error::Config`] (secrets redacted) and nothing connects.
    pub fn new(kafka: &BTreeMap<String, String>) -> Result<Self> {
        crate::kafka::check_kafka("admin", kafka)?;
        let mut config = ClientConfig::new();
        for (k, v) in kafka {
            if !crate::kafka::is_consumer_only(k) {
                config.set(k, v);
            }
        }
        let client = config
            .create()
            .map_err(|source| Error::create_client("admin", &source, kafka))?;
        let failures = Arc::new(FailureWatch::new(kafka));
        let context = WatchedContext {
            client: "admin".into(),
            watch: failures.clone(),
        };
        let metadata = config
            .create_with_context(context)
            .map_err(|source| Error::create_client("admin metadata", &source, kafka))?;
        Ok(Admin {
            client: Arc::new(client),
            metadata,
            failures,
            kafka: kafka.clone(),
            timeout: Duration::from_secs(30),
        })
    }

    /// Connects to `bootstrap_servers` with default properties.
    pub fn connect(bootstrap_servers: &str) -> Result<Self> {
        Self::new(&BTreeMap::from([(
            "bootstrap.servers".to_string(),
            bootstrap_servers.to_string(),
        )]))
    }

    /// Sets how long each operation (and each wait for its result to show) may take; 30 s by
    /// default.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long each operation may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The error for a failed metadata read: [`Error::Connection`] when the client reported a
    /// configuration failure (its events are served here: nothing else polls this client),
    /// else the admin error.
    fn connection_error(&self, error: &KafkaError) -> Error {
        // A served log event also reads as `None`, so an empty queue cannot be told apart:
        // serve for a short while instead.
        let until = Instant::now() + Duration::from_millis(300);
        while self.failures.last().is_none() && Instant::now() < until {
            self.metadata.poll(Duration::from_millis(10));
        }
        match self.failures.last() {
            Some(failure) => Error::Connection {
                client: "admin".into(),
                failure,
            },
            None => kafka_error("fetch metadata", "cluster", error),
        }
    }

    /// Brokers and topics, from fresh metadata.
    pub fn cluster_info(&self) -> Result<ClusterInfo> {
        // Asked in slices of a second, so rejected credentials or certificates (reported
        // within a fraction of a second) end the wait instead of the whole timeout.
        let deadline = crate::config::later(Instant::now(), self.timeout);
        let md = loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(1));
            match self.metadata.fetch_metadata(None, slice) {
                Ok(md) => break md,
                Err(e) => {
                    let error = self.connection_error(&e);
                    // A seeming protocol mismatch may be a broker restarting while asked for
                    // its API versions: it ends only the whole wait.
                    let refused = matches!(&error, Error::Connection { failure, .. }
                        if failure.kind != crate::kafka::FailureKind::ProtocolMismatch);
                    if refused || Instant::now() >= deadline {
                        return Err(error);
                    }
                }
            }
        };
        let brokers = md
            .brokers()
            .iter()
            .map(|b| BrokerInfo {
                id: b.id(),
                host: b.host().to_string(),
                port: b.port(),
            })
            .collect();
        let mut topics: Vec<TopicInfo> = md
            .topics()
            .iter()
            .filter(|t| t.error().is_none())
            .map(|t| TopicInfo {
                name: t.name().to_string(),
                partitions: t
                    .partitions()
                    .iter()
                    .map(|p| PartitionInfo {
                        id: p.id(),
                        leader: p.leader(),
                        replicas: p.replicas().to_vec(),
                        isr: p.isr().to_vec(),
                    })
                    .collect(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        for t in &mut topics {
            t.partitions.sort_by_key(|p| p.id);
        }
        Ok(ClusterInfo { brokers, topics })
    }

    /// One topic's metadata, or `None` when the cluster does not know it.
    ///
    /// Reads the whole cluster's metadata: asking for one topic by name could make a broker
    /// with `auto.create.topics.enable` create it.
    pub fn topic_info(&self, name: &str) -> Result<Option<TopicInfo>> {
        Ok(self
            .cluster_info()?
            .topics
            .into_iter()
            .find(|t| t.name == name))
    }

    /// The partition count of a topic, or `None` when the cluster does not know it.
    pub fn partition_count(&self, name: &str) -> Result<Option<usize>> {
        Ok(self.topic_info(name)?.map(|t| t.partitions.len()))
    }

    /// Low and high watermarks of a partition.
    ///
    /// Right after a topic is created its partitions may have no leader yet on every broker
    /// (`NotLeaderForPartition`, `LeaderNotAvailable`, `UnknownTopicOrPartition`): those are
    /// retried until [`Admin::timeout`].
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.retrying(
            |e| {
                matches!(
                    e,
                    KafkaError::MetadataFetch(
                        RDKafkaErrorCode::NotLeaderForPartition
                            | RDKafkaErrorCode::LeaderNotAvailable
                            | RDKafkaErrorCode::UnknownTopicOrPartition,
                    )
                )
            },
            || {
                self.metadata
                    .fetch_watermarks(topic, partition, self.timeout)
            },
        )
        .map_err(|e| kafka_error("fetch watermarks", format!("{topic}/{partition}"), &e))
    }

    /// Runs `call` until it succeeds, fails with an error `transient` does not accept, or
    /// [`Admin::timeout`] passed: for answers a cluster gives while it is still settling.
    fn retrying<T>(
        &self,
        transient: impl Fn(&KafkaError) -> bool,
        mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>,
    ) -> rdkafka::error::KafkaResult<T> {
        let deadline = crate::config::later(Instant::now(), self.timeout);
        loop {
            match call() {
                Err(e) if transient(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    /// For every partition of `topic`, the offset of the first message with a timestamp at or
    /// after `time`, or `None` when there is none.
    pub fn offsets_for_time(
        &self,
        topic: &str,
        time: SystemTime,
    ) -> Result<Vec<(i32, Option<i64>)>> {
        let info = self.topic_info(topic)?.ok_or_else(|| Error::Admin {
            operation: "offsets for time",
            resource: topic.to_string(),
            reason: "unknown topic".into(),
            source: None,
        })?;
        let partitions: Vec<i32> = info.partitions.iter().map(|p| p.id).collect();
        self.offsets_for_time_in(topic, &partitions, time)
    }

    fn offsets_for_time_in(
        &self,
        topic: &str,
        partitions: &[i32],
        time: SystemTime,
    ) -> Result<Vec<(i32, Option<i64>)>> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(
                topic,
                p,
                Offset::Offset(crate::messages::millis_since_epoch(time)),
            )
            .map_err(|e| kafka_error("offsets for time", topic, &e))?;
        }
        let found = self
            .metadata
            .offsets_for_times(tpl, self.timeout)
            .map_err(|e| kafka_error("offsets for time", topic, &e))?;
        Ok(found
            .elements()
            .iter()
            .map(|e| (e.partition(), known_offset(e.offset())))
            .collect())
    }

    /// Resolves `spec` to an offset of one partition.
    fn resolve_offset(&self, topic: &str, partition: i32, spec: OffsetSpec) -> Result<i64> {
        let (low, high) = self.watermarks(topic, partition)?;
        Ok(match spec {
            OffsetSpec::Earliest => low,
            OffsetSpec::Latest => high,
            OffsetSpec::At(offset) => offset,
            OffsetSpec::Time(time) => self
                .offsets_for_time_in(topic, &[partition], time)?
                .first()
                .and_then(|(_, o)| *o)
                .unwrap_or(high),
        })
    }

    /// Reads up to `count` messages of one partition, starting at `from`. With
    /// [`OffsetSpec::Latest`] it reads the last `count` messages. Stops early at the end of the
    /// partition (an empty result means there was nothing to read), and at the timeout with
    /// what arrived by then; a timeout before any message arrived is an error.
    pub fn read_messages(
        &self,
        topic: &str,
        partition: i32,
        from: OffsetSpec,
        count: usize,
    ) -> Result<Vec<OwnedMessage>> {
        let resource = format!("{topic}/{partition}");
        let (low, high) = self.watermarks(topic, partition)?;
        let start = match from {
            OffsetSpec::Latest => (high - count as i64).max(low),
            other => self.resolve_offset(topic, partition, other)?.max(low),
        };
        let end = high.min(start.saturating_add(count as i64));
        if start >= end {
            return Ok(Vec::new());
        }
        let consumer = self.consumer(None)?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Offset(start))
            .map_err(|e| kafka_error("read messages", &resource, &e))?;
        consumer
            .assign(&tpl)
            .map_err(|e| kafka_error("read messages", &resource, &e))?;
        let mut messages = Vec::new();
        let deadline = Instant::now() + self.timeout;
        let mut at_end = false;
        while !at_end && messages.len() < count && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                // The rest of the range holds no message (compacted, or transaction markers).
                Some(Ok(m)) if m.offset() >= end => at_end = true,
                Some(Ok(m)) => {
                    at_end = m.offset() + 1 >= end;
                    messages.push(m.detach());
                }
                Some(Err(e)) => return Err(kafka_error("read messages", &resource, &e)),
                None => {}
            }
        }
        if messages.is_empty() && !at_end {
            return Err(Error::Admin {
                operation: "read messages",
                resource,
                reason: format!(
                    "no message of offsets {start}..{end} arrived within {:?}",
                    self.timeout
                ),
                source: None,
            });
        }
        Ok(messages)
    }

    /// A short-lived consumer on the admin's properties, in `group` when given; it never
    /// commits on its own.
    fn consumer(&self, group: Option<&str>) -> Result<BaseConsumer> {
        let mut config = ClientConfig::new();
        // It reads and commits offsets but never joins the group: the app's membership
        // settings do not apply, and `group.protocol=consumer` would make librdkafka refuse
        // the classic properties the app's profile sets next to it.
        const MEMBERSHIP: [&str; 3] = [
            "group.protocol",
            "group.remote.assignor",
            "group.instance.id",
        ];
        for (k, v) in self
            .kafka
            .iter()
            .filter(|(k, _)| !MEMBERSHIP.contains(&k.as_str()))
        {
            config.set(k, v);
        }
        config
            .set("group.id", group.unwrap_or("ferrafka-admin"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false");
        config.create().map_err(|source| {
            let client = format!(
                "admin consumer of group {}",
                group.unwrap_or("ferrafka-admin")
            );
            Error::create_client(client, &source, &self.kafka)
        })
    }
}

#[cfg(test)]
mod tests;
