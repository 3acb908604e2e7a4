//! Rolling deploys on Apache Kafka (a real group coordinator): three `fault-consumer`
//! processes over six partitions with steady traffic, each SIGTERMed and restarted in turn, for
//! eager (range), cooperative-sticky, static membership, KIP-848 (`group.protocol=consumer`)
//! and KIP-848 with static membership.
//!
//! Every case asserts what the mock-cluster cases do (`rolling_restart.rs`: exit code 0, the
//! group settles after each restart, nothing lost, every duplicate explained by a revocation and
//! within the bound the commit and heartbeat intervals give) and reports the rebalances of each
//! restart as the broker counted them: the group generations (classic protocol) or group epochs
//! (KIP-848) its coordinator logged. A static member restarted within its session timeout must
//! cost no rebalance at all. Figures:
//! `cargo test -p ferrafka-faults --test rolling_deploy -- --nocapture --test-threads 1`
//! (on the `FERRAFKA_TEST_KAFKA` cluster with `FERRAFKA_TEST_KAFKA_DIR`, else a one-node cluster
//! the test starts).

use ferrafka_faults::rolling::{
    Coordinator, Outcome, PARTITIONS, PROCESSES, Pause, Scenario, check, run,
};

fn deploy(scenario: &Scenario, lossy_revocations: u64) -> Outcome {
    let kafka = Coordinator::kafka();
    let outcome = run(scenario, &kafka);
    check(scenario, &kafka, &outcome, lossy_revocations);
    assert_eq!(
        outcome.broker_rebalances.len(),
        PROCESSES,
        "{}: the broker's log shows no group events",
        scenario.name
    );
    outcome
}

#[test]
fn rolling_deploy_eager() {
    let scenario = Scenario::new("eager (range)", "range", 6000);
    // Each restart: the leave and the join, each revoking every partition.
    let outcome = deploy(&scenario, PROCESSES as u64 * 2 * PARTITIONS);
    assert!(outcome.broker_rebalances.iter().all(|&n| n >= 1));
}

#[test]
fn rolling_deploy_cooperative_sticky() {
    let scenario = Scenario::new("cooperative-sticky", "cooperative-sticky", 6000);
    // Each restart revokes the leaver's share and, when the successor joins, its share again.
    let outcome = deploy(&scenario, PROCESSES as u64 * 4);
    assert!(outcome.broker_rebalances.iter().all(|&n| n >= 1));
}

#[test]
fn rolling_deploy_static_membership() {
    let scenario = Scenario {
        static_membership: true,
        ..Scenario::new("static membership (range)", "range", 30_000)
    };
    // The leaver revokes its own share when it stops; nothing else moves.
    let outcome = deploy(&scenario, PROCESSES as u64 * 2);
    assert_eq!(
        outcome.broker_rebalances,
        vec![0; PROCESSES],
        "a static member restarted within its session timeout rebalanced the group"
    );
}

#[test]
fn rolling_deploy_kip848() {
    let scenario = Scenario::new("KIP-848 (group.protocol=consumer)", "consumer", 0);
    // Each restart revokes the leaver's share and, when the successor joins, its share again.
    let outcome = deploy(&scenario, PROCESSES as u64 * 4);
    assert!(outcome.broker_rebalances.iter().all(|&n| n >= 1));
}

#[test]
fn rolling_deploy_kip848_static_membership() {
    let scenario = Scenario {
        static_membership: true,
        ..Scenario::new("KIP-848 with static membership", "consumer", 0)
    };
    // The leaver revokes its own share when it stops; nothing else moves.
    let outcome = deploy(&scenario, PROCESSES as u64 * 2);
    assert_eq!(
        outcome.broker_rebalances,
        vec![0; PROCESSES],
        "a static member restarted within the broker's session timeout bumped the group epoch"
    );
}

/// An eager rolling deploy while partitions keep pausing for `pause`: every rebalance revokes
/// every partition and hands most of them back to the same process, often while paused. A
/// partition whose pause survived in librdkafka would never fetch again, and the group would
/// not settle after the restart.
fn eager_deploy_while_paused(name: &'static str, pause: Pause) {
    let scenario = Scenario {
        pause,
        ..Scenario::new(name, "range", 6000)
    };
    deploy(&scenario, PROCESSES as u64 * 2 * PARTITIONS);
}

#[test]
fn rolling_deploy_eager_while_partitions_wait_for_a_retry() {
    eager_deploy_while_paused("eager, partitions paused for retries", Pause::Backoff);
}

#[test]
fn rolling_deploy_eager_while_consumers_pause_their_partitions() {
    eager_deploy_while_paused(
        "eager, partitions paused by ctx.pause",
        Pause::ConsumerPause,
    );
}

#[test]
fn rolling_deploy_eager_while_backlogs_pause_their_partitions() {
    eager_deploy_while_paused(
        "eager, partitions paused by the backlog bound",
        Pause::Backlog,
    );
}
