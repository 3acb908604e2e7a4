//! The consumer processes of one rolling restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{
    BATCH_SLEEP_MS, COMMIT_INTERVAL_MS, HEARTBEAT_MS, MAX_MESSAGES, Outcome, PARTITIONS, PROCESSES,
    Pause, Revocation, STALL_MS, Scenario, log_path,
};
use crate::{ConsumerProcess, ConsumerSpec, FaultEvent, Records, now_ms, unique, wait_until};

/// How to start a process of `scenario`'s group (the `fault-consumer` binary next to the test
/// executable's directory).
pub(super) fn spec(
    scenario: &Scenario,
    bootstrap: String,
    topic: &str,
    out: &Path,
) -> ConsumerSpec {
    let mut spec = ConsumerSpec {
        binary: fault_consumer(),
        bootstrap,
        topic: topic.into(),
        group: unique("rolling-group"),
        out: out.to_path_buf(),
        env: Vec::new(),
    }
    .with("FAULT_MAX_MESSAGES", MAX_MESSAGES.to_string())
    .with("FAULT_BATCH_SLEEP_MS", BATCH_SLEEP_MS.to_string())
    .with(
        "FERRAFKA_KAFKA_AUTO_COMMIT_INTERVAL_MS",
        COMMIT_INTERVAL_MS.to_string(),
    )
    .with(
        "FERRAFKA_KAFKA_DEBUG",
        std::env::var("FAULT_KAFKA_DEBUG").unwrap_or("generic".into()),
    )
    .with(
        "RUST_LOG",
        std::env::var("FAULT_RUST_LOG").unwrap_or("info,librdkafka=warn".into()),
    )
    .with("NO_COLOR", "1");
    spec = match scenario.pause {
        Pause::None => spec,
        Pause::Backoff => spec
            .with("FAULT_FAIL_FIRST_ATTEMPT", "1")
            .with("FAULT_PAUSE_TIMEOUT_MS", "200"),
        Pause::ConsumerPause => spec.with("FAULT_CTX_PAUSE_MS", "200"),
        Pause::Backlog => spec.with("FAULT_PARTITION_BUFFER_BYTES", "64"),
    };
    spec = match scenario.kip848() {
        true => spec.with("FERRAFKA_KAFKA_GROUP_PROTOCOL", "consumer"),
        false => spec
            .with(
                "FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
                scenario.strategy,
            )
            .with(
                "FERRAFKA_KAFKA_SESSION_TIMEOUT_MS",
                scenario.session_timeout_ms.to_string(),
            )
            .with(
                "FERRAFKA_KAFKA_HEARTBEAT_INTERVAL_MS",
                HEARTBEAT_MS.to_string(),
            ),
    };
    spec
}

/// `fault-consumer`, built by cargo next to the test binaries (`target/<profile>/`).
fn fault_consumer() -> PathBuf {
    let test = std::env::current_exe().expect("the test executable");
    let profile = test
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    profile.join("fault-consumer")
}

/// Waits until every partition processed a message that finished after `after_ms`.
pub(super) fn every_partition_after(out: &Path, after_ms: u128, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let records = Records::read(out);
        let fresh: BTreeSet<i32> = records
            .processed
            .iter()
            .filter(|p| p.at_ms > after_ms)
            .map(|p| p.partition)
            .collect();
        fresh.len() as u64 == PARTITIONS
    })
}

/// Non-empty assignments `p` reported (an incremental assignment may be empty).
fn assignments(p: &ConsumerProcess) -> usize {
    p.count_events(|e| matches!(e, FaultEvent::Assigned(partitions) if !partitions.is_empty()))
}

/// Fetch pauses `p` reported.
fn pauses(p: &ConsumerProcess) -> usize {
    p.count_events(|e| matches!(e, FaultEvent::Paused { .. }))
}

/// The consumer processes of one run, in slots 0..3, and the exit codes of those stopped.
pub(super) struct Group<'a> {
    scenario: &'a Scenario,
    pub(super) spec: ConsumerSpec,
    running: Vec<ConsumerProcess>,
    retired: Vec<ConsumerProcess>,
    /// (process id, exit code), in the order they were stopped.
    exits: Vec<(u32, Option<i32>)>,
}

