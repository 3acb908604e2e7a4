//! The per-partition state machine: every rule about when a batch starts, what is retried, what
//! is dead-lettered and which offset may be stored lives here.
//!
//! [`Partition`] is pure: it takes events (messages fetched, a batch's report with its outcome
//! and its mark, the clock, consumer requests, quiet mode, revocation, shutdown) and answers with
//! [`Effect`]s for the listener to carry out (start a batch, pause or resume fetching, seek, store
//! an offset). It holds no locks and never calls librdkafka, so every rule is tested without a
//! broker (see `tests.rs` and the randomized model test in `model.rs`).
//!
//! The invariants it keeps:
//! - an offset is stored only when every message before it in the batch that stores it
//!   succeeded, was dead-lettered, or was skipped on purpose by a consumer's seek;
//! - at most one batch of the partition runs at a time, across assignments too (a new
//!   assignment waits for the previous one's executor to stop); consecutive full batches may be
//!   handed over together as a *run*, which the executor works through one after the other and
//!   ends at the first batch that does not simply succeed;
//! - a report from an older assignment (generation) or an older batch changes nothing;
//! - with a dead-letter queue, a message is dead-lettered only after it failed alone
//!   `max_retries + 1` times, with its own error;
//! - when nothing can start, the next wake-up is in the future or there is none (no spinning).

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use crate::config::Backoff;
use crate::consumer::{PartitionRequest, SeekTo};
use crate::messages::{Message, Messages};

mod backlog;
#[cfg(test)]
mod edge_tests;
#[cfg(test)]
mod filter_tests;
mod filtering;
#[cfg(test)]
mod hook_tests;
mod hooks;
#[cfg(test)]
mod model;
#[cfg(test)]
mod run_tests;
mod runs;

pub(crate) use filtering::FilterFactories;
pub(crate) use hooks::Hook;
pub(crate) use runs::listener_hold;
#[cfg(test)]
pub(crate) mod tests;

/// A busy partition pauses fetching once its backlog reaches this many batches, or
/// `PAUSE_AFTER_MESSAGES` messages if that is more (or `partition_buffer_bytes`). A pause makes
/// librdkafka drop what it prefetched for the partition and fetch it again on resume, so it is
/// kept for real backlogs (a consumer slower than its partition), not for librdkafka's normal
/// prefetch: the listener drains librdkafka's queue as fast as it fills, so the backlog of a
/// consumer that keeps up reaches librdkafka's `queued.min.messages` (100,000 by default), and
/// the bound sits there.
const PAUSE_AFTER_BATCHES: usize = 4;
/// While a batch has run less than this and this many batches wait behind it, the listener
/// takes no more messages from librdkafka (see [`Partition::hold_fetch_until`]).
const HOLD_AFTER_BATCHES: usize = 2;
const HOLD_AT_MOST: Duration = Duration::from_millis(20);
const PAUSE_AFTER_MESSAGES: usize = 100_000;
/// Most messages in a run: full batches that wait are handed to the executor together, so it
/// goes from one to the next without waiting for the listener. Each hand-over costs two
/// thread wake-ups; with 100-message batches they were most of ferrafka's CPU per message.
const RUN_MESSAGES: usize = 1_000;
/// A batch running this long is slow: the messages waiting behind it are copied out of
/// librdkafka's fetch buffers (see [`Partition::copy_backlog_behind_a_slow_batch`]).
const SLOW_BATCH: Duration = Duration::from_millis(250);

/// A partition's settings, taken from its topic route and the app config.
#[derive(Debug, Clone)]
pub(crate) struct PartitionSettings {
    /// Most messages in one batch.
    pub(crate) max_messages: usize,
    /// Longest a buffered message waits for its batch to fill.
    pub(crate) max_wait: Duration,
    /// Fetching pauses once this many messages wait behind a running or blocked batch.
    pub(crate) pause_at_messages: usize,
    /// Fetching pauses once the waiting messages hold this many bytes.
    pub(crate) pause_at_bytes: usize,
    /// Retries of a message running alone before it is dead-lettered; `None` without a
    /// dead-letter queue (retried forever).
    pub(crate) dead_letter_retries: Option<u32>,
    /// Pause before each retry.
    pub(crate) backoff: Backoff,
    /// Most messages handed to the executor at once, as a run of full batches; at most
    /// `max_messages` means one batch at a time.
    pub(crate) run_messages: usize,
    /// The consumer group the topic is consumed in, for logs.
    pub(crate) consumer_group: Arc<str>,
    /// The topic's filters (see `filtering.rs`).
    pub(crate) filters: FilterFactories,
    /// The consumer marks by hand: dropped messages are marked only behind its marks.
    pub(crate) manual_offsets: bool,
    /// How often the consumer's `tick` runs, if it does.
    pub(crate) tick_interval: Option<Duration>,
    /// How long without messages before the consumer's `idle` runs, if it does.
    pub(crate) idle_after: Option<Duration>,
}

