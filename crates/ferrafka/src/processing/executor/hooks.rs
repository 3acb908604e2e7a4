//! The consumer's `tick`, `idle` and `eofed` hooks, run by the partition's executor between
//! batches.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use super::Executor;
use crate::consumer::{DynConsumer, PartitionRequest};
use crate::error::{PanicError, describe};
use crate::instrumentation::{ErrorKind, Event};
use crate::processing::partition::Hook;

impl Executor {
    /// Runs the consumer's `tick`, `idle` or `eofed` hook (building the instance if there is
    /// none yet) and returns its requests. A failure is an event and a log line; nothing is
    /// retried, and no message is affected.
    pub(crate) async fn partition_hook(
        &self,
        instance: &mut Option<Box<dyn DynConsumer>>,
        hook: Hook,
    ) -> Vec<PartitionRequest> {
        let _permit = match self.topic.virtual_partitions {
            None => Some(self.workers.acquire().await.expect("never closed")),
            Some(_) => None,
        };
        let started = std::time::Instant::now();
        let mut ctx = self.context(1, None);
        let error = match self.instance(instance) {
            Err(panic) => Some(panic),
            Ok(consumer) => {
                let fut = hook.call(consumer.as_mut(), &mut ctx);
                match AssertUnwindSafe(fut).catch_unwind().await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(describe(e)),
                    Err(payload) => {
                        self.discard(instance);
                        Some(format!("panicked: {}", PanicError::from_payload(payload)))
                    }
                }
            }
        };
        let (partition, name) = (self.partition_ref(), hook.name());
        self.monitor.emit(|| Event::HookRan {
            partition,
            hook: name,
            duration: started.elapsed(),
            error: error.as_deref(),
        });
        if let Some(error) = &error {
            tracing::error!(
                consumer_group = %self.handle.consumer_group,
                topic = %self.handle.topic, partition = self.handle.partition, hook = name,
                %error, "consumer hook failed"
            );
            self.monitor.emit(|| Event::Error {
                kind: ErrorKind::ConsumerHook,
                partition: Some(partition),
                error,
            });
        }
        ctx.requests
    }
}
