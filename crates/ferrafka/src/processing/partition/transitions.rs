//! How a [`Partition`] moves: starting batches, booking their outcomes, consumer requests and
//! the fetch pause.

use crate::instrumentation::PauseReason;
use std::sync::Arc;
use std::time::Instant;

use super::{ConsumerPause, Effect, Partition, Phase, Retry, Running, Work};
use crate::config::later;
use crate::consumer::{PartitionRequest, SeekTo};
use crate::messages::{Message, Messages};

impl Partition {
    /// The partition was just assigned; `quiet` when the listener is in quiet mode.
    /// librdkafka keeps a partition's pause across a revocation and the next assignment (only
    /// a resume clears it), so the machine does not trust that fetching runs: it resumes the
    /// partition, or pauses it in quiet mode, which makes its belief true.
    pub(crate) fn on_assigned(&mut self, quiet: bool, out: &mut Vec<Effect>) {
        if quiet && self.phase == Phase::Active {
            self.phase = Phase::Quiet;
        }
        self.fetch_paused = self.phase == Phase::Quiet;
        out.push(match self.fetch_paused {
            true => Effect::Pause,
            false => Effect::Resume,
        });
    }

    /// librdkafka reset the fetch position at offset `at` (`auto.offset.reset`) because the
    /// records there no longer exist on the broker.
    pub(crate) fn on_offset_reset(&mut self, at: i64) {
        self.reset_at = Some(at);
    }

    /// The first message after an offset reset at `at`: offsets `at..offset` were skipped and
    /// are lost to this group, which deserves a warning that names them. A message fetched
    /// before the reset (below `at`) says nothing yet.
    pub(super) fn report_skipped(&mut self, at: i64, offset: i64) {
        if offset < at {
            return;
        }
        self.reset_at = None;
        if offset > at {
            tracing::warn!(
                consumer_group = %self.settings.consumer_group,
                topic = %self.topic,
                partition = self.partition,
                first_skipped = at,
                last_skipped = offset - 1,
                "offsets {at}..={} were skipped and will never be processed by this group: they no longer exist on the broker (retention or DeleteRecords removed them before the group got to them), and auto.offset.reset moved the position to {offset}",
                offset - 1
            );
        }
    }

    /// Whether the machine told librdkafka to stop fetching the partition.
    #[cfg(test)]
    pub(crate) fn fetch_paused(&self) -> bool {
        self.fetch_paused
    }

    /// Ends expired pauses, starts the next batch when one is due, and fixes the fetch pause.
    pub(super) fn step(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if let Some(ConsumerPause::Until(t)) = self.consumer_pause
            && now >= t
        {
            self.consumer_pause = None;
        }
        if self.filter_pause.is_some_and(|(t, _)| now >= t) {
            self.filter_pause = None;
        }
        self.end_expired_operator_pause(now);
        self.copy_backlog_behind_a_slow_batch(now);
        self.start_due_hook(now, out);
        if self.may_start() {
            self.end_isolation_when_passed();
            if let Some(work) = self.next_work(now, out) {
                self.dispatch(work, now, out);
            }
        }
        self.update_fetch_pause(now, out);
    }

    pub(super) fn may_start(&self) -> bool {
        self.phase == Phase::Active
            && self.running.is_empty()
            && !self.previous_running
            && !self.seek_pending
            && self.consumer_pause.is_none()
            && self.operator_pause.is_none()
            && self.filter_pause.is_none()
            && !self.hook_running()
    }

    fn end_isolation_when_passed(&mut self) {
        if let Some(until) = self.isolate_until
            && self.buffer.front().is_some_and(|m| m.offset > until)
        {
            self.isolate_until = None;
        }
    }

