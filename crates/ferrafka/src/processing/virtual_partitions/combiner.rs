//! The mark combiner: turns the marks of a batch's virtual groups into the partition's mark.
//!
//! A group's mark at next offset `x` only says that *its* messages below `x` are finished; the
//! other groups' messages below `x` may still run. The partition may only be marked up to the
//! lowest offset some group has not finished, so the combiner keeps, per group, how many of
//! its messages (a prefix, since a group runs its messages in order) are finished, and
//! forwards a partition mark only when that lowest unfinished offset moves forward.

use std::sync::Mutex;

/// Combines the marks of one batch's groups.
#[derive(Debug)]
pub(crate) struct MarkCombiner {
    /// The batch's first offset: a mark at or below it marks nothing.
    first: i64,
    /// The next offset after the batch's last message: the mark once every group finished.
    end: i64,
    /// Each group's offsets, ascending.
    groups: Vec<Vec<i64>>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Per group: how many of its messages (from its first) are finished.
    done: Vec<usize>,
    /// The highest partition mark handed out so far (`first` before any).
    forwarded: i64,
}

impl MarkCombiner {
    /// A combiner for a batch spanning `first..end` split into `groups` (each ascending).
    pub(crate) fn new(first: i64, end: i64, groups: Vec<Vec<i64>>) -> Self {
        debug_assert!(groups.iter().all(|g| g.is_sorted()));
        let done = vec![0; groups.len()];
        MarkCombiner {
            first,
            end,
            groups,
            state: Mutex::new(State {
                done,
                forwarded: first,
            }),
        }
    }

    /// Group `group` marked its messages below `next` as finished. Calls `forward` with the
    /// partition mark when the lowest unfinished offset moved past the last one forwarded.
    ///
    /// `forward` runs under the combiner's lock, so forwarded marks leave in increasing order.
    pub(crate) fn mark(&self, group: usize, next: i64, forward: impl FnOnce(i64)) {
        let finished = self.groups[group].partition_point(|&o| o < next);
        self.advance(group, finished, forward);
    }

    /// Group `group` finished all its messages (its consumer returned `Ok`); like
    /// [`MarkCombiner::mark`] past its last message.
    pub(crate) fn finish(&self, group: usize, forward: impl FnOnce(i64)) {
        self.advance(group, self.groups[group].len(), forward);
    }

    fn advance(&self, group: usize, finished: usize, forward: impl FnOnce(i64)) {
        let mut state = self.lock();
        state.done[group] = state.done[group].max(finished);
        let low = self.lowest_unfinished(&state.done);
        if low > state.forwarded {
            state.forwarded = low;
            forward(low);
        }
    }

    /// The batch's mark: the first offset some group has not finished, `None` when that is
    /// the batch's first offset (nothing can be marked).
    pub(crate) fn batch_mark(&self) -> Option<i64> {
        let low = self.lowest_unfinished(&self.lock().done);
        (low > self.first).then_some(low)
    }

    fn lowest_unfinished(&self, done: &[usize]) -> i64 {
        self.groups
            .iter()
            .zip(done)
            .map(|(offsets, &d)| offsets.get(d).copied().unwrap_or(self.end))
            .min()
            .unwrap_or(self.end)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement, so a panic elsewhere cannot leave it
        // half-updated: a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
