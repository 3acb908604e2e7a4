//! Unit tests of the partition state machine, one or more per defect the old listener had.

use std::time::{Duration, Instant};

use super::*;

/// The routed topic `t` of an app, for drivers under test.
pub(crate) fn routed_topic() -> std::sync::Arc<crate::routing::Topic> {
    let app = crate::App::builder()
        .routes(|r| {
            r.topic("t").consumer(|| crate::noop::Noop);
        })
        .build_with_env([]);
    app.subscription_groups()[0].topics()[0].clone()
}

pub(crate) fn settings() -> PartitionSettings {
    PartitionSettings {
        max_messages: 3,
        max_wait: Duration::from_millis(100),
        pause_at_messages: 12,
        pause_at_bytes: 1 << 20,
        dead_letter_retries: None,
        backoff: Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(8),
            exponential: true,
        },
        // One batch at a time; the run tests below raise it.
        run_messages: 3,
        consumer_group: "g".into(),
        filters: FilterFactories::default(),
        manual_offsets: false,
        tick_interval: None,
        idle_after: None,
    }
}

pub(super) fn message(offset: i64) -> Message {
    Message::builder("t", 0, offset)
        .payload(b"x".to_vec())
        .build()
}

/// A machine with a clock of its own and the effects of the last step.
pub(super) struct Harness {
    pub(super) p: Partition,
    pub(super) now: Instant,
    pub(super) out: Vec<Effect>,
}

impl Harness {
    pub(super) fn new(settings: PartitionSettings) -> Self {
        Harness {
            p: Partition::new("t".into(), 0, 1, settings, false),
            now: Instant::now(),
            out: Vec::new(),
        }
    }

    pub(super) fn fetch(&mut self, offsets: std::ops::Range<i64>) -> Vec<Effect> {
        for o in offsets {
            self.p.on_message(message(o), self.now, &mut self.out);
        }
        std::mem::take(&mut self.out)
    }

    pub(super) fn advance(&mut self, by: Duration) -> Vec<Effect> {
        self.now += by;
        self.p.on_tick(self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    pub(super) fn finish(
        &mut self,
        batch: u64,
        outcome: Outcome,
        mark: Option<i64>,
    ) -> Vec<Effect> {
        self.finish_with(batch, outcome, mark, vec![])
    }

    pub(super) fn finish_with(
        &mut self,
        batch: u64,
        outcome: Outcome,
        mark: Option<i64>,
        requests: Vec<PartitionRequest>,
    ) -> Vec<Effect> {
        let report = Report {
            generation: self.p.generation(),
            batch,
            outcome,
            mark,
            requests,
        };
        self.p.on_report(report, self.now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn no_spin(&self) {
        if let Some(t) = self.p.next_wakeup(self.now) {
            assert!(
                t > self.now,
                "the next wake-up is not in the future: {self:?}"
            );
        }
    }
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").field("p", &self.p).finish()
    }
}

/// The batch started by `effects`: its number, offsets and attempt (0 for a dead-letter job).
pub(super) fn dispatched(effects: &[Effect]) -> Option<(u64, Vec<i64>, u32)> {
    effects.iter().find_map(|e| match e {
        Effect::Dispatch {
            batch,
            work: Work::Consume(m),
        } => Some((
            *batch,
            m.iter().map(|m| m.offset).collect(),
            m.metadata.attempt,
        )),
        Effect::Dispatch {
            batch,
            work: Work::DeadLetter { message, .. },
        } => Some((*batch, vec![message[0].offset], 0)),
        _ => None,
    })
}

pub(super) fn stores(effects: &[Effect]) -> Vec<i64> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Store(o) => Some(*o),
            _ => None,
        })
        .collect()
}

#[allow(non_snake_case)]
pub(super) fn FAIL() -> Outcome {
    Outcome::Failed("boom".into())
}
pub(super) const SECOND: Duration = Duration::from_secs(1);

