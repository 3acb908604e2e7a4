//! The driver: one [`Partition`] state machine and one executor per assigned partition, fed
//! what happens (assignments, revocations, fetched messages, executor reports, the clock,
//! quiet mode, shutdown) and carrying out what the machines answer. Every decision is the
//! machines'; the driver only routes events to them and their [`Effect`]s to a
//! [`PartitionClient`] and to [`Workers`].
//!
//! The same driver runs under `server` (librdkafka, tokio tasks), under
//! `ferrafka::testing` (an in-memory log, the same tokio tasks) and under the model test (a
//! simulated librdkafka and executor), so what users test and what the model checks is what
//! the server runs. It takes the time as an argument and never reads a clock.

mod lifecycle;
mod operator;
mod seams;
mod spawned;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use rustc_hash::FxHashMap as HashMap;

use crate::config::Config;
use crate::consumer::PartitionHandle;
use crate::instrumentation::{Event, Monitor};
use crate::messages::TopicInfo;
use crate::processing::executor::{ExecutorReport, Job, ReportKind};
use crate::processing::partition::{
    Effect, Outcome, Partition, PartitionSettings, Report, listener_hold,
};
use crate::routing::Topic;

pub(crate) use lifecycle::Retired;
pub(crate) use seams::{Fetched, PartitionClient, Workers};
pub(crate) use spawned::Spawned;

/// A routed topic and its assigned partitions.
struct TopicSlots<K, T> {
    topic: Arc<Topic>,
    info: Arc<TopicInfo>,
    settings: PartitionSettings,
    partitions: HashMap<i32, Slot<K, T>>,
}

/// One assigned partition: its state machine, its client target and its executor.
struct Slot<K, T> {
    machine: Partition,
    target: T,
    /// The driver's epoch when it was assigned or last seeked: messages fetched before
    /// belong to an earlier assignment or position.
    assigned_at: u64,
    handle: Arc<PartitionHandle>,
    worker: K,
    /// The executor reported that it ran its final hook.
    stopped: bool,
    /// The last pause event said paused: a resume is worth an event only after one (an
    /// assignment resumes a partition librdkafka may have kept paused, which is no news).
    paused: bool,
    /// False on a transactional route, whose offsets only its transactions commit: nothing is
    /// stored for the consumer's commits.
    stores_offsets: bool,
}

/// The slot type of a driver over `W` and `C`.
type SlotOf<W, C> = Slot<<W as Workers>::Worker, <C as PartitionClient>::Target>;

/// Every assigned partition of one consumer, with what it needs between events.
pub(crate) struct Partitions<W: Workers, C: PartitionClient> {
    /// Keyed by topic name: the topics routed by name, and each topic a pattern matched once
    /// its first partition was assigned (see [`Self::adopt`]).
    topics: HashMap<Arc<str>, TopicSlots<W::Worker, C::Target>>,
    /// The active pattern routes, in declared order, with their partition settings.
    patterns: Vec<(Arc<Topic>, PartitionSettings)>,
    /// What carries out the machines' effects besides the client.
    hands: Hands<W>,
    retired: Vec<Retired<W::Worker>>,
    next_generation: u64,
    /// The consumer is leaving its group: an assignment that still arrives starts nothing.
    closing: bool,
    /// Reused for every event, so the hot path does not allocate.
    effects: Vec<Effect>,
    /// Fetched messages are being taken from the client's queue (see `set_gathering`).
    gathering: bool,
    /// Quiet mode began: nothing new starts, now or on later assignments.
    quiet: bool,
    /// Operators' pauses by (topic, partition), with their expiry: they outlive a revocation,
    /// so a partition the group gives back starts paused (see `operator.rs`).
    operator_pauses: HashMap<(Arc<str>, i32), Option<Instant>>,
}

/// The executors, the epoch and the monitor: what [`Hands::apply`] needs besides the client.
struct Hands<W> {
    workers: W,
    /// Assignments and seeks so far; the fetcher tags each message with it when fetched, so
    /// one fetched before its partition's current assignment or last seek is recognised.
    epoch: Arc<AtomicU64>,
    /// Where the partitions' events go.
    monitor: Monitor,
}

