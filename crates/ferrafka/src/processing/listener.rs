//! The listener: one thread per subscription group that owns its librdkafka consumer.
//!
//! It polls without pause, buffers messages per partition and hands each partition's executor
//! one batch at a time (full at `max_messages`, or when its oldest message waited
//! `max_wait_time`). Because polling never waits on user code, a slow batch cannot exceed
//! `max.poll.interval.ms`; a partition whose executor is busy and whose buffer is full is paused
//! in librdkafka so memory stays bounded, and resumed once it drains.
//!
//! Offsets: executors store offsets (`enable.auto.offset.store=false`) after a batch succeeded;
//! librdkafka commits stored offsets periodically and asynchronously; the listener commits
//! synchronously before it releases revoked partitions and at shutdown.

use rustc_hash::FxHashMap as HashMap;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::{ClientContext, Message as _, Offset, TopicPartitionList};
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::diagnostics;
use super::executor::{Completion, Executor, Job, Outcome};
use crate::config::Config;
use crate::consumer::{OffsetStore, PartitionHandle, PartitionRequest, SeekTo};
use crate::error::{Error, Result};
use crate::messages::{Header, Message, Messages, Timestamp, TopicInfo};
use crate::producer::Producer;
use crate::routing::{SubscriptionGroup, Topic};
use crate::server::StopSignal;

/// The longest the poll loop blocks while it has nothing to do.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// How often the loop looks for executor reports while batches are in flight.
const BUSY_POLL: Duration = Duration::from_millis(1);
/// First wait before rebuilding a client after a fatal error; doubles up to the max.
const REBUILD_BACKOFF: Duration = Duration::from_secs(1);
const REBUILD_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Messages taken from librdkafka between two looks at timers and reports.
const BURST: usize = 64;
/// A busy partition is paused once its backlog reaches this many batches, or
/// `PAUSE_AFTER_MESSAGES` messages if that is more. A pause makes librdkafka drop what it
/// prefetched for the partition and fetch it again on resume, so it is kept for real backlogs
/// (a consumer slower than its partition), not for the jitter of a consumer that keeps up.
const PAUSE_AFTER_BATCHES: usize = 4;
const PAUSE_AFTER_MESSAGES: usize = 10_000;

/// The backlog at which a busy partition is paused.
fn pause_threshold(max_messages: usize) -> usize {
    (max_messages * PAUSE_AFTER_BATCHES).max(PAUSE_AFTER_MESSAGES)
}

/// The consumer type of a listener.
pub(crate) type ListenerConsumer = BaseConsumer<ListenerContext>;

/// How a listener ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenerExit {
    /// True when batches were still running at the shutdown deadline and were abandoned.
    pub(crate) forced: bool,
}

/// What the listener and the rebalance callback share; only the listener thread touches it.
pub(crate) struct ListenerContext {
    group: String,
    /// Set by the error callback; the poll loop then asks librdkafka whether it was fatal.
    fatal_seen: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

struct State {
    config: Arc<Config>,
    topics: HashMap<Arc<str>, TopicSlots>,
    runtime: tokio::runtime::Handle,
    producer: Producer,
    workers: Arc<Semaphore>,
    completions_tx: Sender<Completion>,
    completions: Receiver<Completion>,
    offsets: Option<Arc<dyn OffsetStore>>,
    revoke_wait: Duration,
}

struct TopicSlots {
    topic: Arc<Topic>,
    info: Arc<TopicInfo>,
    partitions: HashMap<i32, Slot>,
}

/// One assigned partition.
struct Slot {
    handle: Arc<PartitionHandle>,
    jobs: UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
    buffer: Vec<Message>,
    buffered_since: Option<Instant>,
    /// The batch the executor works on; kept to retry its unmarked rest after a failure.
    in_flight: Option<Messages>,
    running: bool,
    retry: RetryState,
    /// Until when the consumer asked to pause this partition.
    paused_until: Option<Instant>,
    paused: bool,
    stopped: bool,
    /// One past the last offset taken from librdkafka for this assignment; -1 before the first.
    next_offset: i64,
    /// Re-delivered messages skipped so far (warned about once).
    redelivered: u64,
}

/// Failure bookkeeping of one partition.
#[derive(Debug, Default)]
struct RetryState {
    /// Failed attempts at the message at `offset` (a failed batch counts for each message in it).
    failures: u32,
    /// The first unmarked offset when the last failure happened.
    offset: i64,
    /// The last error, for logs and the dead-letter headers.
    error: String,
    /// When the next attempt may start; the partition is paused until then.
    at: Option<Instant>,
    /// With a dead-letter queue, messages up to this offset (the end of the batch that failed)
    /// run one per batch, so the one that fails is known exactly and only it is dead-lettered.
    isolate_until: Option<i64>,
}

/// Stores offsets in the listener's consumer; holds it weakly so the listener thread is the one
/// that closes it.
struct ConsumerOffsets(Weak<ListenerConsumer>);

impl OffsetStore for ConsumerOffsets {
    fn store(&self, topic: &str, partition: i32, next_offset: i64) -> bool {
        let Some(consumer) = self.0.upgrade() else {
            return false;
        };
        let mut tpl = TopicPartitionList::with_capacity(1);
        if tpl
            .add_partition_offset(topic, partition, Offset::Offset(next_offset))
            .is_err()
        {
            return false;
        }
        match consumer.store_offsets(&tpl) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(topic, partition, next_offset, error = %e, "offset not stored");
                false
            }
        }
    }
}

