//! A randomized model test of the partition state machine: long random sequences of fetches,
//! successes, failures, marks, revocations, re-assignments, seeks, offset resets, log
//! truncations, pauses, quiet mode, shutdown, runs of batches (with cuts) and the listener's
//! gathering. The machine is driven by the server's own driver
//! ([`crate::processing::driver::Partitions`], which carries out its effects, keeps earlier
//! assignments' executors and drops stale reports), over a simulated librdkafka and executor.
//! After every step it checks the machine's invariants (see the module docs of `partition`),
//! among them that the machine's idea of the fetch pause is librdkafka's: the simulated
//! librdkafka keeps a partition's pause across a revocation and the next assignment, as the
//! real one does, and that one partition never runs two batches at once across assignments.
//!
//! Every case ends with a liveness check: from then on consumers are healthy (a quiet or
//! stopped process is restarted, an endless consumer pause ends with a rebalance), and every
//! message must get processed (or skipped on purpose by a seek) and the stored offset must
//! reach the end of the log. Duplicates are counted and bounded by the events that may cause
//! them (rebalances, restarts, moves of the fetch position).
//!
//! Listener events interleave as in the server: a poll burst overtaken by a seek or an
//! assignment delivers stale messages late (which must never run), and an executor may end
//! without a report (its partition must recover).
//!
//! A share of the cases gives the topic a throttle filter (5 messages a second) and a `tick`
//! hook: held-back messages must still all run in order, and hooks never overlap a batch.
//!
//! `FERRAFKA_MODEL_CASES=100000 cargo test -p ferrafka --lib model` runs more cases.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

mod world;

use world::World;

/// Messages in the simulated partition at first; `Op::Produce` appends more.
const LOG_START: i64 = 40;
const MAX_RETRIES: u32 = 1;

#[derive(Debug, Clone)]
enum Op {
    Fetch(usize),
    Tick(Duration),
    /// Ends the oldest running batch (the current batch of a run).
    Finish(Finish),
    /// The running batch marks a fraction of itself and goes on.
    Mark(usize),
    /// A report of a finished batch of an older assignment arrives at the current machine.
    StaleReport,
    Revoke {
        finish_first: bool,
    },
    Assign,
    /// librdkafka's position moves back by `by` on its own: an offset reset (the same
    /// messages again) or, with `truncate`, a log truncation (the offsets from there on are
    /// re-used by new messages).
    PositionBack {
        by: i64,
        truncate: bool,
    },
    /// A message is appended to the log.
    Produce,
    Quiet,
    Shutdown,
    /// The listener begins or ends taking messages from librdkafka's queue.
    Gathering(bool),
    /// Messages polled before the partition's last assignment or seek reach the driver late
    /// (a poll burst a rebalance callback or a seek overtook): they must never run.
    StaleFetch(usize),
    /// The executor of the running batch ends without a report (a panic outside its guards,
    /// an abort): its partition must recover.
    ExecutorDies,
}

#[derive(Debug, Clone)]
struct Finish {
    ok: bool,
    /// How many messages from the batch's first the consumer marked before the outcome; more
    /// than the batch holds is a consumer marking past its batch, which must store nothing
    /// past it.
    marked: usize,
    request: Option<PartitionRequest>,
    seek_ok: bool,
    /// The listener cut the run: the executor reports instead of starting the run's next batch.
    cut: bool,
}

fn request() -> impl Strategy<Value = Option<PartitionRequest>> {
    prop_oneof![
        6 => Just(None),
        1 => prop_oneof![Just(0u64), Just(500), Just(5_000)]
            .prop_map(|ms| Some(PartitionRequest::Pause(Duration::from_millis(ms)))),
        1 => Just(Some(PartitionRequest::Pause(Duration::MAX))),
        1 => Just(Some(PartitionRequest::Resume)),
        2 => (-1i64..LOG_START + 2).prop_map(|o| Some(PartitionRequest::Seek(SeekTo::Offset(o)))),
        1 => Just(Some(PartitionRequest::Seek(SeekTo::Earliest))),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let finish = (
        any::<bool>(),
        0usize..6,
        request(),
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.2),
    )
        .prop_map(|(ok, marked, request, seek_ok, cut)| {
            Op::Finish(Finish {
                ok,
                marked,
                request,
                seek_ok,
                cut,
            })
        });
    prop_oneof![
        8 => (1usize..8).prop_map(Op::Fetch),
        6 => prop_oneof![Just(0u64), Just(50), Just(100), Just(1_000), Just(10_000)]
            .prop_map(|ms| Op::Tick(Duration::from_millis(ms))),
        10 => finish,
        2 => (0usize..6).prop_map(Op::Mark),
        1 => Just(Op::StaleReport),
        1 => any::<bool>().prop_map(|finish_first| Op::Revoke { finish_first }),
        2 => Just(Op::Assign),
        1 => (1i64..6, any::<bool>()).prop_map(|(by, truncate)| Op::PositionBack { by, truncate }),
        1 => Just(Op::Produce),
        1 => Just(Op::Quiet),
        1 => Just(Op::Shutdown),
        3 => any::<bool>().prop_map(Op::Gathering),
        1 => (1usize..4).prop_map(Op::StaleFetch),
        1 => Just(Op::ExecutorDies),
    ]
}

fn cases() -> u32 {
    std::env::var("FERRAFKA_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn partition_machine_keeps_its_invariants(
        dead_letter in any::<bool>(),
        run_messages in prop_oneof![Just(3usize), Just(9), Just(40)],
        filtered in prop::bool::weighted(0.3),
        ops in prop::collection::vec(op(), 1..150),
    ) {
        let mut world = World::new(dead_letter, run_messages, filtered);
        for op in ops {
            world.step(op);
        }
        world.settle();
    }
}
