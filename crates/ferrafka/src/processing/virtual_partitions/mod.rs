//! Virtual partitions: one partition's batch split into groups that run in parallel.
//!
//! [`VirtualConsumer`] stands in for the partition's consumer instance when its topic has
//! `virtual_partitions`. For each batch it splits the messages by the route's partitioner into
//! views of the shared batch (no message is copied), runs every non-empty group as its own
//! tokio task on the group's own instance (built by the topic's factory, kept like the
//! partition's instance), each holding a permit of the app's `concurrency` semaphore, and
//! reports one result for the batch:
//! - its mark is the first offset some group did not finish ([`MarkCombiner`]); marks made
//!   during the batch reach the listener through the combiner too;
//! - it fails when any group failed, with an error naming every failed group;
//! - pause, resume and seek requests are merged in group order (group 0's first, each group's
//!   in the order it made them), so when several groups seek, the highest group's seek wins.

mod combiner;
#[cfg(all(test, feature = "testing"))]
mod harness;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::Semaphore;
use tokio::task::{Id, JoinSet};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

pub(crate) use combiner::MarkCombiner;

use crate::consumer::{
    BoxFuture, ConsumeResult, ConsumerFactory, Context, DynConsumer, GroupMarks, Hook,
    PartitionHandle,
};
use crate::error::{PanicError, error_chain};
use crate::messages::Messages;
use crate::routing::VirtualPartitions;

/// A virtual group's link to its batch's combiner, carried by the group's [`Context`].
#[derive(Debug, Clone)]
pub(crate) struct GroupMarkSink {
    combiner: Arc<MarkCombiner>,
    /// The group's index in the combiner.
    group: usize,
}

impl GroupMarks for GroupMarkSink {
    /// The group marked its messages below `next`: forward the partition mark if that moved
    /// the lowest unfinished offset of the batch.
    fn mark(&self, handle: &PartitionHandle, batch: u64, next: i64) {
        self.combiner
            .mark(self.group, next, |mark| handle.send_mark(batch, mark));
    }
}

/// The partition's consumer when its topic has virtual partitions: runs each batch's groups in
/// parallel on their own instances.
pub(crate) struct VirtualConsumer {
    options: VirtualPartitions,
    factory: ConsumerFactory,
    workers: Arc<Semaphore>,
    manual_offset_management: bool,
    /// One slot per group, built on first use and kept across batches; a group whose consumer
    /// panicked gets a fresh one.
    instances: Vec<Option<Box<dyn DynConsumer>>>,
    /// The listener's tasks that may hold its messages: a group aborted while stuck in user
    /// code keeps its view of the batch until it returns, and the client waits for it.
    tasks: TaskTracker,
}

/// One batch's groups while they run. Dropping it aborts the tasks still running (the
/// `JoinSet`), so no group outlives its batch.
struct Flight {
    /// (group number, indices into the batch) of each non-empty group, in group order.
    groups: Vec<(usize, Arc<[usize]>)>,
    combiner: Arc<MarkCombiner>,
    tasks: JoinSet<GroupEnd>,
    /// Each task's index into `groups`.
    ids: Vec<(Id, usize)>,
    /// (group number, error) of the failed groups.
    errors: Vec<(usize, String)>,
}

impl Flight {
    /// Waits for every group; returns their ends in group order, so requests merge in a
    /// defined order whatever order the groups ended in.
    async fn join(&mut self, ctx: &Context, manual_offset_management: bool) -> Vec<GroupEnd> {
        let mut ends: Vec<GroupEnd> = Vec::with_capacity(self.ids.len());
        while let Some(joined) = self.tasks.join_next_with_id().await {
            let end = match joined {
                Ok((_, end)) => end,
                Err(e) => {
                    // Only an aborted task ends here (consumer panics are caught in the task).
                    let index = self.ids.iter().find(|(id, _)| *id == e.id()).map(|p| p.1);
                    let slot = self.groups[index.expect("every task is listed")].0;
                    self.errors.push((slot, format!("group task ended: {e}")));
                    continue;
                }
            };
            if end.result.is_ok() && !manual_offset_management {
                // Forwarded at once: a fast group's end may free the partition's mark while
                // a slow one still runs.
                let batch = ctx.batch.expect("a batch context");
                let handle = &ctx.handle;
                self.combiner.finish(end.index, |mark| {
                    // After revocation marks are refused, as a group's own are.
                    if !handle.is_revoked() {
                        handle.send_mark(batch, mark);
                    }
                });
            }
            ends.push(end);
        }
        ends.sort_by_key(|e| e.index);
        ends
    }
}