impl ClientContext for ListenerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward_log(&self.group, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.fatal_seen.store(true, Ordering::Release);
        match diagnostics::explanation(&error) {
            Some(explanation) => {
                tracing::error!(subscription_group = %self.group, %error, reason, "{explanation}")
            }
            None => {
                tracing::error!(subscription_group = %self.group, %error, reason, "librdkafka error")
            }
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        // `statistics.interval.ms` is on by default so metrics have data; rdkafka's default
        // would log every report at info level, so they go to a trace target instead.
        tracing::trace!(
            target: "ferrafka::statistics",
            subscription_group = %self.group,
            statistics = %String::from_utf8_lossy(statistics),
        );
    }
}

/// Sends librdkafka's log lines to `tracing`.
pub(crate) fn forward_log(client: &str, level: RDKafkaLogLevel, fac: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => {
            tracing::error!(target: "librdkafka", client, fac, "{message}")
        }
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", client, fac, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", client, fac, "{message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", client, fac, "{message}"),
    }
}

impl ConsumerContext for ListenerContext {
    fn pre_rebalance(&self, consumer: &ListenerConsumer, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let mut state = self.lock();
                state.revoke(
                    consumer,
                    &self.group,
                    &tpl.elements()
                        .iter()
                        .map(|e| (e.topic().to_string(), e.partition()))
                        .collect::<Vec<_>>(),
                );
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                tracing::error!(subscription_group = %self.group, error = %e, "rebalance failed")
            }
        }
    }

    fn post_rebalance(&self, _consumer: &ListenerConsumer, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let assigned: Vec<_> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            self.lock().assign(&self.group, &assigned);
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        match result {
            Ok(()) => {
                tracing::trace!(subscription_group = %self.group, ?offsets, "offsets committed")
            }
            // Nothing was stored since the last commit: not an error.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(subscription_group = %self.group, error = %e, "offset commit failed; it will be retried with the next commit")
            }
        }
    }
}

impl ListenerContext {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held by framework code; recover anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Everything needed to start a listener (again, after a fatal error).
#[derive(Clone)]
pub(crate) struct ListenerSetup {
    pub(crate) config: Arc<Config>,
    pub(crate) group: SubscriptionGroup,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) producer: Producer,
    pub(crate) workers: Arc<Semaphore>,
}

