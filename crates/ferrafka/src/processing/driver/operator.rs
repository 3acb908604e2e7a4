//! Operators' orders for one partition (see [`crate::processing::orders`]), carried out
//! through the partition's machine.
//!
//! An operator's pause belongs to this process: it holds until a resume order, its expiry,
//! or the process's stop. A revocation does not end it: if the group gives the partition back
//! to this consumer, it starts paused again. If the group gives it to another process, that
//! process consumes it (it never heard of the pause, and a partition is never held by a
//! process that cannot report it).

use super::*;
use crate::processing::executor::Job;
use crate::processing::orders::{Answer, Order, OrderKind};

/// The operator's pause kept for `topic`/`partition` and not expired: `Some(until)`.
pub(super) fn kept(
    pauses: &mut HashMap<(Arc<str>, i32), Option<Instant>>,
    topic: &Arc<str>,
    partition: i32,
    now: Instant,
) -> Option<Option<Instant>> {
    let key = (topic.clone(), partition);
    let until = *pauses.get(&key)?;
    if until.is_some_and(|t| now >= t) {
        pauses.remove(&key);
        return None;
    }
    Some(until)
}

impl<W: Workers, C: PartitionClient> Partitions<W, C> {
    /// Carries out `order` when its partition is this consumer's (or its pause is kept
    /// here); answers [`Answer::NotHere`] otherwise.
    pub(crate) fn operator_order(&mut self, client: &C, order: &Order, now: Instant) -> Answer {
        let Some((name, slots)) = self
            .topics
            .get_key_value(order.topic.as_str())
            .filter(|(_, s)| *s.topic.consumer_group == *order.consumer_group)
            .map(|(name, s)| (name.clone(), s))
        else {
            return Answer::NotHere;
        };
        let key = (name, order.partition);
        let held = slots.partitions.contains_key(&order.partition);
        let kept = self.operator_pauses.contains_key(&key);
        match order.kind {
            OrderKind::Pause { .. } if !held => return Answer::NotHere,
            OrderKind::Pause { until } => {
                self.operator_pauses.insert(key, until);
            }
            OrderKind::Resume if !held && !kept => return Answer::NotHere,
            OrderKind::Resume => {
                self.operator_pauses.remove(&key);
            }
        }
        let mut effects = std::mem::take(&mut self.effects);
        let topic = self.topics.get_mut(order.topic.as_str());
        if let Some(slot) = topic.and_then(|s| s.partitions.get_mut(&order.partition)) {
            match order.kind {
                OrderKind::Pause { until } => {
                    slot.machine.operator_pause(until, now, &mut effects);
                    // A run ends after its running batch, as in quiet mode.
                    let _ = self.hands.workers.send(&slot.worker, Job::Cut);
                }
                OrderKind::Resume => {
                    slot.machine.operator_resume(now, &mut effects);
                }
            }
            let was_paused = slot.paused;
            self.hands.apply(client, slot, &mut effects, now);
            // Already paused (a backlog, a retry), the reason changed without a new pause:
            // the event tells the report and the metrics.
            if was_paused && slot.paused {
                let (partition, reason) =
                    (slot.handle.partition_ref(), slot.machine.pause_reason(now));
                self.hands
                    .monitor
                    .emit(|| Event::Paused { partition, reason });
            }
        }
        self.effects = effects;
        Answer::Applied
    }
}