    /// The batch to start now, if any.
    fn next_work(&mut self, now: Instant, out: &mut Vec<Effect>) -> Option<Work> {
        let front = self.buffer.front()?.offset;
        if let Some(retry) = &self.retry {
            if now < retry.at {
                return None;
            }
            let dead_letter_due = self
                .settings
                .dead_letter_retries
                .is_some_and(|max| retry.alone_failures > max);
            if dead_letter_due && retry.offset == front {
                let (error, attempts) = (retry.error.clone(), retry.failures);
                return Some(Work::DeadLetter {
                    message: Arc::new(self.take(1)),
                    error,
                    attempts,
                });
            }
        }
        let filled = self
            .buffered_since
            .is_some_and(|t| now >= later(t, self.settings.max_wait));
        if !(self.starts_at_once() || filled) {
            return None;
        }
        if !filled && self.gather_until().is_some_and(|t| now < t) {
            return None; // more of a run is on its way
        }
        let count = if self.isolate_until.is_some() {
            1
        } else {
            self.settings.max_messages
        };
        let messages = match self.chain.is_empty() {
            true => self.take(count),
            false => self.take_filtered(count, now, out)?,
        };
        let front = messages[0].offset;
        let attempt = match &self.retry {
            Some(r) if r.offset == front => r.failures + 1,
            _ => self.earlier_attempts(front) + 1,
        };
        let first = Messages::new(Arc::new(messages), attempt);
        // A run would hand on batches the filters have not seen.
        let work = if self.chain.is_empty() && self.may_run(&first) {
            self.run(first)
        } else {
            Work::Consume(first)
        };
        self.buffered_since = (!self.buffer.is_empty()).then_some(now);
        Some(work)
    }

    /// Attempts at `offset` not booked in a retry: while isolating, every message up to the
    /// end of the failed batch already failed once in it.
    fn earlier_attempts(&self, offset: i64) -> u32 {
        u32::from(self.isolate_until.is_some_and(|u| offset <= u))
    }

    /// Takes up to `count` messages from the front of the buffer.
    pub(super) fn take(&mut self, count: usize) -> Vec<Message> {
        let count = count.min(self.buffer.len());
        let taken = self.buffer.take(count);
        self.buffered_bytes -= taken.iter().map(Message::weight).sum::<usize>();
        if self.buffer.is_empty() {
            self.buffered_since = None;
        }
        taken
    }

    fn dispatch(&mut self, work: Work, now: Instant, out: &mut Vec<Effect>) {
        let batch = self.next_batch;
        let mut hand_over = |messages: &Arc<Vec<Message>>| {
            self.running.push(Running {
                batch: self.next_batch,
                messages: messages.clone(),
                started: now,
            });
            self.next_batch += 1;
        };
        match &work {
            Work::Consume(messages) => hand_over(&messages.messages),
            Work::Run(batches) => batches.iter().for_each(|b| hand_over(&b.messages)),
            Work::DeadLetter { message, .. } => hand_over(message),
        }
        out.push(Effect::Dispatch { batch, work });
    }

    /// Keeps a finished batch's vector for the next batch, when nobody else holds it (the
    /// executor let go of it before it reported).
    pub(super) fn recycle(&mut self, running: Running) {
        if let Ok(messages) = Arc::try_unwrap(running.messages) {
            self.buffer.recycle(messages);
        }
    }

    /// Every message of `running` is done (processed or dead-lettered).
    pub(super) fn succeeded(&mut self, running: &Running) {
        if self
            .retry
            .as_ref()
            .is_some_and(|r| r.offset < running.end())
        {
            self.retry = None;
        }
        if self.isolate_until.is_some_and(|u| u < running.end()) {
            self.isolate_until = None;
        }
    }

