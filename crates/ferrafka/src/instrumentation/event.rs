//! The events: what the server did, as values.

use std::time::Duration;

use crate::seek::SeekTo;

/// Something the server did. Topic names and error texts are borrowed for the call: copy
/// what you keep.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The server's state changed.
    AppState(AppState),
    /// The group assigned partitions to a subscription group's consumer.
    PartitionsAssigned {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition) pairs.
        partitions: &'a [(String, i32)],
    },
    /// The group took partitions back (a rebalance, leaving the group).
    PartitionsRevoked {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition) pairs.
        partitions: &'a [(String, i32)],
    },
    /// The group took partitions away without a clean hand-over: the member was considered
    /// gone (a session timeout, `max.poll.interval.ms` exceeded, a fatal error). Marks made
    /// after this are not committed; [`Event::PartitionsRevoked`] follows.
    PartitionsLost {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition) pairs.
        partitions: &'a [(String, i32)],
    },
    /// A listener's fetch loop polled librdkafka and handed what came to the partitions: at
    /// least every 100 ms while it runs, so its absence means a listener is stuck.
    Polled {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// Messages that came with this poll (0 when none did).
        messages: usize,
    },
    /// A batch began: `consume` is about to be called.
    BatchStarted {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// How many messages it holds.
        messages: usize,
        /// 1 for a first attempt, then 2, 3, …
        attempt: u32,
    },
    /// `consume` returned `Ok`.
    BatchConsumed {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// How many messages it held.
        messages: usize,
        /// Its attempt.
        attempt: u32,
        /// How long `consume` took.
        duration: Duration,
    },
    /// `consume` returned `Err` or panicked: the batch is retried after a backoff.
    BatchFailed {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its first and last offsets.
        offsets: (i64, i64),
        /// Its attempt.
        attempt: u32,
        /// How long `consume` took.
        duration: Duration,
        /// The error chain (or the panic's message).
        error: &'a str,
        /// Where `consume` panicked, when it did (a returned error has none).
        backtrace: Option<&'a str>,
    },
    /// A failed batch runs again once its backoff has passed; its partition is paused
    /// meanwhile ([`PauseReason::Retry`]).
    RetryScheduled {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// The offset the retry starts at.
        offset: i64,
        /// The attempt that will run: 2 after a first failure, then 3, …
        attempt: u32,
        /// How long until it runs.
        backoff: Duration,
    },
    /// A message was produced to its dead-letter topic (and is then marked).
    DeadLettered {
        /// Its partition.
        partition: PartitionRef<'a>,
        /// Its offset.
        offset: i64,
        /// The dead-letter topic.
        dead_letter_topic: &'a str,
        /// Attempts it failed before.
        attempts: u32,
    },
    /// A transaction of a transactional route ended (see `docs/transactions.md`).
    TransactionEnded {
        /// The consumed partition.
        partition: PartitionRef<'a>,
        /// True when it committed; false when it aborted (or its outcome is unknown).
        committed: bool,
        /// The next offset it committed, if it marked any.
        next: Option<i64>,
        /// Why it did not commit.
        error: Option<&'a str>,
    },
    /// Fetching a partition paused.
    Paused {
        /// The partition.
        partition: PartitionRef<'a>,
        /// Why.
        reason: PauseReason,
    },
    /// A consumer's `tick`, `idle` or `eofed` hook ran (an error also comes as
    /// [`Event::Error`] with [`ErrorKind::ConsumerHook`]).
    HookRan {
        /// The partition.
        partition: PartitionRef<'a>,
        /// `tick`, `idle` or `eofed`.
        hook: &'a str,
        /// How long it took.
        duration: Duration,
        /// Its error (or panic), if it failed.
        error: Option<&'a str>,
    },
    /// A filter of the topic dropped messages (e.g. expired ones); they are marked, never
    /// consumed.
    MessagesSkipped {
        /// The partition.
        partition: PartitionRef<'a>,
        /// The filter's name, e.g. `expire`.
        filter: &'a str,
        /// The first and last offsets dropped.
        offsets: (i64, i64),
        /// How many were dropped.
        count: usize,
    },
    /// Fetching a partition resumed.
    Resumed {
        /// The partition.
        partition: PartitionRef<'a>,
    },
    /// A partition's fetch position moved on the consumer's request.
    Seeked {
        /// The partition.
        partition: PartitionRef<'a>,
        /// Where to.
        to: SeekTo,
        /// False when librdkafka refused (processing goes on from where it was).
        ok: bool,
    },
    /// A partition's next offset was stored for the next commit.
    OffsetStored {
        /// The partition.
        partition: PartitionRef<'a>,
        /// The offset stored: the next one to process.
        next: i64,
    },
    /// librdkafka committed stored offsets, or failed to (the periodic commit every
    /// `commit_interval`, and the commits of a revocation or shutdown).
    OffsetsCommitted {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// (topic, partition, next offset) committed.
        offsets: &'a [(String, i32, i64)],
        /// Why the commit failed; `None` when it succeeded. A failed commit is retried with
        /// the next one.
        error: Option<&'a str>,
    },
    /// librdkafka's statistics of one client, decoded off the poll thread, every
    /// `statistics.interval.ms` (a `kafka` property; 5 s by default).
    Statistics {
        /// `consumer_group/subscription_group` for a listener's consumer, `producer` for the
        /// app's producer.
        client: &'a str,
        /// The figures, as librdkafka reports them.
        statistics: &'a rdkafka::Statistics,
    },
    /// A partition's consumer lag, after each [`Event::Statistics`] of its consumer.
    ///
    /// librdkafka learns a partition's high watermark only from fetch responses, so for a
    /// partition that stopped fetching (paused, stalled, or idle) its figure freezes; for
    /// those ferrafka asks the broker for the end offset instead (`queried` is true).
    ConsumerLag {
        /// The partition.
        partition: PartitionRef<'a>,
        /// Messages after the stored offset: `high_watermark - next_offset`.
        lag: i64,
        /// The end of the partition's log (the last stable offset for `read_committed`).
        high_watermark: i64,
        /// The next offset to process: the stored offset, or the committed one before any
        /// was stored.
        next_offset: i64,
        /// The offset after the last message librdkafka handed to ferrafka (-1 before any):
        /// `high_watermark - position` messages were not even fetched yet.
        position: i64,
        /// True when `high_watermark` was asked of the broker, false when it came from
        /// librdkafka's statistics.
        queried: bool,
    },
    /// The producer delivered a message (the broker acknowledged it).
    Delivered {
        /// Its topic.
        topic: &'a str,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
    },
    /// The producer gave up on a message.
    DeliveryFailed {
        /// Its topic.
        topic: &'a str,
        /// The partition it was meant for (-1 when none was chosen yet).
        partition: i32,
        /// librdkafka's error.
        error: &'a str,
    },
    /// A subscription group's client hit a fatal error and is being rebuilt.
    ClientRebuilding {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// librdkafka's reason.
        reason: &'a str,
    },
    /// An error outside a batch's own outcome.
    Error {
        /// Where it happened.
        kind: ErrorKind,
        /// The partition, when it concerns one.
        partition: Option<PartitionRef<'a>>,
        /// The error chain.
        error: &'a str,
    },
    /// A report for `web` was delivered to the reports or errors topic (`reporting` on).
    ReportPublished {
        /// The topic it went to.
        topic: &'a str,
    },
    /// A command of the commands topic addressed to this process was handled (see
    /// [`crate::web::commands`]); a command for other processes makes no event.
    CommandReceived {
        /// The command's id.
        command_id: &'a str,
        /// `pause_partition`, `resume_partition`, `quiet`, `stop` (or `unknown`).
        action: &'a str,
        /// `done`, `refused`, `expired`, or `duplicate` (already handled: not run again).
        outcome: &'a str,
    },
    /// A topic assigned through a pattern subscription was resolved to its pattern route,
    /// once, when its first partition was assigned.
    PatternTopicResolved {
        /// `consumer_group/subscription_group`.
        subscription_group: &'a str,
        /// The pattern route's name.
        pattern: &'a str,
        /// The topic.
        topic: &'a str,
        /// False when ferrafka's evaluation of the pattern disagreed with the engine that
        /// assigned the topic, and the first pattern route of the subscription group took it.
        matched: bool,
    },
}

