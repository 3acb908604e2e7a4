//! The [`Consumer`] trait users implement, and the [`Context`] each call receives.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::config::{Config, Environment};
use crate::error::BoxError;
use crate::messages::{Message, Messages};
use crate::producer::Producer;

/// What consumer methods return: `Ok` marks the batch as consumed, `Err` retries it.
pub type ConsumeResult<T = ()> = Result<T, BoxError>;

/// Processes batches of one topic-partition.
///
/// One instance serves one assigned partition and is kept across batches (consumer persistence,
/// the default outside development); it is dropped when the partition is revoked. With
/// `consumer_persistence(false)` a fresh instance handles every batch. Batches of a partition arrive one at a time in
/// offset order; different partitions run in parallel on different instances.
///
/// ```
/// use ferrafka::{ConsumeResult, Consumer, Context, Messages};
///
/// struct CountingConsumer { seen: u64 }
///
/// impl Consumer for CountingConsumer {
///     async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
///         self.seen += messages.len() as u64;
///         Ok(()) // the whole batch is marked as consumed
///     }
/// }
/// ```
pub trait Consumer: Send + 'static {
    /// Handles one batch. Returning `Ok` marks the batch (unless the topic uses manual offset
    /// management); an `Err` or a panic leaves the unmarked rest to be retried after a pause.
    fn consume(
        &mut self,
        ctx: &mut Context,
        messages: &Messages,
    ) -> impl Future<Output = ConsumeResult> + Send;

    /// Called once when the partition was taken away by a rebalance, before the instance is
    /// dropped. Marking is no longer possible here.
    fn revoked(&mut self, ctx: &mut Context) -> impl Future<Output = ConsumeResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Called once when the server shuts down while the partition is still assigned.
    fn shutdown(&mut self, ctx: &mut Context) -> impl Future<Output = ConsumeResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe twin of [`Consumer`], so routes can hold consumers of any type.
pub(crate) trait DynConsumer: Send {
    fn consume<'a>(
        &'a mut self,
        ctx: &'a mut Context,
        messages: &'a Messages,
    ) -> BoxFuture<'a, ConsumeResult>;
    fn revoked<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
    fn shutdown<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
}

impl<T: Consumer> DynConsumer for T {
    fn consume<'a>(
        &'a mut self,
        ctx: &'a mut Context,
        messages: &'a Messages,
    ) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::consume(self, ctx, messages))
    }

    fn revoked<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::revoked(self, ctx))
    }

    fn shutdown<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::shutdown(self, ctx))
    }
}

/// Builds a fresh consumer instance for a newly assigned partition.
pub(crate) type ConsumerFactory = Arc<dyn Fn() -> Box<dyn DynConsumer> + Send + Sync>;

/// Where marked offsets go: the subscription group's librdkafka consumer, or a fake in tests.
pub(crate) trait OffsetStore: Send + Sync {
    /// Stores `next_offset` (the offset of the next message to consume) for committing; false
    /// when the partition is no longer assigned to this process.
    fn store(&self, topic: &str, partition: i32, next_offset: i64) -> bool;
}

/// The state a partition's consumer shares with the listener that feeds it.
pub(crate) struct PartitionHandle {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offsets: Arc<dyn OffsetStore>,
    pub(crate) revoked: AtomicBool,
    /// The next offset to consume as last stored, or -1 when nothing was marked yet.
    pub(crate) marked: AtomicI64,
}

impl PartitionHandle {
    pub(crate) fn new(topic: Arc<str>, partition: i32, offsets: Arc<dyn OffsetStore>) -> Self {
        PartitionHandle {
            topic,
            partition,
            offsets,
            revoked: AtomicBool::new(false),
            marked: AtomicI64::new(-1),
        }
    }

    /// Stores `next_offset` unless a later one is already stored; false once revoked.
    pub(crate) fn mark(&self, next_offset: i64) -> bool {
        if self.revoked.load(Ordering::Acquire) {
            return false;
        }
        if self.marked.load(Ordering::Acquire) >= next_offset {
            return true; // marking never moves backwards
        }
        if !self.offsets.store(&self.topic, self.partition, next_offset) {
            return false;
        }
        self.marked.fetch_max(next_offset, Ordering::AcqRel);
        true
    }
}

