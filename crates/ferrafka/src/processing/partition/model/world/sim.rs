//! The simulated librdkafka (a [`PartitionClient`]) and executors (a [`Workers`] that keeps
//! its jobs for the world to run), with the bookkeeping the invariants are checked against.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::consumer::{MarkSink, PartitionHandle, SeekTo};
use crate::processing::driver::{PartitionClient, Workers};
use crate::processing::executor::Job;
use crate::routing::Topic;

/// librdkafka's side of the one simulated partition, and what was processed.
pub(super) struct Librdkafka {
    /// The log: each offset's content version (a truncation re-uses offsets for new content).
    pub(super) log: Vec<u32>,
    pub(super) position: i64,
    /// librdkafka's application pause: kept across revocations and assignments.
    pub(super) fetch_paused: bool,
    pub(super) committed: i64,
    /// The last offset stored by the current assignment (a new one starts without any).
    pub(super) stored: i64,
    /// Every offset below this was stored by some assignment after it was processed or
    /// skipped on purpose.
    pub(super) accepted: i64,
    /// Messages (offset, version) that succeeded or were dead-lettered.
    pub(super) done: BTreeSet<(i64, u32)>,
    /// Offsets the current assignment's consumer skipped on purpose with a seek.
    pub(super) skipped: BTreeSet<i64>,
    /// A truncation the machine has not seen yet (no message fetched since): where it
    /// starts, and the log before it. Until a message arrives nobody can know, so stores
    /// covering the old messages are still right.
    pub(super) unseen_truncation: Option<(i64, Vec<u32>)>,
    /// How often each message (offset, version) succeeded.
    pub(super) successes: HashMap<(i64, u32), u32>,
    /// Events that may make a message run again: rebalances, restarts, position moves, seeks.
    pub(super) disruptions: u32,
    /// Whether the next seek succeeds.
    pub(super) seek_ok: bool,
    /// Calls the driver made, to see that an event had no effect.
    pub(super) calls: u64,
    /// The driver's epoch (shared with it), and its value when the fetch position last moved
    /// on purpose (an assignment, a seek): what messages polled before that move carry.
    pub(super) epoch: Arc<AtomicU64>,
    pub(super) stale_epoch: Option<u64>,
}

impl Librdkafka {
    pub(super) fn new(log_start: usize) -> Self {
        Librdkafka {
            log: vec![0; log_start],
            position: 0,
            fetch_paused: false,
            committed: 0,
            stored: -1,
            accepted: 0,
            done: BTreeSet::new(),
            skipped: BTreeSet::new(),
            unseen_truncation: None,
            successes: HashMap::new(),
            disruptions: 0,
            seek_ok: true,
            calls: 0,
            epoch: Arc::default(),
            stale_epoch: None,
        }
    }

    pub(super) fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    fn store(&mut self, next: i64) {
        assert!(next > self.stored, "stored {next} after {}", self.stored);
        let before_truncation = |o: i64| {
            self.unseen_truncation
                .as_ref()
                .and_then(|(_, old)| old.get(o as usize))
                .is_some_and(|v| self.done.contains(&(o, *v)))
        };
        let covered = |o: i64| {
            o < self.accepted
                || self.skipped.contains(&o)
                || self.done.contains(&(o, self.log[o as usize]))
                || before_truncation(o)
        };
        if let Some(missing) = (0..next).find(|o| !covered(*o)) {
            panic!(
                "stored {next} but offset {missing} (version {}) neither succeeded, nor was \
                 dead-lettered, nor skipped by this assignment's seek",
                self.log[missing as usize]
            );
        }
        self.stored = next;
        self.accepted = self.accepted.max(next);
    }

    fn seek(&mut self, to: SeekTo) {
        let target = match to {
            SeekTo::Offset(o) => o.min(self.log_end()),
            SeekTo::Earliest => 0,
            _ => unreachable!("not generated"),
        };
        assert!(target >= 0, "negative seek reached librdkafka");
        // Seeking forward skips messages on purpose; seeking back asks for them again.
        self.skipped.retain(|o| *o < target);
        self.skipped.extend(0..target);
        // The seek sets the position: whatever lives below it now is skipped.
        self.unseen_truncation = None;
        self.position = target;
        self.disruptions += 1;
    }

    /// `messages` succeeded (or were dead-lettered): each at most once more than the events
    /// that may repeat work.
    pub(super) fn succeeded(&mut self, messages: impl Iterator<Item = (i64, u32)>) {
        for m in messages {
            self.done.insert(m);
            let count = self.successes.entry(m).or_default();
            *count += 1;
            assert!(
                *count <= 1 + self.disruptions,
                "message {m:?} succeeded {count} times with {} disruptions",
                self.disruptions
            );
        }
    }
}

/// The driver's client: the simulated librdkafka.
pub(super) struct SimClient(pub(super) RefCell<Librdkafka>);

impl PartitionClient for SimClient {
    type Target = ();

    fn target(&self, _topic: &Arc<str>, _partition: i32) {}

    fn set_paused(&self, _: &(), paused: bool) {
        let mut kafka = self.0.borrow_mut();
        kafka.calls += 1;
        kafka.fetch_paused = paused;
    }

    fn store_offset(&self, _: &mut (), next: i64) {
        let mut kafka = self.0.borrow_mut();
        kafka.calls += 1;
        kafka.store(next);
    }

    fn seek(&self, _: &(), to: SeekTo) -> bool {
        let mut kafka = self.0.borrow_mut();
        kafka.calls += 1;
        if kafka.seek_ok {
            kafka.seek(to);
            kafka.stale_epoch = Some(kafka.epoch.load(Ordering::Acquire));
        }
        kafka.seek_ok
    }

    fn commit_sync(&self, _group: &str) {
        let mut kafka = self.0.borrow_mut();
        if kafka.stored >= 0 {
            kafka.committed = kafka.stored;
        }
    }
}

/// Executors that keep the jobs they are sent, each with the generation it serves; the world
/// takes them and runs them. A worker the world killed (it ended without a report) takes no
/// more jobs.
#[derive(Default)]
pub(super) struct SimWorkers {
    pub(super) jobs: Vec<(u64, Job)>,
    /// Jobs sent to a dead worker: the driver books them as failed batches.
    pub(super) rejected: Vec<(u64, Job)>,
    /// The generation of each worker started, by id.
    started: Vec<u64>,
    dead: BTreeSet<usize>,
}

impl SimWorkers {
    /// Ends the newest worker of `generation` without a report.
    pub(super) fn kill(&mut self, generation: u64) {
        if let Some(id) = self.started.iter().rposition(|g| *g == generation) {
            self.dead.insert(id);
        }
    }
}

impl Workers for SimWorkers {
    /// Its id and generation.
    type Worker = (usize, u64);

    fn mark_sink(&self, _: &Arc<str>, _: i32, _: u64) -> MarkSink {
        Box::new(|_, _| {})
    }

    fn start(&mut self, _topic: &Arc<Topic>, handle: &Arc<PartitionHandle>) -> (usize, u64) {
        self.started.push(handle.generation);
        (self.started.len() - 1, handle.generation)
    }

    fn send(&mut self, &(id, generation): &(usize, u64), job: Job) -> bool {
        if self.dead.contains(&id) {
            self.rejected.push((generation, job));
            return false;
        }
        self.jobs.push((generation, job));
        true
    }

    fn has_ended(&self, (id, _): &(usize, u64)) -> bool {
        self.dead.contains(id)
    }

    fn abort(&mut self, (id, _): &(usize, u64)) {
        self.dead.insert(*id);
    }
}