impl<W: Workers, C: PartitionClient> Partitions<W, C> {
    /// A driver for the active routed `topics`, starting executors with `workers`; `epoch` is
    /// shared with whatever tags fetched messages.
    pub(crate) fn new(
        config: &Config,
        topics: impl IntoIterator<Item = Arc<Topic>>,
        workers: W,
        epoch: Arc<AtomicU64>,
        monitor: Monitor,
    ) -> Self {
        let topics = topics.into_iter().map(|topic| {
            let settings = PartitionSettings::new(config, &topic);
            (topic, settings)
        });
        Self::with_settings(topics, workers, epoch, monitor)
    }

    /// [`Self::new`] with each topic's partition settings given.
    pub(crate) fn with_settings(
        topics: impl IntoIterator<Item = (Arc<Topic>, PartitionSettings)>,
        workers: W,
        epoch: Arc<AtomicU64>,
        monitor: Monitor,
    ) -> Self {
        let (patterns, topics): (Vec<_>, Vec<_>) = topics
            .into_iter()
            .partition(|(topic, _)| topic.is_pattern());
        let topics = topics
            .into_iter()
            .map(|(topic, settings)| {
                let info = Arc::new(TopicInfo {
                    name: topic.name.clone(),
                    deserializer: topic.deserializer.clone(),
                });
                let slots = TopicSlots {
                    settings,
                    topic: topic.clone(),
                    info,
                    partitions: HashMap::default(),
                };
                (topic.name.clone(), slots)
            })
            .collect();
        Partitions {
            topics,
            patterns,
            hands: Hands {
                workers,
                epoch,
                monitor,
            },
            retired: Vec::new(),
            next_generation: 1,
            closing: false,
            effects: Vec::new(),
            gathering: false,
            quiet: false,
            operator_pauses: HashMap::default(),
        }
    }

    /// The executors.
    pub(crate) fn workers(&mut self) -> &mut W {
        &mut self.hands.workers
    }

    /// The consumer is leaving its group: later assignments start nothing.
    pub(crate) fn close(&mut self) {
        self.closing = true;
    }

