//! Routes: which consumer handles which topic, in which consumer and subscription group.
//!
//! The app's `routes` closure fills a [`Router`]. At boot the routes are resolved into
//! [`SubscriptionGroup`]s — one librdkafka consumer each. Topics of one consumer group share a
//! subscription group unless they name another one or their kafka settings differ, in which case
//! they are split off automatically (one librdkafka consumer cannot mix settings).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, InitialOffset, Problem, Source, redact};
use crate::consumer::{Consumer, ConsumerFactory, DynConsumer};
use crate::declaratives::{RoutedTopic, TopicConfig, check_topic_name};
use crate::kafka::{self, TopicOverrides};
use crate::messages::{Deserializer, JsonDeserializer};

mod virtual_partitions;
pub use virtual_partitions::VirtualPartitions;

/// Where messages that keep failing go, so the partition can move on.
///
/// After `max_retries` failed retries of a message, ferrafka produces it to `topic` with its key
/// and headers plus headers naming where it came from and why it failed, waits for the broker's
/// acknowledgement, and only then marks it as consumed. A message that cannot be dead-lettered is
/// retried, never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterQueue {
    /// The dead-letter topic.
    pub topic: String,
    /// Retries after the first failure before the message is dead-lettered.
    pub max_retries: u32,
}

impl DeadLetterQueue {
    /// Dead-letters to `topic` after 3 retries.
    pub fn to(topic: impl Into<String>) -> Self {
        DeadLetterQueue {
            topic: topic.into(),
            max_retries: 3,
        }
    }

    /// Sets the retries after the first failure.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
}

/// Headers ferrafka adds to dead-lettered messages (besides the original ones).
pub mod dlq_headers {
    /// Header naming the topic a dead-lettered message came from.
    pub const SOURCE_TOPIC: &str = "ferrafka-source-topic";
    /// Header naming the partition a dead-lettered message came from.
    pub const SOURCE_PARTITION: &str = "ferrafka-source-partition";
    /// Header naming the offset of a dead-lettered message in its source partition.
    pub const SOURCE_OFFSET: &str = "ferrafka-source-offset";
    /// Header naming the consumer group that gave up on a dead-lettered message.
    pub const SOURCE_CONSUMER_GROUP: &str = "ferrafka-source-consumer-group";
    /// Header counting how many times a dead-lettered message was attempted.
    pub const ATTEMPTS: &str = "ferrafka-attempts";
    /// Header carrying the last error of a dead-lettered message.
    pub const ERROR: &str = "ferrafka-error";
    /// Header with when the message was dead-lettered, in milliseconds since the epoch.
    pub const FAILED_AT: &str = "ferrafka-failed-at";
}

/// The name of the subscription group topics join when they name none.
pub const DEFAULT_SUBSCRIPTION_GROUP: &str = "default";

/// Collects routes: topics of the default consumer group and named consumer groups.
#[derive(Default)]
pub struct Router {
    pub(crate) groups: Vec<ConsumerGroupRoute>,
}

impl Router {
    fn group_mut(&mut self, name: Option<&str>) -> &mut ConsumerGroupRoute {
        let index = match self.groups.iter().position(|g| g.name.as_deref() == name) {
            Some(i) => i,
            None => {
                self.groups.push(ConsumerGroupRoute {
                    name: name.map(str::to_string),
                    topics: Vec::new(),
                });
                self.groups.len() - 1
            }
        };
        &mut self.groups[index]
    }

    /// Routes a topic in the default consumer group (whose id is the `group_id` setting).
    pub fn topic(&mut self, name: impl Into<String>) -> &mut TopicRoute {
        self.group_mut(None).topic(name)
    }

    /// Routes topics in a named consumer group.
    pub fn consumer_group(
        &mut self,
        name: impl Into<String>,
        routes: impl FnOnce(&mut ConsumerGroupRoute),
    ) -> &mut Self {
        let name = name.into();
        routes(self.group_mut(Some(&name)));
        self
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("groups", &self.groups)
            .finish()
    }
}

