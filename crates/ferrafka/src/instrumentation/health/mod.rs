//! Liveness and readiness, judged from the events: what a Kubernetes probe asks.
//!
//! Liveness fails only on what a restart cures:
//!
//! - a listener that has not polled for longer than its `max.poll.interval.ms` (its thread is
//!   stuck; librdkafka has already left the group for it);
//! - a **silent stall**: an assigned partition with messages waiting, no batch running, no
//!   pause asked for by ferrafka or the consumer, and no progress for longer than
//!   `stall_timeout`. Messages wait when the broker holds messages librdkafka never handed
//!   over (`high_watermark > position`), or ferrafka holds messages no batch has run.
//!
//! A long batch and a deliberate pause never fail it: they show in the metrics instead. The
//! waiting is known from [`Event::ConsumerLag`]; when those stop coming (statistics off, the
//! cluster unreachable) the evidence goes stale after half of `stall_timeout` and no stall is
//! claimed: a restart does not bring a broker back.
//!
//! Readiness passes once every listener's consumer joined its group (an assignment arrived,
//! even an empty one), and fails again once the app stops or quiets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::{AppState, Event, PartitionRef, Subscriber};

/// The clock the judgement reads; tests pass their own.
type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Liveness and readiness of a server, fed by its events. The server keeps one when
/// `http_port` is set and serves it on `/healthz` and `/readyz`; an app that embeds the
/// server asks it through [`RunningServer::health`](crate::RunningServer::health).
#[derive(Clone)]
pub struct Health {
    state: Arc<Mutex<State>>,
    stall_timeout: Duration,
    clock: Clock,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("stall_timeout", &self.stall_timeout)
            .finish_non_exhaustive()
    }
}

/// A probe's answer: healthy, or the reasons it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Why the probe fails; empty when it passes.
    pub problems: Vec<String>,
}

