//! The listener's partitions: one [`Partition`] state machine and one executor task per
//! assigned partition. This file feeds the machines their events and carries out their
//! [`Effect`]s on the librdkafka consumer; every decision is the machine's.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::message::BorrowedMessage;
use rustc_hash::FxHashMap as HashMap;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::client::{PartitionClient, PartitionTarget};
use crate::config::Config;
use crate::consumer::{MarkSink, PartitionHandle};
use crate::messages::{KafkaMessage, Message, TopicInfo};
use crate::processing::doorbell::Doorbell;
use crate::processing::executor::{
    Executor, ExecutorReport, FinalHook, Job, ReportKind, ReportSink,
};
use crate::processing::partition::{Effect, Outcome, Partition, PartitionSettings, Report};
use crate::producer::Producer;
use crate::routing::Topic;

/// The longest the listener sleeps while it has nothing to do: reports and librdkafka wake it
/// earlier (see `Doorbell`); this bounds how late it sees a stop request.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// A routed topic as the listener needs it.
pub(super) struct TopicSlots {
    pub(super) topic: Arc<Topic>,
    pub(super) info: Arc<TopicInfo>,
    pub(super) settings: PartitionSettings,
    pub(super) partitions: HashMap<i32, Slot>,
}

/// One assigned partition: its state machine and its executor.
pub(super) struct Slot {
    machine: Partition,
    target: PartitionTarget,
    /// The rebalance count when it was assigned: messages polled before belong to an earlier
    /// assignment.
    assigned_at: u64,
    handle: Arc<PartitionHandle>,
    jobs: UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
    /// The executor reported that it ran its final hook.
    stopped: bool,
}

/// An executor of an earlier assignment that has not stopped yet.
struct Retired {
    topic: Arc<str>,
    partition: i32,
    generation: u64,
    task: tokio::task::JoinHandle<()>,
}

/// Everything the listener thread keeps between polls.
pub(crate) struct State {
    pub(super) config: Arc<Config>,
    pub(super) topics: HashMap<Arc<str>, TopicSlots>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) producer: Producer,
    pub(super) workers: Arc<Semaphore>,
    pub(super) reports_tx: ReportSink,
    pub(super) reports: Receiver<ExecutorReport>,
    retired: Vec<Retired>,
    next_generation: u64,
    /// The listener is leaving its group: an assignment that still arrives starts nothing.
    pub(super) closing: bool,
    /// Reused for every event, so the hot path does not allocate.
    effects: Vec<Effect>,
    /// The listener is taking messages from librdkafka's queue (see `set_gathering`).
    gathering: bool,
}

impl State {
    pub(super) fn new(
        config: Arc<Config>,
        topics: HashMap<Arc<str>, TopicSlots>,
        runtime: tokio::runtime::Handle,
        producer: Producer,
        workers: Arc<Semaphore>,
        wake: Arc<Doorbell>,
    ) -> Self {
        let (reports_tx, reports) = std::sync::mpsc::channel();
        State {
            config,
            topics,
            runtime,
            producer,
            workers,
            reports_tx: ReportSink::new(reports_tx, wake),
            reports,
            retired: Vec::new(),
            next_generation: 1,
            closing: false,
            effects: Vec::new(),
            gathering: false,
        }
    }

