//! Partition executors: one task per assigned partition that runs its consumer instance.
//!
//! The listener sends an executor one batch at a time, so a partition's batches run strictly in
//! order; a shared semaphore bounds how many batches of the whole process run at once
//! (`concurrency`). An executor reports each outcome back to its listener and never lets a
//! panic out.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::mpsc::Sender;

use futures::FutureExt;
use tokio::sync::{Semaphore, mpsc::UnboundedReceiver};

use crate::config::Config;
use crate::consumer::{Context, DynConsumer, PartitionHandle, PartitionRequest};
use crate::error::PanicError;
use crate::messages::{Message, Messages};
use crate::producer::{Producer, Record};

use crate::routing::Topic;
use crate::routing::dlq_headers::*;

/// Work for an executor.
#[derive(Debug)]
pub(crate) enum Job {
    /// Process a batch.
    Consume(Messages),
    /// Produce a message that keeps failing to the topic's dead-letter queue, then mark it.
    DeadLetter {
        /// The failing message.
        message: Message,
        /// The last error it caused.
        error: String,
        /// How many times it was attempted.
        attempts: u32,
    },
    /// The partition was revoked: run `revoked` and stop.
    Revoked,
    /// The server stops: run `shutdown` and stop.
    Shutdown,
}

/// The hook an executor runs before it stops.
#[derive(Debug, Clone, Copy)]
enum FinalHook {
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

/// What an executor reports back.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The batch succeeded (and was marked, unless offsets are managed manually).
    Consumed,
    /// The batch failed; the unmarked rest is to be retried.
    Failed(String),
    /// The executor ran its final hook and stopped.
    Stopped,
}

/// A report from an executor to its listener.
#[derive(Debug)]
pub(crate) struct Completion {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) outcome: Outcome,
    /// Pause, resume or seek requests the consumer made during the batch.
    pub(crate) requests: Vec<PartitionRequest>,
}

/// Everything an executor needs besides its jobs.
pub(crate) struct Executor {
    pub(crate) config: Arc<Config>,
    pub(crate) topic: Arc<Topic>,
    pub(crate) handle: Arc<PartitionHandle>,
    pub(crate) producer: Producer,
    pub(crate) workers: Arc<Semaphore>,
    pub(crate) completions: Sender<Completion>,
}

impl Executor {
    /// Runs jobs until the partition is revoked, the server stops or the listener goes away.
    pub(crate) async fn run(self, mut jobs: UnboundedReceiver<Job>) {
        let mut instance: Option<Box<dyn DynConsumer>> = None;
        while let Some(job) = jobs.recv().await {
            let (outcome, requests) = match job {
                Job::Consume(messages) => self.consume(&mut instance, messages).await,
                Job::DeadLetter {
                    message,
                    error,
                    attempts,
                } => (
                    self.dead_letter(&message, &error, attempts).await,
                    Vec::new(),
                ),
                Job::Revoked => return self.stop(instance.take(), FinalHook::Revoked).await,
                Job::Shutdown => return self.stop(instance.take(), FinalHook::Shutdown).await,
            };
            self.report(outcome, requests);
        }
    }

    fn report(&self, outcome: Outcome, requests: Vec<PartitionRequest>) {
        // The listener only goes away after it stopped waiting for us.
        let _ = self.completions.send(Completion {
            topic: self.handle.topic.clone(),
            partition: self.handle.partition,
            outcome,
            requests,
        });
    }

    fn context(&self, attempt: u32) -> Context {
        Context {
            handle: self.handle.clone(),
            producer: self.producer.clone(),
            consumer_group: self.topic.consumer_group.clone(),
            config: self.config.clone(),
            attempt,
            requests: Vec::new(),
        }
    }

    async fn consume(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        mut messages: Messages,
    ) -> (Outcome, Vec<PartitionRequest>) {
        let _permit = self
            .workers
            .acquire()
            .await
            .expect("the worker semaphore is never closed");
        let factory = self
            .topic
            .factory
            .as_ref()
            .expect("active topics have a consumer");
        if !self.topic.consumer_persistence {
            // Without persistence every batch meets a fresh instance; the last one stays for
            // the `revoked`/`shutdown` hooks.
            *instance = None;
        }
        let consumer = instance.get_or_insert_with(|| factory());
        messages.metadata.processing_lag = messages.metadata.created_at.elapsed();
        let mut ctx = self.context(messages.metadata.attempt);
        let result = AssertUnwindSafe(consumer.consume(&mut ctx, &messages))
            .catch_unwind()
            .await;
        let outcome = match result {
            Ok(Ok(())) => {
                if !self.topic.manual_offset_management {
                    // A false here means the partition was revoked: its new owner redoes the batch.
                    self.handle.mark(messages.last().offset() + 1);
                }
                Outcome::Consumed
            }
            Ok(Err(e)) => Outcome::Failed(error_chain(&*e)),
            Err(payload) => {
                // The instance may be half-updated: retry with a fresh one.
                *instance = None;
                Outcome::Failed(PanicError::from_payload(payload).to_string())
            }
        };
        (outcome, ctx.requests)
    }

    /// Produces `message` to the dead-letter topic and marks it once the broker acknowledged it.
    async fn dead_letter(&self, message: &Message, error: &str, attempts: u32) -> Outcome {
        let Some(dlq) = &self.topic.dead_letter_queue else {
            return Outcome::Failed("no dead-letter queue configured".into());
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
            record = record.header(&header.key, header.value.as_deref().unwrap_or_default());
        }
        record = record
            .header(SOURCE_TOPIC, message.topic())
            .header(SOURCE_PARTITION, &partition)
            .header(SOURCE_OFFSET, &offset)
            .header(SOURCE_CONSUMER_GROUP, &*self.topic.consumer_group)
            .header(ATTEMPTS, &attempts_text)
            .header(ERROR, error)
            .header(FAILED_AT, &failed_at);
        match self.producer.produce(record).await {
            Ok(delivery) => {
                tracing::warn!(
                    topic = message.topic(), partition = message.partition(), offset = message.offset(),
                    dead_letter_topic = %dlq.topic, dead_letter_offset = delivery.offset, attempts, %error,
                    "message moved to the dead-letter queue"
                );
                self.handle.mark(message.offset() + 1);
                Outcome::Consumed
            }
            Err(e) => Outcome::Failed(format!(
                "cannot dead-letter offset {}: {}",
                message.offset(),
                error_chain(&e)
            )),
        }
    }

    /// Runs the instance's final hook (if an instance exists) and reports that it stopped.
    async fn stop(&self, instance: Option<Box<dyn DynConsumer>>, hook: FinalHook) {
        if let Some(consumer) = instance {
            self.final_hook(consumer, hook).await;
        }
        self.report(Outcome::Stopped, Vec::new());
    }

    async fn final_hook(&self, mut consumer: Box<dyn DynConsumer>, hook: FinalHook) {
        let mut ctx = self.context(1);
        let fut = match hook {
            FinalHook::Revoked => consumer.revoked(&mut ctx),
            FinalHook::Shutdown => consumer.shutdown(&mut ctx),
        };
        let hook = hook.name();
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(
                topic = %self.handle.topic, partition = self.handle.partition, hook,
                error = %error_chain(&*e), "consumer hook failed"
            ),
            Err(payload) => tracing::error!(
                topic = %self.handle.topic, partition = self.handle.partition, hook,
                error = %PanicError::from_payload(payload), "consumer hook panicked"
            ),
        }
    }
}

/// An error and its sources on one line: `outer: inner: root`.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
