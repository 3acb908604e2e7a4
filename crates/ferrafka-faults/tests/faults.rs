//! The fault suite on the suite's broker: the embedded one, or Apache Kafka with
//! `FERRAFKA_TEST_BROKER=kafka` (`scripts/test` runs both). Each case produces uniquely numbered messages, breaks
//! something, and checks that every number was processed at least once and how many were
//! processed twice. The rolling restart and the broker faults run on librdkafka's mock cluster
//! (`tests/rolling_restart.rs`, `tests/mock_cluster.rs`).
//! Run with `cargo test -p ferrafka-faults -- --nocapture --test-threads 1` to see the figures.

use std::path::PathBuf;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{Producer, Record};
use ferrafka_faults::*;

struct Setup {
    broker: ferrafka_testing::Broker,
    rt: tokio::runtime::Runtime,
    producer: Producer,
    dir: PathBuf,
    _turn: Turn,
}

/// The cases run side by side, except the memory case: the others' consumers would starve its
/// consumer of CPU, and a partition that falls behind legitimately holds up to its own
/// `partition_buffer_bytes`, which is not what that case measures.
static SUITE: RwLock<()> = RwLock::new(());

enum Turn {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Alone(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

impl Setup {
    fn new(name: &str) -> Self {
        Self::with_turn(
            name,
            Turn::Shared(SUITE.read().unwrap_or_else(|e| e.into_inner())),
        )
    }

    /// A setup for a case that runs while no other case does.
    fn alone(name: &str) -> Self {
        Self::with_turn(
            name,
            Turn::Alone(SUITE.write().unwrap_or_else(|e| e.into_inner())),
        )
    }

    fn with_turn(name: &str, turn: Turn) -> Self {
        let broker = ferrafka_testing::broker();
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
            _turn: turn,
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
    // The default interval is killed after about 1.5 s of traffic, past its first commits.
    sigkill_mid_stream(None, 3000);
    sigkill_mid_stream(Some(200), 400);
}

fn sigkill_mid_stream(commit_interval: Option<u64>, kill_after: usize) {
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
            >= kill_after),
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
    let assigned = |p: &ConsumerProcess| p.count_events(|e| matches!(e, FaultEvent::Assigned(_)));
    assert!(wait_until(Duration::from_secs(30), || assigned(&old) > 0));
    let new = s
        .spec(&topic, &group, "records")
        .with(
            "FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY",
            "cooperative-sticky",
        )
        .spawn(&s.dir.join("new.log"));
    // What the log tells a person is the point here: the explanation is log text.
    let explains = |p: &ConsumerProcess| {
        let log = std::fs::read_to_string(&p.log).unwrap_or_default();
        log.contains("stop ALL consumers of the group")
    };
    let explained = wait_until(Duration::from_secs(30), || explains(&new) || explains(&old));
    println!("fault case (strategy mismatch): explained={explained}");
    assert!(
        explained,
        "no explanation in {} or {}",
        new.log.display(),
        old.log.display()
    );
}

/// `VmHWM` and `VmRSS` of a process, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("procfs");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .expect("a memory field")
            * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Case 6 (memory): partition 0 stalls (its first batch never ends) while 15 others flow
/// through the same fetch responses, 300 MB of 1 KB messages in all. A message read in place
/// keeps its whole fetch response alive, so without care the stalled backlog would pin about
/// 16 times its own size. The consumer's peak RSS must stay within its idle RSS plus
/// `partition_buffer_bytes` plus a stated constant: librdkafka's prefetch
/// (`queued.max.messages.kbytes`), six fetch responses (`fetch.max.bytes`: the one librdkafka
/// is reading, and those messages read in place keep: the stalled batch's own, the backlog's
/// head until the batch counts as slow, the newest ones the flowing partitions work on), two
/// more per broker beyond the first (librdkafka fetches from every broker at once: one response
/// being read and one its partitions' newest messages keep, per broker) and 32 MB for the
/// process's own churn (allocator arenas of the worker threads).
/// Without copying the stalled backlog out, the peak on Kafka was 360 MB.
#[test]
fn a_stalled_partition_holds_about_its_byte_bound() {
    const PARTITIONS: u64 = 16;
    const N: u64 = 300_000;
    const MB: u64 = 1 << 20;
    let (bound, queued, fetch_max) = (16 * MB, 16 * MB, 16 * MB);
    let s = Setup::alone("memory");
    let topic = s.topic("memory", PARTITIONS as i32);
    let padding = "x".repeat(1000);
    for chunk in (0..N).step_by(50_000) {
        let payloads: Vec<(i32, String)> = (chunk..chunk + 50_000)
            .map(|n| ((n % PARTITIONS) as i32, format!("{n} {padding}")))
            .collect();
        let records = payloads
            .iter()
            .map(|(p, v)| Record::to(&topic).partition(*p).payload(v));
        s.rt.block_on(s.producer.produce_many(records)).unwrap();
    }
    let spec = |topic: &str, out: &str| {
        s.spec(topic, &unique("memory-group"), out)
            .with("FAULT_STALL_PARTITION", "0")
            .with("FAULT_MAX_MESSAGES", "100")
            .with("FAULT_PARTITION_BUFFER_BYTES", bound.to_string())
            .with(
                "FERRAFKA_KAFKA_QUEUED_MAX_MESSAGES_KBYTES",
                (queued / 1024).to_string(),
            )
            .with("FERRAFKA_KAFKA_FETCH_MAX_BYTES", fetch_max.to_string())
    };
    // The same consumer with nothing to read: its RSS is the baseline.
    let empty = s.topic("memory-empty", 1);
    let idle = spec(&empty, "idle").spawn(&s.dir.join("idle.log"));
    std::thread::sleep(Duration::from_secs(5));
    let (_, baseline) = memory_of(idle.pid());
    drop(idle);

    let spec = spec(&topic, "records");
    let mut consumer = spec.spawn(&s.dir.join("memory.log"));
    let flowing = (N - N / PARTITIONS) as usize;
    let done = wait_until(Duration::from_secs(240), || {
        std::thread::sleep(Duration::from_millis(500));
        Records::read(&spec.out).processed.len() >= flowing
    });
    // Whatever the stalled partition fetched by now is in its backlog or librdkafka's queue.
    std::thread::sleep(Duration::from_secs(2));
    let (peak, rss) = memory_of(consumer.pid());
    consumer.signal("KILL");
    let _ = consumer.wait(Duration::from_secs(10));
    let brokers = s.broker.bootstrap_servers().split(',').count() as u64;
    let fetch_responses = 6 + 2 * (brokers - 1);
    let constant = queued + fetch_responses * fetch_max + 32 * MB;
    let limit = baseline + bound + constant;
    println!(
        "fault case 6 (memory): 300 MB in 16 partitions, partition 0 stalled, {brokers} broker(s); \
         idle RSS {} MB, peak {} MB, now {} MB; limit {} MB (idle + partition_buffer_bytes {} MB + \
         constant {} MB: {fetch_responses} fetch responses)",
        baseline / MB,
        peak / MB,
        rss / MB,
        limit / MB,
        bound / MB,
        constant / MB
    );
    assert!(done, "the 15 flowing partitions were processed");
    assert!(
        peak <= limit,
        "peak RSS {} MB above the limit {} MB",
        peak / MB,
        limit / MB
    );
}
