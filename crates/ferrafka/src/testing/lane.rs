//! One partition in the [`super::Tester`]: a log of produced messages, the partition's state
//! machine, and the executor that runs its batches — the server's own, fed by a simulated
//! fetch instead of librdkafka.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;

use crate::config::Config;
use crate::consumer::{DynConsumer, PartitionHandle, SeekTo};
use crate::messages::{Message, Timestamp, TopicInfo};
use crate::processing::executor::{Executor, ReportSink};
use crate::processing::partition::{Effect, Outcome, Partition, PartitionSettings, Work};
use crate::producer::Producer;
use crate::routing::Topic;

/// A `consume()` call that runs more batches than this is looping.
const MAX_RUNS_PER_CONSUME: usize = 100_000;

/// Orders runs across partitions.
static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

/// A message for [`super::Tester::produce`]: a payload, and optionally a key, headers, a
/// partition and a timestamp. `&str`, `String` and `Vec<u8>` convert into one.
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    pub(super) payload: Option<Vec<u8>>,
    pub(super) key: Option<Vec<u8>>,
    pub(super) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(super) partition: i32,
    pub(super) timestamp: Option<i64>,
}

impl TestRecord {
    /// A record with this payload.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        TestRecord {
            payload: Some(payload.into()),
            ..TestRecord::default()
        }
    }

    /// A tombstone: no payload.
    pub fn tombstone() -> Self {
        TestRecord::default()
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.to_string(), Some(value.into())));
        self
    }

    /// Puts it on this partition (0 by default).
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    /// Sets its create time, in milliseconds since the epoch (default: now).
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}

impl From<&str> for TestRecord {
    fn from(payload: &str) -> Self {
        TestRecord::new(payload)
    }
}

impl From<String> for TestRecord {
    fn from(payload: String) -> Self {
        TestRecord::new(payload)
    }
}

impl From<Vec<u8>> for TestRecord {
    fn from(payload: Vec<u8>) -> Self {
        TestRecord::new(payload)
    }
}

/// How a batch run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// `consume` returned `Ok`.
    Consumed,
    /// `consume` returned `Err` or panicked; the text is the error chain.
    Failed(String),
    /// The message went to the dead-letter queue.
    DeadLettered,
    /// Producing to the dead-letter queue failed.
    DeadLetterFailed(String),
}

/// One batch run by the [`super::Tester`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub(super) seq: u64,
    /// Its topic.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// The offsets it held, in order.
    pub offsets: Vec<i64>,
    /// 1 for a first attempt, then 2, 3, … (`ctx.attempt()`).
    pub attempt: u32,
    /// When it started on the tester's virtual clock, from the tester's creation.
    pub at: Duration,
    /// How it ended.
    pub outcome: RunOutcome,
}

pub(super) struct Lane {
    topic: Arc<Topic>,
    info: Arc<TopicInfo>,
    partition: i32,
    log: Vec<Message>,
    /// The next offset the simulated fetch delivers.
    position: i64,
    fetch_paused: bool,
    machine: Partition,
    executor: Executor,
    instance: Option<Box<dyn DynConsumer>>,
    marks: Receiver<(u64, i64)>,
    pub(super) stored: Option<i64>,
    pub(super) runs: Vec<Run>,
    /// When the tester's virtual clock started, for [`Run::at`].
    started: Instant,
}

impl Lane {
    pub(super) fn new(
        config: Arc<Config>,
        topic: Arc<Topic>,
        producer: Producer,
        partition: i32,
    ) -> Self {
        // Batches are handed over one at a time (no runs): the harness books every batch's
        // outcome as it ends. The consumer sees the same batches either way.
        let settings = PartitionSettings {
            run_messages: 0,
            ..PartitionSettings::new(&config, &topic)
        };
        let (marks_tx, marks) = channel();
        let sink = Box::new(move |batch, mark| {
            let _ = marks_tx.send((batch, mark));
        });
        let handle = PartitionHandle::new(topic.name.clone(), partition, 1, sink);
        let executor = Executor {
            config,
            topic: topic.clone(),
            handle: Arc::new(handle),
            producer,
            workers: Arc::new(Semaphore::new(1)),
            // Reports come back from `run_batch` directly; the channel is for the server.
            reports: ReportSink::new(channel().0, Default::default()),
            tasks: Default::default(),
        };
        let info = Arc::new(TopicInfo {
            name: topic.name.clone(),
            deserializer: topic.deserializer.clone(),
        });
        Lane {
            machine: Partition::new(topic.name.clone(), partition, 1, settings, false),
            topic,
            info,
            partition,
            log: Vec::new(),
            position: 0,
            fetch_paused: false,
            executor,
            instance: None,
            marks,
            stored: None,
            runs: Vec::new(),
            started: Instant::now(),
        }
    }