    /// Starts a machine and an executor for each newly assigned partition; `rebalances` is the
    /// listener's rebalance count including this one.
    pub(super) fn assign(&mut self, group: &str, assigned: &[(String, i32)], rebalances: u64) {
        if self.closing {
            tracing::info!(subscription_group = group, partitions = ?assigned, "assigned while leaving the group: not processed, the next owner takes them");
            return;
        }
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
            let generation = self.next_generation;
            self.next_generation += 1;
            let name = slots.topic.name.clone();
            let previous_running = self
                .retired
                .iter()
                .any(|r| r.topic == name && r.partition == *partition);
            let handle = Arc::new(PartitionHandle::new(
                name.clone(),
                *partition,
                generation,
                mark_sink(&self.reports_tx, &name, *partition, generation),
            ));
            let (jobs, rx) = unbounded_channel();
            let executor = Executor {
                config: self.config.clone(),
                topic: slots.topic.clone(),
                handle: handle.clone(),
                producer: self.producer.clone(),
                workers: self.workers.clone(),
                reports: self.reports_tx.clone(),
            };
            let task = self.runtime.spawn(executor.run(rx));
            let mut machine = Partition::new(
                name,
                *partition,
                generation,
                slots.settings.clone(),
                previous_running,
            );
            // Gathering starts nothing, so there is no effect to carry out.
            machine.set_gathering(self.gathering, Instant::now(), &mut Vec::new());
            let slot = Slot {
                machine,
                target: PartitionTarget::new(slots.topic.name.clone(), *partition),
                assigned_at: rebalances,
                handle,
                jobs,
                task,
                stopped: false,
            };
            slots.partitions.insert(*partition, slot);
        }
        tracing::info!(subscription_group = group, partitions = ?assigned, "partitions assigned");
    }

    /// Gives revoked partitions' running batches up to `revocation_timeout` to finish, commits
    /// their marks, and releases them. A batch still running after that goes on, but its
    /// marks no longer count and the next assignment of its partition waits for it.
    pub(super) fn revoke(
        &mut self,
        consumer: &dyn PartitionClient,
        group: &str,
        revoked: &[(String, i32)],
    ) {
        let now = Instant::now();
        for (topic, partition) in revoked {
            if let Some(slot) = self.slot_mut(topic, *partition) {
                slot.machine.drain();
                let _ = slot.jobs.send(Job::Cut);
            }
        }
        let deadline = now + self.config.revocation_timeout;
        while Instant::now() < deadline
            && revoked
                .iter()
                .any(|(t, p)| self.slot_mut(t, *p).is_some_and(|s| s.machine.is_running()))
        {
            self.drain_reports(consumer, Some(deadline));
        }
        consumer.commit_sync(group);
        for (topic, partition) in revoked {
            let Some(mut slot) = self
                .topics
                .get_mut(topic.as_str())
                .and_then(|s| s.partitions.remove(partition))
            else {
                continue;
            };
            slot.handle.revoked.store(true, Ordering::Release);
            if slot.machine.revoke() {
                tracing::warn!(
                    subscription_group = group, topic, partition,
                    waited = ?self.config.revocation_timeout,
                    "partition revoked while its batch still runs; it can no longer mark, and the new owner processes it again"
                );
            }
            let _ = slot.jobs.send(Job::Stop(FinalHook::Revoked));
            self.retired.push(Retired {
                topic: slot.handle.topic.clone(),
                partition: *partition,
                generation: slot.machine.generation(),
                task: slot.task,
            });
        }
        tracing::info!(subscription_group = group, partitions = ?revoked, "partitions revoked");
    }

    /// Hands a poll burst's messages to their partitions' machines. Each message is kept as
    /// librdkafka's own (nothing is copied); the slot is looked up once per run of messages
    /// of one partition, not per message. A message polled before its partition's current
    /// assignment (`rebalances` is the rebalance count when it was polled) belongs to an
    /// earlier assignment and is dropped: the new one fetches from the committed offset.
    pub(super) fn on_burst<'c>(
        &mut self,
        consumer: &dyn PartitionClient,
        burst: impl Iterator<Item = (u64, BorrowedMessage<'c>)>,
        (received_at, now): (SystemTime, Instant),
    ) {
        let mut effects = std::mem::take(&mut self.effects);
        let mut current: Option<(usize, i32)> = None;
        let mut slot: Option<(&mut Slot, Arc<TopicInfo>)> = None;
        for (rebalances, polled) in burst {
            let message = KafkaMessage::keep(polled);
            let key = (message.topic_handle(), message.partition());
            if current != Some(key) {
                current = Some(key);
                slot = self.topics.get_mut(message.topic()).and_then(|slots| {
                    let info = slots.info.clone();
                    slots.partitions.get_mut(&key.1).map(|slot| (slot, info))
                });
            }
            let Some((slot, info)) = slot.as_mut() else {
                continue; // not assigned (any more)
            };
            if rebalances < slot.assigned_at {
                continue;
            }
            let message = Message::from_kafka(info.clone(), message, received_at);
            slot.machine.on_message(message, now, &mut effects);
            if !effects.is_empty() {
                apply(consumer, slot, &mut effects);
            }
        }
        self.effects = effects;
    }

    fn slot_mut(&mut self, topic: &str, partition: i32) -> Option<&mut Slot> {
        self.topics.get_mut(topic)?.partitions.get_mut(&partition)
    }

    /// Applies executor reports; waits for the first one until `wait_until` when given.
    pub(super) fn drain_reports(
        &mut self,
        consumer: &dyn PartitionClient,
        wait_until: Option<Instant>,
    ) {
        let first = match wait_until {
            Some(deadline) => match self
                .reports
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            },
            None => None,
        };
        let mut next = first.or_else(|| self.reports.try_recv().ok());
        while let Some(report) = next {
            self.on_report(consumer, report);
            next = self.reports.try_recv().ok();
        }
    }

    fn on_report(&mut self, consumer: &dyn PartitionClient, report: ExecutorReport) {
        let now = Instant::now();
        if let ReportKind::Stopped = report.kind {
            self.retired_stopped(
                consumer,
                &report.topic,
                report.partition,
                report.generation,
                now,
            );
        }
        let mut effects = std::mem::take(&mut self.effects);
        if let Some(slot) = self.slot_mut(&report.topic, report.partition)
            && slot.machine.generation() == report.generation
        {
            match report.kind {
                ReportKind::Progress { batch, mark } => {
                    slot.machine
                        .on_mark(report.generation, batch, mark, &mut effects)
                }
                ReportKind::Finished(r) => slot.machine.on_report(r, now, &mut effects),
                ReportKind::Stopped => slot.stopped = true,
            }
            apply(consumer, slot, &mut effects);
        }
        self.effects = effects;
    }

    /// An earlier assignment's executor stopped: a new assignment of its partition may start.
    fn retired_stopped(
        &mut self,
        consumer: &dyn PartitionClient,
        topic: &str,
        partition: i32,
        generation: u64,
        now: Instant,
    ) {
        let before = self.retired.len();
        self.retired.retain(|r| {
            !(r.generation == generation && &*r.topic == topic && r.partition == partition)
        });
        if self.retired.len() == before
            || self
                .retired
                .iter()
                .any(|r| &*r.topic == topic && r.partition == partition)
        {
            return;
        }
        let mut effects = std::mem::take(&mut self.effects);
        if let Some(slot) = self.slot_mut(topic, partition) {
            slot.machine.on_previous_stopped(now, &mut effects);
            apply(consumer, slot, &mut effects);
        }
        self.effects = effects;
    }

    /// Lets every machine act on the clock; retired executors that ended without a report
    /// (aborted, or their runtime is gone) count as stopped.
    pub(super) fn tick(&mut self, consumer: &dyn PartitionClient, now: Instant) {
        let ended: Vec<_> = self
            .retired
            .iter()
            .filter(|r| r.task.is_finished())
            .map(|r| (r.topic.clone(), r.partition, r.generation))
            .collect();
        for (topic, partition, generation) in ended {
            self.retired_stopped(consumer, &topic, partition, generation, now);
        }
        let mut effects = std::mem::take(&mut self.effects);
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.machine.on_tick(now, &mut effects);
            apply(consumer, slot, &mut effects);
        }
        self.effects = effects;
    }

    /// The listener began or ended taking messages from librdkafka's queue (see
    /// [`Partition::set_gathering`]); cheap when nothing changed.
    pub(super) fn set_gathering(
        &mut self,
        consumer: &dyn PartitionClient,
        gathering: bool,
        now: Instant,
    ) {
        if self.gathering == gathering {
            return;
        }
        self.gathering = gathering;
        let mut effects = std::mem::take(&mut self.effects);
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.machine.set_gathering(gathering, now, &mut effects);
            apply(consumer, slot, &mut effects);
        }
        self.effects = effects;
    }

    /// How long the listener should leave messages in librdkafka's queue: until the first
    /// partition whose backlog waits behind a young batch no longer asks it to
    /// ([`Partition::hold_fetch_until`]); `None` when polling is welcome.
    pub(super) fn hold_fetch(&self, now: Instant) -> Option<Duration> {
        self.topics
            .values()
            .flat_map(|s| s.partitions.values())
            .filter_map(|slot| slot.machine.hold_fetch_until())
            .filter(|until| *until > now)
            .min()
            .map(|until| until - now)
    }

    /// How long the listener may sleep before a machine's timer is due.
    pub(super) fn idle_wait(&self, now: Instant) -> Duration {
        let mut timeout = IDLE_WAIT;
        for slot in self.topics.values().flat_map(|s| s.partitions.values()) {
            if let Some(t) = slot.machine.next_wakeup(now) {
                timeout = timeout.min(t.saturating_duration_since(now));
            }
        }
        timeout
    }

    pub(super) fn any_running(&self) -> bool {
        self.topics
            .values()
            .any(|s| s.partitions.values().any(|slot| slot.machine.is_running()))
    }

    /// Quiet mode: nothing new starts anywhere, fetching pauses, partitions stay.
    pub(super) fn quiet(&mut self, consumer: &dyn PartitionClient, now: Instant) {
        let mut effects = std::mem::take(&mut self.effects);
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.machine.quiet(now, &mut effects);
            let _ = slot.jobs.send(Job::Cut);
            apply(consumer, slot, &mut effects);
        }
        self.effects = effects;
    }

    /// Shutdown begins: waiting messages and retries are dropped, running batches finish.
    pub(super) fn drain_all(&mut self) {
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.machine.drain();
            let _ = slot.jobs.send(Job::Cut);
        }
    }

    /// Forgets every partition after a fatal error: running batches can no longer mark (their
    /// work is redone by whoever gets the partition), executors stop without hooks.
    pub(super) fn abandon_all(&mut self) {
        for slots in self.topics.values_mut() {
            for (_, mut slot) in slots.partitions.drain() {
                slot.handle.revoked.store(true, Ordering::Release);
                slot.machine.revoke();
                slot.task.abort();
            }
        }
        for retired in self.retired.drain(..) {
            retired.task.abort();
        }
    }

    /// Drops every polled message the listener still holds (machines, their batches, the
    /// executors' queues) and waits until `deadline` for executor tasks to end, since a task
    /// holds its batch. True when no message is left, so the consumer may be destroyed:
    /// librdkafka's `rd_kafka_destroy` waits for outstanding messages.
    pub(super) fn release_messages(&mut self, deadline: Instant) -> bool {
        let mut tasks: Vec<_> = self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.drain())
            .map(|(_, slot)| slot.task)
            .collect();
        tasks.extend(self.retired.drain(..).map(|r| r.task));
        while tasks.iter().any(|t| !t.is_finished()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Runs `shutdown` hooks of idle executors and aborts running ones; true if any was
    /// aborted.
    pub(super) fn stop_executors(
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
fn mark_sink(reports: &ReportSink, topic: &Arc<str>, partition: i32, generation: u64) -> MarkSink {
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

/// Carries out a machine's effects on the consumer and the partition's executor; a seek's
/// result goes back to the machine, and what it answers is carried out too.
fn apply(consumer: &dyn PartitionClient, slot: &mut Slot, effects: &mut Vec<Effect>) {
    let mut i = 0;
    while i < effects.len() {
        // Taken out, not cloned: a dispatched batch moves to its executor as it is.
        let effect = std::mem::replace(&mut effects[i], Effect::Resume);
        match effect {
            Effect::Dispatch { batch, work } => {
                if slot.jobs.send(Job::Run { batch, work }).is_err() {
                    // The executor is gone (aborted at shutdown): the batch never ran.
                    let report = Report {
                        generation: slot.machine.generation(),
                        batch,
                        outcome: Outcome::Failed("the partition's executor has stopped".into()),
                        mark: None,
                        requests: Vec::new(),
                    };
                    slot.machine.on_report(report, Instant::now(), effects);
                }
            }
            Effect::Pause => consumer.set_paused(&slot.target, true),
            Effect::Resume => consumer.set_paused(&slot.target, false),
            Effect::Store(next) => consumer.store_offset(&mut slot.target, next),
            Effect::Seek(to) => {
                let ok = consumer.seek(&slot.handle.topic, slot.handle.partition, to);
                slot.machine.on_seek_result(ok, Instant::now(), effects);
            }
        }
        i += 1;
    }
    effects.clear();
}
