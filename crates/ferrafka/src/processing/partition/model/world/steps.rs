//! The world's events: what librdkafka, the executors, the group and the operator do.

use super::*;

impl World {
    pub(in crate::processing::partition::model) fn step(&mut self, op: Op) {
        match op {
            Op::Fetch(n) => self.fetch(n),
            Op::Tick(dt) => {
                self.now += dt;
                self.driver.tick(&self.kafka, self.now);
                if let Some(t) = self.machine().and_then(|m| m.next_wakeup(self.now)) {
                    assert!(t > self.now, "wake-up {t:?} not after now {:?}", self.now);
                }
            }
            Op::Finish(f) => self.finish(f),
            Op::Mark(n) => self.mark(n),
            Op::StaleReport => self.stale_report(),
            Op::Revoke { finish_first } => self.revoke(finish_first),
            Op::Assign => self.assign(),
            Op::PositionBack { by, truncate } => self.position_back(by, truncate),
            Op::Produce => self.kafka.0.borrow_mut().log.push(0),
            Op::Quiet => {
                if self.assigned {
                    self.driver.quiet(&self.kafka, self.now);
                    self.quiet = true;
                }
            }
            Op::Shutdown => {
                if self.assigned {
                    self.driver.drain_all();
                    self.stopped = true;
                }
            }
            Op::Gathering(gathering) => self.driver.set_gathering(&self.kafka, gathering, self.now),
            Op::StaleFetch(n) => self.stale_fetch(n),
            Op::ExecutorDies => self.executor_dies(),
        }
        self.after_event();
    }

    fn fetch(&mut self, n: usize) {
        if !self.assigned || self.kafka.0.borrow().fetch_paused || self.stopped {
            return;
        }
        for _ in 0..n {
            let offset = {
                let mut kafka = self.kafka.0.borrow_mut();
                if kafka.position >= kafka.log_end() || kafka.fetch_paused {
                    break;
                }
                if let Some((at, _)) = kafka.unseen_truncation.take() {
                    // The machine sees the truncation now: what a seek skipped there was
                    // the old content, the new one must run.
                    kafka.skipped.retain(|o| *o < at);
                }
                kafka.position += 1;
                kafka.position - 1
            };
            let fetched = std::iter::once((self.driver.epoch(), self.message(offset)));
            let received = (SystemTime::now(), self.now);
            self.driver.on_burst(&self.kafka, fetched, received);
            self.after_event();
        }
    }

    /// Messages polled before the last assignment or seek arrive now, tagged with the epoch
    /// they were polled in; the driver must drop them.
    fn stale_fetch(&mut self, n: usize) {
        let (Some(epoch), true) = (self.kafka.0.borrow().stale_epoch, self.assigned) else {
            return;
        };
        let position = self.kafka.0.borrow().position;
        let stale = (position..position + n as i64).map(|o| (epoch, Self::message_of(o, STALE)));
        let calls = self.kafka.0.borrow().calls;
        self.driver
            .on_burst(&self.kafka, stale, (SystemTime::now(), self.now));
        assert_eq!(
            calls,
            self.kafka.0.borrow().calls,
            "stale messages had effects"
        );
    }

    /// The executor running the oldest batch ends without a report; the batch's work is lost
    /// (nothing of it was marked done by this end) and the driver must notice on its own.
    fn executor_dies(&mut self) {
        let Some(b) = self.running.first() else {
            return;
        };
        let generation = b.generation;
        if !b.dead_letter && self.running.len() == 1 && b.messages.len() == 1 {
            // The driver books the batch as failed when it notices.
            *self
                .alone_failures
                .entry((generation, b.first()))
                .or_default() += 1;
        }
        self.driver.workers().kill(generation);
        self.running.clear();
        self.cut = false;
        self.run_mark = None;
        self.stopping.remove(&generation);
    }

    fn mark(&mut self, n: usize) {
        let Some(b) = self.running.first().cloned() else {
            return;
        };
        if b.dead_letter || b.generation != self.generation() {
            return;
        }
        // A consumer may mark past its batch (by mistake): only its batch is done.
        let mark = b.first() + n as i64;
        self.kafka.0.borrow_mut().done.extend(b.below(mark));
        self.running[0].marked = self.running[0].marked.max(mark);
        let progress = ReportKind::Progress {
            batch: b.batch,
            mark,
        };
        self.report(b.generation, progress);
    }

    /// A report of a finished batch of an older assignment arrives: nothing may happen.
    fn stale_report(&mut self) {
        if !self.assigned {
            return;
        }
        let generation = self.generation().saturating_sub(1);
        let report = Report {
            generation,
            batch: 0,
            outcome: Outcome::Consumed,
            mark: Some(LOG_START),
            requests: vec![PartitionRequest::Resume],
        };
        let (calls, jobs) = (
            self.kafka.0.borrow().calls,
            self.driver.workers().jobs.len(),
        );
        self.report(generation, ReportKind::Finished(report));
        assert_eq!(
            (
                self.kafka.0.borrow().calls,
                self.driver.workers().jobs.len()
            ),
            (calls, jobs),
            "a stale report had effects"
        );
    }