/// How one group's run ended.
struct GroupEnd {
    /// The group's index among the batch's non-empty groups.
    index: usize,
    /// Its instance, `None` after a panic.
    consumer: Option<Box<dyn DynConsumer>>,
    ctx: Context,
    result: Result<(), String>,
}

impl VirtualConsumer {
    pub(crate) fn new(
        options: VirtualPartitions,
        factory: ConsumerFactory,
        workers: Arc<Semaphore>,
        manual_offset_management: bool,
        tasks: TaskTracker,
    ) -> Self {
        let instances = (0..options.max_partitions).map(|_| None).collect();
        VirtualConsumer {
            options,
            factory,
            workers,
            manual_offset_management,
            instances,
            tasks,
        }
    }

    async fn consume_batch(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut flight = self.spawn_groups(ctx, messages);
        // `self` is not `Sync` (the instances are only `Send`): the wait borrows just the flag.
        let ends = flight.join(ctx, self.manual_offset_management).await;
        for end in ends {
            let slot = flight.groups[end.index].0;
            self.instances[slot] = end.consumer;
            ctx.requests.extend(end.ctx.requests);
            if let Err(e) = end.result {
                flight.errors.push((slot, e));
            }
        }
        ctx.mark = flight.combiner.batch_mark();
        failure(flight.errors, self.options.max_partitions)
    }

    /// Splits the batch and spawns a task per non-empty group.
    fn spawn_groups(&mut self, ctx: &Context, messages: &Messages) -> Flight {
        let groups = split(&self.options, messages);
        let combiner = Arc::new(combiner_for(messages, &groups));
        let mut flight = Flight {
            tasks: JoinSet::new(),
            ids: Vec::with_capacity(groups.len()),
            errors: Vec::new(),
            combiner,
            groups,
        };
        for (index, (slot, indices)) in flight.groups.iter().enumerate() {
            let consumer = match self.instance(*slot) {
                Ok(consumer) => consumer,
                Err(e) => {
                    flight.errors.push((*slot, e));
                    continue;
                }
            };
            let marks = GroupMarkSink {
                combiner: flight.combiner.clone(),
                group: index,
            };
            let group_ctx = group_context(ctx, Some(marks));
            let view = messages.select(indices.clone());
            // Created inside the batch's span, so it is its child.
            let span = crate::instrumentation::spans::virtual_partition(index, view.len());
            let task = run_group(index, consumer, group_ctx, view, self.workers.clone());
            let task = self.tasks.track_future(task.instrument(span));
            flight.ids.push((flight.tasks.spawn(task).id(), index));
        }
        flight
    }

    /// Group `slot`'s instance, built by the topic's factory when there is none. It is taken
    /// out of its slot while the group runs and put back when it ends.
    fn instance(&mut self, slot: usize) -> Result<Box<dyn DynConsumer>, String> {
        if let Some(consumer) = self.instances[slot].take() {
            return Ok(consumer);
        }
        let factory = &self.factory;
        std::panic::catch_unwind(AssertUnwindSafe(|| factory()))
            .map_err(|p| format!("consumer factory: {}", PanicError::from_payload(p)))
    }

    /// Runs the `revoked` or `shutdown` hook of every group's instance, in group order; one
    /// failing does not keep the others from running.
    /// Calls `hook` on every group's instance that exists.
    async fn each_hook(&mut self, ctx: &mut Context, hook: Hook) -> ConsumeResult {
        let mut errors = Vec::new();
        for (slot, instance) in self.instances.iter_mut().enumerate() {
            let Some(consumer) = instance else { continue };
            let mut group_ctx = group_context(ctx, None);
            let fut = hook.call(consumer.as_mut(), &mut group_ctx);
            match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push((slot, error_chain(&*e))),
                Err(p) => errors.push((slot, PanicError::from_payload(p).to_string())),
            }
        }
        failure(errors, self.options.max_partitions)
    }
}

