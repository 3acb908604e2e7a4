//! When `tick`, `idle` and `eofed` run: in order with the batches, never while one runs, and
//! `idle`/`eofed` once per occasion.

use std::time::Duration;

use super::tests::{Harness, SECOND, dispatched, settings};
use super::*;
use crate::instrumentation::PauseReason;

fn hooks(effects: &[Effect]) -> Vec<Hook> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Hook(h) => Some(*h),
            _ => None,
        })
        .collect()
}

fn with(tick: Option<Duration>, idle: Option<Duration>) -> Harness {
    let mut h = Harness::new(PartitionSettings {
        tick_interval: tick,
        idle_after: idle,
        ..settings()
    });
    assert_eq!(
        hooks(&h.advance(Duration::ZERO)),
        vec![],
        "nothing is due at once"
    );
    h
}

fn hook_done(h: &mut Harness, requests: Vec<PartitionRequest>) -> Vec<Effect> {
    h.p.on_hook_done(requests, h.now, &mut h.out);
    std::mem::take(&mut h.out)
}

fn assert_no_spin(h: &Harness) {
    if let Some(t) = h.p.next_wakeup(h.now) {
        assert!(t > h.now, "a wake-up at or before now: {h:?}");
    }
}

#[test]
fn tick_runs_every_interval_between_batches_and_never_while_one_runs() {
    let mut h = with(Some(SECOND), None);
    assert_eq!(
        h.p.next_wakeup(h.now),
        Some(h.now + SECOND),
        "idle, it still ticks"
    );
    assert_eq!(hooks(&h.advance(SECOND)), vec![Hook::Tick]);
    assert!(h.p.is_running(), "a hook holds the executor");
    assert_eq!(
        dispatched(&h.fetch(0..3)),
        None,
        "no batch starts during the hook"
    );
    assert_no_spin(&h); // a full batch waits for the hook's report, not for the clock
    assert_eq!(
        dispatched(&hook_done(&mut h, vec![])),
        Some((0, vec![0, 1, 2], 1))
    );
    assert_eq!(hooks(&h.advance(2 * SECOND)), vec![], "a batch runs");
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(
        hooks(&e),
        vec![Hook::Tick],
        "due, it runs once the batch ended"
    );
    assert_no_spin(&h);
    assert_eq!(hook_done(&mut h, vec![]).len(), 0);
    assert_eq!(h.p.next_wakeup(h.now), Some(h.now + SECOND));
    assert_eq!(
        h.p.next_wakeup_but_ticks(h.now),
        None,
        "the tester stops once only ticks are left"
    );
}

#[test]
fn idle_runs_once_per_quiet_spell_after_the_last_batch() {
    let quiet = 5 * SECOND;
    let mut h = with(None, Some(quiet));
    assert_eq!(dispatched(&h.fetch(0..3)), Some((0, vec![0, 1, 2], 1)));
    assert_eq!(hooks(&h.advance(quiet)), vec![], "a batch runs");
    h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(h.p.next_wakeup(h.now), Some(h.now + quiet));
    assert_eq!(hooks(&h.advance(quiet - Duration::from_millis(1))), vec![]);
    assert_eq!(
        hooks(&h.advance(Duration::from_millis(1))),
        vec![Hook::Idle]
    );
    hook_done(&mut h, vec![]);
    assert_eq!(h.p.next_wakeup(h.now), None, "once per quiet spell");
    assert_eq!(hooks(&h.advance(10 * quiet)), vec![]);
    h.fetch(3..4);
    assert_eq!(
        dispatched(&h.advance(settings().max_wait)),
        Some((1, vec![3], 1))
    );
    h.finish(1, Outcome::Consumed, Some(4));
    assert_eq!(hooks(&h.advance(quiet)), vec![Hook::Idle], "a new spell");
}

#[test]
fn eofed_runs_once_after_everything_before_the_end_was_consumed() {
    let mut h = with(None, None);
    assert_eq!(dispatched(&h.fetch(0..5)), Some((0, vec![0, 1, 2], 1)));
    h.p.on_eof(h.now, &mut h.out);
    assert_eq!(hooks(&std::mem::take(&mut h.out)), vec![]);
    let e = h.finish(0, Outcome::Consumed, Some(3));
    assert_eq!(hooks(&e), vec![], "3 and 4 still wait");
    let e = h.advance(settings().max_wait);
    assert_eq!(dispatched(&e), Some((1, vec![3, 4], 1)));
    let e = h.finish(1, Outcome::Consumed, Some(5));
    assert_eq!(hooks(&e), vec![Hook::Eofed]);
    assert_eq!(hook_done(&mut h, vec![]).len(), 0);
    assert_eq!(hooks(&h.advance(SECOND)), vec![], "once per end reached");
    h.p.on_eof(h.now, &mut h.out);
    assert_eq!(
        hooks(&std::mem::take(&mut h.out)),
        vec![Hook::Eofed],
        "reached again"
    );
}

#[test]
fn a_hook_can_pause_the_partition_and_revocation_waits_for_it() {
    let mut h = with(Some(SECOND), None);
    assert_eq!(hooks(&h.advance(SECOND)), vec![Hook::Tick]);
    let e = hook_done(&mut h, vec![PartitionRequest::Pause(10 * SECOND)]);
    assert!(e.iter().any(|e| matches!(e, Effect::Pause)));
    assert_eq!(h.p.pause_reason(h.now), PauseReason::Consumer);
    assert_eq!(dispatched(&h.fetch(0..3)), None, "paused by the hook");
    assert_eq!(
        hooks(&h.advance(SECOND)),
        vec![Hook::Tick],
        "paused, it still ticks"
    );
    assert!(
        h.p.revoke(),
        "the hook still runs: the next assignment waits for it"
    );
    assert_eq!(
        hook_done(&mut h, vec![]).len(),
        0,
        "nothing starts once revoked"
    );
}