#[test]
fn a_full_batch_starts_at_once_and_its_success_stores_its_end() {
    let mut h = Harness::new(settings());
    let e = h.fetch(0..3);
    assert_eq!(dispatched(&e), Some((0, vec![0, 1, 2], 1)));
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), vec![3]);
}

#[test]
fn a_partial_batch_waits_for_max_wait() {
    let mut h = Harness::new(settings());
    assert_eq!(dispatched(&h.fetch(0..2)), None);
    assert_eq!(
        h.p.next_wakeup(h.now),
        Some(h.now + Duration::from_millis(100))
    );
    assert_eq!(dispatched(&h.advance(Duration::from_millis(99))), None);
    assert_eq!(
        dispatched(&h.advance(Duration::from_millis(1))),
        Some((0, vec![0, 1], 1))
    );
}

/// Defect 1: a late report of an earlier assignment (or an earlier batch) changes nothing.
#[test]
fn reports_of_an_older_generation_or_batch_are_ignored() {
    let mut h = Harness::new(settings());
    h.p = Partition::new("t".into(), 0, 2, settings(), false);
    h.fetch(0..3);
    for (generation, batch) in [(1, 0), (2, 7)] {
        let stale = Report {
            generation,
            batch,
            outcome: Outcome::Consumed,
            mark: Some(3),
            requests: vec![PartitionRequest::Seek(SeekTo::Offset(0))],
        };
        h.p.on_report(stale, h.now, &mut h.out);
        h.p.on_mark(generation, batch, 3, &mut h.out);
        assert!(h.out.is_empty(), "a stale report had effects: {:?}", h.out);
        assert!(h.p.is_running());
    }
    let stale_failure = Report {
        generation: 1,
        batch: 0,
        outcome: FAIL(),
        mark: None,
        requests: vec![],
    };
    h.p.on_report(stale_failure, h.now, &mut h.out);
    assert!(h.out.is_empty() && h.p.is_running());
    assert_eq!(stores(&h.finish(0, Outcome::Consumed, Some(3))), vec![3]);
}

/// Defect 1: a new assignment starts nothing while the previous one's batch still runs.
#[test]
fn a_new_assignment_waits_for_the_previous_executor() {
    let mut h = Harness::new(settings());
    h.p = Partition::new("t".into(), 0, 2, settings(), true);
    assert_eq!(dispatched(&h.fetch(0..3)), None);
    assert_eq!(dispatched(&h.advance(SECOND)), None);
    assert_eq!(h.p.next_wakeup(h.now), None);
    h.p.on_previous_stopped(h.now, &mut h.out);
    assert_eq!(dispatched(&h.out), Some((0, vec![0, 1, 2], 1)));
}

/// Defect 2: `ctx.resume()` in a failing batch ends the backoff but keeps the retry.
#[test]
fn resume_in_a_failing_batch_keeps_the_retry() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..6);
    let e = h.finish_with(0, FAIL(), Some(1), vec![PartitionRequest::Resume]);
    assert_eq!(stores(&e), vec![1]);
    assert_eq!(
        dispatched(&e),
        Some((1, vec![1, 2, 3], 2)),
        "retried at once from offset 1"
    );
    let e = h.finish(1, Outcome::Consumed, Some(4));
    assert_eq!(stores(&e), vec![4]);
}

/// Defect 3: a failed seek drops nothing; a seek to a negative offset is refused.
#[test]
fn a_failed_or_invalid_seek_keeps_buffer_and_retry() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..5);
    let e = h.finish_with(
        0,
        FAIL(),
        None,
        vec![PartitionRequest::Seek(SeekTo::Offset(100))],
    );
    assert!(
        e.iter()
            .any(|e| matches!(e, Effect::Seek(SeekTo::Offset(100))))
    );
    assert_eq!(
        dispatched(&e),
        None,
        "nothing starts before the seek's result"
    );
    h.p.on_seek_result(false, h.now, &mut h.out);
    let e = h.advance(SECOND);
    assert_eq!(dispatched(&e), Some((1, vec![0, 1, 2], 2)));
    let e = h.finish_with(
        1,
        Outcome::Consumed,
        Some(3),
        vec![PartitionRequest::Seek(SeekTo::Offset(-1))],
    );
    assert!(!e.iter().any(|e| matches!(e, Effect::Seek(_))));
    let e = h.advance(SECOND);
    assert_eq!(
        dispatched(&e),
        Some((2, vec![3, 4], 1)),
        "buffered messages kept"
    );
}