/// Creates the consumer and subscribes it; errors surface before any thread starts.
pub(crate) fn connect(setup: ListenerSetup) -> Result<Arc<ListenerConsumer>> {
    let label = format!("{}/{}", setup.group.consumer_group, setup.group.name);
    let mut client = ClientConfig::new();
    for (k, v) in &setup.group.kafka {
        client.set(k, v);
    }
    let (completions_tx, completions) = std::sync::mpsc::channel();
    let topics = setup
        .group
        .topics
        .iter()
        .filter(|t| t.active)
        .map(|t| {
            let info = Arc::new(TopicInfo {
                name: t.name.clone(),
                deserializer: t.deserializer.clone(),
            });
            (
                t.name.clone(),
                TopicSlots {
                    topic: t.clone(),
                    info,
                    partitions: HashMap::default(),
                },
            )
        })
        .collect();
    let context = ListenerContext {
        fatal_seen: std::sync::atomic::AtomicBool::new(false),
        group: label.clone(),
        state: Mutex::new(State {
            revoke_wait: setup.config.shutdown_timeout,
            config: setup.config,
            topics,
            runtime: setup.runtime,
            producer: setup.producer,
            workers: setup.workers,
            completions_tx,
            completions,
            offsets: None,
        }),
    };
    let consumer: ListenerConsumer =
        client
            .create_with_context(context)
            .map_err(|source| Error::CreateClient {
                client: format!("consumer of subscription group {label}"),
                source: Box::new(source),
            })?;
    let consumer = Arc::new(consumer);
    consumer.context().lock().offsets = Some(Arc::new(ConsumerOffsets(Arc::downgrade(&consumer))));
    let names = setup.group.active_topics();
    consumer
        .subscribe(&names)
        .map_err(|source| Error::Subscribe {
            group: label,
            topics: names.iter().map(|s| s.to_string()).collect(),
            source: Box::new(source),
        })?;
    Ok(consumer)
}

/// Runs the poll loop until `stop` is raised, then shuts down gracefully. A fatal librdkafka
/// error (the client can no longer be used, e.g. a fenced static member) abandons the running
/// batches unmarked, and the client is rebuilt from `setup` after a backoff.
pub(crate) fn run(
    mut consumer: Arc<ListenerConsumer>,
    setup: ListenerSetup,
    stop: Arc<StopSignal>,
) -> ListenerExit {
    loop {
        match poll_loop(&consumer, &stop) {
            LoopEnd::Stop => return shutdown(&consumer, &stop, &consumer.context().group.clone()),
            LoopEnd::Fatal(reason) => match rebuild(consumer, &setup, &stop, &reason) {
                Some(fresh) => consumer = fresh,
                None => return ListenerExit { forced: false },
            },
        }
    }
}

/// Why the poll loop returned.
enum LoopEnd {
    Stop,
    Fatal(String),
}

/// Drops a consumer that hit a fatal error and connects a new one, backing off between
/// attempts; `None` when the server stops meanwhile.
fn rebuild(
    consumer: Arc<ListenerConsumer>,
    setup: &ListenerSetup,
    stop: &StopSignal,
    reason: &str,
) -> Option<Arc<ListenerConsumer>> {
    let group = consumer.context().group.clone();
    tracing::error!(subscription_group = %group, reason, "fatal consumer error: abandoning running batches (they will be processed again) and rebuilding the client");
    consumer.context().lock().abandon_all();
    // Closing a client after a fatal error can block for good inside librdkafka (its group
    // never reaches the closed state), so the old client is closed on a thread of its own.
    let closer = std::thread::Builder::new()
        .name("ferrafka-close-fatal".into())
        .spawn(move || drop(consumer));
    if let Err(e) = closer {
        tracing::error!(subscription_group = %group, error = %e, "cannot start a thread to close the failed client; leaking it");
    }
    let mut backoff = REBUILD_BACKOFF;
    loop {
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.is_raised() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match connect(setup.clone()) {
            Ok(fresh) => {
                tracing::info!(subscription_group = %group, "client rebuilt after a fatal error");
                return Some(fresh);
            }
            Err(e) => {
                tracing::error!(subscription_group = %group, error = %e, retry_in = ?backoff * 2, "cannot rebuild the client");
                backoff = (backoff * 2).min(REBUILD_BACKOFF_MAX);
            }
        }
    }
}