impl Verdict {
    /// True when nothing is wrong.
    pub fn passes(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct State {
    /// Listeners the server started, by `consumer_group/subscription_group`.
    listeners: HashMap<String, Listener>,
    partitions: HashMap<(String, String, i32), Watch>,
    /// Stopping or quieting: no longer ready, and no longer judged for stalls.
    leaving: bool,
}

struct Listener {
    max_poll_interval: Duration,
    last_poll: Instant,
    joined: bool,
}

/// What is known of one assigned partition.
struct Watch {
    running: u32,
    paused: bool,
    /// The offset after the last batch that ended, -1 before any.
    processed_to: i64,
    /// When the latest lag figure came.
    evidence_at: Option<Instant>,
    /// Since when messages wait, by the lag figures; `None` while none do.
    waiting_since: Option<Instant>,
    /// Batches started or ended, pauses, resumes, assignment.
    last_progress: Instant,
}

impl Health {
    /// Judges stalls after `stall_timeout` (the `stall_timeout` setting).
    pub(crate) fn new(stall_timeout: Duration) -> Self {
        Self::with_clock(stall_timeout, Arc::new(Instant::now))
    }

    pub(crate) fn with_clock(stall_timeout: Duration, clock: Clock) -> Self {
        Health {
            state: Arc::default(),
            stall_timeout,
            clock,
        }
    }

    /// The server started a listener: it must poll at least every `max_poll_interval`, and
    /// join its group before the app is ready.
    pub(crate) fn expect_listener(&self, subscription_group: &str, max_poll_interval: Duration) {
        let now = (self.clock)();
        self.state().listeners.insert(
            subscription_group.to_string(),
            Listener {
                max_poll_interval,
                last_poll: now,
                joined: false,
            },
        );
    }

    /// Whether a restart would help: the problems that only a restart cures.
    pub fn liveness(&self) -> Verdict {
        let now = (self.clock)();
        let state = self.state();
        let mut problems = Vec::new();
        for (name, l) in &state.listeners {
            let silent = now.saturating_duration_since(l.last_poll);
            if silent > l.max_poll_interval {
                problems.push(format!(
                    "listener {name} has not polled for {silent:.1?} (max.poll.interval.ms is {:?})",
                    l.max_poll_interval
                ));
            }
        }
        if !state.leaving {
            let mut stalled: Vec<_> = state
                .partitions
                .iter()
                .filter(|(_, w)| self.is_stalled(w, now))
                .map(|((group, topic, partition), w)| {
                    let since = w.stuck_since().unwrap_or(w.last_progress);
                    let quiet = now.saturating_duration_since(since);
                    format!(
                        "{group} {topic}/{partition}: messages wait, nothing runs and nothing \
                         paused it, for {quiet:.1?} (stall_timeout is {:?})",
                        self.stall_timeout
                    )
                })
                .collect();
            stalled.sort();
            problems.extend(stalled);
        }
        Verdict { problems }
    }

    /// Whether the app takes part in its groups: every listener joined, and not leaving.
    pub fn readiness(&self) -> Verdict {
        let state = self.state();
        let mut problems: Vec<_> = state
            .listeners
            .iter()
            .filter(|(_, l)| !l.joined)
            .map(|(name, _)| format!("listener {name} has not joined its group yet"))
            .collect();
        problems.sort();
        if state.leaving {
            problems.push("the app is stopping or quiet".into());
        }
        Verdict { problems }
    }

    /// The partitions stalled now, as (consumer group, topic, partition), sorted: what
    /// liveness fails on, for the reports of `web`.
    pub(crate) fn stalled(&self) -> Vec<(String, String, i32)> {
        let now = (self.clock)();
        let state = self.state();
        if state.leaving {
            return Vec::new();
        }
        let mut stalled: Vec<_> = state
            .partitions
            .iter()
            .filter(|(_, w)| self.is_stalled(w, now))
            .map(|(key, _)| key.clone())
            .collect();
        stalled.sort();
        stalled
    }

    fn is_stalled(&self, w: &Watch, now: Instant) -> bool {
        let fresh = |at: Instant| now.saturating_duration_since(at) <= self.stall_timeout / 2;
        w.running == 0
            && !w.paused
            && w.evidence_at.is_some_and(fresh)
            && w.stuck_since()
                .is_some_and(|since| now.saturating_duration_since(since) > self.stall_timeout)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, event: &Event<'_>, now: Instant) {
        let mut state = self.state();
        match event {
            Event::AppState(AppState::Quieting | AppState::Stopping | AppState::Stopped) => {
                state.leaving = true
            }
            Event::Polled {
                subscription_group, ..
            } => {
                if let Some(l) = state.listeners.get_mut(*subscription_group) {
                    l.last_poll = now;
                }
            }
            Event::PartitionsAssigned {
                subscription_group, ..
            } => {
                if let Some(l) = state.listeners.get_mut(*subscription_group) {
                    l.joined = true;
                }
            }
            Event::PartitionsRevoked {
                subscription_group,
                partitions,
            } => {
                let group = super::consumer_group_of(subscription_group);
                for (topic, partition) in partitions.iter() {
                    state
                        .partitions
                        .remove(&(group.to_string(), topic.clone(), *partition));
                }
            }
            _ => observe_partition(&mut state, event, now),
        }
    }
}

/// The events about one partition.
fn observe_partition(state: &mut State, event: &Event<'_>, now: Instant) {
    match event {
        Event::BatchStarted { partition, .. } => {
            let w = watch(state, partition, now);
            w.running += 1;
            w.last_progress = now;
        }
        Event::BatchConsumed {
            partition, offsets, ..
        }
        | Event::BatchFailed {
            partition, offsets, ..
        } => {
            let w = watch(state, partition, now);
            w.running = w.running.saturating_sub(1);
            w.last_progress = now;
            if matches!(event, Event::BatchConsumed { .. }) {
                w.processed_to = w.processed_to.max(offsets.1 + 1);
            }
        }
        Event::DeadLettered {
            partition, offset, ..
        } => {
            let w = watch(state, partition, now);
            w.processed_to = w.processed_to.max(offset + 1);
            w.last_progress = now;
        }
        Event::Paused { partition, .. } | Event::Resumed { partition } => {
            let w = watch(state, partition, now);
            w.paused = matches!(event, Event::Paused { .. });
            w.last_progress = now;
        }
        Event::ConsumerLag {
            partition,
            high_watermark,
            next_offset,
            position,
            ..
        } => {
            let w = watch(state, partition, now);
            // What is below the stored offset was processed, whatever librdkafka handed.
            let processed_to = w.processed_to.max(*next_offset);
            let handed = (*position).max(*next_offset);
            let waiting = *high_watermark > handed || *position > processed_to;
            w.evidence_at = Some(now);
            w.waiting_since = if waiting {
                Some(w.waiting_since.unwrap_or(now))
            } else {
                None
            };
        }
        _ => {}
    }
}

impl Watch {
    /// Since when messages wait with no progress: the later of the two; `None` while none
    /// wait.
    fn stuck_since(&self) -> Option<Instant> {
        self.waiting_since
            .map(|since| since.max(self.last_progress))
    }
}

/// The watch of `p`, new ones counting from `now`.
fn watch<'s>(state: &'s mut State, p: &PartitionRef<'_>, now: Instant) -> &'s mut Watch {
    let key = (
        p.consumer_group.to_string(),
        p.topic.to_string(),
        p.partition,
    );
    state.partitions.entry(key).or_insert_with(|| Watch {
        running: 0,
        paused: false,
        processed_to: -1,
        evidence_at: None,
        waiting_since: None,
        last_progress: now,
    })
}

impl Subscriber for Health {
    fn on_event(&self, event: &Event<'_>) {
        self.observe(event, (self.clock)());
    }
}

#[cfg(test)]
mod tests;
