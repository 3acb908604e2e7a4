//! Unit tests of runs: full batches handed to the executor together (see `runs.rs`).

use super::tests::{FAIL, Harness, SECOND, dispatched, settings, stores};
use super::*;

fn run_settings() -> PartitionSettings {
    PartitionSettings {
        run_messages: 9,
        ..settings()
    }
}

/// The batches of the run started by `effects`: the first one's number, and each one's offsets.
fn dispatched_run(effects: &[Effect]) -> Option<(u64, Vec<Vec<i64>>)> {
    effects.iter().find_map(|e| match e {
        Effect::Dispatch {
            batch,
            work: Work::Run(batches),
        } => Some((
            *batch,
            batches
                .iter()
                .map(|b| b.iter().map(|m| m.offset).collect())
                .collect(),
        )),
        _ => None,
    })
}

/// A machine whose executor runs batches 1 (3..6), 2 (6..9) and 3 (9..12) as one run, after
/// batch 0 (0..3) ran alone.
fn running_a_run() -> Harness {
    let mut h = Harness::new(run_settings());
    h.fetch(0..3);
    h.fetch(3..12);
    let e = h.finish(0, Outcome::Consumed, Some(3));
    let run = vec![vec![3, 4, 5], vec![6, 7, 8], vec![9, 10, 11]];
    assert_eq!(dispatched_run(&e), Some((1, run)));
    h
}

/// Full batches that wait behind a running one go to the executor together, up to
/// `run_messages`, numbered one after the other; a partial batch never joins a run.
#[test]
fn waiting_full_batches_are_handed_over_as_a_run() {
    let mut h = Harness::new(run_settings());
    assert_eq!(dispatched(&h.fetch(0..3)), Some((0, vec![0, 1, 2], 1)));
    h.fetch(3..17);
    let e = h.finish(0, Outcome::Consumed, Some(3));
    let run = vec![vec![3, 4, 5], vec![6, 7, 8], vec![9, 10, 11]];
    assert_eq!(dispatched_run(&e), Some((1, run)), "9 messages at most");
    let e = h.finish(3, Outcome::Consumed, Some(12));
    assert_eq!(stores(&e), vec![12]);
    assert_eq!(
        dispatched(&e),
        Some((4, vec![12, 13, 14], 1)),
        "one full batch"
    );
    assert_eq!(dispatched(&h.finish(4, Outcome::Consumed, Some(15))), None);
    assert_eq!(
        dispatched(&h.advance(SECOND)),
        Some((5, vec![15, 16], 1)),
        "the partial batch, after max_wait"
    );
}

/// A run that ends early (a failure in its second batch): the first batch's mark is stored,
/// the failed batch is retried alone after the backoff, and the batch that never ran is not
/// marked and runs after the retry.
#[test]
fn a_run_ending_early_stores_only_what_ran_and_keeps_the_rest() {
    let mut h = running_a_run();
    // Batch 2 (6..9) failed after batch 1 (3..6) was consumed; batch 3 (9..12) did not run.
    let e = h.finish(2, FAIL(), Some(6));
    assert_eq!(stores(&e), vec![6]);
    assert_eq!(dispatched(&e), None, "backoff first");
    let e = h.advance(SECOND);
    assert_eq!(
        dispatched(&e),
        Some((4, vec![6, 7, 8], 2)),
        "a retry runs alone"
    );
    assert_eq!(dispatched_run(&e), None);
    let e = h.finish(4, Outcome::Consumed, Some(9));
    assert_eq!(stores(&e), vec![9]);
    assert_eq!(
        dispatched(&e),
        Some((5, vec![9, 10, 11], 1)),
        "then what never ran"
    );
}

/// A run's marks never cover a batch that did not run: a report of the run's first batch, or
/// a progress mark from it, stores at most that batch's end.
#[test]
fn a_runs_marks_stop_at_the_last_batch_that_ran() {
    let mut h = running_a_run();
    h.p.on_mark(1, 1, 50, &mut h.out);
    assert_eq!(
        stores(&std::mem::take(&mut h.out)),
        vec![6],
        "progress of batch 1"
    );
    h.p.on_mark(1, 9, 50, &mut h.out);
    assert!(h.out.is_empty(), "no such batch: {:?}", h.out);
    let e = h.finish_with(
        2,
        Outcome::Consumed,
        Some(50),
        vec![PartitionRequest::Resume],
    );
    assert_eq!(stores(&e), vec![9], "batch 2 ended the run with a request");
    assert_eq!(
        dispatched(&e),
        Some((4, vec![9, 10, 11], 1)),
        "batch 3 never ran, so it runs now"
    );
}

/// Messages of a run's unrun batches that librdkafka fetched again (its position moved back)
/// are not put back twice.
#[test]
fn a_runs_unrun_batches_give_way_to_refetched_messages() {
    let mut h = running_a_run();
    h.fetch(7..9); // the position moved back to 7 while the run ran
    let e = h.finish(1, Outcome::Consumed, Some(6));
    assert_eq!(stores(&e), vec![6]);
    assert_eq!(
        dispatched(&e),
        Some((4, vec![6, 7, 8], 1)),
        "6 from the run, then 7 and 8 as fetched again; 9.. is fetched after them"
    );
}
