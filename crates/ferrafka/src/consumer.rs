//! The [`Consumer`] trait users implement, and the [`Context`] each call receives.

pub use crate::seek::SeekTo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::{Config, Environment};
use crate::error::BoxError;
use crate::messages::{Message, Messages};
use crate::producer::Producer;
use crate::transaction::Transaction;

pub(crate) mod handle;
pub(crate) use handle::{MarkSink, PartitionHandle};

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

    /// Called every `tick_interval` of the route (see
    /// [`TopicRoute::tick_interval`](crate::routing::TopicRoute::tick_interval)), between
    /// batches, also while the partition has no messages. Marking is not possible here;
    /// `ctx.pause`, `ctx.resume` and `ctx.seek` are.
    fn tick(&mut self, ctx: &mut Context) -> impl Future<Output = ConsumeResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Called once each time the partition stays without new messages for the route's
    /// [`idle_after`](crate::routing::TopicRoute::idle_after), after its last batch: a place
    /// to flush buffers. Called again only after new messages came and went quiet again.
    fn idle(&mut self, ctx: &mut Context) -> impl Future<Output = ConsumeResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// Called once each time the partition's end is reached and every message before it was
    /// handed to `consume`, with [`eofed`](crate::routing::TopicRoute::eofed) on the route.
    fn eofed(&mut self, ctx: &mut Context) -> impl Future<Output = ConsumeResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }
}

/// A consumer method other than `consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hook {
    Revoked,
    Shutdown,
    Tick,
    Idle,
    Eofed,
}

impl Hook {
    /// Its name in logs and events.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Hook::Revoked => "revoked",
            Hook::Shutdown => "shutdown",
            Hook::Tick => "tick",
            Hook::Idle => "idle",
            Hook::Eofed => "eofed",
        }
    }

    /// Calls this hook of `consumer`.
    pub(crate) fn call<'a>(
        self,
        consumer: &'a mut (dyn DynConsumer + '_),
        ctx: &'a mut Context,
    ) -> BoxFuture<'a, ConsumeResult> {
        match self {
            Hook::Revoked => consumer.revoked(ctx),
            Hook::Shutdown => consumer.shutdown(ctx),
            Hook::Tick => consumer.tick(ctx),
            Hook::Idle => consumer.idle(ctx),
            Hook::Eofed => consumer.eofed(ctx),
        }
    }
}

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe twin of [`Consumer`], so routes can hold consumers of any type.
pub(crate) trait DynConsumer: Send {
    fn consume<'a>(
        &'a mut self,
        ctx: &'a mut Context,
        messages: &'a Messages,
    ) -> BoxFuture<'a, ConsumeResult>;
    fn revoked<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
    fn shutdown<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
    fn tick<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
    fn idle<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
    fn eofed<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult>;
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

    fn tick<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::tick(self, ctx))
    }

    fn idle<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::idle(self, ctx))
    }

    fn eofed<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(Consumer::eofed(self, ctx))
    }
}

/// Builds a fresh consumer instance for a newly assigned partition.
pub(crate) type ConsumerFactory = Arc<dyn Fn() -> Box<dyn DynConsumer> + Send + Sync>;

/// What a consumer can see and do besides reading its batch.
#[derive(Debug)]
pub struct Context {
    pub(crate) handle: Arc<PartitionHandle>,
    pub(crate) producer: Producer,
    pub(crate) consumer_group: Arc<str>,
    pub(crate) config: Arc<Config>,
    pub(crate) attempt: u32,
    /// The batch being processed (0 in final hooks, where marks are refused).
    pub(crate) batch: Option<u64>,
    /// The highest next offset marked during this batch.
    pub(crate) mark: Option<i64>,
    pub(crate) requests: Vec<PartitionRequest>,
    /// With virtual partitions: the group this context serves, whose marks go through the
    /// batch's mark combiner instead of straight to the listener.
    pub(crate) virtual_group: Option<Box<dyn GroupMarks>>,
    /// The producers and group view of a transactional route.
    pub(crate) transactions: Option<crate::transaction::Access>,
}

