//! The filter chain in the machine: what is held back waits in order, what is dropped is
//! marked only behind everything before it, and a filter's pause is a partition pause.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::tests::{Harness, SECOND, dispatched, settings, stores};
use super::*;
use crate::filters::{Delay, Expire, Filter, Now, Throttle, Verdict};
use crate::instrumentation::PauseReason;

fn with_filters(filters: Vec<Box<dyn Fn() -> Box<dyn Filter> + Send + Sync>>) -> Harness {
    let filters = filters.into_iter().map(Arc::from).collect();
    Harness::new(PartitionSettings {
        filters: FilterFactories(filters),
        ..settings()
    })
}

fn one<F: Filter + Clone + Sync>(f: F) -> Vec<Box<dyn Fn() -> Box<dyn Filter> + Send + Sync>> {
    vec![Box::new(move || Box::new(f.clone()) as Box<dyn Filter>)]
}

/// A message created `age` ago by the wall clock.
fn aged(offset: i64, age: Duration) -> Message {
    let created = SystemTime::now() - age;
    let millis = created.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    Message::builder("t", 0, offset).timestamp(millis).build()
}

fn fetch_aged(h: &mut Harness, messages: Vec<Message>) -> Vec<Effect> {
    for m in messages {
        h.p.on_message(m, h.now, &mut h.out);
    }
    std::mem::take(&mut h.out)
}

fn skipped(effects: &[Effect]) -> Vec<(&'static str, (i64, i64), usize)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Skipped {
                filter,
                offsets,
                count,
            } => Some((*filter, *offsets, *count)),
            _ => None,
        })
        .collect()
}

fn paused(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::Pause))
}

#[test]
fn a_throttle_hands_on_its_budget_then_pauses_for_the_rest_of_the_interval() {
    let mut h = with_filters(one(Throttle::new(4, SECOND)));
    let e = h.fetch(0..9);
    assert_eq!(dispatched(&e), Some((0, vec![0, 1, 2], 1)));
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), vec![3]);
    assert_eq!(
        dispatched(&e),
        Some((1, vec![3], 1)),
        "one left in the budget"
    );
    assert!(paused(&e), "the rest of the interval pauses fetching");
    assert_eq!(h.p.pause_reason(h.now), PauseReason::Filter);
    let e = h.finish(1, Outcome::Consumed, Some(4));
    assert_eq!(stores(&e), vec![4], "nothing held back is marked");
    assert_eq!(dispatched(&e), None);
    assert_eq!(h.p.next_wakeup(h.now), Some(h.now + SECOND));
    assert_eq!(
        dispatched(&h.advance(SECOND - Duration::from_millis(1))),
        None
    );
    let e = h.advance(Duration::from_millis(1));
    assert_eq!(
        dispatched(&e),
        Some((2, vec![4, 5, 6], 1)),
        "held back, in order"
    );
    assert!(e.iter().any(|e| matches!(e, Effect::Resume)));
}

#[test]
fn a_failed_throttled_batch_is_retried_and_nothing_behind_it_is_marked() {
    let mut h = with_filters(one(Throttle::new(2, SECOND)));
    assert_eq!(dispatched(&h.fetch(0..3)), Some((0, vec![0, 1], 1)));
    let e = h.finish(0, super::tests::FAIL(), None);
    assert_eq!(stores(&e), Vec::<i64>::new());
    // The backoff (1 s) and the throttle's window end together; the retry counts anew.
    let e = h.advance(SECOND);
    assert_eq!(dispatched(&e), Some((1, vec![0, 1], 2)));
    let e = h.finish(1, Outcome::Consumed, Some(2));
    assert_eq!(stores(&e), vec![2]);
    assert_eq!(dispatched(&e), None, "the new window's budget is spent");
    assert_eq!(dispatched(&h.advance(SECOND)), Some((2, vec![2], 1)));
}

#[test]
fn expired_messages_are_dropped_and_marked_before_the_batch_behind_them() {
    let hour = Duration::from_secs(3600);
    let mut h = with_filters(one(Expire::after(hour)));
    let old = 2 * hour;
    let e = fetch_aged(&mut h, vec![aged(0, old), aged(1, old), aged(2, SECOND)]);
    assert_eq!(skipped(&e), vec![("expire", (0, 1), 2)]);
    assert_eq!(stores(&e), vec![2]);
    assert_eq!(dispatched(&e), Some((0, vec![2], 1)));
    // An expired message behind a fresh one ends the batch; it is dropped next.
    let e = fetch_aged(&mut h, vec![aged(3, SECOND), aged(4, old), aged(5, SECOND)]);
    assert_eq!(dispatched(&e), None);
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), vec![3]);
    assert_eq!(dispatched(&e), Some((1, vec![3], 1)));
    let e = h.finish(1, Outcome::Consumed, Some(4));
    assert_eq!(skipped(&e), vec![("expire", (4, 4), 1)]);
    assert_eq!(stores(&e), vec![4, 5], "4 is marked only after 3 is done");
    assert_eq!(dispatched(&e), Some((2, vec![5], 1)));
}