/// A seek that succeeds drops the old position's messages; later messages start a batch.
#[test]
fn a_successful_seek_drops_the_old_position() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..5);
    let seek = vec![PartitionRequest::Seek(SeekTo::Offset(0))];
    h.finish_with(0, Outcome::Consumed, Some(3), seek);
    h.p.on_seek_result(true, h.now, &mut h.out);
    assert_eq!(dispatched(&h.advance(SECOND)), None);
    assert_eq!(dispatched(&h.fetch(0..3)), Some((1, vec![0, 1, 2], 1)));
}

/// Defect 4: when librdkafka's position moves back on its own (offset reset, truncation),
/// the messages now delivered are taken, not skipped.
#[test]
fn a_position_moved_back_is_followed() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..5);
    assert_eq!(dispatched(&h.fetch(1..2)), None);
    h.finish(0, Outcome::Consumed, Some(3));
    let e = h.advance(SECOND);
    assert_eq!(
        dispatched(&e),
        Some((1, vec![1], 1)),
        "3 and 4 are fetched again after 1"
    );
}

fn dead_letter_settings(max_retries: u32) -> PartitionSettings {
    PartitionSettings {
        dead_letter_retries: Some(max_retries),
        ..settings()
    }
}

/// Defect 5: with `max_retries(0)` the failing message first runs alone, and is
/// dead-lettered with its own error.
#[test]
fn dead_letter_only_after_failing_alone() {
    let mut h = Harness::new(dead_letter_settings(0));
    h.fetch(0..3);
    let e = h.finish(0, Outcome::Failed("batch error".into()), Some(1));
    assert_eq!(dispatched(&e), None);
    assert_eq!(dispatched(&h.advance(SECOND)), Some((1, vec![1], 2)));
    h.finish(1, Outcome::Failed("error of 1".into()), None);
    let e = h.advance(8 * SECOND);
    let Some(Effect::Dispatch {
        batch: 2,
        work:
            Work::DeadLetter {
                message,
                error,
                attempts,
            },
    }) = e.first()
    else {
        panic!("expected a dead-letter job, got {e:?}")
    };
    assert_eq!(
        (message[0].offset, error.as_str(), *attempts),
        (1, "error of 1", 2)
    );
    let e = h.finish(2, Outcome::DeadLettered, None);
    assert_eq!(stores(&e), vec![2]);
    assert_eq!(
        dispatched(&e),
        Some((3, vec![2], 2)),
        "the rest still runs one by one, on its second attempt"
    );
    let e = h.finish(3, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), vec![3]);
}

#[test]
fn dead_letter_after_max_retries_plus_one_alone_failures() {
    let mut h = Harness::new(dead_letter_settings(2));
    h.fetch(0..1);
    h.advance(SECOND);
    for batch in 0..3 {
        let e = h.finish(batch, Outcome::Failed(format!("e{batch}")), None);
        assert_eq!(dispatched(&e), None);
        let e = h.advance(8 * SECOND);
        let expected = if batch < 2 { batch + 2 } else { 0 };
        assert_eq!(dispatched(&e), Some((batch + 1, vec![0], expected as u32)));
    }
}

