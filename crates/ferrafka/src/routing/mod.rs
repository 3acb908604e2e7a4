//! Routes: which consumer handles which topic, in which consumer and subscription group.
//!
//! The app's `routes` closure fills a [`Router`]. At boot the routes are resolved into
//! [`SubscriptionGroup`]s — one librdkafka consumer each. Topics of one consumer group share a
//! subscription group unless they name another one or their kafka settings differ, in which case
//! they are split off automatically (one librdkafka consumer cannot mix settings).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, InitialOffset, Source, redact};
use crate::consumer::{Consumer, ConsumerFactory, DynConsumer};
use crate::declaratives::{RoutedTopic, TopicConfig};
use crate::filters::Filter;
use crate::messages::{Deserializer, JsonDeserializer};

mod pattern_checks;
mod patterns;
mod resolve;
mod topic;
mod virtual_partitions;

pub use patterns::{PatternEngine, TopicPattern};
pub(crate) use resolve::resolve;
pub use topic::Topic;
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
    /// Header the web UI's republish adds to a dead letter it produces again: the republish id
    /// (`<dlq topic>/<partition>/<offset>@<timestamp ms>`), the same however often the
    /// operator asks, so a consumer can tell a republished message and the UI refuses a second one.
    pub const REPUBLISH_ID: &str = "ferrafka-republish-id";
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

    /// Routes every topic whose name matches `regex` (which starts with `^`) in the default
    /// consumer group, including topics created later; `name` names the route in `info`, logs
    /// and problems. A topic routed by name wins over a pattern, and the first declared of two
    /// matching patterns wins. See the README's "Routing patterns".
    pub fn pattern(
        &mut self,
        name: impl Into<String>,
        regex: impl Into<String>,
    ) -> &mut TopicRoute {
        self.group_mut(None).pattern(name, regex)
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

    /// Routes every topic matching `regex` in this consumer group; see [`Router::pattern`].
    pub fn pattern(
        &mut self,
        name: impl Into<String>,
        regex: impl Into<String>,
    ) -> &mut TopicRoute {
        let mut route = TopicRoute::new(name.into());
        route.pattern = Some(regex.into());
        self.topics.push(route);
        self.topics.last_mut().expect("just pushed")
    }
}

/// How one topic is consumed. Unset settings fall back to the app's.
pub struct TopicRoute {
    pub(crate) name: String,
    /// The regular expression of a pattern route; `name` then only names the route.
    pub(crate) pattern: Option<String>,
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
    pub(crate) filters: Vec<FilterFactory>,
    pub(crate) tick_interval: Option<Duration>,
    pub(crate) idle_after: Option<Duration>,
    pub(crate) eofed: bool,
    pub(crate) transactional: bool,
    pub(crate) web_masked: bool,
}

/// Builds a partition's own copy of a route's filter.
pub(crate) type FilterFactory = Arc<dyn Fn() -> Box<dyn Filter> + Send + Sync>;

impl TopicRoute {
    fn new(name: String) -> Self {
        TopicRoute {
            name,
            pattern: None,
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
            filters: Vec::new(),
            tick_interval: None,
            idle_after: None,
            eofed: false,
            transactional: false,
            web_masked: false,
        }
    }

    /// Calls [`Consumer::tick`] of each assigned partition's consumer every `interval`,
    /// between batches (never while one runs), also while the partition gets no messages.
    pub fn tick_interval(&mut self, interval: Duration) -> &mut Self {
        self.tick_interval = Some(interval);
        self
    }

    /// Calls [`Consumer::idle`] once a partition got no message for `quiet` after its last
    /// batch (once per quiet spell).
    pub fn idle_after(&mut self, quiet: Duration) -> &mut Self {
        self.idle_after = Some(quiet);
        self
    }

    /// Calls [`Consumer::eofed`] each time a partition's end is reached and everything before
    /// it was consumed. Turns on librdkafka's `enable.partition.eof` for the topic, which then
    /// gets a subscription group (a consumer) of its own.
    pub fn eofed(&mut self, on: bool) -> &mut Self {
        self.eofed = on;
        self
    }

