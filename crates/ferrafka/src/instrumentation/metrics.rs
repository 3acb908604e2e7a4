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

use super::{Event, PartitionRef, Subscriber};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    consumer_group: String,
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BatchLabels {
    consumer_group: String,
    topic: String,
    partition: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    consumer_group: String,
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PausedLabels {
    consumer_group: String,
    topic: String,
    partition: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SkippedLabels {
    consumer_group: String,
    topic: String,
    partition: String,
    filter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    subscription_group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommitLabels {
    subscription_group: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    topic: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PatternLabels {
    subscription_group: String,
    pattern: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReportLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    action: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabels {
    broker: String,
}

/// The metric families, registered once.
struct Families {
    registry: Registry,
    messages: Family<PartitionLabels, Counter>,
    batches: Family<BatchLabels, Counter>,
    duration: Family<TopicLabels, Histogram>,
    retries: Family<PartitionLabels, Counter>,
    dead_lettered: Family<PartitionLabels, Counter>,
    skipped: Family<SkippedLabels, Counter>,
    transactions: Family<BatchLabels, Counter>,
    paused: Family<PausedLabels, Gauge>,
    stored: Family<PartitionLabels, Gauge>,
    lag: Family<PartitionLabels, Gauge>,
    rebalances: Family<GroupLabels, Counter>,
    assigned: Family<GroupLabels, Counter>,
    revoked: Family<GroupLabels, Counter>,
    lost: Family<GroupLabels, Counter>,
    commits: Family<CommitLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    pattern_topics: Family<PatternLabels, Counter>,
    reports: Family<ReportLabels, Counter>,
    commands: Family<CommandLabels, Counter>,
    producer_queue: Gauge,
    producer_rtt: Family<BrokerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Why each paused partition is paused, to clear its series on resume.
    pauses: Mutex<HashMap<PartitionLabels, &'static str>>,
}

/// Prometheus metrics of a server, fed by its events: subscribe a clone with
/// [`AppBuilder::subscribe`](crate::AppBuilder::subscribe) and serve [`Metrics::render`] on
/// your `/metrics` endpoint (or set `http_port`, and the server serves it).
///
/// | metric | type | labels |
/// |---|---|---|
/// | `ferrafka_messages_consumed_total` | counter | consumer_group, topic, partition |
/// | `ferrafka_batches_total` | counter | consumer_group, topic, partition, outcome (`consumed`, `failed`) |
/// | `ferrafka_batch_duration_seconds` | histogram | consumer_group, topic |
/// | `ferrafka_retries_total` | counter (retries scheduled) | consumer_group, topic, partition |
/// | `ferrafka_messages_dead_lettered_total` | counter | consumer_group, topic, partition |
/// | `ferrafka_messages_skipped_total` | counter (dropped by a filter, e.g. expired) | consumer_group, topic, partition, filter |
/// | `ferrafka_transactions_total` | counter | consumer_group, topic, partition, outcome (`committed`, `aborted`) |
/// | `ferrafka_partition_paused` | gauge (1 while paused) | consumer_group, topic, partition, reason |
/// | `ferrafka_offset_stored` | gauge (next offset) | consumer_group, topic, partition |
/// | `ferrafka_consumer_lag` | gauge (messages) | consumer_group, topic, partition |
/// | `ferrafka_rebalances_total` | counter (assignments received) | subscription_group |
/// | `ferrafka_partitions_assigned_total`, `_revoked_total`, `_lost_total` | counter | subscription_group |
/// | `ferrafka_commits_total` | counter | subscription_group, outcome (`ok`, `failed`) |
/// | `ferrafka_errors_total` | counter | kind |
/// | `ferrafka_producer_deliveries_total` | counter | topic, outcome (`delivered`, `failed`) |
/// | `ferrafka_pattern_topics_total` | counter (topics resolved to a pattern route) | subscription_group, pattern |
/// | `ferrafka_reports_published_total` | counter (reports for `web` delivered) | topic |
/// | `ferrafka_commands_total` | counter (commands of the commands topic handled) | action, outcome |
/// | `ferrafka_producer_queue_messages` | gauge | |
/// | `ferrafka_producer_rtt_seconds` | gauge (average of the statistics window) | broker |
///
/// A revoked partition's gauges are removed, so a scrape shows only what this process owns.
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
        let mut r = Registry::with_prefix("ferrafka");
        let duration = Family::<TopicLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        r.register_with_unit(
            "batch_duration",
            "How long consume took per batch",
            Unit::Seconds,
            duration.clone(),
        );
        let producer_rtt = Family::default();
        r.register_with_unit(
            "producer_rtt",
            "Average request round trip to each broker over librdkafka's statistics window",
            Unit::Seconds,
            producer_rtt.clone(),
        );
        let families = Families {
            messages: registered(
                &mut r,
                "messages_consumed",
                "Messages of batches that consume returned Ok for",
            ),
            batches: registered(&mut r, "batches", "Batches run, by outcome"),
            duration,
            retries: registered(&mut r, "retries", "Retries of failed batches scheduled"),
            dead_lettered: registered(
                &mut r,
                "messages_dead_lettered",
                "Messages produced to their dead-letter topic",
            ),
            skipped: registered(
                &mut r,
                "messages_skipped",
                "Messages a filter dropped (and marked) without consuming them, by filter",
            ),
            transactions: registered(
                &mut r,
                "transactions",
                "Transactions of transactional routes, by outcome",
            ),
            paused: registered(
                &mut r,
                "partition_paused",
                "1 while fetching the partition is paused, by reason",
            ),
            stored: registered(
                &mut r,
                "offset_stored",
                "The partition's next offset stored for commit",
            ),
            lag: registered(
                &mut r,
                "consumer_lag",
                "Messages after the stored offset, from librdkafka's statistics or the broker",
            ),
            rebalances: registered(&mut r, "rebalances", "Assignments received from the group"),
            assigned: registered(&mut r, "partitions_assigned", "Partitions assigned"),
            revoked: registered(&mut r, "partitions_revoked", "Partitions revoked"),
            lost: registered(
                &mut r,
                "partitions_lost",
                "Partitions lost without a clean hand-over",
            ),
            commits: registered(&mut r, "commits", "Offset commits, by outcome"),
            errors: registered(&mut r, "errors", "Errors outside batch outcomes, by kind"),
            deliveries: registered(
                &mut r,
                "producer_deliveries",
                "Messages the producer delivered or gave up on",
            ),
            pattern_topics: registered(
                &mut r,
                "pattern_topics",
                "Topics a pattern subscription brought in, resolved to their pattern route",
            ),
            reports: registered(
                &mut r,
                "reports_published",
                "Reports and error reports for `web` delivered, by topic",
            ),
            commands: registered(
                &mut r,
                "commands",
                "Commands of the commands topic addressed to this process, by action and outcome",
            ),
            producer_queue: registered(
                &mut r,
                "producer_queue_messages",
                "Messages waiting in the producer's queue",
            ),
            producer_rtt,
            pauses: Mutex::new(HashMap::new()),
            registry: r,
        };
        Metrics {
            families: Arc::new(families),
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

/// Registers a metric of any type (counters, gauges and families alike) and returns it.
fn registered<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: prometheus_client::registry::Metric + Clone + Default,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Families {
    /// A batch ended with `outcome` after `duration`: counted, and its duration observed.
    fn batch_ended(&self, p: &PartitionRef<'_>, outcome: &'static str, duration: Duration) {
        let key = labels(p);
        self.batches.get_or_create(&batch(&key, outcome)).inc();
        let topic = TopicLabels {
            consumer_group: key.consumer_group,
            topic: key.topic,
        };
        self.duration
            .get_or_create(&topic)
            .observe(duration.as_secs_f64());
    }

    fn paused(&self, key: PartitionLabels, reason: &'static str) {
        self.paused.get_or_create(&paused(&key, reason)).set(1);
        self.pauses().insert(key, reason);
    }

    fn resumed(&self, key: &PartitionLabels) {
        if let Some(reason) = self.pauses().remove(key) {
            self.paused.remove(&paused(key, reason));
        }
    }

    fn pauses(&self) -> std::sync::MutexGuard<'_, HashMap<PartitionLabels, &'static str>> {
        self.pauses.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partitions left this process: their gauges go.
    fn revoked(&self, subscription_group: &str, partitions: &[(String, i32)]) {
        let consumer_group = super::consumer_group_of(subscription_group);
        for (topic, partition) in partitions {
            let key = PartitionLabels {
                consumer_group: consumer_group.to_string(),
                topic: topic.clone(),
                partition: partition.to_string(),
            };
            self.resumed(&key);
            self.stored.remove(&key);
            self.lag.remove(&key);
        }
    }

    fn statistics(&self, client: &str, statistics: &rdkafka::Statistics) {
        if client != "producer" {
            return;
        }
        self.producer_queue.set(statistics.msg_cnt as i64);
        for broker in statistics.brokers.values() {
            if let Some(rtt) = broker.rtt.as_ref().filter(|w| w.cnt > 0) {
                let key = BrokerLabels {
                    broker: broker.nodename.clone(),
                };
                self.producer_rtt
                    .get_or_create(&key)
                    .set(rtt.avg as f64 / 1e6);
            }
        }
    }
}

fn labels(p: &PartitionRef<'_>) -> PartitionLabels {
    PartitionLabels {
        consumer_group: p.consumer_group.to_string(),
        topic: p.topic.to_string(),
        partition: p.partition.to_string(),
    }
}

fn group(name: &str) -> GroupLabels {
    GroupLabels {
        subscription_group: name.to_string(),
    }
}

fn batch(key: &PartitionLabels, outcome: &'static str) -> BatchLabels {
    BatchLabels {
        consumer_group: key.consumer_group.clone(),
        topic: key.topic.clone(),
        partition: key.partition.clone(),
        outcome,
    }
}

fn paused(key: &PartitionLabels, reason: &'static str) -> PausedLabels {
    PausedLabels {
        consumer_group: key.consumer_group.clone(),
        topic: key.topic.clone(),
        partition: key.partition.clone(),
        reason,
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
            } => f.batch_ended(partition, "failed", *duration),
            Event::RetryScheduled { partition, .. } => {
                f.retries.get_or_create(&labels(partition)).inc();
            }
            Event::DeadLettered { partition, .. } => {
                f.dead_lettered.get_or_create(&labels(partition)).inc();
            }
            Event::TransactionEnded {
                partition,
                committed,
                ..
            } => {
                let outcome = if *committed { "committed" } else { "aborted" };
                let key = batch(&labels(partition), outcome);
                f.transactions.get_or_create(&key).inc();
            }
            Event::Paused { partition, reason } => f.paused(labels(partition), reason.as_str()),
            Event::Resumed { partition } => f.resumed(&labels(partition)),
            Event::MessagesSkipped {
                partition,
                filter,
                count,
                ..
            } => {
                let key = SkippedLabels {
                    consumer_group: partition.consumer_group.to_string(),
                    topic: partition.topic.to_string(),
                    partition: partition.partition.to_string(),
                    filter: filter.to_string(),
                };
                f.skipped.get_or_create(&key).inc_by(*count as u64);
            }
            Event::OffsetStored { partition, next } => {
                f.stored.get_or_create(&labels(partition)).set(*next);
            }
            Event::ConsumerLag { partition, lag, .. } => {
                f.lag.get_or_create(&labels(partition)).set(*lag);
            }
            Event::PartitionsAssigned {
                subscription_group,
                partitions,
            } => {
                let group = group(subscription_group);
                f.rebalances.get_or_create(&group).inc();
                f.assigned
                    .get_or_create(&group)
                    .inc_by(partitions.len() as u64);
            }
            Event::PartitionsRevoked {
                subscription_group,
                partitions,
            } => {
                f.revoked
                    .get_or_create(&group(subscription_group))
                    .inc_by(partitions.len() as u64);
                f.revoked(subscription_group, partitions);
            }
            Event::PartitionsLost {
                subscription_group,
                partitions,
            } => {
                f.lost
                    .get_or_create(&group(subscription_group))
                    .inc_by(partitions.len() as u64);
            }
            Event::OffsetsCommitted {
                subscription_group,
                error,
                ..
            } => {
                let key = CommitLabels {
                    subscription_group: subscription_group.to_string(),
                    outcome: if error.is_some() { "failed" } else { "ok" },
                };
                f.commits.get_or_create(&key).inc();
            }
            Event::Error { kind, .. } => {
                let kind = kind.as_str();
                f.errors.get_or_create(&ErrorLabels { kind }).inc();
            }
            Event::Delivered { topic, .. } | Event::DeliveryFailed { topic, .. } => {
                let outcome = match event {
                    Event::Delivered { .. } => "delivered",
                    _ => "failed",
                };
                let key = DeliveryLabels {
                    topic: topic.to_string(),
                    outcome,
                };
                f.deliveries.get_or_create(&key).inc();
            }
            Event::Statistics { client, statistics } => f.statistics(client, statistics),
            Event::ReportPublished { topic } => {
                let key = ReportLabels {
                    topic: topic.to_string(),
                };
                f.reports.get_or_create(&key).inc();
            }
            Event::CommandReceived {
                action, outcome, ..
            } => {
                let key = CommandLabels {
                    action: action.to_string(),
                    outcome: outcome.to_string(),
                };
                f.commands.get_or_create(&key).inc();
            }
            Event::PatternTopicResolved {
                subscription_group,
                pattern,
                ..
            } => {
                let key = PatternLabels {
                    subscription_group: subscription_group.to_string(),
                    pattern: pattern.to_string(),
                };
                f.pattern_topics.get_or_create(&key).inc();
            }
            _ => {}
        }
    }
}
