//! Delivery reports: what each one settles (a fire-and-forget message, one awaited message, a
//! batch of them), and the producer client's librdkafka callbacks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use tokio::sync::oneshot;

use super::Delivery;
use crate::error::{DeliveryFailure, Result};

/// A message's delivery tracker, handed to librdkafka as the message's opaque and back with
/// its delivery report (`sys::opaque`); `None` for fire-and-forget.
pub(crate) struct Tracked(pub(crate) Option<Arc<Tracker>>);

/// What to do with a delivery report.
pub(crate) enum Tracker {
    /// Fire-and-forget: log failures.
    Report,
    /// One awaited message.
    One(Mutex<Option<oneshot::Sender<Result<Delivery, KafkaError>>>>),
    /// Many awaited messages.
    Many(ManyState),
}

pub(crate) struct ManyState {
    /// Reports still expected, plus one while messages are still being queued.
    pub(super) remaining: AtomicUsize,
    pub(super) failures: Mutex<Vec<DeliveryFailure>>,
    pub(super) done: Mutex<Option<oneshot::Sender<()>>>,
}

impl ManyState {
    pub(super) fn finish_one(&self) {
        self.finish(1);
    }

    /// `count` reports came, or will never come.
    pub(super) fn finish(&self, count: usize) {
        if self.remaining.fetch_sub(count, Ordering::AcqRel) == count
            && let Some(tx) = self.done.lock().expect("not poisoned").take()
        {
            let _ = tx.send(());
        }
    }
}

/// Receives delivery reports on librdkafka's polling thread.
pub(crate) struct DeliveryContext {
    pub(super) failed: AtomicU64,
    pub(super) monitor: crate::instrumentation::Monitor,
    /// Who this producer is, for its statistics reports.
    pub(super) statistics: Arc<crate::instrumentation::statistics::StatisticsSource>,
    /// Rejected credentials and certificates, to explain a delivery that times out on them.
    pub(super) watched: crate::kafka::WatchedContext,
}

/// Logs and errors as every watched client handles them (`kafka::WatchedContext`).
impl ClientContext for DeliveryContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.watched.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.monitor.is_active() {
            let text = format!("{error}: {reason}");
            let text = crate::secrets::redact_text(&text, &self.statistics.kafka);
            let kind = crate::instrumentation::ErrorKind::Producer;
            self.monitor.error(kind, None, &text);
        }
        self.watched.error(error, reason);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.monitor.statistics(&self.statistics, statistics);
    }
}

impl DeliveryContext {
    /// [`Event::Delivered`](crate::instrumentation::Event::Delivered) or
    /// [`Event::DeliveryFailed`](crate::instrumentation::Event::DeliveryFailed).
    fn emit(&self, result: &DeliveryResult<'_>) {
        use crate::instrumentation::Event;
        use rdkafka::Message as _;
        if !self.monitor.is_active() {
            return;
        }
        match result {
            Ok(m) => self.monitor.emit(|| Event::Delivered {
                topic: m.topic(),
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, m)) => {
                let error = e.to_string();
                self.monitor.emit(|| Event::DeliveryFailed {
                    topic: m.topic(),
                    partition: m.partition(),
                    error: &error,
                })
            }
        }
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Tracked;

    fn delivery(&self, result: &DeliveryResult<'_>, tracked: Tracked) {
        use rdkafka::Message as _;
        let fire_and_forget = Tracker::Report;
        let tracker = tracked.0.as_deref().unwrap_or(&fire_and_forget);
        self.emit(result);
        let outcome = match result {
            Ok(m) => Ok(Delivery {
                partition: m.partition(),
                offset: m.offset(),
            }),
            Err((e, m)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Tracker::Many(state) = tracker {
                    state
                        .failures
                        .lock()
                        .expect("not poisoned")
                        .push(DeliveryFailure {
                            topic: m.topic().to_string(),
                            key: m.key().map(<[u8]>::to_vec),
                            error: e.clone(),
                        });
                }
                Err(e.clone())
            }
        };
        match tracker {
            Tracker::Report => {
                if let Err(e) = &outcome
                    && let Err((_, m)) = result
                {
                    tracing::error!(topic = m.topic(), partition = m.partition(), error = %e, "message not delivered");
                }
            }
            Tracker::One(tx) => {
                if let Some(tx) = tx.lock().expect("not poisoned").take() {
                    let _ = tx.send(outcome);
                }
            }
            Tracker::Many(state) => state.finish_one(),
        }
    }
}
