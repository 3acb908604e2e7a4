//! What the tester records: every batch its executors ran, with its attempt and outcome.
//! The executors are the server's own tokio tasks; [`Recorded`] notes each job as it is
//! handed over, and the tester books the outcome when the job's report comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::consumer::{MarkSink, PartitionHandle};
use crate::processing::driver::{Spawned, Workers};
use crate::processing::executor::Job;
use crate::processing::partition::{Outcome, Work};
use crate::routing::Topic;

/// Orders runs across partitions.
static RUN_SEQ: AtomicU64 = AtomicU64::new(0);

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

/// A job handed to an executor whose report has not come back yet.
struct Dispatched {
    topic: Arc<str>,
    partition: i32,
    /// Its first batch number.
    batch: u64,
    /// Each batch's offsets and attempt.
    batches: Vec<(Vec<i64>, u32)>,
    at: Duration,
}

/// The server's executor tasks, noting every job handed to them.
pub(super) struct Recorded {
    pub(super) spawned: Spawned,
    dispatched: Vec<Dispatched>,
    /// The virtual clock's reading for the jobs handed over now.
    pub(super) at: Duration,
}

/// A spawned executor and the partition it serves.
pub(super) struct RecordedWorker {
    inner: <Spawned as Workers>::Worker,
    topic: Arc<str>,
    partition: i32,
}

impl Recorded {
    pub(super) fn new(spawned: Spawned) -> Self {
        Recorded {
            spawned,
            dispatched: Vec::new(),
            at: Duration::ZERO,
        }
    }

    /// Books the batches of the job that ended with `batch` of `topic`/`partition`: those
    /// before it in a run were consumed, it ended with `outcome`, later ones never ran.
    pub(super) fn finished(
        &mut self,
        (topic, partition): (&str, i32),
        batch: u64,
        outcome: &Outcome,
    ) -> Vec<Run> {
        let Some(i) = self.dispatched.iter().position(|d| {
            &*d.topic == topic
                && d.partition == partition
                && (d.batch..d.batch + d.batches.len() as u64).contains(&batch)
        }) else {
            return Vec::new();
        };
        let job = self.dispatched.remove(i);
        let ran = (batch - job.batch) as usize + 1;
        let mut runs = Vec::with_capacity(ran);
        for (n, (offsets, attempt)) in job.batches.into_iter().take(ran).enumerate() {
            let outcome = if n + 1 < ran {
                RunOutcome::Consumed
            } else {
                match outcome {
                    Outcome::Consumed => RunOutcome::Consumed,
                    Outcome::Failed(e) => RunOutcome::Failed(e.clone()),
                    Outcome::DeadLettered => RunOutcome::DeadLettered,
                    Outcome::DeadLetterFailed(e) => RunOutcome::DeadLetterFailed(e.clone()),
                }
            };
            runs.push(Run {
                seq: RUN_SEQ.fetch_add(1, Ordering::Relaxed),
                topic: topic.to_string(),
                partition,
                offsets,
                attempt,
                at: job.at,
                outcome,
            });
        }
        runs
    }

    fn note(&mut self, worker: &RecordedWorker, batch: u64, work: &Work) {
        let offsets = |m: &crate::messages::Messages| m.iter().map(|m| m.offset()).collect();
        let batches = match work {
            Work::Consume(m) => vec![(offsets(m), m.metadata.attempt)],
            Work::Run(run) => run
                .iter()
                .map(|m| (offsets(m), m.metadata.attempt))
                .collect(),
            Work::DeadLetter {
                message, attempts, ..
            } => vec![(vec![message[0].offset()], attempts + 1)],
        };
        self.dispatched.push(Dispatched {
            topic: worker.topic.clone(),
            partition: worker.partition,
            batch,
            batches,
            at: self.at,
        });
    }
}

impl Workers for Recorded {
    type Worker = RecordedWorker;

    fn mark_sink(&self, topic: &Arc<str>, partition: i32, generation: u64) -> MarkSink {
        self.spawned.mark_sink(topic, partition, generation)
    }

    fn start(&mut self, topic: &Arc<Topic>, handle: &Arc<PartitionHandle>) -> RecordedWorker {
        RecordedWorker {
            inner: self.spawned.start(topic, handle),
            topic: handle.topic.clone(),
            partition: handle.partition,
        }
    }

    fn send(&mut self, worker: &RecordedWorker, job: Job) -> bool {
        let run = matches!(job, Job::Run { .. });
        if let Job::Run { batch, work } = &job {
            self.note(worker, *batch, work);
        }
        let sent = self.spawned.send(&worker.inner, job);
        if run && !sent {
            self.dispatched.pop(); // it never ran
        }
        sent
    }

    fn has_ended(&self, worker: &RecordedWorker) -> bool {
        self.spawned.has_ended(&worker.inner)
    }

    fn abort(&mut self, worker: &RecordedWorker) {
        self.spawned.abort(&worker.inner)
    }
}

/// When `now` is on the tester's virtual clock.
pub(super) fn since(started: Instant, now: Instant) -> Duration {
    now.saturating_duration_since(started)
}