    /// The epoch a message fetched now is tagged with.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn epoch(&self) -> u64 {
        self.hands.epoch.load(Ordering::Acquire)
    }

    /// Moves the epoch on for an assignment; returns the new one.
    pub(crate) fn next_epoch(&self) -> u64 {
        self.hands.epoch.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Starts a machine and an executor for each newly assigned partition; `epoch` is the
    /// epoch including this assignment.
    pub(crate) fn assign(
        &mut self,
        client: &C,
        group: &str,
        assigned: &[(String, i32)],
        (epoch, now): (u64, Instant),
    ) {
        if self.closing {
            tracing::info!(subscription_group = group, partitions = ?assigned, "assigned while leaving the group: not processed, the next owner takes them");
            return;
        }
        self.hands.monitor.emit(|| Event::PartitionsAssigned {
            subscription_group: group,
            partitions: assigned,
        });
        for (topic, partition) in assigned {
            if !self.topics.contains_key(topic.as_str()) {
                self.adopt(group, topic);
            }
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
            let marks = self.hands.workers.mark_sink(&name, *partition, generation);
            let handle = Arc::new(PartitionHandle::new(
                (slots.topic.consumer_group.clone(), name.clone()),
                *partition,
                generation,
                marks,
            ));
            let worker = self.hands.workers.start(&slots.topic, &handle);
            let settings = slots.settings.clone();
            let mut machine = Partition::new(
                name.clone(),
                *partition,
                generation,
                settings,
                previous_running,
            );
            let mut effects = std::mem::take(&mut self.effects);
            machine.on_assigned(self.quiet, &mut effects);
            if let Some(until) = operator::kept(&mut self.operator_pauses, &name, *partition, now) {
                machine.operator_pause(until, now, &mut effects);
            }
            // Gathering starts nothing, so there is no effect to carry out.
            machine.set_gathering(self.gathering, now, &mut effects);
            let mut slot = Slot {
                machine,
                target: client.target(&slots.topic.name, *partition),
                assigned_at: epoch,
                handle,
                worker,
                stopped: false,
                paused: false,
                stores_offsets: !slots.topic.transactional,
            };
            self.hands.apply(client, &mut slot, &mut effects, now);
            self.effects = effects;
            slots.partitions.insert(*partition, slot);
        }
        tracing::info!(subscription_group = group, partitions = ?assigned, "partitions assigned");
    }

    /// Hands fetched messages to their partitions' machines, each tagged with the epoch when
    /// it was fetched. The slot is looked up once per run of messages of one partition, not
    /// per message. A message fetched before its partition's current assignment or seek
    /// belongs to an earlier one and is dropped: the new one fetches from the committed
    /// offset (or the seek's target).
    pub(crate) fn on_burst<F: Fetched>(
        &mut self,
        client: &C,
        burst: impl Iterator<Item = (u64, F)>,
        (received_at, now): (SystemTime, Instant),
    ) {
        let mut effects = std::mem::take(&mut self.effects);
        let mut current: Option<(usize, i32)> = None;
        let mut slot: Option<(&mut SlotOf<W, C>, Arc<TopicInfo>)> = None;
        for (epoch, fetched) in burst {
            let key = (fetched.topic_key(), fetched.partition());
            if current != Some(key) {
                current = Some(key);
                slot = self.topics.get_mut(fetched.topic()).and_then(|slots| {
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
            let message = fetched.into_message(info, received_at);
            slot.machine.on_message(message, now, &mut effects);
            if !effects.is_empty() {
                self.hands.apply(client, slot, &mut effects, now);
            }
        }
        self.effects = effects;
    }

    /// The client reset a partition's fetch position at offset `at` (see
    /// `Partition::on_offset_reset`).
    pub(crate) fn on_offset_reset(&mut self, topic: &str, partition: i32, at: i64) {
        if let Some(slot) = self.slot_mut(topic, partition) {
            slot.machine.on_offset_reset(at);
        }
    }

    /// The client reached the end of `partition` of this subscription group's `eofed` topic
    /// (the only one it consumes: librdkafka's report names no topic).
    pub(crate) fn on_eof(&mut self, client: &C, partition: i32, now: Instant) {
        let mut effects = std::mem::take(&mut self.effects);
        for slots in self.topics.values_mut().filter(|s| s.topic.eofed) {
            if let Some(slot) = slots.partitions.get_mut(&partition) {
                slot.machine.on_eof(now, &mut effects);
                self.hands.apply(client, slot, &mut effects, now);
            }
        }
        self.effects = effects;
    }

    fn slot_mut(&mut self, topic: &str, partition: i32) -> Option<&mut SlotOf<W, C>> {
        self.topics.get_mut(topic)?.partitions.get_mut(&partition)
    }

    /// An executor's report: a mark, a finished batch, or that it stopped.
    pub(crate) fn on_report(&mut self, client: &C, report: ExecutorReport, now: Instant) {
        if let ReportKind::Stopped = report.kind {
            self.retired_stopped(
                client,
                &report.topic,
                report.partition,
                report.generation,
                now,
            );
        }
        let mut effects = std::mem::take(&mut self.effects);
        if let Some(slot) = self
            .topics
            .get_mut(&*report.topic)
            .and_then(|s| s.partitions.get_mut(&report.partition))
            && slot.machine.generation() == report.generation
        {
            match report.kind {
                ReportKind::Progress { batch, mark } => {
                    slot.machine
                        .on_mark(report.generation, batch, mark, &mut effects)
                }
                ReportKind::Finished(r) => {
                    let before = slot.machine.scheduled_retry();
                    slot.machine.on_report(r, now, &mut effects);
                    let after = slot.machine.scheduled_retry();
                    if let Some((offset, attempt, at)) = after.filter(|_| after != before) {
                        self.hands.monitor.emit(|| Event::RetryScheduled {
                            partition: slot.handle.partition_ref(),
                            offset,
                            attempt,
                            backoff: at.saturating_duration_since(now),
                        });
                    }
                }
                ReportKind::HookDone { requests } => {
                    slot.machine.on_hook_done(requests, now, &mut effects)
                }
                ReportKind::Stopped => slot.stopped = true,
            }
            self.hands.apply(client, slot, &mut effects, now);
        }
        self.effects = effects;
    }

    /// Lets every machine act on the clock; retired executors that ended without a report
    /// count as stopped, and current ones that ended so are replaced.
    pub(crate) fn tick(&mut self, client: &C, now: Instant) {
        self.replace_dead_executors(client, now);
        let ended: Vec<_> = self
            .retired
            .iter()
            .filter(|r| self.hands.workers.has_ended(&r.worker))
            .map(|r| (r.topic.clone(), r.partition, r.generation))
            .collect();
        for (topic, partition, generation) in ended {
            self.retired_stopped(client, &topic, partition, generation, now);
        }
        self.for_each(client, now, |slot, now, effects| {
            slot.machine.on_tick(now, effects)
        });
    }

    /// Fetched messages are (or no longer are) being taken from the client's queue (see
    /// [`Partition::set_gathering`]); cheap when nothing changed.
    pub(crate) fn set_gathering(&mut self, client: &C, gathering: bool, now: Instant) {
        if self.gathering == gathering {
            return;
        }
        self.gathering = gathering;
        self.for_each(client, now, |slot, now, effects| {
            slot.machine.set_gathering(gathering, now, effects)
        });
    }

    /// Quiet mode: nothing new starts anywhere, fetching pauses, partitions stay; partitions
    /// assigned later start quiet.
    pub(crate) fn quiet(&mut self, client: &C, now: Instant) {
        self.quiet = true;
        self.for_each_cut(client, now, |machine, now, effects| {
            machine.quiet(now, effects)
        });
    }

    /// Shutdown begins: waiting messages and retries are dropped, running batches finish.
    pub(crate) fn drain_all(&mut self) {
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            slot.machine.drain();
            let _ = self.hands.workers.send(&slot.worker, Job::Cut);
        }
    }

    /// Runs `event` on every machine and carries out what it answers.
    fn for_each(
        &mut self,
        client: &C,
        now: Instant,
        mut event: impl FnMut(&mut SlotOf<W, C>, Instant, &mut Vec<Effect>),
    ) {
        let mut effects = std::mem::take(&mut self.effects);
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            event(slot, now, &mut effects);
            self.hands.apply(client, slot, &mut effects, now);
        }
        self.effects = effects;
    }

    /// [`Self::for_each`] for an event that also ends every running run after its batch.
    fn for_each_cut(
        &mut self,
        client: &C,
        now: Instant,
        mut event: impl FnMut(&mut Partition, Instant, &mut Vec<Effect>),
    ) {
        let mut effects = std::mem::take(&mut self.effects);
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            event(&mut slot.machine, now, &mut effects);
            let _ = self.hands.workers.send(&slot.worker, Job::Cut);
            self.hands.apply(client, slot, &mut effects, now);
        }
        self.effects = effects;
    }

    /// How long fetched messages should stay in the client's queue: until the first
    /// partition whose backlog waits behind a young batch no longer asks for it
    /// ([`Partition::hold_fetch_until`]); `None` when fetching is welcome.
    pub(crate) fn hold_fetch(&self, now: Instant) -> Option<std::time::Duration> {
        listener_hold(self.machines(), now)
    }

    /// The earliest timer of any machine.
    pub(crate) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        self.machines().filter_map(|m| m.next_wakeup(now)).min()
    }

    /// The earliest timer of the machines of partitions `keep` accepts, `tick`s left out (they
    /// never end).
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn next_wakeup_where(
        &self,
        now: Instant,
        keep: impl Fn(&str, i32) -> bool,
    ) -> Option<Instant> {
        self.topics
            .iter()
            .flat_map(|(topic, s)| s.partitions.iter().map(move |(p, slot)| (topic, p, slot)))
            .filter(|(topic, p, _)| keep(topic, **p))
            .filter_map(|(_, _, slot)| slot.machine.next_wakeup_but_ticks(now))
            .min()
    }

    /// A batch runs on some partition.
    pub(crate) fn any_running(&self) -> bool {
        self.machines().any(Partition::is_running)
    }

    /// A batch runs on one of `partitions`.
    pub(crate) fn any_running_of(&self, partitions: &[(String, i32)]) -> bool {
        partitions.iter().any(|(t, p)| {
            self.topics
                .get(t.as_str())
                .and_then(|s| s.partitions.get(p))
                .is_some_and(|slot| slot.machine.is_running())
        })
    }

    /// The machine of `topic`/`partition`, for the model test's invariants.
    #[cfg(test)]
    pub(crate) fn machine(&self, topic: &str, partition: i32) -> Option<&Partition> {
        self.topics
            .get(topic)?
            .partitions
            .get(&partition)
            .map(|s| &s.machine)
    }

    fn machines(&self) -> impl Iterator<Item = &Partition> + Clone {
        self.topics
            .values()
            .flat_map(|s| s.partitions.values())
            .map(|slot| &slot.machine)
    }
}

