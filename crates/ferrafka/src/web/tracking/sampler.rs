//! The sampler: what a process reports, kept from its events (never from log text).
//!
//! It runs on the listener's thread and the executors' tasks, so each event takes one short
//! lock and a few map updates; errors for the errors topic wait in a bounded queue the
//! reporter drains, and a [`Notify`] wakes it without blocking.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::instrumentation::{
    AppState, ErrorKind, Event, Health, PartitionRef, PauseReason, Subscriber,
};
use crate::web::report::{ErrorReport, SCHEMA_VERSION, Totals};

/// The clock the sampler reads; tests pass their own.
pub(crate) type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How many errors a report carries.
pub(crate) const RECENT_ERRORS: usize = 10;
/// How many errors wait for the errors topic at most; older ones are dropped (and counted).
pub(crate) const OUTBOX_LIMIT: usize = 1000;

/// (consumer group, topic, partition).
pub(crate) type Key = (String, String, i32);

/// Keeps what the reports say, fed by the app's events. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sampler {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Judges stalls exactly as `/healthz` does.
    stalls: Health,
    clock: Clock,
    /// Wakes the reporter when errors wait to be published.
    errors_waiting: Notify,
}

/// What the events told so far.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) process_id: String,
    pub(crate) app_state: Option<AppState>,
    /// Listeners by `consumer_group/subscription_group`, with their last poll.
    pub(crate) listeners: BTreeMap<String, Option<Instant>>,
    pub(crate) partitions: BTreeMap<Key, Partition>,
    pub(crate) totals: Totals,
    /// The newest errors, newest last.
    pub(crate) recent_errors: VecDeque<ErrorReport>,
    /// Errors not yet handed to the reporter.
    pub(crate) outbox: VecDeque<ErrorReport>,
    /// Errors dropped from a full outbox.
    pub(crate) dropped_errors: u64,
    /// The totals of the previous report and when it was made, for the rates.
    pub(crate) previous: Option<(Totals, Instant)>,
}

/// What is known of one assigned partition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Partition {
    pub(crate) subscription_group: String,
    pub(crate) stored: Option<i64>,
    pub(crate) committed: Option<i64>,
    pub(crate) high_watermark: Option<i64>,
    /// The next offset the latest lag figure counted from.
    pub(crate) lag_from: Option<i64>,
    pub(crate) paused: Option<PauseReason>,
    /// Batches running (several with virtual partitions), oldest first.
    pub(crate) running: Vec<Running>,
}

/// A running batch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Running {
    pub(crate) offsets: (i64, i64),
    pub(crate) messages: usize,
    pub(crate) attempt: u32,
    pub(crate) started: Instant,
}

impl Partition {
    fn new(subscription_group: &str) -> Self {
        Partition {
            subscription_group: subscription_group.to_string(),
            stored: None,
            committed: None,
            high_watermark: None,
            lag_from: None,
            paused: None,
            running: Vec::new(),
        }
    }

    /// Messages after the next offset to process: the newest stored offset counts, even when
    /// it moved after the latest lag figure.
    pub(crate) fn lag(&self) -> Option<i64> {
        let high_watermark = self.high_watermark?;
        let next = self.lag_from?.max(self.stored.unwrap_or(i64::MIN));
        Some((high_watermark - next).max(0))
    }
}

impl Sampler {
    /// A sampler judging stalls after `stall_timeout`.
    pub(crate) fn new(stall_timeout: std::time::Duration) -> Self {
        Self::with_clock(stall_timeout, Arc::new(Instant::now))
    }

    pub(crate) fn with_clock(stall_timeout: std::time::Duration, clock: Clock) -> Self {
        Sampler {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                stalls: Health::with_clock(stall_timeout, clock.clone()),
                clock,
                errors_waiting: Notify::new(),
            }),
        }
    }

    /// A server starts under `process_id` with these listeners: what an earlier run of the
    /// same app left is forgotten.
    pub(crate) fn begin(&self, process_id: &str, listeners: &[String]) {
        let mut state = self.state();
        *state = State {
            process_id: process_id.to_string(),
            listeners: listeners.iter().map(|l| (l.clone(), None)).collect(),
            ..State::default()
        };
    }

    pub(crate) fn now(&self) -> Instant {
        (self.inner.clock)()
    }

    /// The state, for the report builder.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The partitions stalled now, as `/healthz` judges them.
    pub(crate) fn stalled(&self) -> Vec<Key> {
        self.inner.stalls.stalled()
    }

    /// Takes up to `n` errors waiting for the errors topic, oldest first.
    pub(crate) fn take_errors(&self, n: usize) -> Vec<ErrorReport> {
        let mut state = self.state();
        let n = n.min(state.outbox.len());
        state.outbox.drain(..n).collect()
    }

    /// Resolves once errors wait for the errors topic (or were added since the last take).
    pub(crate) async fn errors_waiting(&self) {
        self.inner.errors_waiting.notified().await
    }

    fn observe(&self, event: &Event<'_>) {
        let now = self.now();
        let queued = {
            let mut state = self.state();
            state.observe(event, now)
        };
        if queued {
            self.inner.errors_waiting.notify_one();
        }
    }
}

impl Subscriber for Sampler {
    fn on_event(&self, event: &Event<'_>) {
        self.inner.stalls.on_event(event);
        self.observe(event);
    }
}

fn key(p: &PartitionRef<'_>) -> Key {
    (
        p.consumer_group.to_string(),
        p.topic.to_string(),
        p.partition,
    )
}

