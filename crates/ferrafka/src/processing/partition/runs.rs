//! Runs: consecutive full batches handed to the executor together, so it goes from one to
//! the next without a round trip through the listener (each round trip costs two thread
//! wake-ups, which with 100-message batches were most of ferrafka's CPU per message).
//!
//! While the listener is still taking a fetch's messages from librdkafka (*gathering*), a full
//! batch waits a little for the rest of its run instead of starting alone: until the run is
//! full, librdkafka's queue is empty, or `GATHER_AT_MOST` passed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Effect, Partition, Running, Work};
use crate::messages::{Message, Messages};

/// Longest a full batch waits for the rest of its run while the listener gathers.
const GATHER_AT_MOST: Duration = Duration::from_millis(2);

/// How long the listener may leave messages in librdkafka's queue: until the first of
/// `partitions` whose backlog waits behind a young batch stops asking for it
/// ([`Partition::hold_fetch_until`]), and not at all while any partition wants messages.
/// Polling is shared by every partition of the listener, so a hold for one must not starve
/// another.
pub(crate) fn listener_hold<'a>(
    partitions: impl Iterator<Item = &'a Partition> + Clone,
    now: Instant,
) -> Option<Duration> {
    if partitions.clone().any(Partition::wants_messages) {
        return None;
    }
    partitions
        .filter_map(Partition::hold_fetch_until)
        .filter(|until| *until > now)
        .min()
        .map(|until| until - now)
}

impl Partition {
    /// Whether more full batches may follow `first` in a run: only on the plain path (no
    /// retry, no isolation of single messages), where each batch would start right after the
    /// previous one succeeded anyway.
    pub(super) fn may_run(&self, first: &Messages) -> bool {
        let max = self.settings.max_messages;
        first.len() == max
            && self.plain_path()
            && self.buffer.len() >= max
            && self.run_threshold() > max
    }

    /// No retry and no isolation of single messages is under way: batches are full ones that
    /// start as soon as the previous one succeeded, the only ones a run may hold.
    fn plain_path(&self) -> bool {
        self.retry.is_none() && self.isolate_until.is_none()
    }

    /// `first` and the full batches that wait behind it, up to `run_messages` messages.
    pub(super) fn run(&mut self, first: Messages) -> Work {
        let max = self.settings.max_messages;
        let most = self.run_threshold() / max;
        let mut batches = Vec::with_capacity(most);
        batches.push(first);
        while batches.len() < most && self.buffer.len() >= max {
            batches.push(Messages::new(Arc::new(self.take(max)), 1));
        }
        Work::Run(batches)
    }

    /// The listener began (`true`) or ended taking messages from librdkafka's queue: while
    /// it does, more messages are on their way and full batches wait for a whole run.
    pub(crate) fn set_gathering(&mut self, gathering: bool, now: Instant, out: &mut Vec<Effect>) {
        if self.gathering != gathering {
            self.gathering = gathering;
            if !gathering {
                self.step(now, out);
            }
        }
    }

    /// Until when a full batch waits for the rest of its run; `None` when nothing waits so.
    pub(super) fn gather_until(&self) -> Option<Instant> {
        let max = self.settings.max_messages;
        let len = self.buffer.len();
        (self.gathering && self.plain_path() && len >= max && len < self.run_threshold())
            .then(|| self.buffered_since.map(|t| t + GATHER_AT_MOST))
            .flatten()
    }

    /// Whether the partition could use more messages soon: it fetches and less than a run
    /// waits. While one does, the listener does not hold back polling for another (see
    /// [`listener_hold`]).
    pub(crate) fn wants_messages(&self) -> bool {
        self.phase == super::Phase::Active
            && !self.fetch_paused
            && self.buffer.len() < self.run_threshold()
    }

    /// The messages of a full run: the most whole batches within `run_messages`.
    pub(super) fn run_threshold(&self) -> usize {
        let max = self.settings.max_messages;
        (self.settings.run_messages / max * max).max(max)
    }

    /// The executor reported batch `running[at]`: the run's batches before it succeeded, the
    /// ones after it never ran and go back to the front of the buffer (unless librdkafka's
    /// position moved back and fetched them again). Returns the reported batch.
    pub(super) fn end_run(&mut self, at: usize, now: Instant) -> Running {
        // Taken out and given back empty, so its room serves the next run.
        let mut running = std::mem::take(&mut self.running);
        let mut batches = running.drain(..);
        for done in batches.by_ref().take(at) {
            self.succeeded(&done);
            self.recycle(done);
        }
        let reported = batches.next().expect("`at` is a running batch");
        for batch in batches.rev() {
            let refetched = self.refetched_from();
            let rest: Vec<Message> = batch
                .into_messages()
                .into_iter()
                .filter(|m| m.offset < refetched)
                .collect();
            self.put_back(rest, now);
        }
        self.running = running;
        reported
    }
}