fn poll_loop(consumer: &Arc<ListenerConsumer>, stop: &StopSignal) -> LoopEnd {
    let consumer = consumer.clone();
    let group = consumer.context().group.clone();
    tracing::info!(subscription_group = %group, "listener started");
    let mut idle = false;
    let mut burst = 0usize;
    let mut quieted = false;
    let mut received_at = SystemTime::now();
    while !stop.is_raised() {
        if stop.is_quiet() && !quieted {
            quieted = true;
            tracing::info!(subscription_group = %group, "quiet: finishing running batches, starting no new ones, keeping the partitions");
            if let Ok(assignment) = consumer.assignment() {
                let _ = consumer.pause(&assignment);
            }
        }
        let timeout = if idle {
            consumer.context().lock().poll_timeout(Instant::now())
        } else {
            Duration::ZERO
        };
        match consumer.poll(timeout) {
            Some(Ok(message)) => {
                idle = false;
                burst += 1;
                // One clock read per burst: the receive time of a burst's messages is the same
                // for any practical purpose, and reading the clock per message shows in profiles.
                if burst == 1 {
                    received_at = SystemTime::now();
                }
                consumer
                    .context()
                    .lock()
                    .buffer(&consumer, &message, received_at);
                if burst < BURST {
                    continue;
                }
            }
            Some(Err(e)) => {
                idle = false;
                // Checked with the other fatal-error reports below, after this burst.
                consumer.context().fatal_seen.store(true, Ordering::Release);
                match diagnostics::explanation(&e) {
                    Some(explanation) => {
                        tracing::error!(subscription_group = %group, error = %e, "{explanation}")
                    }
                    None => {
                        tracing::warn!(subscription_group = %group, error = %e, "consumer error")
                    }
                }
            }
            None => idle = true,
        }
        burst = 0;
        if stop.take_fatal_drill() {
            crate::librdkafka::raise_fatal_error(consumer.client(), "fault drill");
        }
        if consumer.context().fatal_seen.swap(false, Ordering::AcqRel)
            && let Some((code, reason)) = consumer.client().fatal_error()
        {
            return LoopEnd::Fatal(format!("{code}: {reason}"));
        }
        let mut state = consumer.context().lock();
        state.drain_completions(&consumer, None);
        state.dispatch_ready(&consumer, Instant::now(), stop.is_quiet());
    }
    LoopEnd::Stop
}

fn shutdown(consumer: &Arc<ListenerConsumer>, stop: &StopSignal, group: &str) -> ListenerExit {
    let deadline = stop.deadline();
    tracing::info!(subscription_group = %group, "listener stopping: finishing in-flight batches");
    if let Ok(assignment) = consumer.assignment() {
        let _ = consumer.pause(&assignment);
    }
    consumer.context().lock().stop_fetching();
    // Keep serving librdkafka (callbacks, rebalances) while batches finish.
    loop {
        let _ = consumer.poll(Duration::from_millis(10));
        let mut state = consumer.context().lock();
        state.drain_completions(consumer, None);
        if !state.any_running() || Instant::now() >= deadline {
            break;
        }
    }
    let forced = consumer.context().lock().stop_executors(consumer, deadline);
    if forced {
        tracing::error!(subscription_group = %group, "shutdown timeout reached: unfinished batches were abandoned and will be processed again after a restart");
    }
    commit_sync(consumer, group);
    tracing::info!(subscription_group = %group, "listener stopped, leaving the group");
    ListenerExit { forced }
}

fn commit_sync(consumer: &ListenerConsumer, group: &str) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            tracing::error!(subscription_group = %group, error = %e, "synchronous commit failed: the uncommitted batches will be processed again")
        }
    }
}

impl State {
    fn assign(&mut self, group: &str, assigned: &[(String, i32)]) {
        let offsets = self
            .offsets
            .clone()
            .expect("offsets are set before subscribing");
        for (topic, partition) in assigned {
            let Some(slots) = self.topics.get_mut(topic.as_str()) else {
                tracing::warn!(
                    subscription_group = group,
                    topic,
                    "assigned a topic that is not routed"
                );
                continue;
            };
            if slots.partitions.contains_key(partition) {
                continue;
            }
            let handle = Arc::new(PartitionHandle::new(
                slots.topic.name.clone(),
                *partition,
                offsets.clone(),
            ));
            let (jobs, rx) = unbounded_channel();
            let executor = Executor {
                config: self.config.clone(),
                topic: slots.topic.clone(),
                handle: handle.clone(),
                producer: self.producer.clone(),
                workers: self.workers.clone(),
                completions: self.completions_tx.clone(),
            };
            let task = self.runtime.spawn(executor.run(rx));
            slots.partitions.insert(
                *partition,
                Slot {
                    handle,
                    jobs,
                    task,
                    buffer: Vec::new(),
                    buffered_since: None,
                    in_flight: None,
                    running: false,
                    retry: RetryState::default(),
                    paused_until: None,
                    paused: false,
                    stopped: false,
                    next_offset: -1,
                    redelivered: 0,
                },
            );
        }
        tracing::info!(subscription_group = group, partitions = ?assigned, "partitions assigned");
    }

