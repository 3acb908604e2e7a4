//! The listener's partitions: one [`Partition`] state machine and one executor task per
//! assigned partition. This file feeds the machines their events and carries out their
//! [`Effect`]s on the librdkafka consumer; every decision is the machine's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::message::BorrowedMessage;
use rustc_hash::FxHashMap as HashMap;
use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::task::TaskTracker;

use super::client::{PartitionClient, PartitionTarget};
use crate::config::Config;
use crate::consumer::{MarkSink, PartitionHandle};
use crate::messages::{KafkaMessage, Message, TopicInfo};
use crate::processing::doorbell::Doorbell;
use crate::processing::executor::{
    Executor, ExecutorReport, FinalHook, Job, ReportKind, ReportSink,
};
use crate::processing::partition::{
    Effect, Outcome, Partition, PartitionSettings, Report, listener_hold,
};
use crate::producer::Producer;
use crate::routing::Topic;

mod executors;

pub(super) use executors::Retired;
use executors::{Executors, mark_sink};

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
    /// The listener's epoch when it was assigned or last seeked: messages polled before belong
    /// to an earlier assignment or position.
    assigned_at: u64,
    /// The listener's epoch counter, which a seek moves on.
    epoch: Arc<AtomicU64>,
    handle: Arc<PartitionHandle>,
    jobs: UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
    /// The executor reported that it ran its final hook.
    stopped: bool,
}

/// Everything the listener thread keeps between polls.
pub(crate) struct State {
    pub(super) config: Arc<Config>,
    pub(super) topics: HashMap<Arc<str>, TopicSlots>,
    executors: Executors,
    pub(super) reports: Receiver<ExecutorReport>,
    retired: Vec<Retired>,
    next_generation: u64,
    /// The listener is leaving its group: an assignment that still arrives starts nothing.
    pub(super) closing: bool,
    /// Reused for every event, so the hot path does not allocate.
    effects: Vec<Effect>,
    /// The listener is taking messages from librdkafka's queue (see `set_gathering`).
    gathering: bool,
    /// Quiet mode began: nothing new starts, now or on later assignments.
    quiet: bool,
    /// The listener's epoch (see `ListenerContext::epoch`).
    epoch: Arc<AtomicU64>,
}

impl State {
    pub(super) fn new(
        config: Arc<Config>,
        topics: HashMap<Arc<str>, TopicSlots>,
        runtime: tokio::runtime::Handle,
        producer: Producer,
        workers: Arc<Semaphore>,
        wake: Arc<Doorbell>,
        epoch: Arc<AtomicU64>,
    ) -> Self {
        let (reports_tx, reports) = std::sync::mpsc::channel();
        State {
            executors: Executors {
                config: config.clone(),
                runtime,
                producer,
                workers,
                reports: ReportSink::new(reports_tx, wake),
                tasks: TaskTracker::new(),
            },
            config,
            topics,
            reports,
            retired: Vec::new(),
            next_generation: 1,
            closing: false,
            effects: Vec::new(),
            gathering: false,
            quiet: false,
            epoch,
        }
    }

    /// Starts a machine and an executor for each newly assigned partition; `epoch` is the
    /// listener's epoch (see `ListenerContext::epoch`) including this assignment.
    pub(super) fn assign(
        &mut self,
        consumer: &dyn PartitionClient,
        group: &str,
        assigned: &[(String, i32)],
        epoch: u64,
    ) {
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
                mark_sink(&self.executors.reports, &name, *partition, generation),
            ));
            let (jobs, task) = self.executors.spawn(&slots.topic, &handle);
            let mut machine = Partition::new(
                name,
                *partition,
                generation,
                slots.settings.clone(),
                previous_running,
            );
            let mut effects = std::mem::take(&mut self.effects);
            machine.on_assigned(self.quiet, &mut effects);
            // Gathering starts nothing, so there is no effect to carry out.
            machine.set_gathering(self.gathering, Instant::now(), &mut effects);
            let mut slot = Slot {
                machine,
                target: PartitionTarget::new(slots.topic.name.clone(), *partition),
                assigned_at: epoch,
                epoch: self.epoch.clone(),
                handle,
                jobs,
                task,
                stopped: false,
            };
            apply(consumer, &mut slot, &mut effects);
            self.effects = effects;
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
        let deadline = crate::config::later(now, self.config.revocation_timeout);
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
    /// assignment or seek (tagged with the listener's epoch when it was polled) belongs to an
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
        for (epoch, polled) in burst {
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
            if epoch < slot.assigned_at {
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

    /// librdkafka reset a partition's fetch position at offset `at` (see
    /// `Partition::on_offset_reset`).
    pub(super) fn on_offset_reset(&mut self, topic: &str, partition: i32, at: i64) {
        if let Some(slot) = self.slot_mut(topic, partition) {
            slot.machine.on_offset_reset(at);
        }
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
    /// (aborted, or their runtime is gone) count as stopped, and current ones that ended so are
    /// replaced.
    pub(super) fn tick(&mut self, consumer: &dyn PartitionClient, now: Instant) {
        self.replace_dead_executors(consumer, now);
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
        let machines = self
            .topics
            .values()
            .flat_map(|s| s.partitions.values())
            .map(|slot| &slot.machine);
        listener_hold(machines, now)
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

    /// Quiet mode: nothing new starts anywhere, fetching pauses, partitions stay; partitions
    /// assigned later start quiet.
    pub(super) fn quiet(&mut self, consumer: &dyn PartitionClient, now: Instant) {
        self.quiet = true;
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
                if ok {
                    // Messages of the partition polled before the seek (still in the poll
                    // loop's burst when a rebalance callback applied it) are from the old
                    // position: they are dropped, like those of an earlier assignment.
                    slot.assigned_at = slot.epoch.fetch_add(1, Ordering::AcqRel) + 1;
                }
                slot.machine.on_seek_result(ok, Instant::now(), effects);
            }
        }
        i += 1;
    }
    effects.clear();
}