/// One topic partition, as events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRef<'a> {
    /// Id of the consumer group the partition is assigned in.
    pub consumer_group: &'a str,
    /// Topic name.
    pub topic: &'a str,
    /// Partition number.
    pub partition: i32,
}

/// The server's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AppState {
    /// Listeners are connected and polling.
    Running,
    /// Quiet mode: running batches finish, nothing new starts, partitions stay.
    Quieting,
    /// Shutdown began: running batches get until `shutdown_timeout`.
    Stopping,
    /// Every listener left its group.
    Stopped,
}

/// Why fetching a partition paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseReason {
    /// A failed batch waits for its retry's backoff.
    Retry,
    /// The consumer asked (`ctx.pause`).
    Consumer,
    /// Enough messages wait behind a running batch (`partition_buffer_*`).
    Backlog,
    /// Quiet mode.
    Quiet,
    /// A filter of the topic held messages back (a throttle, a delay; see [`crate::filters`]).
    Filter,
    /// An operator paused it with a command through the commands topic (see
    /// [`crate::web::commands`]); it lasts until a resume command or the pause's expiry.
    Operator,
}

/// Where an [`Event::Error`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The consumer's `revoked` hook failed or panicked.
    RevokedHook,
    /// The consumer's `shutdown` hook failed or panicked.
    ShutdownHook,
    /// The consumer's `tick`, `idle` or `eofed` hook failed or panicked (nothing is retried:
    /// batches go on).
    ConsumerHook,
    /// Producing a message to its dead-letter topic failed (the message is retried).
    DeadLetter,
    /// A partition's executor ended without a report; it was replaced.
    Executor,
    /// The listener's consumer reported an error (a broker down, an authorization failure,
    /// a fatal error).
    Listener,
    /// The producer reported an error outside a delivery (see [`Event::DeliveryFailed`]).
    Producer,
    /// librdkafka's statistics could not be decoded, or the end offsets of quiet partitions
    /// could not be queried.
    Statistics,
    /// A report or an error report for `web` could not be published (consumption goes on;
    /// see `docs/web.md`).
    Reporting,
    /// The commands topic could not be read, or an acknowledgement not published (see
    /// [`crate::web::commands`]).
    Commands,
}

impl PauseReason {
    /// Its name in metrics labels: `retry`, `consumer`, `backlog`, `quiet`, `filter`,
    /// `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::Retry => "retry",
            PauseReason::Consumer => "consumer",
            PauseReason::Backlog => "backlog",
            PauseReason::Quiet => "quiet",
            PauseReason::Filter => "filter",
            PauseReason::Operator => "operator",
        }
    }
}

impl ErrorKind {
    /// Its name in metrics labels, e.g. `revoked_hook`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RevokedHook => "revoked_hook",
            ErrorKind::ShutdownHook => "shutdown_hook",
            ErrorKind::ConsumerHook => "consumer_hook",
            ErrorKind::DeadLetter => "dead_letter",
            ErrorKind::Executor => "executor",
            ErrorKind::Listener => "listener",
            ErrorKind::Producer => "producer",
            ErrorKind::Statistics => "statistics",
            ErrorKind::Reporting => "reporting",
            ErrorKind::Commands => "commands",
        }
    }
}
