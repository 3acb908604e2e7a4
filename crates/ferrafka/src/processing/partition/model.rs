//! A randomized model test of the partition state machine: long random sequences of fetches,
//! successes, failures, marks, revocations, re-assignments, seeks, offset resets, pauses,
//! quiet mode, shutdown, runs of batches (with cuts) and the listener's gathering, against a
//! simulated librdkafka and executor. After every step it checks the machine's invariants (see
//! the module docs of `partition`); at the end of a run that can still make progress, it
//! checks that every message gets processed.
//!
//! `FERRAFKA_MODEL_CASES=100000 cargo test -p ferrafka --lib model` runs more cases.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::tests::{message, settings};
use super::*;

/// Messages in the simulated partition.
const LOG_END: i64 = 40;
const MAX_RETRIES: u32 = 1;

#[derive(Debug, Clone)]
enum Op {
    Fetch(usize),
    Tick(Duration),
    /// Ends the oldest running batch (the current batch of a run).
    Finish(Finish),
    /// The running batch marks a fraction of itself and goes on.
    Mark(usize),
    /// A report of a finished batch of an older assignment arrives at the current machine.
    StaleReport,
    Revoke {
        finish_first: bool,
    },
    Assign,
    /// librdkafka's position moves back by this much on its own (offset reset).
    PositionBack(i64),
    Quiet,
    Shutdown,
    /// The listener begins or ends taking messages from librdkafka's queue.
    Gathering(bool),
}

#[derive(Debug, Clone)]
struct Finish {
    ok: bool,
    /// How many messages from the batch's first the consumer marked before the outcome; more
    /// than the batch holds is a consumer marking past its batch, which must store nothing
    /// past it.
    marked: usize,
    request: Option<PartitionRequest>,
    seek_ok: bool,
    /// The listener cut the run: the executor reports instead of starting the run's next batch.
    cut: bool,
}