    /// librdkafka's position moves back on its own. A truncation never reaches below what the
    /// group committed or stored (a loss there is Kafka's, not the consumer's).
    fn position_back(&mut self, by: i64, truncate: bool) {
        let mut kafka = self.kafka.0.borrow_mut();
        if !self.assigned || kafka.fetch_paused {
            return;
        }
        let floor = if truncate {
            kafka.committed.max(kafka.stored).max(kafka.accepted)
        } else {
            0
        };
        let to = (kafka.position - by).max(floor);
        if to >= kafka.position {
            return;
        }
        if truncate {
            let old = match kafka.unseen_truncation.take() {
                Some((at, old)) => (at.min(to), old),
                None => (to, kafka.log.clone()),
            };
            kafka.unseen_truncation = Some(old);
            for version in &mut kafka.log[to as usize..] {
                *version += 1;
            }
        }
        kafka.position = to;
        kafka.disruptions += 1;
    }

    /// The executor ends the oldest running batch.
    pub(super) fn finish(&mut self, f: Finish) {
        if self.running.is_empty() {
            return;
        }
        let b = self.running.remove(0);
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
        {
            let mut kafka = self.kafka.0.borrow_mut();
            if f.ok {
                kafka.succeeded(b.below(i64::MAX));
            } else {
                kafka.succeeded(b.below(mark.unwrap_or(0).max(b.marked)));
            }
        }
        if !f.ok && !b.dead_letter && b.messages.len() == 1 {
            *self
                .alone_failures
                .entry((b.generation, b.first()))
                .or_default() += 1;
        }
        let current = self.assigned && self.generation() == b.generation;
        self.run_mark = self.run_mark.max(mark);
        let cut = f.cut || self.cut || self.stopping.contains(&b.generation);
        let goes_on = f.ok && !b.dead_letter && f.request.is_none() && !cut;
        if goes_on && !self.running.is_empty() {
            // The executor starts the run's next batch; this one's mark reaches the driver as
            // progress.
            if let Some(mark) = mark {
                let calls = self.kafka.0.borrow().calls;
                let progress = ReportKind::Progress {
                    batch: b.batch,
                    mark,
                };
                self.report(b.generation, progress);
                assert!(
                    current || calls == self.kafka.0.borrow().calls,
                    "a stale mark had effects"
                );
            }
            return self.after_event();
        }
        // The run ends here: its other batches never ran.
        self.running.clear();
        self.cut = false;
        let requests: Vec<_> = f.request.into_iter().collect();
        let report = Report {
            generation: b.generation,
            batch: b.batch,
            outcome,
            mark: self.run_mark.take(),
            requests: requests.clone(),
        };
        self.kafka.0.borrow_mut().seek_ok = f.seek_ok;
        let calls = self.kafka.0.borrow().calls;
        // Stale reports go to the driver too: it must ignore them on its own.
        self.report(b.generation, ReportKind::Finished(report));
        self.kafka.0.borrow_mut().seek_ok = true;
        if current {
            self.note_pause_requests(&requests);
        } else {
            assert_eq!(
                calls,
                self.kafka.0.borrow().calls,
                "a stale report had effects"
            );
        }
        if self.stopping.remove(&b.generation) {
            self.report_stopped(b.generation);
        }
        self.after_event();
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

    /// The group revokes the partition, as the listener does: runs are cut, the running batch
    /// may finish within the revocation timeout, offsets are committed, the partition is
    /// released.
    fn revoke(&mut self, finish_first: bool) {
        if !self.assigned {
            return;
        }
        self.driver.revoke_begin(&p0());
        self.after_event();
        if finish_first && !self.running.is_empty() {
            self.finish(Finish {
                ok: true,
                marked: 0,
                request: None,
                seek_ok: true,
                cut: true,
            });
        }
        use crate::processing::driver::PartitionClient;
        self.kafka.commit_sync("g");
        self.driver.revoke_end("g", &p0(), Duration::ZERO);
        self.assigned = false;
        self.kafka.0.borrow_mut().disruptions += 1;
        self.after_event();
    }

    /// From now on consumers are healthy: a quiet or stopped process restarts, an endless
    /// consumer pause ends with a rebalance. Every message must then be processed (or skipped
    /// on purpose) and the stored offset must reach the end of the log.
    pub(in crate::processing::partition::model) fn settle(&mut self) {
        if self.stopped || self.quiet {
            self.restart();
        }
        if self.endless_pause {
            self.revoke(false);
        }
        // A message after everything: a seek to the end leaves something to store.
        self.kafka.0.borrow_mut().log.push(0);
        let rounds = self.kafka.0.borrow().log_end() * 4;
        for _ in 0..rounds {
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
            let kafka = self.kafka.0.borrow();
            if kafka.stored == kafka.log_end() && self.running.is_empty() {
                return;
            }
        }
        let kafka = self.kafka.0.borrow();
        panic!(
            "stalled: stored {} of {}, position {}, librdkafka paused {}, machine {:?}",
            kafka.stored,
            kafka.log_end(),
            kafka.position,
            kafka.fetch_paused,
            self.machine()
        );
    }
}
