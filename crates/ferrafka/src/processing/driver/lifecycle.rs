//! The driver's topics and executors over time: topics matched by a pattern, revocation, an
//! executor that dies without a report, shutdown, and a client abandoned after a fatal error,
//! so that one partition never runs two batches at once, even across assignments and clients.

use super::*;
use crate::instrumentation::ErrorKind;
use crate::processing::executor::FinalHook;

/// An executor of an earlier assignment (or of a client abandoned after a fatal error) that
/// has not stopped yet.
pub(crate) struct Retired<K> {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) generation: u64,
    pub(super) worker: K,
}

impl<W: Workers, C: PartitionClient> Partitions<W, C> {
    /// Resolves a topic assigned through a pattern subscription to the first pattern route, in
    /// declared order, that matches it, and keeps it under its name: later assignments and
    /// every fetched message find it like a topic routed by name, so a pattern is evaluated
    /// once per topic, never per message. A topic no pattern matches by ferrafka's evaluation
    /// (which would mean it disagrees with the engine that assigned it) goes to the first
    /// pattern route rather than stalling its partitions.
    pub(super) fn adopt(&mut self, group: &str, topic: &str) {
        let found = self
            .patterns
            .iter()
            .find(|(t, _)| t.pattern().is_some_and(|p| p.matches(topic)));
        let matched = found.is_some();
        let Some((route, settings)) = found.or(self.patterns.first()) else {
            return;
        };
        let pattern = route.pattern().map_or("", |p| p.name());
        if matched {
            tracing::info!(
                subscription_group = group,
                topic,
                pattern,
                "topic routed by pattern"
            );
        } else {
            tracing::error!(
                subscription_group = group,
                topic,
                pattern,
                "assigned through a pattern subscription, yet no pattern route matches it by ferrafka's evaluation: the first pattern route consumes it (please report this as a bug)"
            );
        }
        self.hands.monitor.emit(|| Event::PatternTopicResolved {
            subscription_group: group,
            pattern,
            topic,
            matched,
        });
        let topic = Arc::new(route.matched(topic));
        let slots = TopicSlots {
            info: Arc::new(TopicInfo {
                name: topic.name.clone(),
                deserializer: topic.deserializer.clone(),
            }),
            settings: settings.clone(),
            topic: topic.clone(),
            partitions: HashMap::default(),
        };
        self.topics.insert(topic.name.clone(), slots);
    }

    /// Revocation begins: the revoked partitions drop what waits and their runs end after
    /// the running batch. The caller then waits for their reports (see
    /// [`Self::any_running_of`]), commits, and calls [`Self::revoke_end`].
    pub(crate) fn revoke_begin(&mut self, revoked: &[(String, i32)]) {
        for (topic, partition) in revoked {
            let slots = self.topics.get_mut(topic.as_str());
            if let Some(slot) = slots.and_then(|s| s.partitions.get_mut(partition)) {
                slot.machine.drain();
                let _ = self.hands.workers.send(&slot.worker, Job::Cut);
            }
        }
    }