    pub(super) fn append(&mut self, record: super::TestRecord) -> i64 {
        let offset = self.log.len() as i64;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.log.push(Message::in_memory(
            self.info.clone(),
            (self.partition, offset),
            Timestamp::CreateTime(record.timestamp.unwrap_or(now_ms)),
            record.key,
            record.payload,
            record.headers,
        ));
        offset
    }

    /// Fetches, ticks and runs batches until nothing more can happen without new messages.
    pub(super) async fn drive(&mut self, started: Instant, now: &mut Instant, max_attempts: u32) {
        let mut effects = Vec::new();
        let runs_before = self.runs.len();
        self.started = started;
        loop {
            while !self.fetch_paused && (self.position as usize) < self.log.len() {
                let message = self.log[self.position as usize].clone();
                self.position += 1;
                self.machine.on_message(message, *now, &mut effects);
                self.apply(&mut effects, *now).await;
            }
            self.machine.on_tick(*now, &mut effects);
            if self.apply(&mut effects, *now).await {
                let ran = self.runs.len() - runs_before;
                assert!(
                    ran < MAX_RUNS_PER_CONSUME,
                    "{}/{}: consume() ran {ran} batches without becoming idle; does a consumer \
                     seek back or pause forever? (last run: {:?})",
                    self.topic.name,
                    self.partition,
                    self.runs.last()
                );
                continue;
            }
            let gave_up = self.runs[runs_before..].last().is_some_and(|r| {
                matches!(
                    r.outcome,
                    RunOutcome::Failed(_) | RunOutcome::DeadLetterFailed(_)
                ) && r.attempt >= max_attempts
            });
            let fetchable = !self.fetch_paused && (self.position as usize) < self.log.len();
            match self.machine.next_wakeup(*now) {
                Some(t) if !gave_up => *now = (*now).max(t),
                _ if fetchable => {}
                _ => return,
            }
        }
    }

    /// Carries out effects; true when a batch ran.
    async fn apply(&mut self, effects: &mut Vec<Effect>, now: Instant) -> bool {
        let mut ran = false;
        while !effects.is_empty() {
            for effect in std::mem::take(effects) {
                match effect {
                    Effect::Dispatch { batch, work } => {
                        self.run(batch, work, now, effects).await;
                        ran = true;
                    }
                    Effect::Pause => self.fetch_paused = true,
                    Effect::Resume => self.fetch_paused = false,
                    Effect::Store(next) => self.stored = Some(next),
                    Effect::Seek(to) => {
                        self.position = self.seek_target(to);
                        self.machine.on_seek_result(true, now, effects);
                    }
                }
            }
        }
        ran
    }

    async fn run(&mut self, batch: u64, work: Work, now: Instant, effects: &mut Vec<Effect>) {
        let (offsets, attempt) = match &work {
            Work::Consume(m) => (m.iter().map(|m| m.offset()).collect(), m.metadata.attempt),
            Work::Run(_) => unreachable!("the harness's machines hand over one batch at a time"),
            Work::DeadLetter {
                message, attempts, ..
            } => (vec![message[0].offset()], attempts + 1),
        };
        let report = self
            .executor
            .run_batch(&mut self.instance, batch, work, &mut || true)
            .await;
        for (b, mark) in self.marks.try_iter().collect::<Vec<_>>() {
            self.machine.on_mark(1, b, mark, effects);
        }
        self.runs.push(Run {
            seq: RUN_SEQ.fetch_add(1, Ordering::Relaxed),
            topic: self.topic.name.to_string(),
            partition: self.partition,
            offsets,
            attempt,
            at: now.saturating_duration_since(self.started),
            outcome: match &report.outcome {
                Outcome::Consumed => RunOutcome::Consumed,
                Outcome::Failed(e) => RunOutcome::Failed(e.clone()),
                Outcome::DeadLettered => RunOutcome::DeadLettered,
                Outcome::DeadLetterFailed(e) => RunOutcome::DeadLetterFailed(e.clone()),
            },
        });
        self.machine.on_report(report, now, effects);
    }

    fn seek_target(&self, to: SeekTo) -> i64 {
        let end = self.log.len() as i64;
        match to {
            SeekTo::Offset(o) => o.clamp(0, end),
            SeekTo::Earliest => 0,
            SeekTo::Latest => end,
            SeekTo::Time(t) => {
                let millis = t
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                self.log
                    .iter()
                    .find(|m| m.timestamp().millis().is_some_and(|ms| ms >= millis))
                    .map_or(end, |m| m.offset)
            }
        }
    }
}