impl std::fmt::Debug for PartitionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionHandle")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .field("revoked", &self.revoked)
            .field("marked", &self.marked)
            .finish_non_exhaustive()
    }
}

/// What a consumer can see and do besides reading its batch.
#[derive(Debug)]
pub struct Context {
    pub(crate) handle: Arc<PartitionHandle>,
    pub(crate) producer: Producer,
    pub(crate) consumer_group: Arc<str>,
    pub(crate) config: Arc<Config>,
    pub(crate) attempt: u32,
    pub(crate) requests: Vec<PartitionRequest>,
}

/// Where to move a partition's position with [`Context::seek`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTo {
    /// This offset.
    Offset(i64),
    /// The first message published at or after this time.
    Time(std::time::SystemTime),
    /// The oldest retained message.
    Earliest,
    /// After the newest message: only new messages are read.
    Latest,
}

/// A change to the partition that the listener applies once the current batch returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionRequest {
    Pause(std::time::Duration),
    Resume,
    Seek(SeekTo),
}

impl Context {
    /// The topic of this consumer's partition.
    pub fn topic(&self) -> &str {
        &self.handle.topic
    }

    /// The partition this consumer serves.
    pub fn partition(&self) -> i32 {
        self.handle.partition
    }

    /// The consumer group's id.
    pub fn consumer_group(&self) -> &str {
        &self.consumer_group
    }

    /// The environment the app runs in (`FERRAFKA_ENV`).
    pub fn env(&self) -> &Environment {
        self.config.env()
    }

    /// The app's settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Which attempt at the current batch this is: 1 the first time, then 2, 3, … after errors.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The app-wide producer.
    pub fn producer(&self) -> &Producer {
        &self.producer
    }

    /// Marks `message` and every earlier one of this partition as consumed; they are committed
    /// with the next commit. Returns false when the partition was revoked meanwhile: the work
    /// will be redone by its new owner, so stop early if that is costly.
    pub fn mark_as_consumed(&mut self, message: &Message) -> bool {
        self.handle.mark(message.offset() + 1)
    }

    /// Pauses this partition for `timeout` once the current batch returns: no new batch starts
    /// before then. Messages after the last marked one are fetched again when it resumes.
    pub fn pause(&mut self, timeout: std::time::Duration) {
        self.requests.push(PartitionRequest::Pause(timeout));
    }

    /// Ends a pause early (one set by [`Context::pause`] or by an error backoff).
    pub fn resume(&mut self) {
        self.requests.push(PartitionRequest::Resume);
    }

    /// Moves this partition's position once the current batch returns; the next batch starts
    /// there. Seeking back re-reads messages; offsets marked before stay committed.
    pub fn seek(&mut self, to: SeekTo) {
        self.requests.push(PartitionRequest::Seek(to));
    }

    /// True when a rebalance took this partition away during the current batch.
    pub fn is_revoked(&self) -> bool {
        self.handle.revoked.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct RecordingStore {
        stored: Mutex<Vec<i64>>,
        assigned: AtomicBool,
    }

    impl OffsetStore for RecordingStore {
        fn store(&self, _topic: &str, _partition: i32, next_offset: i64) -> bool {
            if !self.assigned.load(Ordering::SeqCst) {
                return false;
            }
            self.stored.lock().unwrap().push(next_offset);
            true
        }
    }

    #[test]
    fn marking_moves_forward_only_and_fails_after_revocation() {
        let store = Arc::new(RecordingStore::default());
        store.assigned.store(true, Ordering::SeqCst);
        let handle = PartitionHandle::new("t".into(), 0, store.clone());
        assert!(handle.mark(5));
        assert!(handle.mark(3), "an older mark is a no-op, not a failure");
        assert!(handle.mark(9));
        assert_eq!(*store.stored.lock().unwrap(), vec![5, 9]);
        handle.revoked.store(true, Ordering::SeqCst);
        assert!(!handle.mark(10));
        assert_eq!(*store.stored.lock().unwrap(), vec![5, 9]);
    }

    #[test]
    fn marking_fails_when_the_store_rejects_it() {
        let store = Arc::new(RecordingStore::default());
        let handle = PartitionHandle::new("t".into(), 0, store);
        assert!(!handle.mark(1));
        assert_eq!(handle.marked.load(Ordering::SeqCst), -1);
    }
}