    /// Finishes (or abandons) the revoked partitions' batches, commits, and stops their executors.
    fn revoke(&mut self, consumer: &ListenerConsumer, group: &str, revoked: &[(String, i32)]) {
        let deadline = Instant::now() + self.revoke_wait;
        let is_revoked = |t: &str, p: i32| revoked.iter().any(|(rt, rp)| rt == t && *rp == p);
        // Let running batches of revoked partitions finish so their marks make the commit.
        loop {
            let waiting = self.topics.values().any(|s| {
                s.partitions
                    .iter()
                    .any(|(p, slot)| slot.running && is_revoked(&s.topic.name, *p))
            });
            if !waiting || Instant::now() >= deadline {
                break;
            }
            self.drain_completions(consumer, Some(deadline));
        }
        commit_sync(consumer, group);
        for (topic, partition) in revoked {
            let Some(slots) = self.topics.get_mut(topic.as_str()) else {
                continue;
            };
            if let Some(slot) = slots.partitions.remove(partition) {
                slot.handle.revoked.store(true, Ordering::Release);
                if slot.running {
                    tracing::warn!(
                        subscription_group = group,
                        topic,
                        partition,
                        "partition revoked while its batch still runs; the batch will be processed again by the new owner"
                    );
                }
                let _ = slot.jobs.send(Job::Revoked);
            }
        }
        tracing::info!(subscription_group = group, partitions = ?revoked, "partitions revoked");
    }

