//! The listener's executors: starting them, replacing one that ended without a report, and
//! stopping them all (shutdown, a fatal error) without destroying the client while any task
//! may still hold its messages.

use super::*;

/// An executor of an earlier assignment (or of a client abandoned after a fatal error) that
/// has not stopped yet.
pub(in crate::connection) struct Retired {
    pub(in crate::connection) topic: Arc<str>,
    pub(in crate::connection) partition: i32,
    pub(in crate::connection) generation: u64,
    pub(in crate::connection) task: tokio::task::JoinHandle<()>,
}

/// What starting a partition's executor takes.
pub(in crate::connection) struct Executors {
    pub(in crate::connection) config: Arc<Config>,
    pub(in crate::connection) runtime: tokio::runtime::Handle,
    pub(in crate::connection) producer: Producer,
    pub(in crate::connection) workers: Arc<Semaphore>,
    pub(in crate::connection) reports: ReportSink,
    /// Every task that may hold the client's messages, until its future is dropped.
    pub(in crate::connection) tasks: TaskTracker,
}

impl Executors {
    /// Starts an executor task for the partition of `handle`; returns its job queue and task.
    pub(super) fn spawn(
        &self,
        topic: &Arc<Topic>,
        handle: &Arc<PartitionHandle>,
    ) -> (UnboundedSender<Job>, tokio::task::JoinHandle<()>) {
        let (jobs, rx) = unbounded_channel();
        let executor = Executor {
            config: self.config.clone(),
            topic: topic.clone(),
            handle: handle.clone(),
            producer: self.producer.clone(),
            workers: self.workers.clone(),
            reports: self.reports.clone(),
            tasks: self.tasks.clone(),
        };
        let task = self
            .runtime
            .spawn(self.tasks.track_future(executor.run(rx)));
        (jobs, task)
    }
}

impl State {
    /// Gives a partition whose executor task ended without saying it stopped (a panic outside
    /// the executor's guards, an abort) a new executor; the batch it ran counts as failed, so
    /// it is retried. Without this the partition would wait for a report forever.
    pub(super) fn replace_dead_executors(&mut self, consumer: &dyn PartitionClient, now: Instant) {
        let mut effects = std::mem::take(&mut self.effects);
        for slots in self.topics.values_mut() {
            for slot in slots.partitions.values_mut() {
                if slot.stopped || !slot.task.is_finished() {
                    continue;
                }
                let (topic, partition) = (&slots.topic.name, slot.handle.partition);
                tracing::error!(
                    topic = %topic, partition,
                    "the partition's executor ended without a report; starting a new one, its batch is retried"
                );
                (slot.jobs, slot.task) = self.executors.spawn(&slots.topic, &slot.handle);
                if let Some(batch) = slot.machine.running_batch() {
                    let report = Report {
                        generation: slot.machine.generation(),
                        batch,
                        outcome: Outcome::Failed("the executor ended without a report".into()),
                        mark: None,
                        requests: Vec::new(),
                    };
                    slot.machine.on_report(report, now, &mut effects);
                    apply(consumer, slot, &mut effects);
                }
            }
        }
        self.effects = effects;
    }

    /// Fault drill: ends every executor task without a report.
    #[cfg(feature = "testing")]
    pub(in crate::connection) fn abort_executors(&mut self) {
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.task.abort();
        }
    }

    /// Forgets every partition after a fatal error: running batches can no longer mark (their
    /// work is redone by whoever gets the partition), executors stop without hooks.
    pub(in crate::connection) fn abandon_all(&mut self) {
        for slots in self.topics.values_mut() {
            for (_, mut slot) in slots.partitions.drain() {
                slot.handle.revoked.store(true, Ordering::Release);
                slot.machine.revoke();
                slot.task.abort();
                self.retired.push(Retired {
                    topic: slot.handle.topic.clone(),
                    partition: slot.handle.partition,
                    generation: slot.machine.generation(),
                    task: slot.task,
                });
            }
        }
        for retired in &self.retired {
            retired.task.abort();
        }
    }

    /// What an abandoned client's state hands to its successor: executors that an abort has
    /// not ended yet (stuck in user code), so a new assignment of their partitions waits for
    /// them, and the next generation number, so reports never mix.
    pub(in crate::connection) fn hand_over(&mut self) -> (Vec<Retired>, u64) {
        let unfinished = self.retired.drain(..).filter(|r| !r.task.is_finished());
        (unfinished.collect(), self.next_generation)
    }

    /// Takes over what [`State::hand_over`] gave.
    pub(in crate::connection) fn take_over(
        &mut self,
        (retired, next_generation): (Vec<Retired>, u64),
    ) {
        self.retired.extend(retired);
        self.next_generation = self.next_generation.max(next_generation);
    }

    /// Drops every polled message the listener still holds (machines, their batches, the
    /// executors' queues) and waits until `deadline` for every task that may hold one to end:
    /// executors and their virtual-partition groups, which an abort ends only once they yield.
    /// True when no message is left, so the consumer may be destroyed: librdkafka's
    /// `rd_kafka_destroy` waits for outstanding messages.
    pub(in crate::connection) fn release_messages(&mut self, deadline: Instant) -> bool {
        for slots in self.topics.values_mut() {
            slots.partitions.clear();
        }
        while !self.executors.tasks.is_empty() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Runs `shutdown` hooks of idle executors and aborts running ones; true if any was
    /// aborted.
    pub(in crate::connection) fn stop_executors(
        &mut self,
        consumer: &dyn PartitionClient,
        deadline: Instant,
    ) -> bool {
        let mut forced = false;
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            if slot.machine.is_running() {
                // Its marks must not land after we commit: the batch is redone after restart.
                slot.handle.revoked.store(true, Ordering::Release);
                slot.machine.revoke();
                slot.task.abort();
                slot.stopped = true;
                forced = true;
            } else {
                let _ = slot.jobs.send(Job::Stop(FinalHook::Shutdown));
            }
        }
        while Instant::now() < deadline
            && self.topics.values().any(|s| {
                s.partitions
                    .values()
                    .any(|slot| !slot.stopped && !slot.task.is_finished())
            })
        {
            self.drain_reports(consumer, Some(deadline));
        }
        forced
    }
}

/// Forwards a running batch's marks to the listener as progress reports.
pub(super) fn mark_sink(
    reports: &ReportSink,
    topic: &Arc<str>,
    partition: i32,
    generation: u64,
) -> MarkSink {
    let reports = reports.clone();
    let topic = topic.clone();
    Box::new(move |batch, mark| {
        let report = ExecutorReport {
            topic: topic.clone(),
            partition,
            generation,
            kind: ReportKind::Progress { batch, mark },
        };
        reports.send(report);
    })
}