impl PartitionSettings {
    /// The settings of `topic`'s partitions.
    pub(crate) fn new(config: &crate::config::Config, topic: &crate::routing::Topic) -> Self {
        PartitionSettings {
            max_messages: topic.max_messages,
            max_wait: topic.max_wait_time,
            pause_at_messages: (topic.max_messages * PAUSE_AFTER_BATCHES).max(PAUSE_AFTER_MESSAGES),
            pause_at_bytes: config.partition_buffer_bytes,
            dead_letter_retries: topic.dead_letter_queue.as_ref().map(|d| d.max_retries),
            backoff: config.backoff(),
            run_messages: RUN_MESSAGES.max(topic.max_messages),
            consumer_group: topic.consumer_group.clone(),
            filters: FilterFactories(topic.filters.clone()),
            manual_offsets: topic.manual_offset_management,
            tick_interval: topic.tick_interval,
            idle_after: topic.idle_after,
        }
    }
}

/// What a batch is asked to do.
// Not `Clone`: a batch's messages are librdkafka's, and cloning them copies every message.
#[derive(Debug)]
pub(crate) enum Work {
    /// Run the consumer on these messages.
    Consume(Messages),
    /// Run the consumer on these full batches one after the other (numbered from the
    /// dispatched batch number on), as long as each one is consumed without a request and
    /// nothing asks the executor to stop; report the last batch that ran.
    Run(Vec<Messages>),
    /// Produce this message, which failed alone too often, to the dead-letter queue.
    DeadLetter {
        /// The message, alone (kept behind an `Arc` like a batch, so it is never copied).
        message: Arc<Vec<Message>>,
        /// The consumer's last error for it.
        error: String,
        /// How many times it was attempted.
        attempts: u32,
    },
}

/// What the listener has to do for the machine.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Hand `work` to the partition's executor as batch number `batch`.
    Dispatch { batch: u64, work: Work },
    /// Stop fetching the partition in librdkafka.
    Pause,
    /// Fetch it again.
    Resume,
    /// Move the fetch position; answer with [`Partition::on_seek_result`].
    Seek(SeekTo),
    /// Store this next offset for the next commit.
    Store(i64),
    /// `filter` dropped `count` messages, `offsets` first and last (they are marked).
    Skipped {
        filter: &'static str,
        offsets: (i64, i64),
        count: usize,
    },
    /// Run this consumer hook on the partition's executor; answer with
    /// [`Partition::on_hook_done`].
    Hook(Hook),
}

/// How a batch ended, as its executor reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// `consume` returned `Ok`.
    Consumed,
    /// `consume` returned `Err` or panicked (also a panicking consumer factory).
    Failed(String),
    /// The message reached the dead-letter topic.
    DeadLettered,
    /// Producing to the dead-letter topic failed.
    DeadLetterFailed(String),
}

/// A finished batch's report.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// The assignment the batch belongs to.
    pub(crate) generation: u64,
    /// The batch number from [`Effect::Dispatch`]; for a run, the number of its last batch
    /// that ran (the ones before it were consumed, the ones after it did not run).
    pub(crate) batch: u64,
    pub(crate) outcome: Outcome,
    /// The highest next offset the batch (or the run's batches that ran) marked, automatic or
    /// by hand, if any.
    pub(crate) mark: Option<i64>,
    /// Pause, resume and seek requests the consumer made during the batch, in order.
    pub(crate) requests: Vec<PartitionRequest>,
}

/// Where the machine is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Fetching and processing.
    Active,
    /// Running batches finish, nothing new starts, the partition stays assigned.
    Quiet,
    /// Revocation or shutdown began: waiting messages are dropped, nothing new starts, the
    /// running batch finishes and may still store its marks.
    Draining,
    /// The partition was taken away; nothing starts, nothing more is stored.
    Revoked,
}

/// A consumer's `ctx.pause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConsumerPause {
    Until(Instant),
    /// Longer than the clock can count: until `ctx.resume` or the end of the assignment.
    Indefinite,
}

/// The batch the executor works on.
#[derive(Debug, Clone)]
struct Running {
    batch: u64,
    /// When it was handed to the executor.
    started: Instant,
    /// The messages it holds, in order (one for a dead-letter job).
    messages: Arc<Vec<Message>>,
}

