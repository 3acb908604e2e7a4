//! Partition executors: one task per assigned partition that runs its consumer instance.
//!
//! The listener sends an executor one batch at a time, or a run of consecutive full batches
//! that it works through without waiting for the listener in between (a run ends early at the
//! first batch that fails or makes a request, or when the listener cuts it), so a partition's
//! batches run strictly in order. A shared semaphore bounds how many batches of the whole
//! process run at once (`concurrency`); a topic with virtual partitions runs each batch through
//! [`VirtualConsumer`], whose groups take the permits instead. An executor reports each outcome,
//! with the batch's mark and the consumer's requests, back to its listener as a value, and never
//! lets a panic out (of `consume`, the hooks or the consumer factory). It stores no offsets
//! itself: the listener's per-partition state machine decides what is stored.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use std::sync::mpsc::Sender;

use futures::FutureExt;
use tokio::sync::{Semaphore, mpsc::UnboundedReceiver, mpsc::error::TryRecvError};
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use super::doorbell::Doorbell;
use super::partition::{Outcome, Report, Work};
use super::virtual_partitions::VirtualConsumer;
use crate::config::Config;
use crate::consumer::{Context, DynConsumer, Hook, PartitionHandle, PartitionRequest};
use crate::error::{PanicError, describe, error_chain, guarded};
use crate::instrumentation::{ErrorKind, Event, Monitor, PartitionRef};
use crate::messages::{Message, Messages};
use crate::producer::{Producer, Record};

use crate::routing::Topic;
use crate::routing::dlq_headers::*;

/// Work for an executor.
#[derive(Debug)]
pub(crate) enum Job {
    /// Run batch number `batch` (a run's first batch).
    Run { batch: u64, work: Work },
    /// End the run that runs now after its current batch: revocation, quiet mode or shutdown
    /// began, and the listener waits for the executor.
    Cut,
    /// The partition was revoked or the server stops: run the final hook and stop.
    Stop(FinalHook),
    /// Run the consumer's `tick`, `idle` or `eofed` hook, then report it done.
    Hook(Hook),
}

/// The hook an executor runs before it stops.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FinalHook {
    Revoked,
    Shutdown,
}

impl FinalHook {
    fn name(self) -> &'static str {
        match self {
            FinalHook::Revoked => "revoked",
            FinalHook::Shutdown => "shutdown",
        }
    }
}

/// A message from an executor to its listener.
#[derive(Debug)]
pub(crate) struct ExecutorReport {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The assignment the executor serves.
    pub(crate) generation: u64,
    pub(crate) kind: ReportKind,
}

/// What an executor reports.
#[derive(Debug)]
pub(crate) enum ReportKind {
    /// The running batch marked up to `mark` (a next offset) and goes on.
    Progress { batch: u64, mark: i64 },
    /// A batch ended.
    Finished(Report),
    /// A [`Job::Hook`] ended, with the pause, resume and seek requests made in it.
    HookDone { requests: Vec<PartitionRequest> },
    /// The executor ran its final hook and stopped.
    Stopped,
}

/// Where executors' reports go: the listener's channel, and the bell that wakes the listener
/// (it sleeps until something happens instead of polling on a timer).
#[derive(Debug, Clone)]
pub(crate) struct ReportSink {
    reports: Sender<ExecutorReport>,
    wake: Arc<Doorbell>,
}

impl ReportSink {
    pub(crate) fn new(reports: Sender<ExecutorReport>, wake: Arc<Doorbell>) -> Self {
        ReportSink { reports, wake }
    }

    /// Sends a report and wakes the listener; fails silently once the listener is gone (it
    /// only goes away after it stopped waiting for reports).
    pub(crate) fn send(&self, report: ExecutorReport) {
        if self.reports.send(report).is_ok() {
            self.wake.ring();
        }
    }

    /// Sends a report the listener may take whenever it wakes next (at most its idle wait
    /// later): a mark between the batches of a run, which is worth no thread wake-up.
    fn send_quietly(&self, report: ExecutorReport) {
        let _ = self.reports.send(report);
    }
}

/// Everything an executor needs besides its jobs.
pub(crate) struct Executor {
    pub(crate) config: Arc<Config>,
    pub(crate) topic: Arc<Topic>,
    pub(crate) handle: Arc<PartitionHandle>,
    pub(crate) producer: Producer,
    pub(crate) workers: Arc<Semaphore>,
    pub(crate) reports: ReportSink,
    /// Every task of the listener that may hold its client's messages (executors and
    /// virtual-partition groups), until its future is dropped: the client is destroyed only
    /// once it is empty.
    pub(crate) tasks: TaskTracker,
    /// Where batch events go.
    pub(crate) monitor: Monitor,
    /// The transactional producers, for a transactional route.
    pub(crate) transactions: Option<crate::transaction::Access>,
}

