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

mod event;
mod health;
pub(crate) mod http;
mod metrics;
pub(crate) mod spans;
pub(crate) mod statistics;

use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};

pub use event::{AppState, ErrorKind, Event, PartitionRef, PauseReason};
pub use health::{Health, Verdict};
pub use metrics::Metrics;

/// What the server's HTTP endpoint serves (set up when `http_port` is set): both are
/// subscribed to the app's events.
#[derive(Clone, Debug)]
pub(crate) struct Probes {
    pub(crate) metrics: Metrics,
    pub(crate) health: Health,
}

/// The consumer group of a `consumer_group/subscription_group` label (subscription group
/// names hold no `/`).
pub(crate) fn consumer_group_of(subscription_group: &str) -> &str {
    subscription_group
        .rsplit_once('/')
        .map_or(subscription_group, |(group, _)| group)
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
    /// The statistics thread, started by the first report.
    statistics: Arc<OnceLock<Sender<statistics::Raw>>>,
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
            statistics: Arc::default(),
        }
    }

    /// Hands a client's statistics report to the statistics thread, which decodes it and
    /// emits [`Event::Statistics`] and [`Event::ConsumerLag`]; with no subscriber, does
    /// nothing.
    pub(crate) fn statistics(&self, source: &Arc<statistics::StatisticsSource>, json: &[u8]) {
        if self.subscribers.is_empty() {
            return;
        }
        let thread = self.statistics.get_or_init(|| {
            // The thread's own monitor has no statistics sender: when the app's monitors
            // are gone, the channel closes and the thread ends.
            statistics::spawn(Monitor {
                subscribers: self.subscribers.clone(),
                statistics: Arc::default(),
            })
        });
        let raw = statistics::Raw {
            source: source.clone(),
            json: json.to_vec(),
        };
        // A send fails only when the thread could not start; that was logged.
        let _ = thread.send(raw);
    }

    /// True when anybody listens: worth building what an event borrows.
    pub(crate) fn is_active(&self) -> bool {
        !self.subscribers.is_empty()
    }

    /// Emits an [`Event::Error`], formatting `error` only when anybody listens.
    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        partition: Option<PartitionRef<'_>>,
        error: &dyn std::fmt::Display,
    ) {
        if self.is_active() {
            let error = error.to_string();
            self.emit_to_all(&Event::Error {
                kind,
                partition,
                error: &error,
            });
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