    /// Turns a polled message into an owned one and buffers it; dispatches a full batch at once.
    fn buffer(
        &mut self,
        consumer: &ListenerConsumer,
        m: &BorrowedMessage<'_>,
        received_at: SystemTime,
    ) {
        let Some(slots) = self.topics.get_mut(m.topic()) else {
            return;
        };
        let info = &slots.info;
        let max_messages = slots.topic.max_messages;
        let Some(slot) = slots.partitions.get_mut(&m.partition()) else {
            return;
        };
        if slot.stopped {
            return;
        }
        // librdkafka delivers a partition's offsets in increasing order unless we seek; an
        // older offset is a re-delivery (e.g. its position was reset after an offset-out-of-range
        // answer) of a message already processed, running or buffered: taking it again would
        // process it twice in this process.
        if m.offset() < slot.next_offset {
            if slot.redelivered == 0 {
                tracing::warn!(
                    topic = m.topic(),
                    partition = m.partition(),
                    offset = m.offset(),
                    next = slot.next_offset,
                    "librdkafka re-delivered messages this process already took; skipping them"
                );
            }
            slot.redelivered += 1;
            return;
        }
        slot.next_offset = m.offset() + 1;
        let headers = m
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| Header {
                        key: h.key.to_string(),
                        value: h.value.map(<[u8]>::to_vec),
                    })
                    .collect()
            })
            .unwrap_or_default();
        slot.buffer.push(Message {
            topic: info.clone(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: Timestamp::from_rdkafka(m.timestamp()),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
            received_at,
        });
        if slot.buffered_since.is_none() {
            slot.buffered_since = Some(Instant::now());
        }
        if slot.buffer.len() < max_messages {
            return;
        }
        if slot.running {
            // The running batch may be done already and its report waiting: read reports before
            // deciding, so a fast consumer is fed instead of paused (a pause throws away what
            // librdkafka prefetched and costs a refetch).
            let (topic, partition) = (slots.info.name.clone(), m.partition());
            self.drain_completions(consumer, None);
            let Some(slot) = self.slot_mut(&topic, partition) else {
                return;
            };
            slot.dispatch_or_pause(consumer, max_messages);
        } else {
            slot.dispatch_or_pause(consumer, max_messages);
        }
    }

    fn slot_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Slot> {
        self.topics.get_mut(topic)?.partitions.get_mut(&partition)
    }

    /// Applies executor reports; waits for one until `wait_until` when given.
    fn drain_completions(&mut self, consumer: &ListenerConsumer, wait_until: Option<Instant>) {
        let first = match wait_until {
            Some(deadline) => {
                match self
                    .completions
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
                }
            }
            None => None,
        };
        let rest: Vec<Completion> = self.completions.try_iter().collect();
        for completion in first.into_iter().chain(rest) {
            self.complete(consumer, completion);
        }
    }

    fn complete(&mut self, consumer: &ListenerConsumer, c: Completion) {
        let config = self.config.clone();
        let Some(slots) = self.topics.get_mut(&*c.topic) else {
            return;
        };
        let dead_letter = slots.topic.dead_letter_queue.is_some();
        let Some(slot) = slots.partitions.get_mut(&c.partition) else {
            return;
        };
        match c.outcome {
            Outcome::Consumed => {
                slot.running = false;
                slot.in_flight = None;
                slot.retry.failures = 0;
                slot.retry.at = None;
            }
            Outcome::Failed(error) => {
                slot.running = false;
                slot.failed(consumer, &config, dead_letter, error);
            }
            Outcome::Stopped => slot.stopped = true,
        }
        for request in c.requests {
            slot.apply(consumer, request);
        }
    }

    /// Dispatches buffers that are due and retries whose pause is over; pauses and resumes.
    fn dispatch_ready(&mut self, consumer: &ListenerConsumer, now: Instant, quiet: bool) {
        for slots in self.topics.values_mut() {
            let (max_messages, max_wait) = (slots.topic.max_messages, slots.topic.max_wait_time);
            let max_retries = slots
                .topic
                .dead_letter_queue
                .as_ref()
                .map(|d| d.max_retries);
            for slot in slots.partitions.values_mut() {
                if slot.paused_until.is_some_and(|t| now >= t) {
                    slot.paused_until = None;
                }
                if quiet || slot.running || slot.stopped || slot.paused_until.is_some() {
                    continue;
                }
                if let Some(at) = slot.retry.at {
                    if now < at {
                        continue;
                    }
                    slot.retry.at = None;
                    if slot.retry_failed(max_retries) {
                        continue;
                    }
                }
                slot.end_isolation();
                let due = slot.buffer.len() >= max_messages
                    || slot
                        .buffered_since
                        .is_some_and(|t| now.duration_since(t) >= max_wait);
                if due || (slot.retry.isolate_until.is_some() && !slot.buffer.is_empty()) {
                    slot.dispatch_buffer(max_messages);
                }
                if slot.paused
                    && slot.can_start()
                    && slot.buffer.len() < pause_threshold(max_messages)
                {
                    slot.set_paused(consumer, false);
                }
            }
        }
    }

    /// How long the next poll may block.
    fn poll_timeout(&self, now: Instant) -> Duration {
        let mut timeout = IDLE_POLL;
        for slots in self.topics.values() {
            for slot in slots.partitions.values() {
                // A running batch with messages waiting behind it: look for its report soon.
                // Without waiting messages the report is not urgent (marks are stored by the
                // executor itself), so idle partitions cost no wake-ups.
                if slot.running && !slot.buffer.is_empty() {
                    return BUSY_POLL;
                }
                if let Some(t) = slot.buffered_since {
                    timeout =
                        timeout.min((t + slots.topic.max_wait_time).saturating_duration_since(now));
                }
                for t in [slot.retry.at, slot.paused_until].into_iter().flatten() {
                    timeout = timeout.min(t.saturating_duration_since(now));
                }
            }
        }
        timeout
    }

    fn any_running(&self) -> bool {
        self.topics
            .values()
            .any(|s| s.partitions.values().any(|slot| slot.running))
    }

    /// Forgets every partition after a fatal error: running batches can no longer mark (their
    /// work is redone by whoever gets the partition), executors stop without hooks.
    fn abandon_all(&mut self) {
        for slots in self.topics.values_mut() {
            for (_, slot) in slots.partitions.drain() {
                slot.handle.revoked.store(true, Ordering::Release);
                slot.task.abort();
            }
        }
    }

    /// Drops buffered messages and pending retries: nothing new starts once shutdown begins.
    fn stop_fetching(&mut self) {
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.buffer.clear();
            slot.buffered_since = None;
            slot.retry.at = None;
        }
    }

    /// Runs `shutdown` hooks of idle executors and aborts running ones; true if any was aborted.
    fn stop_executors(&mut self, consumer: &ListenerConsumer, deadline: Instant) -> bool {
        let mut forced = false;
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            if slot.running {
                // Its marks must not land after we commit: the batch is redone after restart.
                slot.handle.revoked.store(true, Ordering::Release);
                slot.task.abort();
                slot.stopped = true;
                forced = true;
            } else {
                let _ = slot.jobs.send(Job::Shutdown);
            }
        }
        while self
            .topics
            .values()
            .any(|s| s.partitions.values().any(|slot| !slot.stopped))
            && Instant::now() < deadline
        {
            self.drain_completions(consumer, Some(deadline));
        }
        forced
    }
}

