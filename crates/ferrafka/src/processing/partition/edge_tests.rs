//! Tests of the machine's edges found in the core's second pass: the fetch pause on a new
//! assignment, quiet mode on a new assignment, durations too long for the clock, and marks
//! after librdkafka's position moved back under a running batch.

use std::time::Duration;

use super::tests::{FAIL, Harness, SECOND, dispatched, settings, stores};
use super::*;

#[test]
fn a_new_assignment_resumes_fetching_since_librdkafka_keeps_an_old_pause() {
    let mut p = Partition::new("t".into(), 0, 2, settings(), false);
    let mut out = Vec::new();
    p.on_assigned(false, &mut out);
    assert!(matches!(out[..], [Effect::Resume]), "{out:?}");
    assert!(!p.fetch_paused());
}

#[test]
fn a_partition_assigned_in_quiet_mode_stays_paused_and_starts_nothing() {
    let mut h = Harness::new(settings());
    h.p.on_assigned(true, &mut h.out);
    assert!(matches!(h.out[..], [Effect::Pause]), "{:?}", h.out);
    h.out.clear();
    // Messages librdkafka had already fetched arrive: none of them starts a batch.
    let e = h.fetch(0..3);
    assert_eq!(dispatched(&e), None, "{e:?}");
    let e = h.advance(10 * SECOND);
    assert_eq!(dispatched(&e), None, "{e:?}");
}

#[test]
fn durations_beyond_the_clock_do_not_panic() {
    let mut h = Harness::new(PartitionSettings {
        max_wait: Duration::MAX,
        backoff: Backoff {
            first: Duration::MAX,
            max: Duration::MAX,
            exponential: true,
        },
        ..settings()
    });
    let e = h.fetch(0..1);
    assert_eq!(dispatched(&e), None);
    assert!(h.p.next_wakeup(h.now).is_some_and(|t| t > h.now));
    let e = h.fetch(1..3);
    let (batch, ..) = dispatched(&e).expect("a full batch starts");
    let e = h.finish(batch, FAIL(), None);
    assert_eq!(dispatched(&e), None, "the retry waits: {e:?}");
    let e = h.advance(1000 * SECOND);
    assert_eq!(dispatched(&e), None, "{e:?}");
    assert!(h.p.next_wakeup(h.now).is_some_and(|t| t > h.now));
}

#[test]
fn a_running_batch_stores_nothing_past_where_a_truncation_moved_the_position() {
    let mut h = Harness::new(settings());
    let e = h.fetch(0..3);
    let (batch, offsets, _) = dispatched(&e).expect("batch");
    assert_eq!(offsets, [0, 1, 2]);
    // The log was truncated at 1: offsets 1 and 2 now hold new messages, fetched again.
    let e = h.fetch(1..3);
    assert_eq!(dispatched(&e), None);
    // The running batch (the old copies) succeeds: only offset 0 is really done.
    let e = h.finish(batch, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), [1], "{e:?}");
    let e = h.advance(SECOND);
    let (batch, offsets, _) = dispatched(&e).expect("the new messages run");
    assert_eq!(offsets, [1, 2]);
    let e = h.finish(batch, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), [3]);
}

#[test]
fn a_progress_mark_stops_where_the_position_moved_back() {
    let mut h = Harness::new(settings());
    let e = h.fetch(0..3);
    let (batch, ..) = dispatched(&e).expect("batch");
    h.fetch(2..3);
    let mut out = Vec::new();
    h.p.on_mark(h.p.generation(), batch, 3, &mut out);
    assert_eq!(stores(&out), [2], "{out:?}");
}

#[test]
fn the_listener_holds_polling_for_one_partition_only_while_no_other_wants_messages() {
    let settings = PartitionSettings {
        run_messages: 3,
        ..settings()
    };
    // A young batch with a long backlog behind it asks the listener to hold.
    let mut busy = Harness::new(settings.clone());
    let e = busy.fetch(0..3);
    assert!(dispatched(&e).is_some());
    busy.fetch(3..10);
    assert!(busy.p.hold_fetch_until().is_some());
    // Another partition has nothing waiting: a hold would starve it.
    let idle = Partition::new("t".into(), 1, 1, settings.clone(), false);
    assert!(idle.wants_messages());
    assert_eq!(listener_hold([&busy.p, &idle].into_iter(), busy.now), None);
    // Once it has a run waiting too, the hold applies.
    let mut fed = Harness::new(settings);
    fed.fetch(0..3);
    fed.fetch(3..6);
    assert!(!fed.p.wants_messages());
    assert_eq!(
        listener_hold([&busy.p, &fed.p].into_iter(), busy.now),
        Some(HOLD_AT_MOST)
    );
}
