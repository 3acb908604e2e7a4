//! The fault suite. Each case produces uniquely numbered messages, breaks something, and checks
//! that every number was processed at least once; it prints how many were processed twice.
//! Run with `cargo test -p ferrafka-faults -- --nocapture --test-threads 1` to see the figures.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

fn unique(prefix: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
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
/// what was processed but not yet committed.
#[test]
fn sigkill_mid_stream_then_restart_loses_nothing() {
    let s = Setup::new("sigkill");
    let topic = s.topic("sigkill", 3);
    const N: u64 = 1500;
    s.produce(&topic, 0, N, 3);
    let commit_interval_ms = 200;
    let (max_messages, batch_sleep_ms) = (20u64, 30u64);
    let spec = s
        .spec(&topic, &unique("sigkill-group"), "records")
        .with("FAULT_BATCH_SLEEP_MS", batch_sleep_ms.to_string())
        .with("FAULT_MAX_MESSAGES", max_messages.to_string())
        .with(
            "FERRAFKA_KAFKA_AUTO_COMMIT_INTERVAL_MS",
            commit_interval_ms.to_string(),
        );

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
        "fault case 1 (SIGKILL mid-stream): messages={N} processed_before_kill={at_kill} lost=0 duplicates={duplicates} bound={bound}"
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

/// Case 2: a rolling restart of three consumer processes, one at a time, while messages keep
/// coming. Compares eager, cooperative-sticky and static membership.
#[test]
fn rolling_restart_loses_nothing_with_any_strategy() {
    let mut report = Vec::new();
    let mut unsettled = Vec::new();
    for (name, strategy, static_membership) in [
        ("eager (range)", "range", false),
        ("cooperative-sticky", "cooperative-sticky", false),
        ("eager + static membership", "range", true),
    ] {
        if std::env::var("FAULT_ROLLING").is_ok_and(|only| !name.starts_with(&only)) {
            continue;
        }
        match rolling_restart(strategy, static_membership) {
            Ok(result) => report.push((name, result)),
            Err(why) => {
                println!("fault case 2, {name}: not measurable here: {why}");
                unsettled.push(name);
            }
        }
    }
    println!("fault case 2 (rolling restart of 3 processes, 6 partitions):");
    println!(
        "{:<28} {:>9} {:>6} {:>10} {:>11} {:>16}",
        "strategy", "messages", "lost", "duplicates", "rebalances", "longest gap (ms)"
    );
    for (name, r) in &report {
        println!(
            "{name:<28} {:>9} {:>6} {:>10} {:>11} {:>16}",
            r.messages, r.lost, r.duplicates, r.rebalances, r.longest_gap_ms
        );
    }
    for (name, r) in &report {
        assert_eq!(r.lost, 0, "{name} lost messages");
    }
    // tansu 0.6.0's group coordinator does not always settle a three-member eager group, and
    // keeps re-balancing static members; cooperative-sticky must be measurable.
    assert!(
        report.iter().any(|(name, _)| *name == "cooperative-sticky")
            || std::env::var("FAULT_ROLLING").is_ok(),
        "cooperative-sticky could not be measured; unsettled: {unsettled:?}"
    );
}

struct RollingResult {
    messages: u64,
    lost: usize,
    duplicates: usize,
    rebalances: usize,
    longest_gap_ms: u128,
}

/// Runs one rolling restart; `Err` when the group never started consuming (a broker limit).
fn rolling_restart(strategy: &str, static_membership: bool) -> Result<RollingResult, String> {
    let s = Setup::new("rolling");
    let topic = s.topic("rolling", 6);
    let group = unique("rolling-group");
    let spec = s
        .spec(&topic, &group, "records")
        .with("FAULT_MAX_MESSAGES", "10")
        .with("FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY", strategy)
        .with("FERRAFKA_KAFKA_AUTO_COMMIT_INTERVAL_MS", "200")
        .with(
            "FERRAFKA_KAFKA_DEBUG",
            std::env::var("FAULT_KAFKA_DEBUG").unwrap_or("generic".into()),
        )
        .with(
            "RUST_LOG",
            std::env::var("FAULT_RUST_LOG").unwrap_or("info,librdkafka=warn,tansu=off".into()),
        );
    let spec_for = |i: usize| {
        let spec = spec.clone();
        if static_membership {
            spec.with("FERRAFKA_KAFKA_GROUP_INSTANCE_ID", format!("member-{i}"))
        } else {
            spec
        }
    };
    let mut processes: Vec<ConsumerProcess> = Vec::new();
    for i in 0..3 {
        processes.push(spec_for(i).spawn(&s.dir.join(format!("p{i}-0.log"))));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let mut logs = Vec::new();

    // A steady stream: 6 messages every 20 ms, about 300 a second.
    let producing = Arc::new(AtomicBool::new(true));
    let produced = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (flag, count, producer, topic2) = (
        producing.clone(),
        produced.clone(),
        s.producer.clone(),
        topic.clone(),
    );
    let handle = s.rt.spawn(async move {
        let mut n = 0u64;
        while flag.load(Ordering::Relaxed) {
            let batch: Vec<(i32, String)> = (n..n + 6)
                .map(|k| ((k % 6) as i32, k.to_string()))
                .collect();
            producer
                .produce_many(
                    batch
                        .iter()
                        .map(|(p, v)| Record::to(&topic2).partition(*p).payload(v)),
                )
                .await
                .unwrap();
            n += 6;
            count.store(n, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let settled = wait_until(Duration::from_secs(60), || {
        Records::read(&spec.out).processed.len() >= 200
    });
    if !settled {
        producing.store(false, Ordering::Relaxed);
        let _ = s.rt.block_on(handle);
        return Err("the group never settled within 60 s (broker's group coordinator)".into());
    }
    let from = now_ms();
    for (i, slot) in processes.iter_mut().enumerate() {
        let mut old =
            std::mem::replace(slot, spec_for(i).spawn(&s.dir.join(format!("p{i}-1.log"))));
        // The new process starts as the old one stops, as a deploy would do.
        old.signal("TERM");
        assert_eq!(
            old.wait(Duration::from_secs(30)).and_then(|s| s.code()),
            Some(0)
        );
        logs.push(old);
        std::thread::sleep(Duration::from_secs(4));
    }
    let to = now_ms();
    producing.store(false, Ordering::Relaxed);
    s.rt.block_on(handle).unwrap();
    let total = produced.load(Ordering::Relaxed);
    wait_until(Duration::from_secs(60), || {
        Records::read(&spec.out).lost(total).is_empty()
    });
    let rebalances = processes
        .iter()
        .chain(logs.iter())
        .map(|p| p.log_count("partitions assigned"))
        .sum();
    for p in &processes {
        p.signal("TERM");
    }
    for p in &mut processes {
        p.wait(Duration::from_secs(30));
    }
    let records = Records::read(&spec.out);
    Ok(RollingResult {
        messages: total,
        lost: records.lost(total).len(),
        duplicates: records.duplicates(),
        rebalances,
        longest_gap_ms: records.longest_gap_ms(from, to),
    })
}

/// Case 3: broker faults on librdkafka's mock cluster — a broker down and up, errors injected on
/// fetch, commit and produce — while a ferrafka server consumes: nothing lost, no restart needed.
#[test]
fn broker_faults_on_the_mock_cluster_lose_nothing() {
    use rdkafka::mocking::MockCluster;
    use rdkafka::types::RDKafkaApiKey;
    use rdkafka::types::RDKafkaRespErr::*;

    let mock = MockCluster::new(3).expect("mock cluster");
    let topic = unique("mock");
    mock.create_topic(&topic, 3, 3).expect("mock topic");
    let bootstrap = mock.bootstrap_servers();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let producer = Producer::new(&BTreeMap::from([(
        "bootstrap.servers".to_string(),
        bootstrap.clone(),
    )]))
    .unwrap();

    // Produce the first half through retriable produce errors.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    const N: u64 = 2000;
    let payloads: Vec<String> = (0..N).map(|n| n.to_string()).collect();
    rt.block_on(
        producer.produce_many(
            payloads[..1000]
                .iter()
                .map(|v| Record::to(&topic).key(v).payload(v)),
        ),
    )
    .unwrap();

    let seen = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let seen2 = seen.clone();
    let (topic2, bootstrap2) = (topic.clone(), bootstrap.clone());
    let app = ferrafka::App::builder()
        .setup(move |c| {
            c.client_id("mock")
                .group_id(unique("mock-group"))
                .kafka("bootstrap.servers", bootstrap2);
            c.max_messages(50).max_wait_time(Duration::from_millis(50));
            c.kafka("auto.commit.interval.ms", "200");
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || Collector(seen2.clone()));
        })
        .build_with_env([]);
    let server = app.start(&ferrafka::Filters::default()).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || seen.lock().unwrap().len()
            >= 300),
        "consuming"
    );

    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_UNKNOWN,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        ],
    );
    mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    mock.broker_up(1).unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
    );
    rt.block_on(
        producer.produce_many(
            payloads[1000..]
                .iter()
                .map(|v| Record::to(&topic).key(v).payload(v)),
        ),
    )
    .unwrap();

    let all = wait_until(Duration::from_secs(90), || {
        let seen = seen.lock().unwrap();
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        distinct.len() as u64 == N
    });
    let exit = server.shutdown();
    let seen = seen.lock().unwrap();
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    let duplicates = seen.len() - distinct.len();
    println!(
        "fault case 3 (mock cluster: broker down/up, fetch/commit/produce errors): messages={N} processed={} lost={} duplicates={duplicates} exit={exit:?}",
        seen.len(),
        N as usize - distinct.len()
    );
    assert!(all, "lost {} messages", N as usize - distinct.len());
}

/// Collects numbers in memory.
struct Collector(Arc<std::sync::Mutex<Vec<u64>>>);

impl ferrafka::Consumer for Collector {
    async fn consume(
        &mut self,
        _ctx: &mut ferrafka::Context,
        messages: &ferrafka::Messages,
    ) -> ferrafka::ConsumeResult {
        let mut seen = self.0.lock().unwrap();
        for m in messages {
            seen.push(std::str::from_utf8(m.payload_or_empty())?.parse()?);
        }
        Ok(())
    }
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
