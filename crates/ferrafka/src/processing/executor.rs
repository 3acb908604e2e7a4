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
use crate::consumer::{Context, DynConsumer, PartitionHandle};
use crate::error::PanicError;
use crate::messages::Messages;
use crate::producer::Producer;
use crate::routing::Topic;

/// Work for an executor.
#[derive(Debug)]
pub(crate) enum Job {
    /// Process a batch.
    Consume(Messages),
    /// The partition was revoked: run `revoked` and stop.
    Revoked,
    /// The server stops: run `shutdown` and stop.
    Shutdown,
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
            let outcome = match job {
                Job::Consume(messages) => self.consume(&mut instance, messages).await,
                Job::Revoked => {
                    self.final_hook(instance.take(), "revoked").await;
                    self.report(Outcome::Stopped);
                    return;
                }
                Job::Shutdown => {
                    self.final_hook(instance.take(), "shutdown").await;
                    self.report(Outcome::Stopped);
                    return;
                }
            };
            self.report(outcome);
        }
    }

    fn report(&self, outcome: Outcome) {
        // The listener only goes away after it stopped waiting for us.
        let _ = self.completions.send(Completion {
            topic: self.handle.topic.clone(),
            partition: self.handle.partition,
            outcome,
        });
    }

    fn context(&self, attempt: u32) -> Context {
        Context {
            handle: self.handle.clone(),
            producer: self.producer.clone(),
            consumer_group: self.topic.consumer_group.clone(),
            config: self.config.clone(),
            attempt,
        }
    }

    async fn consume(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        mut messages: Messages,
    ) -> Outcome {
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
        match result {
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
        }
    }

    async fn final_hook(&self, instance: Option<Box<dyn DynConsumer>>, hook: &'static str) {
        let Some(mut consumer) = instance else { return };
        let mut ctx = self.context(1);
        let fut = match hook {
            "revoked" => consumer.revoked(&mut ctx),
            _ => consumer.shutdown(&mut ctx),
        };
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