    /// `running` failed; what it did not mark goes back to the front of the buffer to be
    /// retried after a backoff.
    pub(super) fn failed(
        &mut self,
        running: Running,
        mark: Option<i64>,
        error: String,
        now: Instant,
    ) {
        let from = mark.unwrap_or(running.first());
        let (first_offset, end, alone) = (
            running.first(),
            running.end(),
            u32::from(running.messages.len() == 1),
        );
        let refetched = self.refetched_from();
        let in_rest = |m: &Message| m.offset >= from && m.offset < refetched;
        let Some(first) = running
            .messages
            .iter()
            .find(|m| in_rest(m))
            .map(|m| m.offset)
        else {
            tracing::warn!(consumer_group = %self.settings.consumer_group, topic = %self.topic, partition = self.partition, %error, "batch failed after marking all its messages it still owns; nothing to retry");
            return self.succeeded(&running);
        };
        let rest: Vec<Message> = running
            .into_messages()
            .into_iter()
            .filter(|m| in_rest(m))
            .collect();
        let retry = match self.retry.take() {
            Some(r) if r.offset == first => Retry {
                failures: r.failures + 1,
                alone_failures: r.alone_failures + alone,
                ..r
            },
            _ => Retry {
                offset: first,
                failures: self.earlier_attempts(first) + 1,
                alone_failures: alone,
                error: String::new(),
                at: now,
            },
        };
        if self.settings.dead_letter_retries.is_some() && rest.len() > 1 {
            let last = rest[rest.len() - 1].offset;
            self.isolate_until = Some(self.isolate_until.map_or(last, |u| u.max(last)));
        }
        let pause = self.settings.backoff.after(retry.failures);
        tracing::error!(
            consumer_group = %self.settings.consumer_group,
            topic = %self.topic, partition = self.partition,
            offsets = ?(first_offset, end - 1), first_unmarked = first,
            attempt = retry.failures, retry_in = ?pause, %error,
            "batch failed; pausing the partition before a retry"
        );
        self.retry = Some(Retry {
            error,
            at: later(now, pause),
            ..retry
        });
        self.put_back(rest, now);
    }

    /// Producing to the dead-letter topic failed: the message stays first and is tried again
    /// after a backoff, still carrying the consumer's error (not the delivery error).
    pub(super) fn dead_letter_failed(&mut self, running: Running, error: String, now: Instant) {
        let Some(message) = running.into_messages().into_iter().next() else {
            return;
        };
        if self
            .buffer
            .front()
            .is_some_and(|m| m.offset <= message.offset)
        {
            return; // the position moved back: it is buffered again and runs again
        }
        if let Some(retry) = self.retry.as_mut().filter(|r| r.offset == message.offset) {
            retry.failures += 1;
            retry.at = later(now, self.settings.backoff.after(retry.failures));
            tracing::error!(
                consumer_group = %self.settings.consumer_group,
                topic = %self.topic, partition = self.partition, offset = message.offset,
                retry_in = ?retry.at.saturating_duration_since(now), %error,
                "cannot produce to the dead-letter queue; the message is kept and tried again"
            );
        }
        self.put_back(vec![message], now);
    }

    /// The first offset buffered again: normally everything buffered comes after the batches
    /// handed out, but after librdkafka's position moved back, what is buffered from there on
    /// replaces their copies, which must not be put back.
    pub(super) fn refetched_from(&self) -> i64 {
        self.buffer.front().map_or(i64::MAX, |m| m.offset)
    }

    /// Puts messages (in offset order) back in front of the buffer.
    pub(super) fn put_back(&mut self, messages: Vec<Message>, now: Instant) {
        if messages.is_empty() {
            return;
        }
        self.buffered_bytes += messages.iter().map(Message::weight).sum::<usize>();
        self.buffer.push_front(messages);
        self.buffered_since.get_or_insert(now);
    }

    /// Applies a consumer's pause, resume or seek request.
    pub(super) fn apply(&mut self, request: PartitionRequest, now: Instant, out: &mut Vec<Effect>) {
        match request {
            PartitionRequest::Pause(timeout) => {
                self.consumer_pause = Some(
                    now.checked_add(timeout)
                        .map_or(ConsumerPause::Indefinite, ConsumerPause::Until),
                );
            }
            PartitionRequest::Resume => {
                self.consumer_pause = None;
                // Ends a backoff early; the failed messages are still retried first.
                if let Some(retry) = &mut self.retry {
                    retry.at = retry.at.min(now);
                }
            }
            PartitionRequest::Seek(SeekTo::Offset(offset)) if offset < 0 => {
                tracing::error!(
                    consumer_group = %self.settings.consumer_group,
                    topic = %self.topic, partition = self.partition, offset,
                    "ctx.seek(SeekTo::Offset({offset})) ignored: offsets start at 0; use SeekTo::Earliest or SeekTo::Latest"
                );
            }
            PartitionRequest::Seek(to) => {
                if self.phase == Phase::Active || self.phase == Phase::Quiet {
                    self.seek_pending = true;
                    out.push(Effect::Seek(to));
                }
            }
        }
    }