impl Running {
    fn first(&self) -> i64 {
        self.messages[0].offset
    }

    fn end(&self) -> i64 {
        self.messages[self.messages.len() - 1].offset + 1
    }

    /// The batch's messages, to put back for a retry. The executor dropped its share before it
    /// reported, so this normally takes them without a copy.
    fn into_messages(self) -> Vec<Message> {
        Arc::try_unwrap(self.messages)
            .unwrap_or_else(|shared| shared.iter().map(Message::detach).collect())
    }
}

/// Failure bookkeeping for the message at the front of the buffer.
#[derive(Debug, Clone)]
struct Retry {
    /// The first message the failed batch did not mark.
    offset: i64,
    /// Consecutive failed attempts starting at `offset`, whole batches and single runs alike.
    failures: u32,
    /// Failed attempts of `offset` running alone; decides dead-lettering.
    alone_failures: u32,
    /// The consumer's last error at `offset`; the dead-letter headers carry it.
    error: String,
    /// No new attempt before this.
    at: Instant,
}

/// One assigned partition's processing state.
#[derive(Debug)]
pub(crate) struct Partition {
    generation: u64,
    settings: PartitionSettings,
    phase: Phase,
    /// Fetched messages not yet in a batch, in offset order; a failed batch's rest goes back
    /// to the front.
    buffer: backlog::Backlog,
    buffered_bytes: usize,
    /// When the oldest waiting message was buffered (or the buffer last dispatched from).
    buffered_since: Option<Instant>,
    /// The batch the executor works on, or the batches of its run in order; empty when idle.
    running: Vec<Running>,
    next_batch: u64,
    /// The previous assignment's executor still runs a batch of this partition.
    previous_running: bool,
    /// The next offset stored for commit, -1 before any.
    stored: i64,
    /// The offset librdkafka should deliver next; `None` after a seek (anything goes).
    next_fetch: Option<i64>,
    retry: Option<Retry>,
    /// With a dead-letter queue, messages up to this offset run one per batch, so the one that
    /// fails is known exactly.
    isolate_until: Option<i64>,
    consumer_pause: Option<ConsumerPause>,
    /// An operator's pause (a command of the commands topic); `ctx.resume` does not end it.
    operator_pause: Option<ConsumerPause>,
    /// Whether librdkafka was told to pause the partition.
    fetch_paused: bool,
    /// A seek was handed to the listener and its result is not known yet.
    seek_pending: bool,
    /// librdkafka's position moved back to this offset while the running batches held
    /// messages from there on: what they hold there is stale (a truncated log re-uses the
    /// offsets for new messages), so their marks stop here.
    rewound_to: Option<i64>,
    /// librdkafka reset the fetch position at this offset (`auto.offset.reset`): the records
    /// there no longer exist. The next message fetched shows how many were skipped.
    reset_at: Option<i64>,
    /// The highest mark the running batches sent as progress: their report may not repeat it
    /// (a consumer that marked and then failed), and a retry must not redo what it covers.
    progress: Option<i64>,
    /// The running batch is slow: the backlog was copied out of librdkafka's fetch buffers and
    /// new messages are copied as they come, until the batch ends.
    backlog_copied: bool,
    /// The listener is taking fetched messages from librdkafka's queue; see `runs.rs`.
    gathering: bool,
    /// The topic's filters, this partition's copies.
    chain: filtering::Chain,
    /// A filter paused the partition until then; the filter's name.
    filter_pause: Option<(Instant, &'static str)>,
    /// The chain held back messages at the front of the buffer: they start without waiting
    /// for a batch to fill.
    filter_held: bool,
    /// When `tick`, `idle` and `eofed` are due (see `hooks.rs`).
    hooks: hooks::Hooks,
    /// For logs.
    topic: Arc<str>,
    partition: i32,
}

impl Partition {
    /// A freshly assigned partition. `previous_running` is true when the last assignment's
    /// batch still runs: nothing starts until [`Partition::on_previous_stopped`].
    pub(crate) fn new(
        topic: Arc<str>,
        partition: i32,
        generation: u64,
        settings: PartitionSettings,
        previous_running: bool,
    ) -> Self {
        Partition {
            topic,
            partition,
            seek_pending: false,
            rewound_to: None,
            reset_at: None,
            progress: None,
            backlog_copied: false,
            gathering: false,
            chain: filtering::Chain::new(&settings.filters),
            filter_pause: None,
            filter_held: false,
            hooks: hooks::Hooks::default(),
            generation,
            buffer: backlog::Backlog::new(
                settings.max_messages,
                settings.run_messages / settings.max_messages.max(1),
            ),
            settings,
            phase: Phase::Active,
            buffered_bytes: 0,
            buffered_since: None,
            running: Vec::new(),
            next_batch: 0,
            previous_running,
            stored: -1,
            next_fetch: None,
            retry: None,
            isolate_until: None,
            consumer_pause: None,
            operator_pause: None,
            fetch_paused: false,
        }
    }

