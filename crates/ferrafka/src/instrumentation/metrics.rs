//! Prometheus metrics from the events: a [`Metrics`] subscriber keeps the series and renders
//! them in the OpenMetrics text format for a scrape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{Event, PartitionRef, PauseReason, Subscriber};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    topic: String,
    partition: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PausedLabels {
    topic: String,
    partition: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    subscription_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

/// The metric families, registered once.
struct Families {
    registry: Registry,
    messages: Family<PartitionLabels, Counter>,
    batches: Family<BatchLabels, Counter>,
    duration: Family<TopicLabels, Histogram>,
    dead_lettered: Family<PartitionLabels, Counter>,
    paused: Family<PausedLabels, Gauge>,
    stored: Family<PartitionLabels, Gauge>,
    assigned: Family<GroupLabels, Counter>,
    revoked: Family<GroupLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    /// Why each paused partition is paused, to clear its series on resume.
    pauses: Mutex<HashMap<PartitionLabels, &'static str>>,
}

/// Prometheus metrics of a server, fed by its events: subscribe a clone with
/// [`AppBuilder::subscribe`](crate::AppBuilder::subscribe) and serve [`Metrics::render`] on
/// your `/metrics` endpoint.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `ferrafka_messages_consumed_total` | counter | topic, partition |
/// | `ferrafka_batches_total` | counter | topic, partition, outcome (`consumed`, `failed`) |
/// | `ferrafka_batch_duration_seconds` | histogram | topic |
/// | `ferrafka_messages_dead_lettered_total` | counter | topic, partition |
/// | `ferrafka_partition_paused` | gauge (1 while paused) | topic, partition, reason |
/// | `ferrafka_offset_stored` | gauge (next offset) | topic, partition |
/// | `ferrafka_partitions_assigned_total`, `ferrafka_partitions_revoked_total` | counter | subscription_group |
/// | `ferrafka_errors_total` | counter | kind |
#[derive(Clone)]
pub struct Metrics {
    families: Arc<Families>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Empty series, registered under the `ferrafka_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("ferrafka");
        let messages = Family::default();
        registry.register(
            "messages_consumed",
            "Messages of batches that consume returned Ok for",
            messages.clone(),
        );
        let batches = Family::default();
        registry.register("batches", "Batches run, by outcome", batches.clone());
        let duration = Family::<TopicLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register_with_unit(
            "batch_duration",
            "How long consume took per batch",
            Unit::Seconds,
            duration.clone(),
        );
        let dead_lettered = Family::default();
        registry.register(
            "messages_dead_lettered",
            "Messages produced to their dead-letter topic",
            dead_lettered.clone(),
        );
        let paused = Family::default();
        registry.register(
            "partition_paused",
            "1 while fetching the partition is paused, by reason",
            paused.clone(),
        );
        let stored = Family::default();
        registry.register(
            "offset_stored",
            "The partition's next offset stored for commit",
            stored.clone(),
        );
        let assigned = Family::default();
        registry.register(
            "partitions_assigned",
            "Partitions assigned",
            assigned.clone(),
        );
        let revoked = Family::default();
        registry.register("partitions_revoked", "Partitions revoked", revoked.clone());
        let errors = Family::default();
        registry.register(
            "errors",
            "Errors outside batch outcomes, by kind",
            errors.clone(),
        );
        Metrics {
            families: Arc::new(Families {
                registry,
                messages,
                batches,
                duration,
                dead_lettered,
                paused,
                stored,
                assigned,
                revoked,
                errors,
                pauses: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Every series in the OpenMetrics text format (`Content-Type:
    /// application/openmetrics-text; version=1.0.0; charset=utf-8`).
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.families.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

impl Families {
    /// A batch ended with `outcome` after `duration`: counted, and its duration observed.
    fn batch_ended(&self, p: &PartitionRef<'_>, outcome: &'static str, duration: Duration) {
        self.batches.get_or_create(&batch(p, outcome)).inc();
        let topic = TopicLabels {
            topic: p.topic.to_string(),
        };
        self.duration
            .get_or_create(&topic)
            .observe(duration.as_secs_f64());
    }
}

fn labels(p: &PartitionRef<'_>) -> PartitionLabels {
    PartitionLabels {
        topic: p.topic.to_string(),
        partition: p.partition.to_string(),
    }
}

fn reason_label(reason: PauseReason) -> &'static str {
    match reason {
        PauseReason::Retry => "retry",
        PauseReason::Consumer => "consumer",
        PauseReason::Backlog => "backlog",
        PauseReason::Quiet => "quiet",
    }
}

impl Subscriber for Metrics {
    fn on_event(&self, event: &Event<'_>) {
        let f = &self.families;
        match event {
            Event::BatchConsumed {
                partition,
                messages,
                duration,
                ..
            } => {
                f.messages
                    .get_or_create(&labels(partition))
                    .inc_by(*messages as u64);
                f.batch_ended(partition, "consumed", *duration);
            }
            Event::BatchFailed {
                partition,
                duration,
                ..
            } => {
                f.batch_ended(partition, "failed", *duration);
            }
            Event::DeadLettered { partition, .. } => {
                f.dead_lettered.get_or_create(&labels(partition)).inc();
            }
            Event::Paused { partition, reason } => {
                let key = labels(partition);
                let reason = reason_label(*reason);
                f.paused.get_or_create(&paused(&key, reason)).set(1);
                f.pauses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, reason);
            }
            Event::Resumed { partition } => {
                let key = labels(partition);
                let reason = f
                    .pauses
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&key);
                if let Some(reason) = reason {
                    f.paused.get_or_create(&paused(&key, reason)).set(0);
                }
            }
            Event::OffsetStored { partition, next } => {
                f.stored.get_or_create(&labels(partition)).set(*next);
            }
            Event::PartitionsAssigned {
                subscription_group,
                partitions,
            } => {
                let group = group(subscription_group);
                f.assigned
                    .get_or_create(&group)
                    .inc_by(partitions.len() as u64);
            }
            Event::PartitionsRevoked {
                subscription_group,
                partitions,
            } => {
                let group = group(subscription_group);
                f.revoked
                    .get_or_create(&group)
                    .inc_by(partitions.len() as u64);
            }
            Event::Error { kind, .. } => {
                let kind = match kind {
                    super::ErrorKind::RevokedHook => "revoked_hook",
                    super::ErrorKind::ShutdownHook => "shutdown_hook",
                    super::ErrorKind::DeadLetter => "dead_letter",
                    super::ErrorKind::Executor => "executor",
                };
                f.errors.get_or_create(&ErrorLabels { kind }).inc();
            }
            _ => {}
        }
    }
}

fn batch(p: &PartitionRef<'_>, outcome: &'static str) -> BatchLabels {
    BatchLabels {
        topic: p.topic.to_string(),
        partition: p.partition.to_string(),
        outcome,
    }
}

fn paused(key: &PartitionLabels, reason: &'static str) -> PausedLabels {
    PausedLabels {
        topic: key.topic.clone(),
        partition: key.partition.clone(),
        reason,
    }
}

fn group(name: &str) -> GroupLabels {
    GroupLabels {
        subscription_group: name.to_string(),
    }
}
