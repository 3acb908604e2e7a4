//! When a partition's machine wants the listener back: batches due, pauses ending, hooks due,
//! and how long the listener should leave its messages in librdkafka's queue.

use std::time::Instant;

use super::{ConsumerPause, HOLD_AFTER_BATCHES, HOLD_AT_MOST, Partition, Phase};

impl Partition {
    /// Until when the listener had better leave this partition's next messages in
    /// librdkafka's queue: a batch runs, started less than `HOLD_AT_MOST` ago, and enough wait
    /// behind it. Its report comes soon; polling meanwhile only moves messages from
    /// librdkafka's queue to this backlog, and holding many polled messages makes every
    /// allocation of the process take the allocator's slow path. A longer batch no longer
    /// holds anything (the listener must keep serving the group), and the fetch pause bounds
    /// the backlog then.
    pub(crate) fn hold_fetch_until(&self) -> Option<Instant> {
        let running = self.running.first()?;
        let enough =
            (HOLD_AFTER_BATCHES * self.settings.max_messages).max(self.settings.run_messages);
        (self.phase == Phase::Active && self.buffer.len() >= enough)
            .then_some(running.started + HOLD_AT_MOST)
    }

    /// When the listener must call [`Partition::on_tick`] next; `None` when only a report,
    /// a message or a phase change can make progress. After `on_tick(now)` it is never `now`
    /// or earlier, so a listener that sleeps until it never spins.
    pub(crate) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        earliest(self.next_work_wakeup(now), self.next_hook_at(true))
    }

    /// [`Partition::next_wakeup`] without `tick`s, which never end.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn next_wakeup_but_ticks(&self, now: Instant) -> Option<Instant> {
        earliest(self.next_work_wakeup(now), self.next_hook_at(false))
    }

    /// When batches may start next.
    fn next_work_wakeup(&self, now: Instant) -> Option<Instant> {
        if self.phase != Phase::Active
            || !self.running.is_empty()
            || self.hook_running()
            || self.previous_running
            || self.seek_pending
        {
            return None;
        }
        let mut paused_until = None;
        for pause in [self.consumer_pause, self.operator_pause]
            .into_iter()
            .flatten()
        {
            match pause {
                ConsumerPause::Indefinite => return None,
                ConsumerPause::Until(t) => paused_until = paused_until.max(Some(t)),
            }
        }
        let paused_until = paused_until.max(self.filter_pause.map(|(t, _)| t));
        if self.buffer.is_empty() {
            return paused_until;
        }
        let blocked_until = paused_until.max(self.retry.as_ref().map(|r| r.at));
        let ready_at = if let Some(t) = self.gather_until().filter(|t| *t > now) {
            Some(t)
        } else if self.starts_at_once() {
            Some(now)
        } else {
            self.buffered_since
                .map(|t| crate::config::later(t, self.settings.max_wait))
        };
        ready_at.max(blocked_until)
    }

    /// True when the buffered messages need not wait for the batch to fill.
    pub(super) fn starts_at_once(&self) -> bool {
        self.retry.is_some()
            || self.isolate_until.is_some()
            || self.filter_held
            || self.buffer.len() >= self.settings.max_messages
    }
}

/// The earlier of two times, either of which may be missing.
pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