    /// Adds a filter to the end of this topic's chain; each assigned partition gets its own
    /// clone. See [`crate::filters`].
    pub fn filter<F: Filter + Clone + Sync>(&mut self, filter: F) -> &mut Self {
        self.filters.push(Arc::new(move || {
            Box::new(filter.clone()) as Box<dyn Filter>
        }));
        self
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

    /// Makes the route transactional: its offsets are committed only by the transactions of
    /// [`Context::transaction`](crate::Context::transaction) (and a dead letter's own), never
    /// by ferrafka's periodic commit, so output and offsets commit together (exactly once
    /// for `read_committed` readers). A batch is marked only by what its transactions
    /// marked. Needs the app's `transactional_id` and a broker with transactions; see
    /// [`guide::transactions`](crate::guide::transactions).
    pub fn transactional(&mut self, on: bool) -> &mut Self {
        self.transactional = on;
        self
    }

    /// Hides this topic's payloads in the web UI's explorer (keys and headers still show), like
    /// listing it in the `web_masked_topics` setting.
    pub fn web_masked(&mut self, masked: bool) -> &mut Self {
        self.web_masked = masked;
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
            .field("pattern", &self.pattern)
            .field("has_consumer", &self.factory.is_some())
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Topics consumed by one librdkafka consumer. Its `Debug` output redacts secrets.
#[derive(Clone)]
pub struct SubscriptionGroup {
    /// Name, unique within its consumer group.
    pub(crate) name: String,
    /// Id of the consumer group it belongs to.
    pub(crate) consumer_group: Arc<str>,
    /// Its topics (active or not).
    pub(crate) topics: Vec<Arc<Topic>>,
    /// librdkafka properties of its consumer, framework-owned ones included.
    pub(crate) kafka: BTreeMap<String, String>,
    /// The layer each of `kafka`'s values came from.
    pub(crate) kafka_sources: BTreeMap<String, Source>,
}

impl SubscriptionGroup {
    /// Name, unique within its consumer group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Id of the consumer group it belongs to.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// Its topics (active or not).
    pub fn topics(&self) -> &[Arc<Topic>] {
        &self.topics
    }

    /// The librdkafka properties of its consumer, framework-owned ones included, each with
    /// the layer it came from.
    pub fn kafka(&self) -> crate::kafka::ClientProperties {
        crate::kafka::ClientProperties::from_parts(&self.kafka, &self.kafka_sources)
    }
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
    /// Names of its active topics routed by name (patterns left out, see
    /// [`Self::active_patterns`]).
    pub fn active_topics(&self) -> Vec<&str> {
        self.topics
            .iter()
            .filter(|t| t.active && !t.is_pattern())
            .map(|t| &*t.name)
            .collect()
    }

    /// Its active pattern routes, in declared order.
    pub fn active_patterns(&self) -> Vec<&TopicPattern> {
        self.topics
            .iter()
            .filter(|t| t.active && t.is_pattern())
            .filter_map(|t| t.pattern())
            .collect()
    }

    /// What its consumer subscribes to: the active topics' names and the active patterns'
    /// regular expressions (librdkafka reads an entry starting with `^` as a pattern).
    pub fn subscription(&self) -> Vec<&str> {
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
            if route.pattern.is_some() {
                // A pattern names no single topic to declare; its dead-letter topic does.
                push_dead_letter_topic(&mut routed, group_id, route);
                continue;
            }
            routed.push(RoutedTopic {
                name: &route.name,
                path: format!("routes.{group_id}.{}.config", route.name),
                declaration: route.declaration.as_ref(),
            });
            push_dead_letter_topic(&mut routed, group_id, route);
        }
    }
    routed
}

fn push_dead_letter_topic<'a>(
    routed: &mut Vec<RoutedTopic<'a>>,
    group_id: &str,
    route: &'a TopicRoute,
) {
    if let Some(dlq) = &route.dead_letter_queue {
        routed.push(RoutedTopic {
            name: &dlq.topic,
            path: format!("routes.{group_id}.{}.dead_letter_queue", route.name),
            declaration: None,
        });
    }
}

#[cfg(test)]
mod tests;