    /// Bytes of a backlog kept in librdkafka's fetch buffers; messages behind them are copied
    /// out. A quarter of the byte bound, at most 4 MiB: far more than a consumer that keeps up
    /// has waiting while the listener gathers (so the hot path copies nothing), little enough
    /// that the fetch responses a stalled backlog keeps alive stay few.
    pub(super) fn detach_after_bytes(&self) -> usize {
        (self.settings.pause_at_bytes / 4).min(4 << 20)
    }

    /// Copies the backlog out of librdkafka's fetch buffers once the running batch is slow:
    /// read in place, a waiting message keeps its whole fetch response alive (every partition's
    /// messages in it) for as long as it waits.
    fn copy_backlog_behind_a_slow_batch(&mut self, now: Instant) {
        let slow = self
            .running
            .first()
            .is_some_and(|r| now.saturating_duration_since(r.started) >= super::SLOW_BATCH);
        if slow && !self.backlog_copied {
            self.backlog_copied = true;
            self.buffer.detach();
        }
    }

    /// The retry the partition waits for: the offset it starts at, the attempt it will be,
    /// and when it may run. `None` also when what waits is the message's dead-lettering.
    pub(crate) fn scheduled_retry(&self) -> Option<(i64, u32, Instant)> {
        let r = self.retry.as_ref()?;
        let dead_letter_due =
            (self.settings.dead_letter_retries).is_some_and(|max| r.alone_failures > max);
        (!dead_letter_due).then_some((r.offset, r.failures + 1, r.at))
    }

    /// Why fetching is paused now (meaningful right after an [`Effect::Pause`]).
    pub(crate) fn pause_reason(&self, now: Instant) -> PauseReason {
        if self.phase == Phase::Quiet {
            PauseReason::Quiet
        } else if self.operator_pause.is_some() {
            PauseReason::Operator
        } else if self.consumer_pause.is_some() {
            PauseReason::Consumer
        } else if self.filter_pause.is_some() {
            PauseReason::Filter
        } else if self.retry.as_ref().is_some_and(|r| now < r.at) {
            PauseReason::Retry
        } else {
            PauseReason::Backlog
        }
    }

    /// Pauses fetching while the partition cannot take more, resumes it when it can.
    pub(super) fn update_fetch_pause(&mut self, now: Instant, out: &mut Vec<Effect>) {
        let want = match self.phase {
            Phase::Revoked | Phase::Draining => return,
            Phase::Quiet => true,
            Phase::Active => {
                // A paused partition resumes only once its backlog halved: the fetch after the
                // resume then overlaps the processing of the other half, and a backlog at the
                // bound does not pause and resume on every batch (each pause makes librdkafka
                // drop what it prefetched, and the broker serve it again).
                let share = if self.fetch_paused { 2 } else { 1 };
                self.consumer_pause.is_some()
                    || self.operator_pause.is_some()
                    || self.filter_pause.is_some()
                    || self.retry.as_ref().is_some_and(|r| now < r.at)
                    || self.buffer.len() >= self.settings.pause_at_messages / share
                    || self.buffered_bytes >= self.settings.pause_at_bytes / share
            }
        };
        if want != self.fetch_paused {
            self.fetch_paused = want;
            if want {
                // What waits now may wait long: copied, it no longer pins librdkafka's fetch
                // responses, so the byte bound is what the partition really holds.
                self.buffer.detach();
            }
            out.push(if want { Effect::Pause } else { Effect::Resume });
        }
    }
}
