//! Operator orders for partitions, from the commands listener to the listener threads: pause
//! or resume one partition. The board is shared by the server's threads (it lives in the
//! [`StopSignal`](super::stop::StopSignal)); each listener takes the orders posted since it
//! last looked, applies those for partitions it holds through its partitions' machines, and
//! answers each one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;

/// Orders kept for listeners that have not looked yet; a listener behind by more misses the
/// oldest (their sender then hears no answer from it and times out).
const KEPT: usize = 1024;

/// What an order asks of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderKind {
    /// Pause it until then (`None`: until resumed).
    Pause { until: Option<Instant> },
    /// End an operator's pause.
    Resume,
}

/// A listener's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The partition is this listener's (or its pause was kept here): done.
    Applied,
    /// Not a partition of this listener.
    NotHere,
}

/// One order for one partition.
#[derive(Debug)]
pub(crate) struct Order {
    seq: u64,
    pub(crate) consumer_group: String,
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) kind: OrderKind,
    answers: mpsc::UnboundedSender<Answer>,
}

impl Order {
    /// Sends this listener's answer to whoever posted the order.
    pub(crate) fn answer(&self, answer: Answer) {
        let _ = self.answers.send(answer);
    }
}

/// The orders posted, newest last.
#[derive(Debug, Default)]
pub(crate) struct Board {
    last: AtomicU64,
    posted: Mutex<VecDeque<Arc<Order>>>,
}

impl Board {
    /// Posts an order; its answers come on the returned receiver, one per listener.
    pub(crate) fn post(
        &self,
        (consumer_group, topic, partition): (String, String, i32),
        kind: OrderKind,
    ) -> mpsc::UnboundedReceiver<Answer> {
        let (answers, received) = mpsc::unbounded_channel();
        let mut posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        let seq = self.last.load(Ordering::Acquire) + 1;
        posted.push_back(Arc::new(Order {
            seq,
            consumer_group,
            topic,
            partition,
            kind,
            answers,
        }));
        if posted.len() > KEPT {
            posted.pop_front();
        }
        self.last.store(seq, Ordering::Release);
        received
    }

    /// The orders posted after `seen`, which moves to the newest; cheap when there is none.
    pub(crate) fn since(&self, seen: &mut u64) -> Vec<Arc<Order>> {
        if self.last.load(Ordering::Acquire) == *seen {
            return Vec::new();
        }
        let posted = self.posted.lock().unwrap_or_else(|p| p.into_inner());
        let new: Vec<Arc<Order>> = posted.iter().filter(|o| o.seq > *seen).cloned().collect();
        if let Some(newest) = posted.back() {
            *seen = newest.seq;
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_listener_takes_each_order_once_and_its_answer_reaches_the_sender() {
        let board = Board::default();
        let (mut first, mut second) = (0, 0);
        assert!(board.since(&mut first).is_empty());
        let mut answers = board.post(("g".into(), "t".into(), 1), OrderKind::Resume);
        let taken = board.since(&mut first);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].topic.as_str(), taken[0].partition), ("t", 1));
        assert!(board.since(&mut first).is_empty(), "taken once");
        assert_eq!(board.since(&mut second).len(), 1, "every listener sees it");
        taken[0].answer(Answer::NotHere);
        assert_eq!(answers.try_recv().ok(), Some(Answer::NotHere));
        board.post(
            ("g".into(), "t".into(), 2),
            OrderKind::Pause { until: None },
        );
        let taken = board.since(&mut first);
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].partition, 2);
    }
}
