//! Where each record batch of each partition starts and ends.
//!
//! tansu's memory engine stores a partition as one object per record batch, keyed by the batch's
//! base offset, and only finds batches whose base offset is at or after a fetch offset. To serve
//! a fetch from inside a batch, [`crate::storage::MemoryStorage`] must know which batch contains
//! the offset; this index answers that from the batches it has seen produced or fetched.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use tansu_storage::Topition;

/// The first and last offset of every known record batch, per partition.
#[derive(Clone, Debug, Default)]
pub(crate) struct BatchBounds {
    /// Partition → (base offset → last offset) of its batches.
    partitions: Arc<Mutex<HashMap<Topition, BTreeMap<i64, i64>>>>,
}

impl BatchBounds {
    /// Notes that the batch `base..=last` exists in `topition`.
    pub(crate) fn record(&self, topition: &Topition, base: i64, last: i64) {
        let mut partitions = self.lock();
        match partitions.get_mut(topition) {
            Some(batches) => {
                batches.insert(base, last);
            }
            None => {
                partitions.insert(topition.clone(), BTreeMap::from([(base, last)]));
            }
        }
    }

    /// The offset to ask the memory engine for so that the batch containing `offset` is among
    /// the answers: the base of that batch when it is known, otherwise the offset right after
    /// the last known batch that ends before `offset` (the unknown batch starts there or later),
    /// otherwise 0.
    pub(crate) fn fetch_start(&self, topition: &Topition, offset: i64) -> i64 {
        let partitions = self.lock();
        let Some((&base, &last)) = partitions
            .get(topition)
            .and_then(|batches| batches.range(..=offset).next_back())
        else {
            return 0;
        };
        if offset <= last { base } else { last + 1 }
    }

    /// Forgets every partition of `topic`, so a topic created again under the same name starts
    /// with no stale bounds.
    pub(crate) fn forget_topic(&self, topic: &str) {
        self.lock().retain(|topition, _| topition.topic() != topic);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topition, BTreeMap<i64, i64>>> {
        // The map stays consistent even if a holder panicked: every update is one insert.
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> Topition {
        Topition::new("t", 0)
    }

    #[test]
    fn unknown_partition_starts_at_zero() {
        assert_eq!(BatchBounds::default().fetch_start(&tp(), 42), 0);
    }

    #[test]
    fn offset_inside_a_known_batch_starts_at_its_base() {
        let bounds = BatchBounds::default();
        bounds.record(&tp(), 0, 99);
        bounds.record(&tp(), 100, 199);
        assert_eq!(bounds.fetch_start(&tp(), 0), 0);
        assert_eq!(bounds.fetch_start(&tp(), 150), 100);
        assert_eq!(bounds.fetch_start(&tp(), 199), 100);
    }

    #[test]
    fn offset_after_known_batches_starts_after_the_last_one() {
        let bounds = BatchBounds::default();
        bounds.record(&tp(), 0, 99);
        assert_eq!(bounds.fetch_start(&tp(), 100), 100);
        assert_eq!(bounds.fetch_start(&tp(), 250), 100);
    }

    #[test]
    fn forgetting_a_topic_keeps_other_topics() {
        let bounds = BatchBounds::default();
        let other = Topition::new("u", 0);
        bounds.record(&tp(), 0, 9);
        bounds.record(&other, 0, 9);
        bounds.forget_topic("t");
        assert_eq!(bounds.fetch_start(&tp(), 5), 0);
        assert_eq!(bounds.fetch_start(&other, 5), 0);
        assert_eq!(bounds.fetch_start(&other, 12), 10);
    }
}
