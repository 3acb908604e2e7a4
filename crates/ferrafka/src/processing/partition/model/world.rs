//! The model test's world: the server's driver ([`Partitions`]) over a simulated librdkafka
//! and simulated executors, and the bookkeeping the invariants are checked against. The
//! driver carries out the machine's effects exactly as under `server`; the world plays
//! librdkafka, the executors and the listener's events.

mod sim;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::super::tests::{routed_topic, settings};
use super::super::*;
use super::{Finish, LOG_START, MAX_RETRIES, Op};
use crate::processing::driver::Partitions;
use crate::processing::executor::{ExecutorReport, Job, ReportKind};
use sim::{Librdkafka, SimClient, SimWorkers};

/// A batch the simulated executor works on (all of them belong to one run).
#[derive(Debug, Clone)]
struct SimBatch {
    generation: u64,
    batch: u64,
    /// Its messages: offset and content version.
    messages: Vec<(i64, u32)>,
    dead_letter: bool,
    /// The highest mark the consumer made with `Op::Mark`: what it processed so far.
    marked: i64,
}

impl SimBatch {
    fn first(&self) -> i64 {
        self.messages[0].0
    }

    fn end(&self) -> i64 {
        self.messages[self.messages.len() - 1].0 + 1
    }

    /// Its messages below `mark`.
    fn below(&self, mark: i64) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.messages.iter().copied().filter(move |m| m.0 < mark)
    }
}

/// The one partition the world simulates.
fn p0() -> Vec<(String, i32)> {
    vec![("t".to_string(), 0)]
}

/// The driver, librdkafka and executors, plus what the invariants need.
pub(super) struct World {
    driver: Partitions<SimWorkers, SimClient>,
    kafka: SimClient,
    assigned: bool,
    now: Instant,
    running: Vec<SimBatch>,
    /// The listener cut the running run: it ends after its current batch.
    cut: bool,
    /// The highest mark of the run's batches that ran so far.
    run_mark: Option<i64>,
    /// Generations whose executor was told to stop once its batch ends.
    stopping: BTreeSet<u64>,
    alone_failures: HashMap<(u64, i64), u32>,
    endless_pause: bool,
    quiet: bool,
    stopped: bool,
    dead_letter: bool,
    run_messages: usize,
    /// The topic has a throttle filter and a `tick` hook.
    filtered: bool,
}

/// The content version of a stale message (see `Op::StaleFetch`).
const STALE: u32 = u32::MAX;

impl World {
    pub(super) fn new(dead_letter: bool, run_messages: usize, filtered: bool) -> Self {
        let mut world = World {
            driver: Self::driver((dead_letter, run_messages, filtered), Arc::default()),
            kafka: SimClient(RefCell::new(Librdkafka::new(LOG_START as usize))),
            assigned: false,
            now: Instant::now(),
            running: Vec::new(),
            cut: false,
            run_mark: None,
            stopping: BTreeSet::new(),
            alone_failures: HashMap::new(),
            endless_pause: false,
            quiet: false,
            stopped: false,
            dead_letter,
            run_messages,
            filtered,
        };
        world.restart_driver();
        world.assign();
        world
    }

    /// A new process's driver, sharing its epoch with the simulated librdkafka.
    fn restart_driver(&mut self) {
        let epoch = Arc::default();
        let shape = (self.dead_letter, self.run_messages, self.filtered);
        self.driver = Self::driver(shape, Arc::clone(&epoch));
        let mut kafka = self.kafka.0.borrow_mut();
        (kafka.epoch, kafka.stale_epoch) = (epoch, None);
    }

    /// A process's driver of the routed topic `t`.
    fn driver(
        (dead_letter, run_messages, filtered): (bool, usize, bool),
        epoch: Arc<std::sync::atomic::AtomicU64>,
    ) -> Partitions<SimWorkers, SimClient> {
        let topic = routed_topic();
        let throttle = crate::filters::Throttle::new(5, Duration::from_secs(1));
        let factory: crate::routing::FilterFactory = Arc::new(move || Box::new(throttle.clone()));
        let settings = PartitionSettings {
            dead_letter_retries: dead_letter.then_some(MAX_RETRIES),
            run_messages,
            filters: FilterFactories(filtered.then_some(factory).into_iter().collect()),
            tick_interval: filtered.then_some(Duration::from_millis(300)),
            ..settings()
        };
        let monitor = Default::default();
        Partitions::with_settings([(topic, settings)], SimWorkers::default(), epoch, monitor)
    }

    fn machine(&self) -> Option<&Partition> {
        self.driver.machine("t", 0)
    }

    fn generation(&self) -> u64 {
        self.machine().map_or(0, Partition::generation)
    }

    fn max_messages(&self) -> usize {
        settings().max_messages
    }

    /// The group assigns the partition (again); librdkafka keeps its pause.
    fn assign(&mut self) {
        if self.assigned || self.stopped {
            return;
        }
        self.assigned = true;
        {
            let mut kafka = self.kafka.0.borrow_mut();
            kafka.position = kafka.committed;
            kafka.stored = -1;
            kafka.skipped.clear();
        }
        self.endless_pause = false;
        self.kafka.0.borrow_mut().stale_epoch = Some(self.driver.epoch());
        let epoch = self.driver.next_epoch();
        self.driver
            .assign(&self.kafka, "g", &p0(), (epoch, self.now));
        self.after_event();
    }

