//! Case 2: a rolling restart of three `fault-consumer` processes over six partitions while
//! messages keep coming, on librdkafka's mock cluster: eager (range), cooperative-sticky, static
//! membership, and cooperative-sticky with the successor started first. The same restarts on
//! Apache Kafka, with KIP-848 and rebalances counted by the broker, are in `rolling_deploy.rs`.
//!
//! Every case asserts: exit code 0 for every process, the group settles after each restart
//! (every partition is processed again), nothing is lost, and every message processed twice
//! follows a revocation of its partition by the process that processed it first, each revocation
//! redoing at most what the commit and heartbeat intervals allow, with a bounded number of such
//! revocations per strategy. Figures:
//! `cargo test -p ferrafka-faults --test rolling_restart -- --nocapture --test-threads 1`.

use ferrafka_faults::rolling::{Coordinator, PARTITIONS, PROCESSES, Scenario, check, run};

fn restart(scenario: &Scenario, lossy_revocations: u64) {
    let mock = Coordinator::mock();
    let outcome = run(scenario, &mock);
    check(scenario, &mock, &outcome, lossy_revocations);
}

#[test]
fn rolling_restart_eager() {
    let scenario = Scenario::new("eager (range)", "range", 3000);
    // Each restart: up to three rebalances, each revoking every partition — the leave, and one
    // more for each member (the successor or a survivor) whose JoinGroup missed the mock's join
    // window, which closes after a fixed time.
    restart(&scenario, PROCESSES as u64 * 3 * PARTITIONS);
}

#[test]
fn rolling_restart_cooperative_sticky() {
    let scenario = Scenario::new("cooperative-sticky", "cooperative-sticky", 3000);
    // Each restart revokes only what moves to the successor: its share, two partitions.
    restart(&scenario, PROCESSES as u64 * 2);
}

#[test]
fn rolling_restart_static_membership() {
    let scenario = Scenario {
        static_membership: true,
        ..Scenario::new("static membership (range)", "range", 6000)
    };
    // The mock coordinator ignores `group.instance.id` when a member rejoins, so each restart
    // is a join plus the predecessor's session expiry: up to three rebalances, each revoking
    // every partition.
    restart(&scenario, PROCESSES as u64 * 3 * PARTITIONS);
}

#[test]
fn rolling_restart_cooperative_sticky_surge() {
    let scenario = Scenario {
        surge: true,
        ..Scenario::new(
            "cooperative-sticky, successor first",
            "cooperative-sticky",
            3000,
        )
    };
    // Each restart moves the successor's share to it and the predecessor's partitions away
    // from it: four partitions.
    restart(&scenario, PROCESSES as u64 * 4);
}