    /// This assignment's generation.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// The batch the executor works on now, as far as the machine can tell: the first of the
    /// run that its progress marks do not cover (the earlier ones finished). The one to report
    /// failed when the executor died: the finished batches' marks still count, and only the
    /// rest is retried.
    pub(crate) fn running_batch(&self) -> Option<u64> {
        let done = self.progress.unwrap_or(i64::MIN);
        let unfinished = self.running.iter().find(|r| r.end() > done);
        unfinished.or(self.running.last()).map(|r| r.batch)
    }

    /// True while a batch or a hook runs.
    pub(crate) fn is_running(&self) -> bool {
        !self.running.is_empty() || self.hook_running()
    }

    /// A message fetched by librdkafka.
    pub(crate) fn on_message(&mut self, mut message: Message, now: Instant, out: &mut Vec<Effect>) {
        if self.phase != Phase::Active && self.phase != Phase::Quiet {
            return;
        }
        let offset = message.offset;
        if let Some(expected) = self.next_fetch
            && offset < expected
        {
            self.position_moved_back(offset, expected);
        }
        if let Some(at) = self.reset_at {
            self.report_skipped(at, offset);
        }
        self.next_fetch = Some(offset + 1);
        self.hooks_on_message(now);
        if self.backlog_copied || self.buffered_bytes >= self.detach_after_bytes() {
            // Far behind the running batch: it will wait, and read in place it would keep a
            // whole fetch response alive (every partition's messages in it).
            message.detach_in_place();
        }
        self.buffered_bytes += message.weight();
        self.buffer.push_back(message);
        self.buffered_since.get_or_insert(now);
        // The hot path: a message arriving can only start a full batch (or run) or cross a
        // pause bound; everything else waits for a report or the clock.
        let start_at = match self.gathering {
            true => self.run_threshold(),
            false => self.settings.max_messages,
        };
        if self.buffer.len() >= start_at && self.may_start() {
            self.step(now, out);
        } else if self.buffer.len() >= self.settings.pause_at_messages
            || self.buffered_bytes >= self.settings.pause_at_bytes
        {
            self.update_fetch_pause(now, out);
        }
    }

    /// librdkafka delivers offsets in order unless its position moved: an offset reset or a
    /// detected log truncation. Different messages may now live at those offsets, so what is
    /// buffered from there on is dropped (it is fetched again) and the new messages are taken.
    fn position_moved_back(&mut self, offset: i64, expected: i64) {
        tracing::warn!(
            consumer_group = %self.settings.consumer_group,
            topic = %self.topic,
            partition = self.partition,
            first_refetched = offset,
            last_refetched = expected - 1,
            "fetch position moved back from {expected} to {offset} (a log truncation after an unclean leader election, or an offset reset): what the log now holds from {offset} on is processed; offsets {offset}..={} were fetched before and may now hold different messages or none",
            expected - 1
        );
        if self.running.last().is_some_and(|r| r.end() > offset) {
            self.rewound_to = Some(self.rewound_to.map_or(offset, |r| r.min(offset)));
        }
        while self.buffer.back().is_some_and(|m| m.offset >= offset) {
            let dropped = self.buffer.pop_back().expect("checked above");
            self.buffered_bytes -= dropped.weight();
        }
        if self.retry.as_ref().is_some_and(|r| r.offset >= offset) {
            self.retry = None;
        }
        if self.buffer.is_empty() {
            self.buffered_since = None;
        }
    }

    /// The clock moved on: start what is due, end expired pauses.
    pub(crate) fn on_tick(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.step(now, out);
    }

    /// A batch's executor reported a progress mark while the batch still runs.
    pub(crate) fn on_mark(
        &mut self,
        generation: u64,
        batch: u64,
        mark: i64,
        out: &mut Vec<Effect>,
    ) {
        if generation != self.generation {
            return;
        }
        let Some(at) = self.running.iter().position(|r| r.batch == batch) else {
            return;
        };
        if let Some(next) = self.clamp_mark(at, mark) {
            self.progress = self.progress.max(Some(next));
            self.store(next, out);
        }
    }

