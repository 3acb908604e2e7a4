//! [`PartitionHandle`]: what a partition's executor, its consumer's [`Context`](super::Context)
//! and its transactions share with the listener.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where a batch's marks go: the executor forwards them to the listener as they happen.
pub(crate) type MarkSink = Box<dyn Fn(u64, i64) + Send + Sync>;

/// What a partition's executor shares with the listener that feeds it: where marks go, and
/// whether the assignment it serves was taken away.
pub(crate) struct PartitionHandle {
    /// Id of the consumer group the partition is assigned in.
    pub(crate) consumer_group: Arc<str>,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The assignment this executor serves; the listener ignores reports of older ones.
    pub(crate) generation: u64,
    /// Set by the listener once the assignment is revoked (or abandoned): marks no longer count.
    pub(crate) revoked: AtomicBool,
    /// Receives `(batch, next_offset)` for every forward mark during a batch.
    marks: MarkSink,
}

impl PartitionHandle {
    pub(crate) fn new(
        (consumer_group, topic): (Arc<str>, Arc<str>),
        partition: i32,
        generation: u64,
        marks: MarkSink,
    ) -> Self {
        PartitionHandle {
            consumer_group,
            topic,
            partition,
            generation,
            revoked: AtomicBool::new(false),
            marks,
        }
    }

    /// The partition, as events name it.
    pub(crate) fn partition_ref(&self) -> crate::instrumentation::PartitionRef<'_> {
        crate::instrumentation::PartitionRef {
            consumer_group: &self.consumer_group,
            topic: &self.topic,
            partition: self.partition,
        }
    }

    pub(crate) fn is_revoked(&self) -> bool {
        self.revoked.load(Ordering::Acquire)
    }

    /// Hands batch `batch`'s partition mark `next` to the listener.
    pub(crate) fn send_mark(&self, batch: u64, next: i64) {
        (self.marks)(batch, next);
    }
}

impl std::fmt::Debug for PartitionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionHandle")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("generation", &self.generation)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}