impl State {
    /// Applies one event; true when an error was queued for the errors topic.
    pub(crate) fn observe(&mut self, event: &Event<'_>, now: Instant) -> bool {
        match event {
            Event::AppState(s) => self.app_state = Some(*s),
            Event::Polled {
                subscription_group, ..
            } => {
                self.listeners
                    .insert(subscription_group.to_string(), Some(now));
            }
            Event::PartitionsAssigned {
                subscription_group,
                partitions,
            } => {
                self.listeners
                    .entry(subscription_group.to_string())
                    .or_insert(None);
                let group = crate::instrumentation::consumer_group_of(subscription_group);
                for (topic, partition) in partitions.iter() {
                    self.partitions
                        .entry((group.to_string(), topic.clone(), *partition))
                        .or_insert_with(|| Partition::new(subscription_group));
                }
            }
            Event::PartitionsRevoked {
                subscription_group,
                partitions,
            }
            | Event::PartitionsLost {
                subscription_group,
                partitions,
            } => {
                let group = crate::instrumentation::consumer_group_of(subscription_group);
                for (topic, partition) in partitions.iter() {
                    self.partitions
                        .remove(&(group.to_string(), topic.clone(), *partition));
                }
            }
            Event::OffsetsCommitted {
                subscription_group,
                offsets,
                error: None,
            } => {
                let group = crate::instrumentation::consumer_group_of(subscription_group);
                for (topic, partition, next) in offsets.iter() {
                    let key = (group.to_string(), topic.clone(), *partition);
                    if let Some(p) = self.partitions.get_mut(&key) {
                        p.committed = Some(*next);
                    }
                }
            }
            Event::Error {
                kind,
                partition,
                error,
            } => {
                self.totals.errors += 1;
                let report = self.error_report(kind.as_str(), partition.as_ref(), error);
                // A failed report must not queue another report of its failure, endlessly.
                return self.record_error(report, *kind != ErrorKind::Reporting);
            }
            _ => return self.observe_batch(event, now),
        }
        false
    }

    /// The events of batches and partitions.
    fn observe_batch(&mut self, event: &Event<'_>, now: Instant) -> bool {
        match event {
            Event::BatchStarted {
                partition,
                offsets,
                messages,
                attempt,
            } => {
                if let Some(p) = self.partitions.get_mut(&key(partition)) {
                    p.running.push(Running {
                        offsets: *offsets,
                        messages: *messages,
                        attempt: *attempt,
                        started: now,
                    });
                }
            }
            Event::BatchConsumed {
                partition,
                offsets,
                messages,
                ..
            } => {
                self.totals.messages += *messages as u64;
                self.totals.batches += 1;
                self.batch_ended(partition, *offsets);
            }
            Event::BatchFailed {
                partition,
                offsets,
                attempt,
                error,
                backtrace,
                ..
            } => {
                self.totals.batch_errors += 1;
                self.batch_ended(partition, *offsets);
                let mut report = self.error_report("batch", Some(partition), error);
                report.offsets = Some(*offsets);
                report.attempt = Some(*attempt);
                report.backtrace = backtrace.map(str::to_string);
                return self.record_error(report, true);
            }
            Event::DeadLettered { .. } => self.totals.dead_lettered += 1,
            Event::Paused { partition, reason } => {
                if let Some(p) = self.partitions.get_mut(&key(partition)) {
                    p.paused = Some(*reason);
                }
            }
            Event::Resumed { partition } => {
                if let Some(p) = self.partitions.get_mut(&key(partition)) {
                    p.paused = None;
                }
            }
            Event::OffsetStored { partition, next } => {
                if let Some(p) = self.partitions.get_mut(&key(partition)) {
                    p.stored = Some(*next);
                }
            }
            Event::ConsumerLag {
                partition,
                high_watermark,
                next_offset,
                ..
            } => {
                if let Some(p) = self.partitions.get_mut(&key(partition)) {
                    p.high_watermark = Some(*high_watermark);
                    p.lag_from = Some(*next_offset);
                    // Before anything is stored, the next offset is the committed one: a
                    // partition handed over after it was consumed still shows where it stands.
                    if p.stored.is_none() && *next_offset >= 0 {
                        p.committed = Some(*next_offset);
                    }
                }
            }
            _ => {}
        }
        false
    }

    fn batch_ended(&mut self, partition: &PartitionRef<'_>, offsets: (i64, i64)) {
        if let Some(p) = self.partitions.get_mut(&key(partition))
            && let Some(at) = p.running.iter().position(|r| r.offsets == offsets)
        {
            p.running.remove(at);
        }
    }

    fn error_report(
        &self,
        kind: &str,
        partition: Option<&PartitionRef<'_>>,
        error: &str,
    ) -> ErrorReport {
        ErrorReport {
            schema: SCHEMA_VERSION,
            process_id: self.process_id.clone(),
            at_ms: super::now_ms(),
            kind: kind.to_string(),
            consumer_group: partition.map(|p| p.consumer_group.to_string()),
            topic: partition.map(|p| p.topic.to_string()),
            partition: partition.map(|p| p.partition),
            offsets: None,
            attempt: None,
            chain: super::error_chain_links(error),
            backtrace: None,
        }
    }

    /// Keeps `report` among the recent errors, and queues it for the errors topic when
    /// `publish`; true when queued.
    fn record_error(&mut self, report: ErrorReport, publish: bool) -> bool {
        if self.recent_errors.len() == RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
        self.recent_errors.push_back(report.clone());
        if !publish {
            return false;
        }
        if self.outbox.len() == OUTBOX_LIMIT {
            self.outbox.pop_front();
            self.dropped_errors += 1;
        }
        self.outbox.push_back(report);
        true
    }
}