/// The routes of one consumer group.
#[derive(Debug)]
pub struct ConsumerGroupRoute {
    /// `None` for the default group.
    pub(crate) name: Option<String>,
    pub(crate) topics: Vec<TopicRoute>,
}

impl ConsumerGroupRoute {
    /// Routes a topic in this consumer group.
    pub fn topic(&mut self, name: impl Into<String>) -> &mut TopicRoute {
        self.topics.push(TopicRoute::new(name.into()));
        self.topics.last_mut().expect("just pushed")
    }
}

/// How one topic is consumed. Unset settings fall back to the app's.
pub struct TopicRoute {
    pub(crate) name: String,
    pub(crate) factory: Option<ConsumerFactory>,
    pub(crate) max_messages: Option<usize>,
    pub(crate) max_wait_time: Option<Duration>,
    pub(crate) initial_offset: Option<InitialOffset>,
    pub(crate) kafka: BTreeMap<String, String>,
    pub(crate) active: bool,
    pub(crate) deserializer: Arc<dyn Deserializer>,
    pub(crate) manual_offset_management: bool,
    pub(crate) subscription_group: Option<String>,
    pub(crate) dead_letter_queue: Option<DeadLetterQueue>,
    pub(crate) consumer_persistence: Option<bool>,
    pub(crate) declaration: Option<TopicConfig>,
    pub(crate) virtual_partitions: Option<VirtualPartitions>,
}

impl TopicRoute {
    fn new(name: String) -> Self {
        TopicRoute {
            name,
            factory: None,
            max_messages: None,
            max_wait_time: None,
            initial_offset: None,
            kafka: BTreeMap::new(),
            active: true,
            deserializer: Arc::new(JsonDeserializer),
            manual_offset_management: false,
            subscription_group: None,
            dead_letter_queue: None,
            consumer_persistence: None,
            declaration: None,
            virtual_partitions: None,
        }
    }

    /// Sends messages that still fail after retries to a dead-letter topic.
    pub fn dead_letter_queue(&mut self, dlq: DeadLetterQueue) -> &mut Self {
        self.dead_letter_queue = Some(dlq);
        self
    }

    /// Splits each batch into groups by key that run in parallel on their own consumer
    /// instances; see [`VirtualPartitions`] for the ordering and marking rules.
    pub fn virtual_partitions(&mut self, virtual_partitions: VirtualPartitions) -> &mut Self {
        self.virtual_partitions = Some(virtual_partitions);
        self
    }

    /// Sets the function that builds a consumer instance for each assigned partition.
    pub fn consumer<C, F>(&mut self, factory: F) -> &mut Self
    where
        C: Consumer,
        F: Fn() -> C + Send + Sync + 'static,
    {
        self.factory = Some(Arc::new(move || {
            Box::new(factory()) as Box<dyn DynConsumer>
        }));
        self
    }

    /// Most messages in one batch of this topic.
    pub fn max_messages(&mut self, n: usize) -> &mut Self {
        self.max_messages = Some(n);
        self
    }

    /// Longest a buffered message of this topic waits for its batch to fill.
    pub fn max_wait_time(&mut self, wait: Duration) -> &mut Self {
        self.max_wait_time = Some(wait);
        self
    }

    /// Where the group starts on partitions without a committed offset.
    pub fn initial_offset(&mut self, offset: InitialOffset) -> &mut Self {
        self.initial_offset = Some(offset);
        self
    }

    /// A librdkafka property for this topic's consumer; topics with different properties get
    /// separate subscription groups.
    pub fn kafka(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.kafka.insert(name.into(), value.into());
        self
    }

    /// `active(false)` keeps the route (for `info` and topic management) without consuming it.
    pub fn active(&mut self, active: bool) -> &mut Self {
        self.active = active;
        self
    }

    /// Sets how payloads of this topic are read by [`crate::Message::deserialize`].
    pub fn deserializer(&mut self, deserializer: impl Deserializer) -> &mut Self {
        self.deserializer = Arc::new(deserializer);
        self
    }