/// Where the marks of a virtual-partition group go: the batch's mark combiner, which forwards
/// the partition's mark only when the lowest unfinished offset of the batch moves. A trait, so
/// the consumer API does not depend on the processing that implements it.
pub(crate) trait GroupMarks: Send + Sync + std::fmt::Debug {
    /// The group marked its messages below `next` during batch `batch`.
    fn mark(&self, handle: &PartitionHandle, batch: u64, next: i64);
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
    /// with the next commit. Returns false when the partition was revoked meanwhile (the work
    /// will be redone by its new owner, so stop early if that is costly) and in the `revoked`
    /// and `shutdown` hooks, where nothing can be marked.
    ///
    /// With virtual partitions it marks the messages of this consumer's group up to `message`;
    /// the partition's offset advances once every group finished the messages before it.
    pub fn mark_as_consumed(&mut self, message: &Message) -> bool {
        let Some(batch) = self.batch else {
            return false;
        };
        if self.handle.is_revoked() {
            return false;
        }
        let next = message.offset() + 1;
        if self.mark.is_none_or(|m| next > m) {
            self.mark = Some(next);
            // Sent at once, so the progress of a long batch is committed before it ends; a
            // virtual group's mark says nothing about other groups, so it is combined first.
            match &self.virtual_group {
                Some(group) => group.mark(&self.handle, batch, next),
                None => self.handle.send_mark(batch, next),
            }
        }
        true
    }

    /// Runs `body` in a Kafka transaction: what it produces through the [`Transaction`] and
    /// the offset it marks there are committed together, so a `read_committed` reader sees
    /// each output once per input. The transaction commits when `body` returns `Ok` and every
    /// delivery succeeded; otherwise it aborts (nothing produced or marked is visible) and the
    /// error is returned, so returning it from `consume` retries the batch. Only on a route
    /// with [`TopicRoute::transactional`](crate::routing::TopicRoute::transactional); see
    /// [`guide::transactions`](crate::guide::transactions).
    ///
    /// ```
    /// use ferrafka::{ConsumeResult, Consumer, Context, Messages, Record};
    ///
    /// struct Enrich;
    ///
    /// impl Consumer for Enrich {
    ///     async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
    ///         ctx.transaction(async |tx| {
    ///             for m in messages {
    ///                 let out = [b"enriched ", m.payload_or_empty()].concat();
    ///                 tx.produce(Record::to("enriched").payload(&out)).await?;
    ///                 tx.mark_as_consumed(m);
    ///             }
    ///             Ok(())
    ///         })
    ///         .await
    ///     }
    /// }
    /// ```
    pub async fn transaction<T, F>(&mut self, body: F) -> ConsumeResult<T>
    where
        F: AsyncFnOnce(&mut Transaction) -> ConsumeResult<T>,
    {
        let Some(batch) = self.batch else {
            return Err("a transaction runs only inside `consume`, not in the final hooks".into());
        };
        let Some(access) = self.transactions.clone() else {
            return Err(format!(
                "topic {} is not transactional: set `.transactional(true)` on its route (and \
                 the app's `transactional_id`) to use `ctx.transaction`",
                self.handle.topic
            )
            .into());
        };
        let (value, mark) = crate::transaction::run(&access, &self.handle, body).await?;
        if let Some(next) = mark
            && self.mark.is_none_or(|m| next > m)
        {
            // Committed already: the machine learns it, so a retry of this batch starts after
            // what the transaction covered.
            self.mark = Some(next);
            self.handle.send_mark(batch, next);
        }
        Ok(value)
    }

    /// Pauses this partition for `timeout` once the current batch returns: no new batch starts
    /// before then, and fetching stops; messages already fetched wait, none is skipped. A
    /// `timeout` too long for the clock (e.g. `Duration::MAX`) pauses until `ctx.resume()` in
    /// a later batch or the end of the assignment.
    pub fn pause(&mut self, timeout: std::time::Duration) {
        self.requests.push(PartitionRequest::Pause(timeout));
    }

