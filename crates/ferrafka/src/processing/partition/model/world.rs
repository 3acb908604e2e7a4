//! The model test's world: librdkafka, the executors and the listener, simulated, and the
//! bookkeeping the invariants are checked against.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use super::super::tests::settings;
use super::super::*;
use super::{Finish, LOG_START, MAX_RETRIES, Op};

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

/// The simulated librdkafka, executors and listener, plus what the invariants need.
pub(super) struct World {
    machine: Option<Partition>,
    generation: u64,
    now: Instant,
    /// The log: each offset's content version (a truncation re-uses offsets for new content).
    log: Vec<u32>,
    position: i64,
    /// librdkafka's application pause: kept across revocations and assignments.
    fetch_paused: bool,
    committed: i64,
    /// The last offset stored by the current assignment (a new one starts without any).
    stored: i64,
    /// Every offset below this was stored by some assignment after it was processed or
    /// skipped on purpose.
    accepted: i64,
    running: Vec<SimBatch>,
    /// The highest mark of the run's batches that ran so far.
    run_mark: Option<i64>,
    /// Messages (offset, version) that succeeded or were dead-lettered.
    done: BTreeSet<(i64, u32)>,
    /// Offsets the current assignment's consumer skipped on purpose with a seek.
    skipped: BTreeSet<i64>,
    /// A truncation the machine has not seen yet (no message fetched since): where it
    /// starts, and the log before it. Until a message arrives nobody can know, so stores
    /// covering the old messages are still right.
    unseen_truncation: Option<(i64, Vec<u32>)>,
    /// How often each message (offset, version) succeeded.
    successes: HashMap<(i64, u32), u32>,
    /// Events that may make a message run again: rebalances, restarts, position moves, seeks.
    disruptions: u32,
    alone_failures: HashMap<(u64, i64), u32>,
    endless_pause: bool,
    quiet: bool,
    stopped: bool,
    dead_letter: bool,
    run_messages: usize,
}

impl World {
    pub(super) fn new(dead_letter: bool, run_messages: usize) -> Self {
        let mut world = World {
            machine: None,
            generation: 0,
            now: Instant::now(),
            log: vec![0; LOG_START as usize],
            position: 0,
            fetch_paused: false,
            committed: 0,
            stored: -1,
            accepted: 0,
            running: Vec::new(),
            run_mark: None,
            done: BTreeSet::new(),
            skipped: BTreeSet::new(),
            unseen_truncation: None,
            successes: HashMap::new(),
            disruptions: 0,
            alone_failures: HashMap::new(),
            endless_pause: false,
            quiet: false,
            stopped: false,
            dead_letter,
            run_messages,
        };
        world.assign();
        world
    }

    fn log_end(&self) -> i64 {
        self.log.len() as i64
    }

    fn settings(&self) -> PartitionSettings {
        PartitionSettings {
            dead_letter_retries: self.dead_letter.then_some(MAX_RETRIES),
            run_messages: self.run_messages,
            ..settings()
        }
    }

    /// The group assigns the partition (again); librdkafka keeps its pause.
    fn assign(&mut self) {
        if self.machine.is_some() || self.stopped {
            return;
        }
        self.generation += 1;
        let previous_running = !self.running.is_empty();
        let mut p = Partition::new(
            "t".into(),
            0,
            self.generation,
            self.settings(),
            previous_running,
        );
        let mut out = Vec::new();
        p.on_assigned(self.quiet, &mut out);
        self.machine = Some(p);
        self.position = self.committed;
        self.stored = -1;
        self.skipped.clear();
        self.endless_pause = false;
        self.apply(out, true);
    }

    /// The process restarts: a new librdkafka (nothing paused), its executors gone.
    fn restart(&mut self) {
        if let Some(mut m) = self.machine.take() {
            m.revoke();
        }
        if self.stored >= 0 {
            self.committed = self.stored;
        }
        self.running.clear();
        self.run_mark = None;
        self.fetch_paused = false;
        self.quiet = false;
        self.stopped = false;
        self.disruptions += 1;
        self.assign();
    }

