//! Building a [`ProcessReport`] from the sampler's state: a pure function of the state, the
//! stalled partitions, the process's identity and the time.

use std::time::{Duration, Instant};

use super::sampler::{Key, State};
use crate::instrumentation::AppState;
use crate::web::report::{
    ListenerReport, PartitionReport, ProcessReport, Rates, RunningBatch, SCHEMA_VERSION, Totals,
};

/// Who reports: what stays the same for a process's whole run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Identity {
    pub(crate) process_id: String,
    pub(crate) host: String,
    pub(crate) pid: u32,
    pub(crate) environment: String,
    pub(crate) client_id: String,
    pub(crate) started_at_ms: i64,
    pub(crate) stale_after_ms: u64,
}

/// A report's state name.
pub(crate) fn state_name(state: Option<AppState>) -> &'static str {
    match state {
        // Before the server says it runs, its listeners are already polling.
        None | Some(AppState::Running) => "running",
        Some(AppState::Quieting) => "quieting",
        Some(AppState::Stopping) => "stopping",
        Some(AppState::Stopped) => "stopped",
    }
}

/// The report of `state` at `now` (`now_ms` since the epoch), with `stalled` partitions
/// flagged; rates are over the time since `state.previous`.
pub(crate) fn build(
    state: &State,
    stalled: &[Key],
    identity: &Identity,
    now: Instant,
    now_ms: i64,
) -> ProcessReport {
    let age = |since: Instant| now.saturating_duration_since(since).as_millis() as u64;
    let listeners = state
        .listeners
        .iter()
        .map(|(label, last_poll)| ListenerReport {
            subscription_group: label.clone(),
            consumer_group: crate::instrumentation::consumer_group_of(label).to_string(),
            last_poll_age_ms: last_poll.map(age),
        })
        .collect();
    let partitions = state
        .partitions
        .iter()
        .map(|(key, p)| {
            let (consumer_group, topic, partition) = key;
            PartitionReport {
                consumer_group: consumer_group.clone(),
                subscription_group: p.subscription_group.clone(),
                topic: topic.clone(),
                partition: *partition,
                stored_offset: p.stored,
                committed_offset: p.committed,
                high_watermark: p.high_watermark,
                lag: p.lag(),
                paused: p.paused.map(|r| r.as_str().to_string()),
                stalled: stalled.contains(key),
                // The oldest one: what an operator looks for.
                running_batch: p.running.first().map(|r| RunningBatch {
                    offsets: r.offsets,
                    messages: r.messages,
                    attempt: r.attempt,
                    age_ms: age(r.started),
                }),
            }
        })
        .collect();
    ProcessReport {
        schema: SCHEMA_VERSION,
        id: identity.process_id.clone(),
        host: identity.host.clone(),
        pid: identity.pid,
        ferrafka_version: env!("CARGO_PKG_VERSION").to_string(),
        environment: identity.environment.clone(),
        client_id: identity.client_id.clone(),
        state: state_name(state.app_state).to_string(),
        started_at_ms: identity.started_at_ms,
        reported_at_ms: now_ms,
        stale_after_ms: identity.stale_after_ms,
        listeners,
        partitions,
        totals: state.totals.clone(),
        rates: rates(&state.totals, state.previous.as_ref(), now),
        recent_errors: state.recent_errors.iter().cloned().collect(),
    }
}

/// Per second since `previous`; zero for the first report.
fn rates(totals: &Totals, previous: Option<&(Totals, Instant)>, now: Instant) -> Rates {
    let Some((before, at)) = previous else {
        return Rates::default();
    };
    let seconds = now.saturating_duration_since(*at).as_secs_f64();
    if seconds < Duration::from_millis(1).as_secs_f64() {
        return Rates::default();
    }
    let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / seconds;
    Rates {
        messages: per_second(totals.messages, before.messages),
        batches: per_second(totals.batches, before.batches),
        errors: per_second(
            totals.batch_errors + totals.errors,
            before.batch_errors + before.errors,
        ),
    }
}

/// `stale_after_ms` for an interval: 3 × the interval + 5 s.
pub(crate) fn stale_after(interval: Duration) -> u64 {
    (interval * 3 + Duration::from_secs(5)).as_millis() as u64
}