/// Defect 10: a failed delivery to the dead-letter topic keeps the consumer's error.
#[test]
fn dead_letter_failure_keeps_the_consumer_error() {
    let mut h = Harness::new(dead_letter_settings(0));
    h.fetch(0..1);
    h.advance(SECOND);
    h.finish(0, Outcome::Failed("consumer error".into()), None);
    h.advance(SECOND);
    let e = h.finish(1, Outcome::DeadLetterFailed("broker down".into()), None);
    assert!(stores(&e).is_empty());
    h.no_spin();
    let e = h.advance(8 * SECOND);
    assert!(
        matches!(&e[..], [Effect::Dispatch { work: Work::DeadLetter { error, .. }, .. }, ..] if error == "consumer error"),
        "{e:?}"
    );
}

/// Defect 6: after seeking back below the stored offset, a failing re-read batch is retried.
#[test]
fn a_failing_reread_after_seek_back_is_retried() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    let seek = vec![PartitionRequest::Seek(SeekTo::Offset(0))];
    assert_eq!(
        stores(&h.finish_with(0, Outcome::Consumed, Some(3), seek)),
        vec![3]
    );
    h.p.on_seek_result(true, h.now, &mut h.out);
    h.out.clear();
    assert_eq!(dispatched(&h.fetch(0..3)), Some((1, vec![0, 1, 2], 1)));
    let e = h.finish(1, FAIL(), Some(1));
    assert!(stores(&e).is_empty(), "marks never move back");
    assert!(e.contains_pause());
    assert_eq!(dispatched(&h.advance(SECOND)), Some((2, vec![1, 2], 2)));
}

trait Effects {
    fn contains_pause(&self) -> bool;
}

impl Effects for Vec<Effect> {
    fn contains_pause(&self) -> bool {
        self.iter().any(|e| matches!(e, Effect::Pause))
    }
}

/// Defect 7: nothing dispatchable means a wake-up in the future, never now.
#[test]
fn no_spin_while_blocked() {
    // error backoff, and a poison message without a dead-letter queue
    let mut h = Harness::new(settings());
    h.fetch(0..2);
    h.advance(SECOND);
    for batch in 0..5 {
        h.finish(batch, FAIL(), None);
        h.advance(Duration::ZERO);
        h.no_spin();
        h.advance(8 * SECOND);
    }
    // ctx.pause with messages overdue
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    let pause = vec![PartitionRequest::Pause(5 * SECOND)];
    h.fetch(3..4);
    h.finish_with(0, Outcome::Consumed, Some(3), pause);
    h.advance(SECOND);
    h.no_spin();
    assert_eq!(h.p.next_wakeup(h.now), Some(h.now + 4 * SECOND));
    assert_eq!(dispatched(&h.advance(4 * SECOND)), Some((1, vec![3], 1)));
    // quiet mode with messages overdue
    let mut h = Harness::new(settings());
    h.fetch(0..1);
    h.p.quiet(h.now, &mut h.out);
    assert!(h.out.contains_pause());
    assert_eq!(dispatched(&h.advance(SECOND)), None);
    assert_eq!(h.p.next_wakeup(h.now), None);
}

/// Defect 8: an endless pause does not overflow; resume ends it.
#[test]
fn pause_for_duration_max() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..4);
    let pause = vec![PartitionRequest::Pause(Duration::MAX)];
    let e = h.finish_with(0, Outcome::Consumed, Some(3), pause);
    assert!(e.contains_pause());
    assert_eq!(h.p.next_wakeup(h.now), None);
    assert_eq!(
        dispatched(&h.advance(Duration::from_secs(3600 * 24 * 365))),
        None
    );
    h.p.apply(PartitionRequest::Resume, h.now, &mut h.out);
    h.p.on_tick(h.now, &mut h.out);
    assert_eq!(dispatched(&h.out), Some((1, vec![3], 1)));
}

/// Defect 10: quiet mode starts no batch, even a full one.
#[test]
fn quiet_mode_starts_nothing() {
    let mut h = Harness::new(settings());
    h.p.quiet(h.now, &mut h.out);
    assert_eq!(dispatched(&h.fetch(0..6)), None);
    assert_eq!(dispatched(&h.advance(SECOND)), None);
}