/// Carries out a machine's effects on the client and the partition's executor; a seek's
/// result goes back to the machine, and what it answers is carried out too.
impl<W: Workers> Hands<W> {
    fn apply<C: PartitionClient>(
        &mut self,
        client: &C,
        slot: &mut SlotOf<W, C>,
        effects: &mut Vec<Effect>,
        now: Instant,
    ) {
        let (workers, epoch, monitor) = (&mut self.workers, &self.epoch, &self.monitor);
        let partition = slot.handle.partition_ref();
        let mut i = 0;
        while i < effects.len() {
            // Taken out, not cloned: a dispatched batch moves to its executor as it is.
            let effect = std::mem::replace(&mut effects[i], Effect::Resume);
            match effect {
                Effect::Dispatch { batch, work } => {
                    if !workers.send(&slot.worker, Job::Run { batch, work }) {
                        // The executor is gone (aborted at shutdown): the batch never ran.
                        let report = Report {
                            generation: slot.machine.generation(),
                            batch,
                            outcome: Outcome::Failed("the partition's executor has stopped".into()),
                            mark: None,
                            requests: Vec::new(),
                        };
                        slot.machine.on_report(report, now, effects);
                    }
                }
                Effect::Pause => {
                    client.set_paused(&slot.target, true);
                    if !std::mem::replace(&mut slot.paused, true) {
                        let reason = slot.machine.pause_reason(now);
                        monitor.emit(|| Event::Paused { partition, reason });
                    }
                }
                Effect::Resume => {
                    client.set_paused(&slot.target, false);
                    if std::mem::replace(&mut slot.paused, false) {
                        monitor.emit(|| Event::Resumed { partition });
                    }
                }
                Effect::Hook(hook) => {
                    if !workers.send(&slot.worker, Job::Hook(hook)) {
                        // The executor is gone (aborted at shutdown): the hook never ran.
                        slot.machine.on_hook_done(Vec::new(), now, effects);
                    }
                }
                Effect::Skipped {
                    filter,
                    offsets,
                    count,
                } => monitor.emit(|| Event::MessagesSkipped {
                    partition,
                    filter,
                    offsets,
                    count,
                }),
                Effect::Store(_) if !slot.stores_offsets => {}
                Effect::Store(next) => {
                    client.store_offset(&mut slot.target, next);
                    monitor.emit(|| Event::OffsetStored { partition, next });
                }
                Effect::Seek(to) => {
                    let ok = client.seek(&slot.target, to);
                    if ok {
                        // Messages of the partition fetched before the seek (still in a burst
                        // when a rebalance callback applied it) are from the old position: they
                        // are dropped, like those of an earlier assignment.
                        slot.assigned_at = epoch.fetch_add(1, Ordering::AcqRel) + 1;
                    }
                    monitor.emit(|| Event::Seeked { partition, to, ok });
                    slot.machine.on_seek_result(ok, now, effects);
                }
            }
            i += 1;
        }
        effects.clear();
    }
}

#[cfg(test)]
mod tests;