impl DynConsumer for VirtualConsumer {
    fn consume<'a>(
        &'a mut self,
        ctx: &'a mut Context,
        messages: &'a Messages,
    ) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.consume_batch(ctx, messages))
    }

    fn revoked<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.each_hook(ctx, Hook::Revoked))
    }

    fn shutdown<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.each_hook(ctx, Hook::Shutdown))
    }

    fn tick<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.each_hook(ctx, Hook::Tick))
    }

    fn idle<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.each_hook(ctx, Hook::Idle))
    }

    fn eofed<'a>(&'a mut self, ctx: &'a mut Context) -> BoxFuture<'a, ConsumeResult> {
        Box::pin(self.each_hook(ctx, Hook::Eofed))
    }
}

/// One group's run: waits for a worker permit, then consumes its view. A panic is caught here,
/// so the group's context (its requests) comes back either way.
async fn run_group(
    index: usize,
    mut consumer: Box<dyn DynConsumer>,
    mut ctx: Context,
    mut view: Messages,
    workers: Arc<Semaphore>,
) -> GroupEnd {
    let _permit = workers
        .acquire_owned()
        .await
        .expect("the worker semaphore is never closed");
    view.metadata.processing_lag = view.metadata.created_at.elapsed();
    let result = AssertUnwindSafe(consumer.consume(&mut ctx, &view))
        .catch_unwind()
        .await;
    let (consumer, result) = match result {
        Ok(Ok(())) => (Some(consumer), Ok(())),
        Ok(Err(e)) => (Some(consumer), Err(error_chain(&*e))),
        // The instance may be half-updated: the group's retry gets a fresh one.
        Err(payload) => (None, Err(PanicError::from_payload(payload).to_string())),
    };
    GroupEnd {
        index,
        consumer,
        ctx,
        result,
    }
}

/// The batch's non-empty groups, each as (group number, indices into the batch), in group
/// order. Indices ascend, so every group keeps offset order.
fn split(options: &VirtualPartitions, messages: &Messages) -> Vec<(usize, Arc<[usize]>)> {
    debug_assert!(messages.selection.is_none(), "a whole batch is split");
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); options.max_partitions];
    for (i, message) in messages.messages.iter().enumerate() {
        groups[options.group_of(message)].push(i);
    }
    groups
        .into_iter()
        .enumerate()
        .filter(|(_, indices)| !indices.is_empty())
        .map(|(slot, indices)| (slot, Arc::from(indices)))
        .collect()
}

/// A combiner over the offsets of `groups` of `messages`.
fn combiner_for(messages: &Messages, groups: &[(usize, Arc<[usize]>)]) -> MarkCombiner {
    let offsets = groups
        .iter()
        .map(|(_, indices)| {
            indices
                .iter()
                .map(|&i| messages.messages[i].offset())
                .collect()
        })
        .collect();
    MarkCombiner::new(
        messages.metadata.first_offset,
        messages.metadata.last_offset + 1,
        offsets,
    )
}

/// A context for one group: the partition's, with the group's own marks and requests.
fn group_context(ctx: &Context, marks: Option<GroupMarkSink>) -> Context {
    Context {
        handle: ctx.handle.clone(),
        producer: ctx.producer.clone(),
        consumer_group: ctx.consumer_group.clone(),
        config: ctx.config.clone(),
        attempt: ctx.attempt,
        batch: ctx.batch,
        mark: None,
        requests: Vec::new(),
        virtual_group: marks.map(|m| Box::new(m) as Box<dyn GroupMarks>),
        // Refused at boot: a transaction's offset is the partition's, not a group's.
        transactions: None,
    }
}

/// `Ok` without errors, else one error naming each failed group.
fn failure(mut errors: Vec<(usize, String)>, groups: usize) -> ConsumeResult {
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|(slot, _)| *slot);
    let text: Vec<String> = errors
        .into_iter()
        .map(|(slot, e)| format!("virtual partition {slot} of {groups}: {e}"))
        .collect();
    Err(text.join("; ").into())
}