    /// With manual offset management a successful batch is not marked; the consumer marks
    /// what it wants with `ctx.mark_as_consumed`.
    pub fn manual_offset_management(&mut self, manual: bool) -> &mut Self {
        self.manual_offset_management = manual;
        self
    }

    /// Keeps this topic's consumer instances across batches (true) or builds a fresh one per
    /// batch (false); overrides the app's `consumer_persistence`.
    pub fn consumer_persistence(&mut self, on: bool) -> &mut Self {
        self.consumer_persistence = Some(on);
        self
    }

    /// Declares how the topic should look in the cluster (partitions, replication factor,
    /// settings), for the `topics` commands and `strict_declarative_topics`.
    pub fn config(&mut self, config: impl FnOnce(TopicConfig) -> TopicConfig) -> &mut Self {
        self.declaration = Some(config(self.declaration.take().unwrap_or_default()));
        self
    }

    /// Puts the topic in a named subscription group (its own librdkafka consumer).
    pub fn subscription_group(&mut self, name: impl Into<String>) -> &mut Self {
        self.subscription_group = Some(name.into());
        self
    }
}

impl std::fmt::Debug for TopicRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicRoute")
            .field("name", &self.name)
            .field("has_consumer", &self.factory.is_some())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// A routed topic with every setting resolved.
pub struct Topic {
    /// Topic name.
    pub name: Arc<str>,
    /// Id of its consumer group.
    pub consumer_group: Arc<str>,
    /// Most messages per batch.
    pub max_messages: usize,
    /// Longest wait for a batch to fill.
    pub max_wait_time: Duration,
    /// Whether successful batches are left unmarked.
    pub manual_offset_management: bool,
    /// Whether the server consumes it.
    pub active: bool,
    /// Where failing messages go, if anywhere.
    pub dead_letter_queue: Option<DeadLetterQueue>,
    /// Whether a partition's consumer instance is kept across batches; when false a fresh one
    /// is built for every batch.
    pub consumer_persistence: bool,
    /// How batches are split into groups that run in parallel, if they are.
    pub virtual_partitions: Option<VirtualPartitions>,
    pub(crate) factory: Option<ConsumerFactory>,
    pub(crate) deserializer: Arc<dyn Deserializer>,
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("consumer_group", &self.consumer_group)
            .field("max_messages", &self.max_messages)
            .field("max_wait_time", &self.max_wait_time)
            .field("manual_offset_management", &self.manual_offset_management)
            .field("active", &self.active)
            .field("dead_letter_queue", &self.dead_letter_queue)
            .field("consumer_persistence", &self.consumer_persistence)
            .field("virtual_partitions", &self.virtual_partitions)
            .finish_non_exhaustive()
    }
}

/// Topics consumed by one librdkafka consumer. Its `Debug` output redacts secrets.
#[derive(Clone)]
pub struct SubscriptionGroup {
    /// Name, unique within its consumer group.
    pub name: String,
    /// Id of the consumer group it belongs to.
    pub consumer_group: Arc<str>,
    /// Its topics (active or not).
    pub topics: Vec<Arc<Topic>>,
    /// librdkafka properties of its consumer, framework-owned ones included.
    pub kafka: BTreeMap<String, String>,
    /// The layer each of `kafka`'s values came from.
    pub kafka_sources: BTreeMap<String, Source>,
}

impl std::fmt::Debug for SubscriptionGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionGroup")
            .field("name", &self.name)
            .field("consumer_group", &self.consumer_group)
            .field("topics", &self.topics)
            .field("kafka", &self.kafka_redacted())
            .field("kafka_sources", &self.kafka_sources)
            .finish()
    }
}

impl SubscriptionGroup {
    /// Names of its active topics, the ones the consumer subscribes to.
    pub fn active_topics(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|t| t.active)
            .map(|t| &*t.name)
            .collect()
    }

    /// The kafka properties as they may be shown: secrets redacted.
    pub fn kafka_redacted(&self) -> BTreeMap<String, String> {
        self.kafka
            .iter()
            .map(|(k, v)| (k.clone(), redact(k, v)))
            .collect()
    }
}

