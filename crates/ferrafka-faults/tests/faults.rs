//! The fault suite on the embedded broker. Each case produces uniquely numbered messages, breaks
//! something, and checks that every number was processed at least once and how many were
//! processed twice. The rolling restart and the broker faults run on librdkafka's mock cluster
//! (`tests/rolling_restart.rs`, `tests/mock_cluster.rs`).
//! Run with `cargo test -p ferrafka-faults -- --nocapture --test-threads 1` to see the figures.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{Producer, Record};
use ferrafka_broker::EmbeddedBroker;
use ferrafka_faults::*;

struct Setup {
    broker: EmbeddedBroker,
    rt: tokio::runtime::Runtime,
    producer: Producer,
    dir: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let broker = EmbeddedBroker::start().expect("broker");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut kafka = std::collections::BTreeMap::new();
        kafka.insert("bootstrap.servers".into(), broker.bootstrap_servers());
        let producer = Producer::new(&kafka).unwrap();
        let dir = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&dir).unwrap();
        Setup {
            broker,
            rt,
            producer,
            dir,
        }
    }

    fn topic(&self, name: &str, partitions: i32) -> String {
        let topic = unique(name);
        let admin = Admin::connect(&self.broker.bootstrap_servers()).unwrap();
        self.rt
            .block_on(admin.create_topic(&TopicSpec::new(&topic, partitions)))
            .unwrap();
        topic
    }

    /// Produces `from..to`, number n to partition n % partitions.
    fn produce(&self, topic: &str, from: u64, to: u64, partitions: u64) {
        let payloads: Vec<(i32, String)> = (from..to)
            .map(|n| ((n % partitions) as i32, n.to_string()))
            .collect();
        let records = payloads
            .iter()
            .map(|(p, v)| Record::to(topic).partition(*p).payload(v));
        self.rt
            .block_on(self.producer.produce_many(records))
            .unwrap();
    }

    fn spec(&self, topic: &str, group: &str, out: &str) -> ConsumerSpec {
        ConsumerSpec {
            binary: PathBuf::from(env!("CARGO_BIN_EXE_fault-consumer")),
            bootstrap: self.broker.bootstrap_servers(),
            topic: topic.into(),
            group: group.into(),
            out: self.dir.join(out),
            env: vec![
                ("FERRAFKA_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
                ("FERRAFKA_KAFKA_HEARTBEAT_INTERVAL_MS".into(), "500".into()),
            ],
        }
    }
}

/// Case 1: SIGKILL a consumer mid-stream and start it again: nothing lost; duplicates bounded by
/// what was processed but not yet committed, which `commit_interval` bounds. Run with the
/// default (1 s) and with 200 ms.
#[test]
fn sigkill_mid_stream_then_restart_loses_nothing() {
    for commit_interval_ms in [None, Some(200)] {
        sigkill_mid_stream(commit_interval_ms);
    }
}

fn sigkill_mid_stream(commit_interval: Option<u64>) {
    let s = Setup::new("sigkill");
    let topic = s.topic("sigkill", 3);
    // More than the bound of the default interval, so the bound is a real check.
    const N: u64 = 6000;
    s.produce(&topic, 0, N, 3);
    let commit_interval_ms = commit_interval.unwrap_or(1000);
    let (max_messages, batch_sleep_ms) = (20u64, 30u64);
    let mut spec = s
        .spec(&topic, &unique("sigkill-group"), "records")
        .with("FAULT_BATCH_SLEEP_MS", batch_sleep_ms.to_string())
        .with("FAULT_MAX_MESSAGES", max_messages.to_string());
    if let Some(ms) = commit_interval {
        spec = spec.with("FAULT_COMMIT_INTERVAL_MS", ms.to_string());
    }

    let mut first = spec.spawn(&s.dir.join("first.log"));
    assert!(
        wait_until(Duration::from_secs(60), || Records::read(&spec.out)
            .processed
            .len()
            >= 400),
        "first run made progress"
    );
    first.signal("KILL");
    first.wait(Duration::from_secs(10)).expect("killed");
    let at_kill = Records::read(&spec.out).processed.len();

    let mut second = spec.spawn(&s.dir.join("second.log"));
    assert!(
        wait_until(Duration::from_secs(90), || Records::read(&spec.out)
            .lost(N)
            .is_empty()),
        "lost after restart: {:?}",
        Records::read(&spec.out).lost(N).len()
    );
    second.signal("TERM");
    let status = second.wait(Duration::from_secs(30)).expect("exits");
    assert_eq!(status.code(), Some(0));

    let records = Records::read(&spec.out);
    let duplicates = records.duplicates();
    // Uncommitted work at the kill: the batches in flight or buffered per partition, plus what
    // finished since the last periodic commit.
    let batches_per_commit = commit_interval_ms / batch_sleep_ms + 1;
    let bound = 3 * max_messages * (2 + batches_per_commit);
    println!(
        "fault case 1 (SIGKILL mid-stream, commit_interval={commit_interval_ms} ms): messages={N} processed_before_kill={at_kill} lost=0 duplicates={duplicates} bound={bound}"
    );
    assert!(records.lost(N).is_empty());
    assert!(
        duplicates as u64 <= bound,
        "{duplicates} duplicates exceed the uncommitted-work bound {bound}"
    );
}