impl Slot {
    fn set_paused(&mut self, consumer: &ListenerConsumer, paused: bool) {
        let mut tpl = TopicPartitionList::with_capacity(1);
        tpl.add_partition(&self.handle.topic, self.handle.partition);
        let result = if paused {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        };
        match result {
            Ok(()) => {
                tracing::debug!(topic = %self.handle.topic, partition = self.handle.partition, paused, "pause state changed");
                self.paused = paused
            }
            Err(e) => {
                tracing::warn!(topic = %self.handle.topic, partition = self.handle.partition, paused, error = %e, "cannot change pause state")
            }
        }
    }

    /// With a full batch buffered: starts it when possible, else pauses the partition once the
    /// backlog reaches [`pause_threshold`].
    fn dispatch_or_pause(&mut self, consumer: &ListenerConsumer, max_messages: usize) {
        if self.can_start() && self.retry.isolate_until.is_none() {
            self.dispatch_buffer(max_messages);
        } else if self.buffer.len() >= pause_threshold(max_messages) && !self.paused {
            self.set_paused(consumer, true);
        }
    }

    /// True when nothing stops a new batch from starting.
    fn can_start(&self) -> bool {
        !self.running && self.retry.at.is_none() && self.paused_until.is_none()
    }

    fn dispatch_buffer(&mut self, max_messages: usize) {
        let take = if self.retry.isolate_until.is_some() {
            1
        } else {
            self.buffer.len().min(max_messages)
        };
        let rest = if take == self.buffer.len() {
            Vec::with_capacity(max_messages)
        } else {
            self.buffer.split_off(take)
        };
        let batch = Arc::new(std::mem::replace(&mut self.buffer, rest));
        self.buffered_since = if self.buffer.is_empty() {
            None
        } else {
            Some(Instant::now())
        };
        // Messages of a failed batch carry that failure: this is their second attempt.
        let attempt = if self.retry.isolate_until.is_some() {
            2
        } else {
            1
        };
        self.send(Messages::new(batch, attempt));
    }

    /// Leaves isolation once every message of the failed batch is behind us.
    fn end_isolation(&mut self) {
        if let Some(until) = self.retry.isolate_until {
            let marked = self.handle.marked.load(Ordering::Acquire);
            if marked > until || self.buffer.first().is_some_and(|m| m.offset > until) {
                self.retry.isolate_until = None;
            }
        }
    }

    /// Books a failed batch: counts the attempt, pauses the partition for the backoff.
    fn failed(
        &mut self,
        consumer: &ListenerConsumer,
        config: &Config,
        dead_letter: bool,
        error: String,
    ) {
        let marked = self.handle.marked.load(Ordering::Acquire);
        let Some(batch) = &self.in_flight else { return };
        let Some(first_unmarked) = batch.iter().find(|m| m.offset >= marked) else {
            self.in_flight = None; // everything was marked before the error: nothing to redo
            return;
        };
        let offset = first_unmarked.offset;
        let retry = &mut self.retry;
        if retry.offset == offset && retry.failures > 0 {
            retry.failures += 1;
        } else {
            retry.offset = offset;
            retry.failures = if retry.isolate_until.is_some_and(|u| offset <= u) {
                2
            } else {
                1
            };
        }
        if dead_letter && batch.len() > 1 && retry.isolate_until.is_none() {
            retry.isolate_until = Some(batch.metadata.last_offset);
        }
        let pause = config.pause_for(retry.failures);
        tracing::error!(
            topic = %self.handle.topic, partition = self.handle.partition,
            offsets = ?(batch.metadata.first_offset, batch.metadata.last_offset), first_unmarked = offset,
            attempt = retry.failures, retry_in = ?pause, %error,
            "batch failed; pausing the partition before a retry"
        );
        retry.error = error;
        retry.at = Some(Instant::now() + pause);
        if !self.paused {
            self.set_paused(consumer, true);
        }
    }