#[test]
fn with_manual_offsets_a_dropped_message_is_not_marked_past_an_unmarked_one() {
    let hour = Duration::from_secs(3600);
    let mut h = Harness::new(PartitionSettings {
        manual_offsets: true,
        filters: FilterFactories(
            one(Expire::after(hour))
                .into_iter()
                .map(Arc::from)
                .collect(),
        ),
        ..settings()
    });
    let e = fetch_aged(
        &mut h,
        vec![aged(0, SECOND), aged(1, 2 * hour), aged(2, SECOND)],
    );
    assert_eq!(dispatched(&e), Some((0, vec![0], 1)));
    let e = h.finish(0, Outcome::Consumed, None); // the consumer did not mark 0
    assert_eq!(skipped(&e), vec![("expire", (1, 1), 1)]);
    assert_eq!(stores(&e), Vec::<i64>::new(), "a mark past 1 would cover 0");
    assert_eq!(dispatched(&e), Some((1, vec![2], 1)));
    let e = h.finish(1, Outcome::Consumed, Some(3));
    assert_eq!(stores(&e), vec![3]);
}

#[test]
fn a_delay_pauses_until_the_first_young_message_is_old_enough() {
    let mut h = with_filters(one(Delay::by(5 * SECOND)));
    let e = fetch_aged(
        &mut h,
        vec![aged(0, 10 * SECOND), aged(1, SECOND), aged(2, SECOND)],
    );
    assert_eq!(dispatched(&e), Some((0, vec![0], 1)));
    assert!(paused(&e));
    assert_eq!(h.p.pause_reason(h.now), PauseReason::Filter);
    let e = h.finish(0, Outcome::Consumed, Some(1));
    assert_eq!((stores(&e), dispatched(&e)), (vec![1], None));
    let wake =
        h.p.next_wakeup(h.now)
            .expect("a wake-up at the end of the delay");
    let left = wake - h.now;
    assert!(
        left > 3 * SECOND && left <= 4 * SECOND,
        "about 4 s left: {left:?}"
    );
    assert_eq!(dispatched(&h.advance(left)), Some((1, vec![1, 2], 1)));
}

#[test]
fn filters_chain_in_order_and_drops_of_each_are_counted_apart() {
    let hour = Duration::from_secs(3600);
    let mut filters = one(Expire::after(hour));
    filters.extend(one(Throttle::new(1, SECOND)));
    let mut h = with_filters(filters);
    let e = fetch_aged(
        &mut h,
        vec![aged(0, 2 * hour), aged(1, SECOND), aged(2, SECOND)],
    );
    assert_eq!(skipped(&e), vec![("expire", (0, 0), 1)]);
    assert_eq!(
        dispatched(&e),
        Some((0, vec![1], 1)),
        "the throttle saw 1 and 2"
    );
}

#[derive(Clone)]
struct Broken(bool);

impl Filter for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn apply(&mut self, messages: &[Message], _: Now) -> Verdict {
        assert!(!self.0, "a bug in a filter");
        let _ = messages;
        Verdict::take(0) // neither hands on, drops nor pauses
    }
}

#[test]
fn a_panicking_or_stalling_filter_hands_on_everything() {
    for panics in [true, false] {
        let mut h = with_filters(one(Broken(panics)));
        let e = h.fetch(0..3);
        assert_eq!(
            dispatched(&e),
            Some((0, vec![0, 1, 2], 1)),
            "panics: {panics}"
        );
    }
}

#[test]
fn a_filter_pause_ends_with_the_assignment_and_the_next_one_decides_anew() {
    let mut h = with_filters(one(Throttle::new(1, SECOND)));
    h.fetch(0..3);
    assert!(h.p.fetch_paused());
    let revoked = h.p.revoke();
    assert!(revoked, "batch 0 still runs");
    // The next assignment's machine resumes fetching (librdkafka keeps pauses across
    // assignments) and its own throttle starts a fresh window on what is fetched again.
    let settings = h.p.settings.clone();
    h.p = Partition::new("t".into(), 0, 2, settings, false);
    h.p.on_assigned(false, &mut h.out);
    assert!(matches!(h.out[..], [Effect::Resume]));
    h.out.clear();
    let e = h.fetch(1..4);
    assert_eq!(dispatched(&e), Some((0, vec![1], 1)));
    assert_eq!(h.p.pause_reason(h.now), PauseReason::Filter);
}