/// Case 5a: SIGTERM during a slow batch that fits the shutdown timeout: it finishes, is
/// committed, and nothing is redone after a restart.
#[test]
fn sigterm_during_a_slow_batch_finishes_and_commits_it() {
    let s = Setup::new("sigterm");
    let topic = s.topic("sigterm", 1);
    s.produce(&topic, 0, 5, 1);
    let group = unique("sigterm-group");
    let slow = s
        .spec(&topic, &group, "records")
        .with("FAULT_BATCH_SLEEP_MS", "1500")
        .with("FAULT_SHUTDOWN_TIMEOUT_MS", "5000");
    let mut p = slow.spawn(&s.dir.join("slow.log"));
    assert!(
        wait_until(Duration::from_secs(30), || !Records::read(&slow.out)
            .started
            .is_empty()),
        "batch started"
    );
    let signalled = Instant::now();
    p.signal("TERM");
    let status = p.wait(Duration::from_secs(20)).expect("exits");
    println!(
        "fault case 5a (SIGTERM in a 1.5 s batch, 5 s timeout): exit={:?} after {:?}",
        status.code(),
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(0), "clean exit");
    assert_eq!(
        Records::read(&slow.out).processed.len(),
        5,
        "the batch finished"
    );

    let fast = s.spec(&topic, &group, "records");
    let mut again = fast.spawn(&s.dir.join("again.log"));
    std::thread::sleep(Duration::from_secs(4));
    again.signal("TERM");
    assert_eq!(
        again.wait(Duration::from_secs(20)).and_then(|s| s.code()),
        Some(0)
    );
    let records = Records::read(&fast.out);
    assert_eq!(
        records.processed.len(),
        5,
        "nothing was redone after the restart"
    );
    assert_eq!(records.duplicates(), 0);
}

/// Case 5b: SIGTERM during a batch slower than the shutdown timeout: exit code 2, and the batch
/// is processed after a restart.
#[test]
fn sigterm_during_a_batch_slower_than_the_timeout_exits_2_and_the_batch_is_redone() {
    let s = Setup::new("forced");
    let topic = s.topic("forced", 1);
    s.produce(&topic, 0, 5, 1);
    let group = unique("forced-group");
    let stuck = s
        .spec(&topic, &group, "records")
        .with("FAULT_BATCH_SLEEP_MS", "30000")
        .with("FAULT_SHUTDOWN_TIMEOUT_MS", "1000");
    let mut p = stuck.spawn(&s.dir.join("stuck.log"));
    assert!(wait_until(Duration::from_secs(30), || !Records::read(
        &stuck.out
    )
    .started
    .is_empty()));
    let signalled = Instant::now();
    p.signal("TERM");
    let status = p.wait(Duration::from_secs(20)).expect("exits");
    println!(
        "fault case 5b (SIGTERM in a 30 s batch, 1 s timeout): exit={:?} after {:?}",
        status.code(),
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(2), "forced stop");
    assert!(Records::read(&stuck.out).processed.is_empty());

    let fast = s.spec(&topic, &group, "records");
    let mut again = fast.spawn(&s.dir.join("again.log"));
    assert!(
        wait_until(Duration::from_secs(30), || Records::read(&fast.out)
            .processed
            .len()
            >= 5),
        "redone after restart"
    );
    again.signal("TERM");
    assert_eq!(
        again.wait(Duration::from_secs(20)).and_then(|s| s.code()),
        Some(0)
    );
    assert!(Records::read(&fast.out).lost(5).is_empty());
}

/// A member joining with another assignment strategy (the seed's rolling change of
/// `partition.assignment.strategy`) gets an error that explains the stop-all procedure.
#[test]
fn a_strategy_mismatch_in_one_group_is_explained() {
    let s = Setup::new("mismatch");
    let topic = s.topic("mismatch", 2);
    s.produce(&topic, 0, 20, 2);
    let group = unique("mismatch-group");
    let old = s
        .spec(&topic, &group, "records")
        .with("FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY", "range")
        .spawn(&s.dir.join("old.log"));
    assert!(wait_until(Duration::from_secs(30), || old
        .log_count("partitions assigned")
        > 0));
    let new = s
        .spec(&topic, &group, "records")
        .with(
            "FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
            "cooperative-sticky",
        )
        .spawn(&s.dir.join("new.log"));
    let explained = wait_until(Duration::from_secs(30), || {
        new.log_count("stop ALL consumers of the group") > 0
            || old.log_count("stop ALL consumers of the group") > 0
    });
    println!("fault case (strategy mismatch): explained={explained}");
    assert!(
        explained,
        "no explanation in {} or {}",
        new.log.display(),
        old.log.display()
    );
}