/// Defect 10: fetching pauses once buffered bytes reach the bound, and resumes below it.
#[test]
fn buffered_bytes_are_bounded() {
    // 400 bytes plus the fixed share of a held message each: the third crosses 1,500.
    let mut h = Harness::new(PartitionSettings {
        pause_at_bytes: 1500,
        max_messages: 100,
        ..settings()
    });
    let big = |o| Message::builder("t", 0, o).payload(vec![0u8; 400]).build();
    for o in 0..2 {
        h.p.on_message(big(o), h.now, &mut h.out);
    }
    assert!(!h.out.contains_pause());
    h.p.on_message(big(2), h.now, &mut h.out);
    assert!(h.out.contains_pause(), "{:?}", h.out);
    h.out.clear();
    let e = h.advance(SECOND);
    assert!(e.iter().any(|e| matches!(e, Effect::Resume)), "{e:?}");
}

/// A revoked partition stores nothing more, a draining one still stores its running marks.
#[test]
fn draining_stores_revoked_does_not() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..5);
    h.p.drain();
    assert_eq!(stores(&h.finish(0, Outcome::Consumed, Some(3))), vec![3]);
    assert_eq!(
        dispatched(&h.advance(SECOND)),
        None,
        "waiting messages were dropped"
    );
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    assert!(h.p.revoke());
    h.p.on_mark(1, 0, 2, &mut h.out);
    assert!(stores(&h.finish(0, Outcome::Consumed, Some(3))).is_empty());
}

/// A mark outside the running batch never stores past it.
#[test]
fn marks_are_limited_to_the_batch() {
    let mut h = Harness::new(settings());
    h.fetch(0..3);
    h.fetch(3..6);
    h.p.on_mark(1, 0, 50, &mut h.out);
    assert_eq!(stores(&h.out), vec![3]);
}

/// Fetching pauses once the backlog reaches the bound and resumes only once it halved, so a
/// backlog at the bound does not pause and resume on every batch.
#[test]
fn fetch_pause_resumes_once_the_backlog_halved() {
    let mut h = Harness::new(settings()); // batches of 3, pause at 12 waiting messages
    assert!(dispatched(&h.fetch(0..3)).is_some(), "batch 0 runs 0..3");
    let e = h.fetch(3..15);
    assert!(
        e.contains_pause(),
        "12 wait behind the running batch: {e:?}"
    );
    let resumed = |e: &[Effect]| e.iter().any(|e| matches!(e, Effect::Resume));
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert!(
        !resumed(&e),
        "9 still wait, more than half the bound: {e:?}"
    );
    let e = h.finish(1, Outcome::Consumed, Some(6));
    assert!(!resumed(&e), "6 wait, not yet below half: {e:?}");
    let e = h.finish(2, Outcome::Consumed, Some(9));
    assert!(resumed(&e), "3 wait, below half: {e:?}");
}

/// The listener is asked to leave messages in librdkafka's queue only while enough wait behind
/// a young batch; an old batch, or a short backlog, asks nothing.
#[test]
fn fetch_is_held_only_behind_a_young_batch_with_a_backlog() {
    let mut h = Harness::new(settings());
    assert_eq!(h.p.hold_fetch_until(), None, "nothing runs");
    h.fetch(0..3);
    h.fetch(3..8);
    assert_eq!(h.p.hold_fetch_until(), None, "5 wait, less than 2 batches");
    h.fetch(8..9);
    let until =
        h.p.hold_fetch_until()
            .expect("6 wait behind a batch started now");
    assert!(until > h.now && until <= h.now + Duration::from_millis(20));
    h.finish(0, Outcome::Consumed, Some(3));
    h.fetch(9..12);
    assert!(h.p.hold_fetch_until().is_some(), "6 wait behind batch 1");
    h.p.drain();
    assert_eq!(
        h.p.hold_fetch_until(),
        None,
        "a draining partition holds nothing"
    );
}