impl Executor {
    /// Runs jobs until the partition is revoked, the server stops or the listener goes away.
    pub(crate) async fn run(self, mut jobs: UnboundedReceiver<Job>) {
        let mut instance: Option<Box<dyn DynConsumer>> = None;
        // A job that came while a run ran: it ended the run and comes next.
        let mut waiting = None;
        loop {
            let job = match waiting.take() {
                Some(job) => job,
                None => match jobs.recv().await {
                    Some(job) => job,
                    None => return self.discard(&mut instance),
                },
            };
            let report = match job {
                Job::Run { batch, work } => {
                    let mut go_on = || match jobs.try_recv() {
                        Err(TryRecvError::Empty) => true,
                        Ok(Job::Cut) | Err(TryRecvError::Disconnected) => false,
                        Ok(other) => {
                            waiting = Some(other);
                            false
                        }
                    };
                    self.run_batch(&mut instance, batch, work, &mut go_on).await
                }
                Job::Cut => continue, // no run to end
                Job::Hook(hook) => {
                    let requests = self.partition_hook(&mut instance, hook).await;
                    self.report(ReportKind::HookDone { requests });
                    continue;
                }
                Job::Stop(hook) => return self.stop(instance.take(), hook).await,
            };
            self.report(ReportKind::Finished(report));
        }
    }

    /// Runs one batch, a run of batches, or a dead-letter job on the partition's consumer
    /// `instance` and says how it ended: the server's executor task and the testing harness
    /// both run batches here. Between two batches of a run, `go_on` says whether the run may
    /// continue.
    pub(crate) async fn run_batch(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        batch: u64,
        work: Work,
        go_on: &mut (dyn FnMut() -> bool + Send),
    ) -> Report {
        match work {
            Work::Consume(messages) => self.consume(instance, batch, messages).await,
            Work::Run(batches) => self.consume_run(instance, batch, batches, go_on).await,
            Work::DeadLetter {
                message,
                error,
                attempts,
            } => Report {
                generation: self.handle.generation,
                batch,
                outcome: self.dead_letter(&message[0], &error, attempts).await,
                mark: None,
                requests: Vec::new(),
            },
        }
    }

    /// Consumes a run's batches, numbered from `first`, until one fails or makes a request,
    /// the partition is revoked or `go_on` says no. Reports the last batch that ran, with the
    /// highest mark of all; each batch's mark also goes to the listener as it ends, so a long
    /// run's progress is stored before the run ends.
    async fn consume_run(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        first: u64,
        batches: Vec<Messages>,
        go_on: &mut (dyn FnMut() -> bool + Send),
    ) -> Report {
        let mut batches = batches.into_iter();
        let mut batch = first;
        let mut mark = None;
        loop {
            let messages = batches.next().expect("a run has a batch left");
            let mut report = self.consume(instance, batch, messages).await;
            mark = mark.max(report.mark);
            let consumed = report.outcome == Outcome::Consumed && report.requests.is_empty();
            if batches.len() == 0 || !consumed || self.handle.is_revoked() || !go_on() {
                // Let go of the batches that did not run, so the listener takes them back
                // without a copy.
                drop(batches);
                report.mark = mark;
                return report;
            }
            if let Some(mark) = report.mark {
                let progress = self.addressed(ReportKind::Progress { batch, mark });
                self.reports.send_quietly(progress);
            }
            batch += 1;
        }
    }