    /// Releases revoked partitions. A batch still running goes on, but its marks no longer
    /// count and the next assignment of its partition waits for it.
    pub(crate) fn revoke_end(
        &mut self,
        group: &str,
        revoked: &[(String, i32)],
        waited: std::time::Duration,
    ) {
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
                    subscription_group = group,
                    consumer_group = %slot.handle.consumer_group,
                    topic,
                    partition,
                    ?waited,
                    "partition revoked while its batch still runs; it can no longer mark, and the new owner processes it again"
                );
            }
            let _ = self
                .hands
                .workers
                .send(&slot.worker, Job::Stop(FinalHook::Revoked));
            self.retired.push(Retired {
                topic: slot.handle.topic.clone(),
                partition: *partition,
                generation: slot.machine.generation(),
                worker: slot.worker,
            });
        }
        tracing::info!(subscription_group = group, partitions = ?revoked, "partitions revoked");
        self.hands.monitor.emit(|| Event::PartitionsRevoked {
            subscription_group: group,
            partitions: revoked,
        });
    }

    /// An earlier assignment's executor stopped: a new assignment of its partition may start.
    pub(super) fn retired_stopped(
        &mut self,
        client: &C,
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
        if let Some(slot) = self
            .topics
            .get_mut(topic)
            .and_then(|s| s.partitions.get_mut(&partition))
        {
            slot.machine.on_previous_stopped(now, &mut effects);
            self.hands.apply(client, slot, &mut effects, now);
        }
        self.effects = effects;
    }

    /// Gives a partition whose executor ended without saying it stopped (a panic outside the
    /// executor's guards, an abort) a new executor; the batch it ran counts as failed, so it
    /// is retried. Without this the partition would wait for a report forever.
    pub(super) fn replace_dead_executors(&mut self, client: &C, now: Instant) {
        let mut effects = std::mem::take(&mut self.effects);
        for slots in self.topics.values_mut() {
            for slot in slots.partitions.values_mut() {
                if slot.stopped || !self.hands.workers.has_ended(&slot.worker) {
                    continue;
                }
                let (topic, partition) = (&slots.topic.name, slot.handle.partition);
                tracing::error!(
                    consumer_group = %slot.handle.consumer_group,
                    topic = %topic, partition,
                    "the partition's executor ended without a report; starting a new one, its batch is retried"
                );
                self.hands.monitor.emit(|| Event::Error {
                    kind: ErrorKind::Executor,
                    partition: Some(slot.handle.partition_ref()),
                    error: "the partition's executor ended without a report",
                });
                slot.worker = self.hands.workers.start(&slots.topic, &slot.handle);
                slot.machine.on_hook_lost();
                if let Some(batch) = slot.machine.running_batch() {
                    let report = Report {
                        generation: slot.machine.generation(),
                        batch,
                        outcome: Outcome::Failed("the executor ended without a report".into()),
                        mark: None,
                        requests: Vec::new(),
                    };
                    slot.machine.on_report(report, now, &mut effects);
                    self.hands.apply(client, slot, &mut effects, now);
                }
            }
        }
        self.effects = effects;
    }

    /// Fault drill: ends every executor without a report.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn abort_executors(&mut self) {
        for slot in self.topics.values().flat_map(|s| s.partitions.values()) {
            self.hands.workers.abort(&slot.worker);
        }
    }

    /// Forgets every partition after a fatal error: running batches can no longer mark (their
    /// work is redone by whoever gets the partition), executors stop without hooks.
    pub(crate) fn abandon_all(&mut self) {
        for slots in self.topics.values_mut() {
            for (_, mut slot) in slots.partitions.drain() {
                slot.handle.revoked.store(true, Ordering::Release);
                slot.machine.revoke();
                self.hands.workers.abort(&slot.worker);
                self.retired.push(Retired {
                    topic: slot.handle.topic.clone(),
                    partition: slot.handle.partition,
                    generation: slot.machine.generation(),
                    worker: slot.worker,
                });
            }
        }
        for retired in &self.retired {
            self.hands.workers.abort(&retired.worker);
        }
    }

    /// What an abandoned client's driver hands to its successor: executors that an abort has
    /// not ended yet (stuck in user code), so a new assignment of their partitions waits for
    /// them, and the next generation number, so reports never mix.
    pub(crate) fn hand_over(&mut self) -> (Vec<Retired<W::Worker>>, u64) {
        let workers = &self.hands.workers;
        let unfinished = self
            .retired
            .drain(..)
            .filter(|r| !workers.has_ended(&r.worker));
        (unfinished.collect(), self.next_generation)
    }

    /// Takes over what [`Self::hand_over`] gave.
    pub(crate) fn take_over(&mut self, (retired, next_generation): (Vec<Retired<W::Worker>>, u64)) {
        self.retired.extend(retired);
        self.next_generation = self.next_generation.max(next_generation);
    }

    /// Forgets every partition, dropping the fetched messages their machines hold.
    pub(crate) fn clear(&mut self) {
        for slots in self.topics.values_mut() {
            slots.partitions.clear();
        }
    }

    /// Shutdown's end: idle executors run their `shutdown` hook, running ones are aborted
    /// (their marks no longer count: the batch is redone after a restart). True if any was
    /// aborted. The caller then waits until [`Self::all_stopped`].
    pub(crate) fn stop_executors(&mut self) -> bool {
        let mut forced = false;
        for slot in self
            .topics
            .values_mut()
            .flat_map(|s| s.partitions.values_mut())
        {
            if slot.machine.is_running() {
                slot.handle.revoked.store(true, Ordering::Release);
                slot.machine.revoke();
                self.hands.workers.abort(&slot.worker);
                slot.stopped = true;
                forced = true;
            } else {
                let _ = self
                    .hands
                    .workers
                    .send(&slot.worker, Job::Stop(FinalHook::Shutdown));
            }
        }
        forced
    }

    /// Every current executor stopped (reported it, or ended).
    pub(crate) fn all_stopped(&self) -> bool {
        self.topics
            .values()
            .flat_map(|s| s.partitions.values())
            .all(|slot| slot.stopped || self.hands.workers.has_ended(&slot.worker))
    }
}