    /// The process restarts: a new librdkafka (nothing paused), a new driver, its executors
    /// gone.
    fn restart(&mut self) {
        self.restart_driver();
        self.assigned = false;
        {
            let mut kafka = self.kafka.0.borrow_mut();
            if kafka.stored >= 0 {
                kafka.committed = kafka.stored;
            }
            kafka.fetch_paused = false;
            kafka.disruptions += 1;
        }
        self.running.clear();
        self.stopping.clear();
        self.cut = false;
        self.run_mark = None;
        self.quiet = false;
        self.stopped = false;
        self.assign();
    }

    fn message(&self, offset: i64) -> Message {
        let version = self.kafka.0.borrow().log[offset as usize];
        Self::message_of(offset, version)
    }

    fn message_of(offset: i64, version: u32) -> Message {
        Message::builder("t", 0, offset)
            .payload(version.to_string().into_bytes())
            .build()
    }

    /// Runs what the driver handed the executors, and checks that the machine's idea of the
    /// fetch pause is librdkafka's.
    fn after_event(&mut self) {
        // A batch handed to a dead executor fails without running (the driver says so).
        for (generation, job) in std::mem::take(&mut self.driver.workers().rejected) {
            if let Job::Run {
                work: Work::Consume(m),
                ..
            } = job
                && m.len() == 1
            {
                *self
                    .alone_failures
                    .entry((generation, m.first().offset()))
                    .or_default() += 1;
            }
        }
        loop {
            let jobs = std::mem::take(&mut self.driver.workers().jobs);
            if jobs.is_empty() {
                break;
            }
            for (generation, job) in jobs {
                match job {
                    Job::Run { batch, work } => self.dispatch(generation, batch, work),
                    Job::Cut => {
                        if self
                            .running
                            .first()
                            .is_some_and(|b| b.generation == generation)
                        {
                            self.cut = true;
                        }
                    }
                    // A hook is done at once: it ran between the batches around it.
                    Job::Hook(_) => {
                        assert!(
                            !self.running.iter().any(|b| b.generation == generation),
                            "a hook was handed to an executor running a batch"
                        );
                        let done = ReportKind::HookDone {
                            requests: Vec::new(),
                        };
                        self.report(generation, done);
                    }
                    Job::Stop(_) => {
                        if self.running.iter().any(|b| b.generation == generation) {
                            self.stopping.insert(generation);
                        } else {
                            self.report_stopped(generation);
                        }
                    }
                }
            }
        }
        if let Some(m) = self.machine() {
            assert_eq!(
                m.fetch_paused(),
                self.kafka.0.borrow().fetch_paused,
                "the machine's fetch pause differs from librdkafka's"
            );
        }
    }

    fn report(&mut self, generation: u64, kind: ReportKind) {
        let report = ExecutorReport {
            topic: "t".into(),
            partition: 0,
            generation,
            kind,
        };
        self.driver.on_report(&self.kafka, report, self.now);
    }

    fn report_stopped(&mut self, generation: u64) {
        self.report(generation, ReportKind::Stopped);
    }

    fn dispatch(&mut self, generation: u64, batch: u64, work: Work) {
        assert!(
            self.running.is_empty(),
            "batch {batch} started while {:?} runs",
            self.running
        );
        let messages = |m: &Messages| {
            m.iter()
                .map(|m| {
                    let version = std::str::from_utf8(m.payload_or_empty()).unwrap();
                    (m.offset, version.parse::<u32>().unwrap())
                })
                .collect::<Vec<_>>()
        };
        let (batches, dead_letter) = match &work {
            Work::Consume(m) => (vec![messages(m)], false),
            Work::Run(run) => {
                assert!(run.len() > 1, "a run of one batch");
                let max = self.max_messages();
                assert!(
                    run.iter()
                        .all(|b| b.len() == max && b.metadata.attempt == 1),
                    "a run of partial or retried batches"
                );
                (run.iter().map(messages).collect(), false)
            }
            Work::DeadLetter { message, .. } => {
                (vec![messages(&Messages::new(message.clone(), 1))], true)
            }
        };
        assert!(
            batches.iter().flatten().all(|m| m.1 != STALE),
            "a message polled before its partition's last assignment or seek ran: {batches:?}"
        );
        let all: Vec<i64> = batches.iter().flatten().map(|m| m.0).collect();
        assert!(
            all.len() <= self.run_messages.max(self.max_messages()),
            "a run longer than run_messages: {batches:?}"
        );
        if dead_letter {
            let failures = self.alone_failures.get(&(generation, all[0]));
            assert!(
                failures.is_some_and(|f| *f > MAX_RETRIES),
                "offset {} dead-lettered after {failures:?} alone failures",
                all[0]
            );
        }
        assert!(
            all.windows(2).all(|w| w[1] == w[0] + 1),
            "gap in batch {batches:?}"
        );
        self.cut = false;
        for (i, messages) in batches.into_iter().enumerate() {
            self.running.push(SimBatch {
                generation,
                batch: batch + i as u64,
                messages,
                dead_letter,
                marked: 0,
            });
        }
    }
}

mod steps;
