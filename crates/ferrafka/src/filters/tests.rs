use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::*;

const SECOND: Duration = Duration::from_secs(1);

fn at(offset: i64) -> Message {
    Message::builder("t", 0, offset).build()
}

/// A message created `age` before `now`.
fn aged(now: Now, offset: i64, age: Duration) -> Message {
    let created = now.wall - age;
    let millis = created.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
    Message::builder("t", 0, offset).timestamp(millis).build()
}

fn now() -> Now {
    // A whole millisecond, so ages of messages built from it are exact.
    let wall = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    Now {
        instant: Instant::now(),
        wall,
    }
}

fn later(now: Now, by: Duration) -> Now {
    Now {
        instant: now.instant + by,
        wall: now.wall + by,
    }
}

#[test]
fn a_throttle_spends_its_budget_per_window_and_pauses_to_the_window_end() {
    let t0 = now();
    let mut throttle = Throttle::new(5, SECOND);
    let batch: Vec<_> = (0..3).map(at).collect();
    assert_eq!(throttle.apply(&batch, t0), Verdict::pass(3));
    let half = later(t0, SECOND / 2);
    assert_eq!(
        throttle.apply(&batch, half),
        Verdict::take(2).pause_until(t0.instant + SECOND),
        "the pause ends with the window, not a second after"
    );
    assert_eq!(
        throttle.apply(&batch, half),
        Verdict::take(0).pause_until(t0.instant + SECOND)
    );
    let next = later(t0, SECOND);
    assert_eq!(
        throttle.apply(&batch, next),
        Verdict::pass(3),
        "a new window"
    );
}

#[test]
fn a_zero_limit_throttle_still_moves() {
    let mut throttle = Throttle::new(0, SECOND);
    let t0 = now();
    let verdict = throttle.apply(&[at(0), at(1)], t0);
    assert_eq!(verdict, Verdict::take(1).pause_until(t0.instant + SECOND));
}

#[test]
fn a_delay_hands_on_old_messages_and_pauses_until_the_first_young_one_is_old_enough() {
    let t0 = now();
    let mut delay = Delay::by(10 * SECOND);
    let batch = vec![
        aged(t0, 0, 30 * SECOND),
        at(1), // no timestamp: passes
        aged(t0, 2, 4 * SECOND),
        aged(t0, 3, 60 * SECOND),
    ];
    assert_eq!(
        delay.apply(&batch, t0),
        Verdict::take(2).pause_until(t0.instant + 6 * SECOND)
    );
    assert_eq!(delay.apply(&batch, later(t0, 6 * SECOND)), Verdict::pass(4));
}

#[test]
fn expire_drops_the_expired_front_and_stops_before_the_next_expired_message() {
    let t0 = now();
    let mut expire = Expire::after(60 * SECOND);
    let old = 61 * SECOND;
    let batch = vec![
        aged(t0, 0, old),
        aged(t0, 1, old),
        aged(t0, 2, SECOND),
        at(3),
        aged(t0, 4, old),
        aged(t0, 5, SECOND),
    ];
    let verdict = expire.apply(&batch, t0);
    assert_eq!(
        (verdict.skip, verdict.take, verdict.pause_until),
        (2, 2, None)
    );
    assert_eq!(expire.apply(&batch[4..], t0).skip, 1);
    assert_eq!(
        expire.apply(&[aged(t0, 0, 60 * SECOND)], t0),
        Verdict::pass(1),
        "exactly the ttl old is not expired"
    );
}

#[test]
fn age_is_none_without_a_timestamp_or_for_one_from_the_future() {
    let t0 = now();
    assert_eq!(t0.age(&at(0)), None);
    let future = Message::builder("t", 0, 0)
        .timestamp(
            (t0.wall + SECOND)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
        )
        .build();
    assert_eq!(t0.age(&future), None);
    assert_eq!(t0.age(&aged(t0, 0, SECOND)), Some(SECOND));
}

#[test]
fn a_verdict_is_built_from_its_parts() {
    let at = Instant::now();
    let verdict = Verdict::take(3).skip(2).pause_until(at);
    assert_eq!(
        (verdict.skip, verdict.take, verdict.pause_until),
        (2, 3, Some(at))
    );
    assert_eq!(Verdict::pass(4), Verdict::take(4));
}