    /// This executor's partition, as events name it.
    fn partition_ref(&self) -> PartitionRef<'_> {
        self.handle.partition_ref()
    }

    /// Sends a report to the listener.
    fn report(&self, kind: ReportKind) {
        self.reports.send(self.addressed(kind));
    }

    /// `kind` as a report of this executor's partition and assignment.
    fn addressed(&self, kind: ReportKind) -> ExecutorReport {
        ExecutorReport {
            topic: self.handle.topic.clone(),
            partition: self.handle.partition,
            generation: self.handle.generation,
            kind,
        }
    }

    fn context(&self, attempt: u32, batch: Option<u64>) -> Context {
        Context {
            handle: self.handle.clone(),
            producer: self.producer.clone(),
            consumer_group: self.topic.consumer_group.clone(),
            config: self.config.clone(),
            attempt,
            batch,
            mark: None,
            requests: Vec::new(),
            virtual_group: None,
            transactions: self.transactions.clone(),
        }
    }

    async fn consume(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        batch: u64,
        mut messages: Messages,
    ) -> Report {
        // With virtual partitions each group takes its own permit; holding one here as well
        // would let a batch wait on itself.
        let _permit = match self.topic.virtual_partitions {
            None => Some(
                self.workers
                    .acquire()
                    .await
                    .expect("the worker semaphore is never closed"),
            ),
            Some(_) => None,
        };
        if !self.topic.consumer_persistence {
            // Without persistence every batch meets a fresh instance; the last one stays for
            // the `revoked`/`shutdown` hooks.
            self.discard(instance);
        }
        messages.metadata.processing_lag = messages.metadata.created_at.elapsed();
        let attempt = messages.metadata.attempt;
        let offsets = (messages.first().offset(), messages.last().offset());
        let partition = self.partition_ref();
        let span = crate::instrumentation::spans::batch(&partition, &messages, attempt);
        self.monitor.emit(|| Event::BatchStarted {
            partition,
            offsets,
            messages: messages.len(),
            attempt,
        });
        let started = std::time::Instant::now();
        let mut ctx = self.context(attempt, Some(batch));
        let mut backtrace = None;
        let outcome = match self.instance(instance) {
            Ok(consumer) => {
                panic_trace::install();
                let result = panic_trace::traced(
                    AssertUnwindSafe(consumer.consume(&mut ctx, &messages))
                        .catch_unwind()
                        .instrument(span.clone()),
                )
                .await;
                match result {
                    Ok(Ok(())) => {
                        let end = messages.last().offset() + 1;
                        if self.topic.transactional {
                            // Only a committed transaction moves a transactional route's offset.
                            self.warn_uncommitted(ctx.mark, end);
                        } else if !self.topic.manual_offset_management {
                            ctx.mark = Some(end);
                        }
                        Outcome::Consumed
                    }
                    Ok(Err(e)) => Outcome::Failed(describe(e)),
                    Err(payload) => {
                        backtrace = panic_trace::take();
                        // The instance may be half-updated: retry with a fresh one.
                        self.discard(instance);
                        Outcome::Failed(PanicError::from_payload(payload).to_string())
                    }
                }
            }
            Err(panic) => Outcome::Failed(panic),
        };
        let duration = started.elapsed();
        let failed = matches!(outcome, Outcome::Failed(_));
        crate::instrumentation::spans::batch_ended(&span, failed);
        self.monitor.emit(|| match &outcome {
            Outcome::Failed(error) => Event::BatchFailed {
                partition,
                offsets,
                attempt,
                duration,
                error,
                backtrace: backtrace.as_deref(),
            },
            _ => Event::BatchConsumed {
                partition,
                offsets,
                messages: messages.len(),
                attempt,
                duration,
            },
        });
        Report {
            generation: self.handle.generation,
            batch,
            outcome,
            mark: ctx.mark,
            requests: ctx.requests,
        }
    }

    /// A transactional route's batch returned `Ok` without a transaction committing its
    /// offsets up to `end`: they stay uncommitted until a later transaction commits past them.
    fn warn_uncommitted(&self, mark: Option<i64>, end: i64) {
        if mark.is_none_or(|m| m < end) {
            tracing::warn!(
                consumer_group = %self.handle.consumer_group,
                topic = %self.handle.topic, partition = self.handle.partition,
                committed_up_to = ?mark, batch_end = end,
                "a batch of a transactional route returned Ok without a transaction marking all \
                 of it: the rest is committed by a later transaction only (and processed again \
                 after a restart or rebalance before that)"
            );
        }
    }

    /// The partition's consumer instance, built by the route's factory when there is none. A
    /// panicking factory fails the batch like a panicking `consume`.
    fn instance<'a>(
        &self,
        instance: &'a mut Option<Box<dyn DynConsumer>>,
    ) -> Result<&'a mut Box<dyn DynConsumer>, String> {
        if instance.is_none() {
            let factory = self
                .topic
                .factory
                .as_ref()
                .expect("active topics have a consumer");
            if let Some(options) = &self.topic.virtual_partitions {
                // Builds the groups' instances itself, one per group, as they are needed.
                let split = VirtualConsumer::new(
                    options.clone(),
                    factory.clone(),
                    self.workers.clone(),
                    self.topic.manual_offset_management,
                    self.tasks.clone(),
                );
                *instance = Some(Box::new(split));
                return Ok(instance.as_mut().expect("set above"));
            }
            let built = std::panic::catch_unwind(AssertUnwindSafe(|| factory()))
                .map_err(|p| format!("consumer factory: {}", PanicError::from_payload(p)))?;
            *instance = Some(built);
        }
        Ok(instance.as_mut().expect("built above"))
    }

    /// Produces `message` to the dead-letter topic and marks it once the broker acknowledged it.
    async fn dead_letter(&self, message: &Message, error: &str, attempts: u32) -> Outcome {
        let Some(dlq) = &self.topic.dead_letter_queue else {
            return Outcome::DeadLetterFailed("no dead-letter queue configured".into());
        };
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let attempts_text = attempts.to_string();
        let failed_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis().to_string())
            .unwrap_or_default();
        let mut record = Record::to(&dlq.topic);
        if let Some(payload) = message.payload() {
            record = record.payload(payload);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        for header in message.headers() {
            record = record.header(&header.key, header.value.unwrap_or_default());
        }
        record = record
            .header(SOURCE_TOPIC, message.topic())
            .header(SOURCE_PARTITION, &partition)
            .header(SOURCE_OFFSET, &offset)
            .header(SOURCE_CONSUMER_GROUP, &*self.topic.consumer_group)
            .header(ATTEMPTS, &attempts_text)
            .header(ERROR, error)
            .header(FAILED_AT, &failed_at);
        match self.produce_dead_letter(record, message.offset() + 1).await {
            Ok(delivery) => {
                tracing::warn!(
                    consumer_group = %self.handle.consumer_group,
                    topic = message.topic(), partition = message.partition(), offset = message.offset(),
                    dead_letter_topic = %dlq.topic, dead_letter_offset = delivery.offset, attempts, %error,
                    "message moved to the dead-letter queue"
                );
                self.monitor.emit(|| Event::DeadLettered {
                    partition: self.partition_ref(),
                    offset: message.offset(),
                    dead_letter_topic: &dlq.topic,
                    attempts,
                });
                Outcome::DeadLettered
            }
            Err(e) => {
                let error = format!(
                    "cannot dead-letter offset {}: {}",
                    message.offset(),
                    error_chain(&*e)
                );
                self.monitor.emit(|| Event::Error {
                    kind: ErrorKind::DeadLetter,
                    partition: Some(self.partition_ref()),
                    error: &error,
                });
                Outcome::DeadLetterFailed(error)
            }
        }
    }

    /// Produces a dead letter: on a transactional route in a transaction that also commits the
    /// message's offset, otherwise with the app's producer.
    async fn produce_dead_letter(
        &self,
        record: Record<'_>,
        next: i64,
    ) -> Result<crate::producer::Delivery, crate::error::BoxError> {
        let Some(access) = &self.transactions else {
            return Ok(self.producer.produce(record).await?);
        };
        let run = crate::transaction::run(access, &self.handle, async |tx| {
            let delivery = tx.produce(record).await?;
            tx.mark_next(next);
            Ok(delivery)
        });
        Ok(run.await?.0)
    }

    /// Runs the instance's final hook (if an instance exists) and reports that it stopped.
    async fn stop(&self, instance: Option<Box<dyn DynConsumer>>, hook: FinalHook) {
        if let Some(consumer) = instance {
            self.final_hook(consumer, hook).await;
        }
        self.report(ReportKind::Stopped);
    }

    /// Drops the partition's consumer instance; its `Drop` is user code, and a panic there must
    /// not end the executor without a report.
    fn discard(&self, instance: &mut Option<Box<dyn DynConsumer>>) {
        let Some(consumer) = instance.take() else {
            return;
        };
        if let Err(panic) = guarded(move || drop(consumer)) {
            tracing::error!(
                consumer_group = %self.handle.consumer_group,
                topic = %self.handle.topic, partition = self.handle.partition,
                error = %panic, "dropping the consumer instance panicked"
            );
        }
    }

    async fn final_hook(&self, consumer: Box<dyn DynConsumer>, hook: FinalHook) {
        let mut instance = Some(consumer);
        self.run_final_hook(&mut instance, hook).await;
        self.discard(&mut instance);
    }

    async fn run_final_hook(&self, instance: &mut Option<Box<dyn DynConsumer>>, hook: FinalHook) {
        let Some(consumer) = instance.as_mut() else {
            return;
        };
        let mut ctx = self.context(1, None);
        let fut = match hook {
            FinalHook::Revoked => consumer.revoked(&mut ctx),
            FinalHook::Shutdown => consumer.shutdown(&mut ctx),
        };
        let kind = match hook {
            FinalHook::Revoked => ErrorKind::RevokedHook,
            FinalHook::Shutdown => ErrorKind::ShutdownHook,
        };
        let hook = hook.name();
        let error = match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => describe(e),
            Err(payload) => format!("panicked: {}", PanicError::from_payload(payload)),
        };
        tracing::error!(
            consumer_group = %self.handle.consumer_group,
            topic = %self.handle.topic, partition = self.handle.partition, hook,
            %error, "consumer hook failed"
        );
        self.monitor.emit(|| Event::Error {
            kind,
            partition: Some(self.partition_ref()),
            error: &error,
        });
    }
}

mod hooks;
mod panic_trace;
#[cfg(test)]
mod tests;
