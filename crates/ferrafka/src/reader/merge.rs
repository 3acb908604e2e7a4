//! The k-way merge of partitions by timestamp.
//!
//! The rule: a message is released only when every partition that may still deliver one
//! (an *open* partition) has a message waiting; then the waiting message with the lowest
//! timestamp goes first (ties: the lower partition; within a partition, offset order). A
//! partition that reached its end is closed and holds nothing back. While tailing, a partition
//! that caught up with its log end is closed until its next message arrives, so an idle
//! partition does not stop the others: a message it receives later with an earlier timestamp
//! is released when it arrives, after the later ones already released.

use std::collections::{BTreeMap, VecDeque};

/// One partition's waiting messages, each with its timestamp (milliseconds).
#[derive(Debug)]
struct Lane<T> {
    waiting: VecDeque<(i64, T)>,
    open: bool,
}

/// Messages of several partitions, released in timestamp order by the rule above.
#[derive(Debug)]
pub(crate) struct Merge<T> {
    lanes: BTreeMap<i32, Lane<T>>,
}

impl<T> Merge<T> {
    /// A merge of `partitions`, all open.
    pub(crate) fn new(partitions: impl IntoIterator<Item = i32>) -> Self {
        let lanes = partitions
            .into_iter()
            .map(|p| {
                let lane = Lane {
                    waiting: VecDeque::new(),
                    open: true,
                };
                (p, lane)
            })
            .collect();
        Merge { lanes }
    }

    /// Adds `partition`'s next message; an arriving message opens a closed partition again.
    pub(crate) fn push(&mut self, partition: i32, timestamp: i64, item: T) {
        if let Some(lane) = self.lanes.get_mut(&partition) {
            lane.waiting.push_back((timestamp, item));
            lane.open = true;
        }
    }

    /// Marks `partition` as unable to deliver a message for now (at its end, or caught up).
    pub(crate) fn close(&mut self, partition: i32) {
        if let Some(lane) = self.lanes.get_mut(&partition) {
            lane.open = false;
        }
    }

    /// How many messages of `partition` wait.
    pub(crate) fn waiting(&self, partition: i32) -> usize {
        self.lanes.get(&partition).map_or(0, |l| l.waiting.len())
    }

    /// The next message by the rule, or `None` while an open partition has none waiting (or
    /// nothing waits at all).
    pub(crate) fn pop(&mut self) -> Option<(i32, T)> {
        if self.lanes.values().any(|l| l.open && l.waiting.is_empty()) {
            return None;
        }
        let (&partition, _) = self
            .lanes
            .iter()
            .filter_map(|(p, l)| l.waiting.front().map(|(ts, _)| (p, *ts)))
            .min_by_key(|&(p, ts)| (ts, *p))?;
        let (_, item) = self.lanes.get_mut(&partition)?.waiting.pop_front()?;
        Some((partition, item))
    }

    /// Whether no message waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.lanes.values().all(|l| l.waiting.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(merge: &mut Merge<&'static str>) -> Vec<&'static str> {
        std::iter::from_fn(|| merge.pop().map(|(_, m)| m)).collect()
    }

    #[test]
    fn an_open_partition_without_a_waiting_message_holds_the_others_back() {
        let mut merge = Merge::new([0, 1]);
        merge.push(0, 5, "p0@5");
        assert_eq!(
            merge.pop(),
            None,
            "partition 1 may still show an earlier one"
        );
        merge.push(1, 3, "p1@3");
        assert_eq!(merge.pop(), Some((1, "p1@3")));
        assert_eq!(
            merge.pop(),
            None,
            "partition 1's next may be earlier than 5"
        );
        merge.close(1);
        assert_eq!(merge.pop(), Some((0, "p0@5")));
        assert_eq!(merge.pop(), None);
        assert!(merge.is_empty());
    }

    #[test]
    fn closed_partitions_drain_in_timestamp_order_ties_by_partition() {
        let mut merge = Merge::new([0, 1, 2]);
        for (p, ts, m) in [
            (0, 1, "a"),
            (0, 4, "d"),
            (0, 7, "g"),
            (1, 2, "b"),
            (1, 4, "e"),
            (2, 3, "c"),
            (2, 6, "f"),
        ] {
            merge.push(p, ts, m);
        }
        assert_eq!(drain(&mut merge), ["a", "b", "c", "d", "e"]);
        // Partition 1 is open and empty: "f" (6) and "g" (7) wait for it.
        merge.close(1);
        merge.close(2);
        merge.close(0);
        assert_eq!(drain(&mut merge), ["f", "g"]);
    }

    #[test]
    fn a_partition_is_in_offset_order_even_when_its_timestamps_go_back() {
        let mut merge = Merge::new([0, 1]);
        merge.push(0, 10, "p0-first");
        merge.push(0, 2, "p0-second");
        merge.push(1, 5, "p1");
        merge.close(0);
        merge.close(1);
        assert_eq!(drain(&mut merge), ["p1", "p0-first", "p0-second"]);
    }

    #[test]
    fn a_message_reopens_a_caught_up_partition() {
        let mut merge = Merge::new([0, 1]);
        merge.close(1);
        merge.push(0, 5, "p0@5");
        assert_eq!(merge.pop(), Some((0, "p0@5")));
        merge.push(1, 1, "p1@1");
        merge.push(0, 9, "p0@9");
        assert_eq!(merge.pop(), Some((1, "p1@1")));
        assert_eq!(merge.pop(), None, "partition 1 is open again, and empty");
        assert_eq!(merge.waiting(0), 1);
    }
}