fn request() -> impl Strategy<Value = Option<PartitionRequest>> {
    prop_oneof![
        6 => Just(None),
        1 => prop_oneof![Just(0u64), Just(500), Just(5_000)]
            .prop_map(|ms| Some(PartitionRequest::Pause(Duration::from_millis(ms)))),
        1 => Just(Some(PartitionRequest::Pause(Duration::MAX))),
        1 => Just(Some(PartitionRequest::Resume)),
        2 => (-1i64..LOG_END + 2).prop_map(|o| Some(PartitionRequest::Seek(SeekTo::Offset(o)))),
        1 => Just(Some(PartitionRequest::Seek(SeekTo::Earliest))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let finish = (
        any::<bool>(),
        0usize..6,
        request(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ok, marked, request, seek_ok, cut)| {
            Op::Finish(Finish {
                ok,
                marked,
                request,
                seek_ok,
                cut,
            })
        });
    prop_oneof![
        8 => (1usize..8).prop_map(Op::Fetch),
        6 => prop_oneof![Just(0u64), Just(50), Just(100), Just(1_000), Just(10_000)]
            .prop_map(|ms| Op::Tick(Duration::from_millis(ms))),
        10 => finish,
        2 => (0usize..6).prop_map(Op::Mark),
        1 => Just(Op::StaleReport),
        1 => any::<bool>().prop_map(|finish_first| Op::Revoke { finish_first }),
        2 => Just(Op::Assign),
        1 => (1i64..6).prop_map(Op::PositionBack),
        1 => Just(Op::Quiet),
        1 => Just(Op::Shutdown),
        3 => any::<bool>().prop_map(Op::Gathering),
    ]
}

/// A batch the simulated executor works on (all of them belong to one run).
#[derive(Debug, Clone)]
struct SimBatch {
    generation: u64,
    batch: u64,
    offsets: Vec<i64>,
    dead_letter: bool,
}

impl SimBatch {
    fn end(&self) -> i64 {
        self.offsets[self.offsets.len() - 1] + 1
    }
}

/// librdkafka, the executors and the listener, simulated, plus what the invariants need.
struct World {
    machine: Option<Partition>,
    generation: u64,
    now: Instant,
    position: i64,
    fetch_paused: bool,
    committed: i64,
    /// The last offset stored by the current assignment (a new one starts without any).
    stored: i64,
    running: Vec<SimBatch>,
    /// The highest mark of the run's batches that ran so far.
    run_mark: Option<i64>,
    /// Offsets that succeeded, were dead-lettered, or were skipped by a consumer's seek.
    done: BTreeSet<i64>,
    alone_failures: HashMap<(u64, i64), u32>,
    endless_pause: bool,
    stopped: bool,
    dead_letter: bool,
    run_messages: usize,
}

impl World {
    fn new(dead_letter: bool, run_messages: usize) -> Self {
        let mut world = World {
            machine: None,
            generation: 0,
            now: Instant::now(),
            position: 0,
            fetch_paused: false,
            committed: 0,
            stored: -1,
            running: Vec::new(),
            run_mark: None,
            done: BTreeSet::new(),
            alone_failures: HashMap::new(),
            endless_pause: false,
            stopped: false,
            dead_letter,
            run_messages,
        };
        world.assign();
        world
    }

    fn settings(&self) -> PartitionSettings {
        PartitionSettings {
            dead_letter_retries: self.dead_letter.then_some(MAX_RETRIES),
            run_messages: self.run_messages,
            ..settings()
        }
    }

    fn assign(&mut self) {
        if self.machine.is_some() || self.stopped {
            return;
        }
        self.generation += 1;
        let previous_running = !self.running.is_empty();
        let p = Partition::new(
            "t".into(),
            0,
            self.generation,
            self.settings(),
            previous_running,
        );
        self.machine = Some(p);
        self.position = self.committed;
        self.stored = -1;
        self.fetch_paused = false;
        self.endless_pause = false;
    }

    /// Carries out effects like the listener does, checking the invariants on the way.
    fn apply(&mut self, mut effects: Vec<Effect>, seek_ok: bool) {
        let mut i = 0;
        while i < effects.len() {
            // Taken out like the listener does (effects are not `Clone`).
            match std::mem::replace(&mut effects[i], Effect::Resume) {
                Effect::Dispatch { batch, work } => self.dispatch(batch, work),
                Effect::Pause => self.fetch_paused = true,
                Effect::Resume => self.fetch_paused = false,
                Effect::Store(next) => self.store(next),
                Effect::Seek(to) => {
                    if seek_ok {
                        let target = match to {
                            SeekTo::Offset(o) => o.min(LOG_END),
                            SeekTo::Earliest => 0,
                            _ => unreachable!("not generated"),
                        };
                        assert!(target >= 0, "negative seek reached librdkafka");
                        // Seeking forward skips messages on purpose.
                        self.done.extend(0..target);
                        self.position = target;
                    }
                    let machine = self.machine.as_mut().expect("seek from a live machine");
                    machine.on_seek_result(seek_ok, self.now, &mut effects);
                }
            }
            i += 1;
        }
    }

    fn dispatch(&mut self, batch: u64, work: Work) {
        assert!(
            self.running.is_empty(),
            "batch {batch} started while {:?} runs",
            self.running
        );
        let offsets = |m: &Messages| m.iter().map(|m| m.offset).collect::<Vec<_>>();
        let (batches, dead_letter) = match &work {
            Work::Consume(m) => (vec![offsets(m)], false),
            Work::Run(run) => {
                assert!(run.len() > 1, "a run of one batch");
                let max = self.settings().max_messages;
                assert!(
                    run.iter()
                        .all(|b| b.len() == max && b.metadata.attempt == 1),
                    "a run of partial or retried batches"
                );
                (run.iter().map(offsets).collect(), false)
            }
            Work::DeadLetter { message, .. } => (vec![vec![message[0].offset]], true),
        };
        let all: Vec<i64> = batches.iter().flatten().copied().collect();
        assert!(
            all.len() <= self.run_messages.max(self.settings().max_messages),
            "a run longer than run_messages: {batches:?}"
        );
        if dead_letter {
            let failures = self.alone_failures.get(&(self.generation, all[0]));
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
        for (i, offsets) in batches.into_iter().enumerate() {
            self.running.push(SimBatch {
                generation: self.generation,
                batch: batch + i as u64,
                offsets,
                dead_letter,
            });
        }
    }

    fn store(&mut self, next: i64) {
        assert!(next > self.stored, "stored {next} after {}", self.stored);
        if let Some(missing) = (0..next).find(|o| !self.done.contains(o)) {
            panic!("stored {next} but offset {missing} neither succeeded nor was dead-lettered");
        }
        self.stored = next;
    }

    fn step(&mut self, op: Op) {
        let mut out = Vec::new();
        match op {
            Op::Fetch(n) => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                if self.fetch_paused || self.stopped {
                    return;
                }
                for _ in 0..n {
                    if self.position >= LOG_END {
                        break;
                    }
                    m.on_message(message(self.position), self.now, &mut out);
                    self.position += 1;
                }
            }
            Op::Tick(dt) => {
                self.now += dt;
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                m.on_tick(self.now, &mut out);
                self.apply(std::mem::take(&mut out), true);
                let m = self.machine.as_ref().expect("still there");
                if let Some(t) = m.next_wakeup(self.now) {
                    assert!(t > self.now, "wake-up {t:?} not after now {:?}", self.now);
                }
                return;
            }
            Op::Finish(f) => return self.finish(f),
            Op::Mark(n) => {
                let Some(b) = self.running.first().cloned() else {
                    return;
                };
                if b.dead_letter || b.generation != self.generation {
                    return;
                }
                // A consumer may mark past its batch (by mistake): only its batch is done.
                let mark = b.offsets[0] + n as i64;
                self.done.extend(b.offsets[0]..mark.min(b.end()));
                if let Some(m) = self.machine.as_mut() {
                    m.on_mark(b.generation, b.batch, mark, &mut out);
                }
            }
            Op::StaleReport => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                let report = Report {
                    generation: m.generation().saturating_sub(1),
                    batch: 0,
                    outcome: Outcome::Consumed,
                    mark: Some(LOG_END),
                    requests: vec![PartitionRequest::Resume],
                };
                m.on_report(report, self.now, &mut out);
                assert!(out.is_empty(), "a stale report had effects: {out:?}");
            }
            Op::Revoke { finish_first } => return self.revoke(finish_first),
            Op::Assign => self.assign(),
            Op::PositionBack(by) => {
                if self.machine.is_some() && !self.fetch_paused {
                    self.position = (self.position - by).max(0);
                }
            }
            Op::Quiet => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                m.quiet(self.now, &mut out);
                self.stopped = true;
            }
            Op::Shutdown => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                m.drain();
                self.stopped = true;
            }
            Op::Gathering(gathering) => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                m.set_gathering(gathering, self.now, &mut out);
            }
        }
        self.apply(out, true);
    }

    fn finish(&mut self, f: Finish) {
        if self.running.is_empty() {
            return;
        }
        let b = self.running.remove(0);
        let mut out = Vec::new();
        let mark = if b.dead_letter {
            None
        } else if f.ok {
            Some(b.offsets[b.offsets.len() - 1] + 1)
        } else {
            Some(b.offsets[0] + f.marked as i64).filter(|_| f.marked > 0)
        };
        let outcome = match (b.dead_letter, f.ok) {
            (true, true) => Outcome::DeadLettered,
            (true, false) => Outcome::DeadLetterFailed("no broker".into()),
            (false, true) => Outcome::Consumed,
            (false, false) => Outcome::Failed("boom".into()),
        };
        if f.ok {
            self.done.extend(b.offsets.iter().copied());
        } else if let Some(mark) = mark {
            self.done.extend(b.offsets[0]..mark.min(b.end()));
        }
        if !f.ok && !b.dead_letter && b.offsets.len() == 1 {
            *self
                .alone_failures
                .entry((b.generation, b.offsets[0]))
                .or_default() += 1;
        }
        let current = self.machine.as_ref().map(|m| m.generation()) == Some(b.generation);
        self.run_mark = self.run_mark.max(mark);
        let goes_on = f.ok && !b.dead_letter && f.request.is_none() && !f.cut;
        if goes_on && !self.running.is_empty() {
            // The executor starts the run's next batch; this one's mark reaches the listener
            // as progress.
            if let (Some(m), Some(mark)) = (self.machine.as_mut(), mark) {
                m.on_mark(b.generation, b.batch, mark, &mut out);
                assert!(
                    current || out.is_empty(),
                    "a stale mark had effects: {out:?}"
                );
            }
            return self.apply(out, true);
        }
        // The run ends here: its other batches never ran.
        self.running.clear();
        let requests: Vec<_> = f.request.into_iter().collect();
        let report = Report {
            generation: b.generation,
            batch: b.batch,
            outcome,
            mark: self.run_mark.take(),
            requests: requests.clone(),
        };
        if let Some(m) = self.machine.as_mut() {
            // Stale reports go to the machine too: it must ignore them on its own.
            m.on_report(report, self.now, &mut out);
            if current {
                self.note_pause_requests(&requests);
            } else {
                assert!(out.is_empty(), "a stale report had effects: {out:?}");
                m.on_previous_stopped(self.now, &mut out);
            }
        }
        self.apply(out, f.seek_ok);
    }

    fn note_pause_requests(&mut self, requests: &[PartitionRequest]) {
        for r in requests {
            match r {
                PartitionRequest::Pause(d) if *d == Duration::MAX => self.endless_pause = true,
                PartitionRequest::Resume => self.endless_pause = false,
                _ => {}
            }
        }
    }

    fn revoke(&mut self, finish_first: bool) {
        let Some(m) = self.machine.as_mut() else {
            return;
        };
        m.drain();
        if finish_first && !self.running.is_empty() {
            self.finish(Finish {
                ok: true,
                marked: 0,
                request: None,
                seek_ok: true,
                cut: true,
            });
        }
        let mut m = self.machine.take().expect("checked above");
        m.revoke();
        if self.stored >= 0 {
            self.committed = self.stored;
        }
    }

    /// Where the group would resume: the last stored offset, or the last committed one.
    fn committed_position(&self) -> i64 {
        if self.stored >= 0 {
            self.stored
        } else {
            self.committed
        }
    }

    /// Runs everything to the end with healthy consumers: every message must get stored.
    fn settle(&mut self) {
        if self.stopped || self.endless_pause {
            return;
        }
        for _ in 0..(LOG_END * 4) {
            self.assign();
            self.step(Op::Fetch(8));
            self.step(Op::Tick(Duration::from_secs(10)));
            self.finish(Finish {
                ok: true,
                marked: 0,
                request: None,
                seek_ok: true,
                cut: false,
            });
            // Done when every message ran (or was skipped by a seek) and the consumer is at
            // the end; the stored offset may lag after a seek past the last message, which
            // only means re-processing after a restart.
            let all_done = (0..LOG_END).all(|o| self.done.contains(&o));
            if all_done && self.position == LOG_END && self.running.is_empty() {
                return;
            }
        }
        panic!(
            "stalled at {} of {LOG_END}, position {}, machine {:?}",
            self.committed_position(),
            self.position,
            self.machine
        );
    }
}

fn cases() -> u32 {
    std::env::var("FERRAFKA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn partition_machine_keeps_its_invariants(
        dead_letter in any::<bool>(),
        run_messages in prop_oneof![Just(3usize), Just(9), Just(40)],
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut world = World::new(dead_letter, run_messages);
        for op in ops {
            world.step(op);
        }
        world.settle();
    }
}