    /// A batch ended.
    pub(crate) fn on_report(&mut self, report: Report, now: Instant, out: &mut Vec<Effect>) {
        if report.generation != self.generation {
            return;
        }
        let Some(at) = self.running.iter().position(|r| r.batch == report.batch) else {
            return;
        };
        // A dead-lettered message is done: its offset is stored like a processed one.
        let progress = self.progress.take();
        let reported = match report.outcome {
            Outcome::DeadLettered => Some(self.running[at].end()),
            _ => report.mark.max(progress),
        };
        let mark = reported.and_then(|m| self.clamp_mark(at, m));
        if let Some(next) = mark {
            self.store(next, out);
        }
        let running = self.end_run(at, now);
        self.hooks_on_batch_end(now);
        self.rewound_to = None;
        self.backlog_copied = false;
        match report.outcome {
            Outcome::Consumed | Outcome::DeadLettered => {
                self.succeeded(&running);
                self.recycle(running);
            }
            Outcome::Failed(error) => self.failed(running, mark, error, now),
            Outcome::DeadLetterFailed(error) => self.dead_letter_failed(running, error, now),
        }
        // Only the last seek counts: nothing is fetched between two requests of one batch.
        let last_seek = report
            .requests
            .iter()
            .rposition(|r| matches!(r, PartitionRequest::Seek(_)));
        for (i, request) in report.requests.into_iter().enumerate() {
            if matches!(request, PartitionRequest::Seek(_)) && Some(i) != last_seek {
                continue;
            }
            self.apply(request, now, out);
        }
        self.step(now, out);
    }

    /// The previous assignment's executor stopped: this one may start batches.
    pub(crate) fn on_previous_stopped(&mut self, now: Instant, out: &mut Vec<Effect>) {
        self.previous_running = false;
        self.step(now, out);
    }

    /// The listener carried out an [`Effect::Seek`]; `ok` tells whether librdkafka took it.
    pub(crate) fn on_seek_result(&mut self, ok: bool, now: Instant, out: &mut Vec<Effect>) {
        self.seek_pending = false;
        if ok {
            // Everything buffered is from the old position; the consumer moved on purpose, so
            // a pending retry of the old position is dropped with it.
            self.buffer.clear();
            self.buffered_bytes = 0;
            self.buffered_since = None;
            self.filter_held = false;
            self.retry = None;
            self.isolate_until = None;
            self.next_fetch = None;
        }
        // A failed seek changes nothing: the buffer and any retry stay, nothing is skipped.
        self.step(now, out);
    }

    /// Quiet mode: running batches finish, nothing new starts, fetching pauses.
    pub(crate) fn quiet(&mut self, now: Instant, out: &mut Vec<Effect>) {
        if self.phase == Phase::Active {
            self.phase = Phase::Quiet;
        }
        self.update_fetch_pause(now, out);
    }

    /// Revocation or shutdown begins: drop what waits, keep storing the running batch's marks.
    pub(crate) fn drain(&mut self) {
        if self.phase != Phase::Revoked {
            self.phase = Phase::Draining;
        }
        self.drop_waiting();
    }

    /// The partition is gone. True when a batch or a hook still runs (its reports are
    /// ignored from now on).
    pub(crate) fn revoke(&mut self) -> bool {
        self.phase = Phase::Revoked;
        self.drop_waiting();
        self.is_running()
    }

    fn drop_waiting(&mut self) {
        self.filter_held = false;
        self.buffer.clear();
        self.buffered_bytes = 0;
        self.buffered_since = None;
        self.retry = None;
    }

    /// Stores `next` unless an equal or later offset is stored; stores never move back.
    fn store(&mut self, next: i64, out: &mut Vec<Effect>) {
        if next > self.stored
            && matches!(self.phase, Phase::Active | Phase::Quiet | Phase::Draining)
        {
            self.stored = next;
            out.push(Effect::Store(next));
        }
    }
}

impl Partition {
    /// The mark `mark` of the running batches up to `running[at]` (a batch, or a run's batches
    /// up to the one that marked), limited to them: marks below them change nothing, marks
    /// past their end would cover messages they never held, and marks past a point where
    /// librdkafka's position moved back would cover stale copies of messages that have not run.
    fn clamp_mark(&self, at: usize, mark: i64) -> Option<i64> {
        let ran = &self.running[..=at];
        let (first, last) = (ran.first()?, ran.last()?);
        let limit = self.rewound_to.map_or(last.end(), |r| r.min(last.end()));
        (mark > first.first() && limit > first.first()).then(|| mark.min(limit))
    }
}

mod operator;
mod transitions;
mod wakeups;