    fn message(&self, offset: i64) -> Message {
        Message::builder("t", 0, offset)
            .payload(self.log[offset as usize].to_string().into_bytes())
            .build()
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
                            SeekTo::Offset(o) => o.min(self.log_end()),
                            SeekTo::Earliest => 0,
                            _ => unreachable!("not generated"),
                        };
                        assert!(target >= 0, "negative seek reached librdkafka");
                        // Seeking forward skips messages on purpose; seeking back asks for
                        // them again.
                        self.skipped.retain(|o| *o < target);
                        self.skipped.extend(0..target);
                        // The seek sets the position: whatever lives below it now is skipped.
                        self.unseen_truncation = None;
                        self.position = target;
                        self.disruptions += 1;
                    }
                    let machine = self.machine.as_mut().expect("seek from a live machine");
                    machine.on_seek_result(seek_ok, self.now, &mut effects);
                }
            }
            i += 1;
        }
        if let Some(m) = &self.machine {
            assert_eq!(
                m.fetch_paused(),
                self.fetch_paused,
                "the machine's fetch pause differs from librdkafka's"
            );
        }
    }

    fn dispatch(&mut self, batch: u64, work: Work) {
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
                let max = self.settings().max_messages;
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
        let all: Vec<i64> = batches.iter().flatten().map(|m| m.0).collect();
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
        for (i, messages) in batches.into_iter().enumerate() {
            self.running.push(SimBatch {
                generation: self.generation,
                batch: batch + i as u64,
                messages,
                dead_letter,
                marked: 0,
            });
        }
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

    /// `messages` succeeded (or were dead-lettered): each at most once more than the events
    /// that may repeat work.
    fn succeeded(&mut self, messages: impl Iterator<Item = (i64, u32)>) {
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

    pub(super) fn step(&mut self, op: Op) {
        let mut out = Vec::new();
        match op {
            Op::Fetch(n) => {
                if self.machine.is_none() || self.fetch_paused || self.stopped {
                    return;
                }
                for _ in 0..n {
                    if self.position >= self.log_end() {
                        break;
                    }
                    if let Some((at, _)) = self.unseen_truncation.take() {
                        // The machine sees the truncation now: what a seek skipped there was
                        // the old content, the new one must run.
                        self.skipped.retain(|o| *o < at);
                    }
                    let message = self.message(self.position);
                    let m = self.machine.as_mut().expect("checked above");
                    m.on_message(message, self.now, &mut out);
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
                let mark = b.first() + n as i64;
                self.done.extend(b.below(mark));
                self.running[0].marked = self.running[0].marked.max(mark);
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
                    mark: Some(LOG_START),
                    requests: vec![PartitionRequest::Resume],
                };
                m.on_report(report, self.now, &mut out);
                assert!(out.is_empty(), "a stale report had effects: {out:?}");
            }
            Op::Revoke { finish_first } => return self.revoke(finish_first),
            Op::Assign => return self.assign(),
            Op::PositionBack { by, truncate } => return self.position_back(by, truncate),
            Op::Produce => self.log.push(0),
            Op::Quiet => {
                let Some(m) = self.machine.as_mut() else {
                    return;
                };
                m.quiet(self.now, &mut out);
                self.quiet = true;
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

    /// librdkafka's position moves back on its own. A truncation never reaches below what the
    /// group committed or stored (a loss there is Kafka's, not the consumer's).
    fn position_back(&mut self, by: i64, truncate: bool) {
        if self.machine.is_none() || self.fetch_paused {
            return;
        }
        let floor = if truncate {
            self.committed.max(self.stored).max(self.accepted)
        } else {
            0
        };
        let to = (self.position - by).max(floor);
        if to >= self.position {
            return;
        }
        if truncate {
            let old = match self.unseen_truncation.take() {
                Some((at, old)) => (at.min(to), old),
                None => (to, self.log.clone()),
            };
            self.unseen_truncation = Some(old);
            for version in &mut self.log[to as usize..] {
                *version += 1;
            }
        }
        self.position = to;
        self.disruptions += 1;
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
            Some(b.end())
        } else {
            Some(b.first() + f.marked as i64).filter(|_| f.marked > 0)
        };
        let outcome = match (b.dead_letter, f.ok) {
            (true, true) => Outcome::DeadLettered,
            (true, false) => Outcome::DeadLetterFailed("no broker".into()),
            (false, true) => Outcome::Consumed,
            (false, false) => Outcome::Failed("boom".into()),
        };
        if f.ok {
            self.succeeded(b.below(i64::MAX));
        } else {
            self.succeeded(b.below(mark.unwrap_or(0).max(b.marked)));
        }
        if !f.ok && !b.dead_letter && b.messages.len() == 1 {
            *self
                .alone_failures
                .entry((b.generation, b.first()))
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
        self.disruptions += 1;
    }

    /// From now on consumers are healthy: a quiet or stopped process restarts, an endless
    /// consumer pause ends with a rebalance. Every message must then be processed (or skipped
    /// on purpose) and the stored offset must reach the end of the log.
    pub(super) fn settle(&mut self) {
        if self.stopped || self.quiet {
            self.restart();
        }
        if self.endless_pause {
            self.revoke(false);
        }
        // A message after everything: a seek to the end leaves something to store.
        self.log.push(0);
        for _ in 0..(self.log_end() * 4) {
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
            if self.stored == self.log_end() && self.running.is_empty() {
                return;
            }
        }
        panic!(
            "stalled: stored {} of {}, position {}, librdkafka paused {}, machine {:?}",
            self.stored,
            self.log_end(),
            self.position,
            self.fetch_paused,
            self.machine
        );
    }
}