    /// Ends a pause early (one set by [`Context::pause`] or by an error backoff). Failed
    /// messages are still retried first.
    pub fn resume(&mut self) {
        self.requests.push(PartitionRequest::Resume);
    }

    /// Moves this partition's position once the current batch returns; the next batch starts
    /// there, and messages fetched from the old position are dropped (also a failed batch
    /// waiting for its retry: seeking is the consumer's choice of what comes next). Seeking back
    /// re-reads messages; offsets marked before stay committed. If librdkafka refuses the seek,
    /// it is logged and processing goes on from where it was. Negative offsets are refused.
    pub fn seek(&mut self, to: SeekTo) {
        self.requests.push(PartitionRequest::Seek(to));
    }

    /// The next offset this call marked (`message.offset() + 1` of the last message passed to
    /// [`Context::mark_as_consumed`]), for unit tests of one call.
    #[cfg(feature = "testing")]
    pub fn marked(&self) -> Option<i64> {
        self.mark
    }

    /// The pause this call asked for with [`Context::pause`], if any.
    #[cfg(feature = "testing")]
    pub fn requested_pause(&self) -> Option<std::time::Duration> {
        self.requests.iter().rev().find_map(|r| match r {
            PartitionRequest::Pause(d) => Some(*d),
            _ => None,
        })
    }

    /// The seek this call asked for with [`Context::seek`], if any.
    #[cfg(feature = "testing")]
    pub fn requested_seek(&self) -> Option<SeekTo> {
        self.requests.iter().rev().find_map(|r| match r {
            PartitionRequest::Seek(to) => Some(*to),
            _ => None,
        })
    }

    /// True when a rebalance took this partition away during the current batch.
    pub fn is_revoked(&self) -> bool {
        self.handle.is_revoked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Marks = std::sync::mpsc::Receiver<(u64, i64)>;

    fn context(batch: Option<u64>) -> (Context, Marks) {
        let (tx, rx) = std::sync::mpsc::channel();
        let sink: MarkSink = Box::new(move |batch, mark| {
            let _ = tx.send((batch, mark));
        });
        let handle = Arc::new(PartitionHandle::new(("g".into(), "t".into()), 0, 7, sink));
        let ctx = Context {
            handle,
            producer: Producer::lazy(&Default::default()),
            consumer_group: "g".into(),
            config: Arc::new(Config::default()),
            attempt: 1,
            batch,
            mark: None,
            requests: Vec::new(),
            virtual_group: None,
            transactions: None,
        };
        (ctx, rx)
    }

    fn marks(rx: &Marks) -> Vec<i64> {
        rx.try_iter()
            .map(|(batch, mark)| {
                assert_eq!(batch, 3);
                mark
            })
            .collect()
    }

    #[test]
    fn marking_moves_forward_only_and_fails_after_revocation() {
        let (mut ctx, rx) = context(Some(3));
        let at = |o| Message::builder("t", 0, o).build();
        assert!(ctx.mark_as_consumed(&at(4)));
        assert!(
            ctx.mark_as_consumed(&at(2)),
            "an older mark is a no-op, not a failure"
        );
        assert!(ctx.mark_as_consumed(&at(8)));
        assert_eq!(marks(&rx), vec![5, 9]);
        assert_eq!(ctx.mark, Some(9));
        ctx.handle
            .revoked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(!ctx.mark_as_consumed(&at(9)));
        assert!(ctx.is_revoked());
        assert_eq!(marks(&rx), Vec::<i64>::new());
    }

    #[test]
    fn hooks_cannot_mark() {
        let (mut ctx, rx) = context(None);
        assert!(!ctx.mark_as_consumed(&Message::builder("t", 0, 1).build()));
        assert_eq!(rx.try_iter().count(), 0);
    }
}