    /// Starts the next attempt at the failed batch's unmarked rest: the whole rest, its first
    /// message alone while isolating, or a dead-letter job once retries are used up. False when
    /// nothing is left to retry.
    fn retry_failed(&mut self, max_retries: Option<u32>) -> bool {
        let Some(failed) = self.in_flight.take() else {
            return false;
        };
        let marked = self.handle.marked.load(Ordering::Acquire);
        let mut rest: Vec<Message> = failed
            .iter()
            .filter(|m| m.offset >= marked)
            .cloned()
            .collect();
        if rest.is_empty() {
            self.retry.failures = 0;
            return false;
        }
        let failures = self.retry.failures;
        let isolating = self.retry.isolate_until.is_some();
        if isolating && rest.len() > 1 {
            // Back to the buffer's front, in order: they run one by one after this one.
            let tail = rest.split_off(1);
            self.buffer.splice(0..0, tail);
            self.buffered_since.get_or_insert_with(Instant::now);
        }
        let first = &rest[0];
        if let Some(max_retries) = max_retries
            && failures > max_retries
            && rest.len() == 1
            && first.offset == self.retry.offset
        {
            self.running = true;
            self.in_flight = Some(Messages::new(rest.clone().into(), failures + 1));
            let job = Job::DeadLetter {
                message: rest.remove(0),
                error: self.retry.error.clone(),
                attempts: failures,
            };
            if self.jobs.send(job).is_err() {
                self.running = false;
            }
            return true;
        }
        self.send(Messages::new(rest.into(), failures + 1));
        true
    }

    /// Applies a pause, resume or seek the consumer asked for.
    fn apply(&mut self, consumer: &ListenerConsumer, request: PartitionRequest) {
        match request {
            PartitionRequest::Pause(timeout) => {
                self.paused_until = Some(Instant::now() + timeout);
                if !self.paused {
                    self.set_paused(consumer, true);
                }
            }
            PartitionRequest::Resume => {
                self.paused_until = None;
                self.retry.at = None;
            }
            PartitionRequest::Seek(to) => self.seek(consumer, to),
        }
    }

    fn seek(&mut self, consumer: &ListenerConsumer, to: SeekTo) {
        let (topic, partition) = (self.handle.topic.clone(), self.handle.partition);
        let offset = match to {
            SeekTo::Offset(o) => Offset::Offset(o),
            SeekTo::Earliest => Offset::Beginning,
            SeekTo::Latest => Offset::End,
            SeekTo::Time(t) => {
                let millis = t
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let mut tpl = TopicPartitionList::with_capacity(1);
                let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(millis));
                match consumer.offsets_for_times(tpl, Duration::from_secs(10)) {
                    Ok(found) => found
                        .find_partition(&topic, partition)
                        .map(|e| e.offset())
                        .unwrap_or(Offset::End),
                    Err(e) => {
                        tracing::error!(%topic, partition, error = %e, "seek by time failed: cannot look up the offset");
                        return;
                    }
                }
            }
        };
        // Buffered messages are from the old position: drop them (none of them is marked).
        self.buffer.clear();
        self.buffered_since = None;
        self.in_flight = None;
        self.retry = RetryState::default();
        self.next_offset = -1; // the position moves on purpose: accept what comes next
        match consumer.seek(&topic, partition, offset, Duration::from_secs(10)) {
            Ok(()) => tracing::info!(%topic, partition, ?offset, "partition seeked"),
            Err(e) => tracing::error!(%topic, partition, ?offset, error = %e, "seek failed"),
        }
    }

    fn send(&mut self, messages: Messages) {
        tracing::trace!(topic = %self.handle.topic, partition = self.handle.partition, first = messages.metadata.first_offset, last = messages.metadata.last_offset, "batch dispatched");
        self.running = true;
        self.in_flight = Some(messages.clone());
        if self.jobs.send(Job::Consume(messages)).is_err() {
            // The executor is gone (aborted at shutdown): nothing will run, nothing is marked.
            self.running = false;
        }
    }
}
