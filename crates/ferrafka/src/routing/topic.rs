//! [`Topic`]: a routed topic with every setting resolved.

use std::sync::Arc;
use std::time::Duration;

use super::{DeadLetterQueue, FilterFactory, TopicPattern, VirtualPartitions};
use crate::consumer::ConsumerFactory;
use crate::messages::Deserializer;

/// A routed topic with every setting resolved. For a pattern route, its name is the pattern's
/// regular expression (the subscription entry), and each concrete topic it matches gets a
/// `Topic` of its own, named after it, when its first partition is assigned.
#[derive(Clone)]
pub struct Topic {
    /// Topic name.
    pub(crate) name: Arc<str>,
    /// The pattern of a pattern route, and of each topic resolved to one.
    pub(crate) pattern: Option<Arc<TopicPattern>>,
    /// Id of its consumer group.
    pub(crate) consumer_group: Arc<str>,
    /// Most messages per batch.
    pub(crate) max_messages: usize,
    /// Longest wait for a batch to fill.
    pub(crate) max_wait_time: Duration,
    /// Whether successful batches are left unmarked.
    pub(crate) manual_offset_management: bool,
    /// Whether the server consumes it.
    pub(crate) active: bool,
    /// Where failing messages go, if anywhere.
    pub(crate) dead_letter_queue: Option<DeadLetterQueue>,
    /// Whether a partition's consumer instance is kept across batches; when false a fresh one
    /// is built for every batch.
    pub(crate) consumer_persistence: bool,
    /// The web UI hides its payloads.
    pub(crate) web_masked: bool,
    /// How batches are split into groups that run in parallel, if they are.
    pub(crate) virtual_partitions: Option<VirtualPartitions>,
    /// Its filter chain, in order.
    pub(crate) filters: Vec<FilterFactory>,
    /// How often its consumers' `tick` runs, if it does.
    pub(crate) tick_interval: Option<Duration>,
    /// How long a partition stays without messages before its consumer's `idle` runs.
    pub(crate) idle_after: Option<Duration>,
    /// Whether its consumers' `eofed` runs (librdkafka reports partition ends).
    pub(crate) eofed: bool,
    /// Whether offsets are committed only through transactions.
    pub(crate) transactional: bool,
    pub(crate) factory: Option<ConsumerFactory>,
    pub(crate) deserializer: Arc<dyn Deserializer>,
}

impl Topic {
    /// Topic name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Id of its consumer group.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// Most messages per batch.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Longest wait for a batch to fill.
    pub fn max_wait_time(&self) -> Duration {
        self.max_wait_time
    }

    /// Whether offsets are committed only through transactions.
    pub fn is_transactional(&self) -> bool {
        self.transactional
    }

    /// Whether successful batches are left unmarked.
    pub fn manual_offset_management(&self) -> bool {
        self.manual_offset_management
    }

    /// Whether the server consumes it.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Where failing messages go, if anywhere.
    pub fn dead_letter_queue(&self) -> Option<&DeadLetterQueue> {
        self.dead_letter_queue.as_ref()
    }

    /// Whether a partition's consumer instance is kept across batches; when false a fresh one
    /// is built for every batch.
    pub fn consumer_persistence(&self) -> bool {
        self.consumer_persistence
    }

    /// How batches are split into groups that run in parallel, if they are.
    pub fn virtual_partitions(&self) -> Option<&VirtualPartitions> {
        self.virtual_partitions.as_ref()
    }

    /// The pattern it is routed by: a pattern route's own, or the one a concrete topic was
    /// resolved to.
    pub fn pattern(&self) -> Option<&TopicPattern> {
        self.pattern.as_deref()
    }

    /// Whether this is a pattern route itself (its name is a regular expression, not a topic).
    pub fn is_pattern(&self) -> bool {
        self.pattern
            .as_ref()
            .is_some_and(|p| *p.regex() == *self.name)
    }

    /// The topic `name` handled by this pattern route: the same settings and consumer.
    pub(crate) fn matched(&self, name: &str) -> Topic {
        Topic {
            name: name.into(),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("pattern", &self.pattern.as_ref().map(|p| p.name()))
            .field("consumer_group", &self.consumer_group)
            .field("max_messages", &self.max_messages)
            .field("max_wait_time", &self.max_wait_time)
            .field("manual_offset_management", &self.manual_offset_management)
            .field("transactional", &self.transactional)
            .field("active", &self.active)
            .field("dead_letter_queue", &self.dead_letter_queue)
            .field("consumer_persistence", &self.consumer_persistence)
            .field("virtual_partitions", &self.virtual_partitions)
            .finish_non_exhaustive()
    }
}
