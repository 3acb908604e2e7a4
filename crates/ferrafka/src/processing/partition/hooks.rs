//! When the consumer's `tick`, `idle` and `eofed` hooks are due. A hook runs on the
//! partition's executor like a batch: never while a batch (or another hook) runs, and no batch
//! starts before it reported back, so hooks and batches of a partition run in order.

use std::time::Instant;

use super::{Effect, Partition, Phase};
use crate::config::later;
pub(crate) use crate::consumer::Hook;
use crate::consumer::PartitionRequest;

/// A partition's hook bookkeeping.
#[derive(Debug, Default)]
pub(super) struct Hooks {
    /// When `tick` is due next; set at the first step.
    next_tick: Option<Instant>,
    /// When the partition last got a message or ended a batch; set at the first step.
    active_at: Option<Instant>,
    /// `idle` ran in this quiet spell.
    idle_called: bool,
    /// librdkafka reported the partition's end; `eofed` runs once what came before is done.
    eof_pending: bool,
    /// The hook the executor runs.
    in_flight: Option<Hook>,
}

impl Partition {
    /// librdkafka reported reaching the partition's end.
    pub(crate) fn on_eof(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.hooks.eof_pending = true;
        self.step(now, out);
    }

    /// The hook the executor ran returned; the consumer's pause, resume and seek requests
    /// made in it apply now (only the last seek counts, as for a batch).
    pub(crate) fn on_hook_done(
        &mut self,
        requests: Vec<PartitionRequest>,
        now: Instant,
        out: &mut Vec<Effect>,
    ) {
        if self.hooks.in_flight.take().is_none() {
            return;
        }
        let last_seek = requests
            .iter()
            .rposition(|r| matches!(r, PartitionRequest::Seek(_)));
        for (i, request) in requests.into_iter().enumerate() {
            if matches!(request, PartitionRequest::Seek(_)) && Some(i) != last_seek {
                continue;
            }
            self.apply(request, now, out);
        }
        self.step(now, out);
    }

    /// The executor ended without reporting the hook (it is replaced).
    pub(crate) fn on_hook_lost(&mut self) {
        self.hooks.in_flight = None;
    }

    /// True while the executor runs a hook.
    pub(crate) fn hook_running(&self) -> bool {
        self.hooks.in_flight.is_some()
    }

    /// A message came: the quiet spell ends.
    #[inline]
    pub(super) fn hooks_on_message(&mut self, now: Instant) {
        if self.settings.idle_after.is_some() {
            self.hooks.active_at = Some(now);
            self.hooks.idle_called = false;
        }
    }

    /// A batch ended: a quiet spell is counted from here.
    pub(super) fn hooks_on_batch_end(&mut self, now: Instant) {
        self.hooks.active_at = Some(now);
    }

    fn may_start_hook(&self) -> bool {
        self.phase == Phase::Active
            && self.running.is_empty()
            && !self.previous_running
            && !self.seek_pending
            && self.hooks.in_flight.is_none()
    }

    /// Hands the executor the hook that is due, if any (one at a time; its report steps the
    /// machine again). Pauses do not hold hooks back: a paused partition still ticks.
    pub(super) fn start_due_hook(&mut self, now: Instant, out: &mut Vec<Effect>) {
        let tick = self.settings.tick_interval;
        let idle = self.settings.idle_after;
        if tick.is_none() && idle.is_none() && !self.hooks.eof_pending {
            return;
        }
        let h = &mut self.hooks;
        if let Some(every) = tick {
            h.next_tick.get_or_insert(later(now, every));
        }
        h.active_at.get_or_insert(now);
        if !self.may_start_hook() {
            return;
        }
        let h = &mut self.hooks;
        let quiet = self.buffer.is_empty();
        let hook = if h.eof_pending && quiet {
            h.eof_pending = false;
            Hook::Eofed
        } else if let Some(every) = tick
            && h.next_tick.is_some_and(|t| now >= t)
        {
            h.next_tick = Some(later(now, every));
            Hook::Tick
        } else if let Some(after) = idle
            && quiet
            && !h.idle_called
            && h.active_at.is_some_and(|t| now >= later(t, after))
        {
            h.idle_called = true;
            Hook::Idle
        } else {
            return;
        };
        h.in_flight = Some(hook);
        out.push(Effect::Hook(hook));
    }

    /// When a hook is due next: `tick`'s time, or the end of the quiet spell for `idle`;
    /// `None` while none can start. Ticks are left out with `ticks` false (the testing
    /// harness stops once only ticks are left).
    pub(super) fn next_hook_at(&self, ticks: bool) -> Option<Instant> {
        if !self.may_start_hook() {
            return None;
        }
        let tick = self.hooks.next_tick.filter(|_| ticks);
        let idle = self
            .settings
            .idle_after
            .filter(|_| !self.hooks.idle_called && self.buffer.is_empty())
            .and_then(|after| Some(later(self.hooks.active_at?, after)));
        super::wakeups::earliest(tick, idle)
    }
}
