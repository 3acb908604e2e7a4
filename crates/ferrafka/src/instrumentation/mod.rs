//! Instrumentation: typed events of what the server does, for logs of your own, metrics,
//! alerts and tests.
//!
//! Subscribe with [`AppBuilder::subscribe`](crate::AppBuilder::subscribe): every subscriber
//! is called, in the order subscribed, on the thread where the event happens (the listener's
//! thread for partition events, an executor task for batch events), so it must be quick and
//! must not block. With nobody subscribed an event is never even built.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use ferrafka::instrumentation::Event;
//! use ferrafka::App;
//!
//! let consumed = Arc::new(Mutex::new(0usize));
//! let counter = consumed.clone();
//! let app = App::builder()
//!     .subscribe(move |event: &Event<'_>| {
//!         if let Event::BatchConsumed { messages, .. } = event {
//!             *counter.lock().unwrap() += messages;
//!         }
//!     })
//!     .build_with_env([]);
//! # let _ = app;
//! ```

mod metrics;

use std::sync::Arc;
use std::time::Duration;

use crate::consumer::SeekTo;

pub use metrics::Metrics;

/// Something the server did. Topic names and error texts are borrowed for the call: copy
/// what you keep.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The server's state changed.
    AppState(AppState),
    /// The group assigned partitions to a subscription group's consumer.
    PartitionsAssigned {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition) pairs.
        partitions: &'a [(String, i32)],
    },
    /// The group took partitions back (a rebalance, leaving the group).
    PartitionsRevoked {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition) pairs.
        partitions: &'a [(String, i32)],
    },
    /// A batch began: `consume` is about to be called.
    BatchStarted {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// How many messages it holds.
        messages: usize,
        /// 1 for a first attempt, then 2, 3, …
        attempt: u32,
    },
    /// `consume` returned `Ok`.
    BatchConsumed {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// How many messages it held.
        messages: usize,
        /// Its attempt.
        attempt: u32,
        /// How long `consume` took.
        duration: Duration,
    },
    /// `consume` returned `Err` or panicked: the batch is retried after a backoff.
    BatchFailed {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// Its attempt.
        attempt: u32,
        /// How long `consume` took.
        duration: Duration,
        /// The error chain (or the panic's message).
        error: &'a str,
    },
    /// A message was produced to its dead-letter topic (and is then marked).
    DeadLettered {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its offset.
        offset: i64,
        /// The dead-letter topic.
        dead_letter_topic: &'a str,
        /// Attempts it failed before.
        attempts: u32,
    },
    /// Fetching a partition paused.
    Paused {
        /// The partition.
        partition: PartitionRef<'a>,
        /// Why.
        reason: PauseReason,
    },
    /// Fetching a partition resumed.
    Resumed {
        /// The partition.
        partition: PartitionRef<'a>,
    },
    /// A partition's fetch position moved on the consumer's request.
    Seeked {
        /// The partition.
        partition: PartitionRef<'a>,
        /// Where to.
        to: SeekTo,
        /// False when librdkafka refused (processing goes on from where it was).
        ok: bool,
    },
    /// A partition's next offset was stored for the next commit.
    OffsetStored {
        /// The partition.
        partition: PartitionRef<'a>,
        /// The offset stored: the next one to process.
        next: i64,
    },
    /// A subscription group's client hit a fatal error and is being rebuilt.
    ClientRebuilding {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// librdkafka's reason.
        reason: &'a str,
    },
    /// An error outside a batch's own outcome.
    Error {
        /// Where it happened.
        kind: ErrorKind,
        /// The partition, when it concerns one.
        partition: Option<PartitionRef<'a>>,
        /// The error chain.
        error: &'a str,
    },
}

/// One topic partition, as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRef<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition number.
    pub partition: i32,
}

/// The server's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppState {
    /// Listeners are connected and polling.
    Running,
    /// Quiet mode: running batches finish, nothing new starts, partitions stay.
    Quieting,
    /// Shutdown began: running batches get until `shutdown_timeout`.
    Stopping,
    /// Every listener left its group.
    Stopped,
}

/// Why fetching a partition paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// A failed batch waits for its retry's backoff.
    Retry,
    /// The consumer asked (`ctx.pause`).
    Consumer,
    /// Enough messages wait behind a running batch (`partition_buffer_*`).
    Backlog,
    /// Quiet mode.
    Quiet,
}

/// Where an [`Event::Error`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The consumer's `revoked` hook failed or panicked.
    RevokedHook,
    /// The consumer's `shutdown` hook failed or panicked.
    ShutdownHook,
    /// Producing a message to its dead-letter topic failed (the message is retried).
    DeadLetter,
    /// A partition's executor ended without a report; it was replaced.
    Executor,
}

/// Something that receives events: any `Fn(&Event)` closure.
pub trait Subscriber: Send + Sync + 'static {
    /// Called for every event.
    fn on_event(&self, event: &Event<'_>);
}

impl<F: Fn(&Event<'_>) + Send + Sync + 'static> Subscriber for F {
    fn on_event(&self, event: &Event<'_>) {
        self(event)
    }
}

/// The subscribers of an app: cheap to clone, and free to emit to when empty.
#[derive(Clone, Default)]
pub(crate) struct Monitor {
    subscribers: Arc<Vec<Box<dyn Subscriber>>>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl Monitor {
    /// A monitor of these subscribers.
    pub(crate) fn new(subscribers: Vec<Box<dyn Subscriber>>) -> Self {
        Monitor {
            subscribers: Arc::new(subscribers),
        }
    }

    /// Builds the event and hands it to every subscriber; with none, does nothing. A
    /// subscriber that panics is logged and skipped: it runs on the listener's thread or an
    /// executor's task, which must go on.
    #[inline]
    pub(crate) fn emit<'a>(&self, event: impl FnOnce() -> Event<'a>) {
        if self.subscribers.is_empty() {
            return;
        }
        self.emit_to_all(&event());
    }

    fn emit_to_all(&self, event: &Event<'_>) {
        for subscriber in self.subscribers.iter() {
            let call = std::panic::AssertUnwindSafe(|| subscriber.on_event(event));
            if let Err(panic) = std::panic::catch_unwind(call) {
                let error = crate::error::PanicError::from_payload(panic);
                tracing::error!(%error, ?event, "an instrumentation subscriber panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests;