/// Resolves routes into subscription groups and collects every routing problem.
pub(crate) fn resolve(
    config: &Config,
    groups: &[ConsumerGroupRoute],
    problems: &mut Vec<Problem>,
) -> Vec<SubscriptionGroup> {
    let mut resolved: Vec<SubscriptionGroup> = Vec::new();
    for group in groups {
        let group_id: Arc<str> = group
            .name
            .as_deref()
            .unwrap_or(config.default_group_id())
            .into();
        if group_id.trim().is_empty() {
            problems.push(Problem::new(
                "routes.consumer_group",
                &group_id,
                "needs to be a non-empty consumer group id",
                "give `consumer_group` a name",
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for route in &group.topics {
            let path = format!("routes.{group_id}.{}", route.name);
            check_topic_name(&route.name, &path, problems);
            if seen.contains(&route.name.as_str()) {
                problems.push(Problem::new(
                    &path,
                    &route.name,
                    &format!(
                        "needs to be routed once per consumer group, {group_id} routes it twice"
                    ),
                    "remove the second route or move it to another consumer group",
                ));
            }
            seen.push(&route.name);
            if route.active && route.factory.is_none() {
                problems.push(Problem::new(
                    &format!("{path}.consumer"),
                    "none",
                    "needs a consumer for an active topic",
                    "add `.consumer(|| MyConsumer)` or `.active(false)`",
                ));
            }
            let max_messages = route.max_messages.unwrap_or(config.max_messages);
            if max_messages == 0 {
                problems.push(Problem::new(
                    &format!("{path}.max_messages"),
                    "0",
                    "needs to be at least 1",
                    "set `.max_messages(n)` with n >= 1",
                ));
            }
            let max_wait_time = route.max_wait_time.unwrap_or(config.max_wait_time);
            if route.max_wait_time.is_some() && max_wait_time >= config.shutdown_timeout {
                problems.push(Problem::new(
                    &format!("{path}.max_wait_time"),
                    &format!("{max_wait_time:?}"),
                    &format!(
                        "needs to be shorter than shutdown_timeout ({:?})",
                        config.shutdown_timeout
                    ),
                    "lower the topic's `max_wait_time` or raise `shutdown_timeout`",
                ));
            }
            if let Some(dlq) = &route.dead_letter_queue {
                let dlq_path = format!("{path}.dead_letter_queue");
                check_topic_name(&dlq.topic, &dlq_path, problems);
                if dlq.topic == route.name {
                    problems.push(Problem::new(
                        &dlq_path,
                        &dlq.topic,
                        "needs to differ from the topic it serves, or failing messages would loop",
                        "name a separate dead-letter topic, e.g. `<topic>_dlq`",
                    ));
                }
            }
            if let Some(vp) = &route.virtual_partitions {
                vp.check(&path, problems);
            }
            let topic = Arc::new(Topic {
                virtual_partitions: route.virtual_partitions.clone(),
                dead_letter_queue: route.dead_letter_queue.clone(),
                name: route.name.as_str().into(),
                consumer_group: group_id.clone(),
                max_messages,
                max_wait_time,
                manual_offset_management: route.manual_offset_management,
                active: route.active,
                consumer_persistence: route
                    .consumer_persistence
                    .unwrap_or(config.consumer_persistence),
                factory: route.factory.clone(),
                deserializer: route.deserializer.clone(),
            });
            let overrides = TopicOverrides {
                topic: &route.name,
                initial_offset: route.initial_offset,
                kafka: &route.kafka,
            };
            let kafka = kafka::consumer(config, &group_id, &overrides).into_parts();
            let base = route
                .subscription_group
                .as_deref()
                .unwrap_or(DEFAULT_SUBSCRIPTION_GROUP);
            place(&mut resolved, &group_id, base, kafka, topic);
        }
    }
    distinguish_static_members(&mut resolved);
    check_revocation_timeout(config, &resolved, problems);
    resolved
}

/// A rebalance holds the poll thread for up to `revocation_timeout`; librdkafka expels a member
/// that does not poll for `max.poll.interval.ms`, so the first must stay below the second.
fn check_revocation_timeout(
    config: &Config,
    groups: &[SubscriptionGroup],
    problems: &mut Vec<Problem>,
) {
    for sg in groups {
        let poll = kafka::millis(&sg.kafka, "max.poll.interval.ms")
            .map_or(Duration::MAX, Duration::from_millis);
        if config.revocation_timeout >= poll {
            problems.push(Problem::new(
                "revocation_timeout",
                &format!("{:?}", config.revocation_timeout),
                &format!(
                    "needs to be shorter than max.poll.interval.ms ({poll:?}) of subscription \
                     group {}/{}, or a rebalance that waits for running batches gets the member \
                     expelled from its group",
                    sg.consumer_group, sg.name
                ),
                "lower `revocation_timeout` or raise `max.poll.interval.ms`",
            ));
        }
    }
}

/// `group.instance.id` must be unique per member of a consumer group, and each subscription
/// group is its own member: when a consumer group has several, each gets the id suffixed with
/// its subscription group's name.
fn distinguish_static_members(resolved: &mut [SubscriptionGroup]) {
    const ID: &str = "group.instance.id";
    let shared: Vec<Arc<str>> = resolved
        .iter()
        .filter(|sg| {
            resolved
                .iter()
                .filter(|o| o.consumer_group == sg.consumer_group)
                .count()
                > 1
        })
        .map(|sg| sg.consumer_group.clone())
        .collect();
    for sg in resolved.iter_mut() {
        if shared.contains(&sg.consumer_group)
            && let Some(id) = sg.kafka.get(ID)
        {
            let unique = format!("{id}-{}", sg.name);
            sg.kafka.insert(ID.to_string(), unique);
        }
    }
}

/// Adds `topic` to the subscription group with the same base name and kafka settings, or to a
/// new one (`base`, then `base-2`, `base-3`, …).
fn place(
    resolved: &mut Vec<SubscriptionGroup>,
    group_id: &Arc<str>,
    base: &str,
    (kafka, kafka_sources): (BTreeMap<String, String>, BTreeMap<String, Source>),
    topic: Arc<Topic>,
) {
    let same_group = |sg: &&mut SubscriptionGroup| sg.consumer_group == *group_id;
    let is_base = |name: &str| {
        name == base
            || name
                .strip_prefix(base)
                .and_then(|s| s.strip_prefix('-'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
    };
    if let Some(sg) = resolved
        .iter_mut()
        .filter(same_group)
        .find(|sg| is_base(&sg.name) && sg.kafka == kafka)
    {
        sg.topics.push(topic);
        return;
    }
    let taken = resolved
        .iter()
        .filter(|sg| sg.consumer_group == *group_id && is_base(&sg.name))
        .count();
    let name = if taken == 0 {
        base.to_string()
    } else {
        format!("{base}-{}", taken + 1)
    };
    resolved.push(SubscriptionGroup {
        name,
        consumer_group: group_id.clone(),
        topics: vec![topic],
        kafka,
        kafka_sources,
    });
}

/// Every topic the routes name, for the declarations: each routed topic with its inline
/// declaration, and each dead-letter topic (this app writes to it, so it needs one as well).
pub(crate) fn routed_topics<'a>(
    config: &Config,
    groups: &'a [ConsumerGroupRoute],
) -> Vec<RoutedTopic<'a>> {
    let mut routed = Vec::new();
    for group in groups {
        let group_id = group.name.as_deref().unwrap_or(config.default_group_id());
        for route in &group.topics {
            routed.push(RoutedTopic {
                name: &route.name,
                path: format!("routes.{group_id}.{}.config", route.name),
                declaration: route.declaration.as_ref(),
            });
            if let Some(dlq) = &route.dead_letter_queue {
                routed.push(RoutedTopic {
                    name: &dlq.topic,
                    path: format!("routes.{group_id}.{}.dead_letter_queue", route.name),
                    declaration: None,
                });
            }
        }
    }
    routed
}

#[cfg(test)]
mod tests;