impl<'a> Group<'a> {
    /// Starts three processes and waits until each has partitions and no assignment or
    /// revocation was reported for two seconds (a mock rebalance lasts `session.timeout.ms` - 1 s).
    pub(super) fn form(scenario: &'a Scenario, spec: ConsumerSpec) -> Self {
        let mut group = Group {
            scenario,
            running: Vec::new(),
            retired: Vec::new(),
            exits: Vec::new(),
            spec,
        };
        group.running = (0..PROCESSES).map(|slot| group.spawn(slot, 0)).collect();
        let events = || -> Vec<usize> {
            let count = |p: &ConsumerProcess| {
                p.count_events(|e| matches!(e, FaultEvent::Assigned(_) | FaultEvent::Revoked(_)))
            };
            group.running.iter().map(count).collect()
        };
        let (mut last, mut quiet_since) = (events(), Instant::now());
        let formed = wait_until(Duration::from_secs(60), || {
            let now = events();
            if now != last {
                (last, quiet_since) = (now, Instant::now());
            }
            group.running.iter().all(|p| assignments(p) > 0)
                && quiet_since.elapsed() >= Duration::from_secs(2)
        });
        assert!(formed, "{}: the group never formed", scenario.name);
        group
    }

    /// The process of `slot`, `generation`; with static membership its id is `member-<slot>`.
    fn spawn(&self, slot: usize, generation: usize) -> ConsumerProcess {
        let mut spec = self.spec.clone();
        if self.scenario.static_membership {
            spec = spec.with("FERRAFKA_KAFKA_GROUP_INSTANCE_ID", format!("member-{slot}"));
        }
        spec.spawn(&log_path(&spec.out, slot, generation))
    }

    /// Replaces the process of `slot` with a successor: SIGTERM first and the successor once it
    /// exited, or with `surge` the successor first and SIGTERM once it has partitions. Returns
    /// when the successor has partitions and every partition was processed again.
    pub(super) fn restart(&mut self, slot: usize) {
        let name = self.scenario.name;
        if !self.scenario.surge {
            stop(&mut self.running[slot], &mut self.exits);
        }
        let successor = self.spawn(slot, 1);
        let mut old = std::mem::replace(&mut self.running[slot], successor);
        let successor = &self.running[slot];
        let joined = wait_until(Duration::from_secs(60), || assignments(successor) > 0);
        assert!(joined, "{name}: successor {slot} never got partitions");
        if self.scenario.surge {
            stop(&mut old, &mut self.exits);
        }
        self.retired.push(old);
        let settled = every_partition_after(&self.spec.out, now_ms(), Duration::from_secs(60));
        assert!(
            settled,
            "{name}: the group did not settle after restart {slot}"
        );
    }

    pub(super) fn stop_all(&mut self) {
        for p in &mut self.running {
            stop(p, &mut self.exits);
        }
    }

    fn count(&self, f: impl Fn(&ConsumerProcess) -> usize) -> usize {
        self.retired.iter().chain(&self.running).map(f).sum()
    }

    fn revocations(&self) -> Vec<Revocation> {
        let all = self.retired.iter().chain(&self.running);
        let of = |p: &ConsumerProcess| -> Vec<Revocation> {
            let revoked = p.revocations().into_iter();
            revoked.map(|(at, parts)| (p.pid(), at, parts)).collect()
        };
        all.flat_map(of).collect()
    }

    /// Reads the records of `messages` numbers and the events of the stopped group; pauses of
    /// processing (gaps) count within the restart window `(from, to)`.
    pub(super) fn measure(
        mut self,
        out: PathBuf,
        messages: u64,
        (from, to): (u128, u128),
        broker_rebalances: Vec<u64>,
    ) -> Outcome {
        let records = Records::read(&out);
        let mut stalls = records.gaps(from, to);
        stalls.retain(|g| g.ms() > STALL_MS);
        Outcome {
            messages,
            lost: records.lost(messages),
            duplicates: records.duplicate_details(),
            stalls,
            longest_gap: records.longest_gap(from, to),
            assignments: self.count(assignments),
            fetch_pauses: self.count(pauses),
            revocations: self.revocations(),
            exits: std::mem::take(&mut self.exits),
            broker_rebalances,
            records: out,
        }
    }
}

/// Stops `p` with SIGTERM and records its exit code.
fn stop(p: &mut ConsumerProcess, exits: &mut Vec<(u32, Option<i32>)>) {
    p.signal("TERM");
    let code = p.wait(Duration::from_secs(30)).and_then(|s| s.code());
    exits.push((p.pid(), code));
}
