//! Case 2: a rolling restart of three `fault-consumer` processes over six partitions while
//! messages keep coming, on librdkafka's mock cluster (tansu 0.6.0's coordinator cannot run
//! cooperative-sticky or static membership): eager (range), cooperative-sticky and static
//! membership. Each process in turn gets SIGTERM and, once it exited, a successor starts.
//!
//! Every case asserts: exit code 0 for every process, the group settles after each restart
//! (every partition is processed again), nothing is lost, and every message processed twice
//! follows a revocation of its partition by the process that processed it first, each revocation
//! redoing at most what the commit and heartbeat intervals allow, with a bounded number of such
//! revocations per strategy. Figures:
//! `cargo test -p ferrafka-faults --test rolling_restart -- --nocapture --test-threads 1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ferrafka::{Producer, Record};
use ferrafka_faults::*;
use rdkafka::mocking::MockCluster;

const PARTITIONS: u64 = 6;
const PROCESSES: usize = 3;
/// Largest batch, and the batch time of `fault-consumer`.
const MAX_MESSAGES: u64 = 10;
const BATCH_SLEEP_MS: u64 = 50;
const COMMIT_INTERVAL_MS: u64 = 200;
const HEARTBEAT_MS: u64 = 300;
/// The producer writes one message to each partition every `TICK_MS` (150 messages a second).
const TICK_MS: u64 = 40;

/// The cases share two cores: run them one after another so pauses measure the group.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One way of running the group.
struct Scenario {
    name: &'static str,
    strategy: &'static str,
    static_membership: bool,
    /// Start the successor first and stop its predecessor once it has partitions (a surge
    /// deploy); otherwise stop first.
    surge: bool,
    session_timeout_ms: u64,
}

/// A partition that processed nothing for longer than this during the restarts stalled.
const STALL_MS: u128 = 1000;

/// A revocation logged by a process: (process id, ms since the epoch, revoked partitions).
type Revocation = (u32, u128, Vec<i32>);

/// Messages processed again per revocation: (process id, revocation time, partition) → count.
type Redo = BTreeMap<(u32, u128, i32), u64>;

/// What one rolling restart measured.
struct Outcome {
    messages: u64,
    lost: Vec<u64>,
    duplicates: Vec<Duplicate>,
    /// Stretches longer than `STALL_MS` in which a partition processed nothing.
    stalls: Vec<Gap>,
    longest_gap: Gap,
    /// Non-empty assignments logged by all processes.
    assignments: usize,
    revocations: Vec<Revocation>,
    /// (process id, exit code) of every process, in the order they were stopped.
    exits: Vec<(u32, Option<i32>)>,
    records: PathBuf,
}

impl Outcome {
    /// Reads the records of `messages` numbers and the logs of a stopped `group`; pauses count
    /// within the restart window `(from, to)`.
    fn measure(out: PathBuf, messages: u64, (from, to): (u128, u128), mut group: Group) -> Self {
        let records = Records::read(&out);
        let mut stalls = records.gaps(from, to);
        stalls.retain(|g| g.ms() > STALL_MS);
        Outcome {
            messages,
            lost: records.lost(messages),
            duplicates: records.duplicate_details(),
            stalls,
            longest_gap: records.longest_gap(from, to),
            assignments: group.count(assignments),
            revocations: group.revocations(),
            exits: std::mem::take(&mut group.exits),
            records: out,
        }
    }

    fn duplicate_count(&self) -> usize {
        self.duplicates.iter().map(|d| d.by.len() - 1).sum()
    }

    fn print(&self, s: &Scenario) {
        let g = &self.longest_gap;
        let stalled_ms: u128 = self.stalls.iter().map(Gap::ms).sum();
        println!(
            "fault case 2, {}: messages={} lost={} duplicates={} longest_pause_ms={} (partition {} {}..{}) stalls_over_1s={} stalled_partition_ms={stalled_ms} assignments={} revocations={} exits={:?} records={}",
            s.name,
            self.messages,
            self.lost.len(),
            self.duplicate_count(),
            g.ms(),
            g.partition,
            g.from_ms,
            g.to_ms,
            self.stalls.len(),
            self.assignments,
            self.revocations.len(),
            self.exits,
            self.records.display()
        );
        let (redo, _) = attribute(self);
        println!("  bound per revocation: {}", per_revocation_bound(s));
        for ((pid, at, partition), n) in &redo {
            println!("  revocation of partition {partition} by {pid} at {at}: {n} processed again");
        }
    }
}

/// Attributes every second processing of a (partition, offset) to the revocation that caused
/// it: a revocation of that partition by the process that processed it first, between the two
/// processings. Returns how much each (process, revocation time, partition) made the group
/// redo, and the duplicates nothing explains.
fn attribute(outcome: &Outcome) -> (Redo, Vec<&Duplicate>) {
    let mut redo = BTreeMap::new();
    let mut unexplained = Vec::new();
    for d in &outcome.duplicates {
        let mut by = d.by.clone();
        by.sort_by_key(|(_, at)| *at);
        let same_offset = d.offsets.windows(2).all(|w| w[0] == w[1]);
        for pair in by.windows(2) {
            let ((pid, before), (_, after)) = (pair[0], pair[1]);
            let revocation = outcome.revocations.iter().find(|(by, at, parts)| {
                *by == pid && (before..=after).contains(at) && parts.contains(&d.partition)
            });
            match revocation {
                Some((_, at, _)) if same_offset => {
                    *redo.entry((pid, *at, d.partition)).or_insert(0) += 1
                }
                _ => unexplained.push(d),
            }
        }
    }
    (redo, unexplained)
}

/// A producer writing numbered messages, number n to partition n % 6, until stopped.
struct Stream {
    running: Arc<AtomicBool>,
    produced: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    fn start(rt: &tokio::runtime::Runtime, producer: Producer, topic: String) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let produced = Arc::new(AtomicU64::new(0));
        let (flag, count) = (running.clone(), produced.clone());
        let task = rt.spawn(async move {
            let mut n = 0;
            while flag.load(Ordering::Relaxed) {
                let batch: Vec<(i32, String)> = (n..n + PARTITIONS)
                    .map(|k| ((k % PARTITIONS) as i32, k.to_string()))
                    .collect();
                let records = batch
                    .iter()
                    .map(|(p, v)| Record::to(&topic).partition(*p).payload(v));
                producer.produce_many(records).await.expect("produced");
                n += PARTITIONS;
                count.store(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(TICK_MS)).await;
            }
        });
        Stream {
            running,
            produced,
            task,
        }
    }

    /// Stops producing; returns how many messages were written (numbers `0..n`).
    fn stop(self, rt: &tokio::runtime::Runtime) -> u64 {
        self.running.store(false, Ordering::Relaxed);
        rt.block_on(self.task).expect("producer task");
        self.produced.load(Ordering::Relaxed)
    }
}

fn spec(scenario: &Scenario, bootstrap: String, topic: &str, out: &Path) -> ConsumerSpec {
    ConsumerSpec {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_fault-consumer")),
        bootstrap,
        topic: topic.into(),
        group: unique("rolling-group"),
        out: out.to_path_buf(),
        env: Vec::new(),
    }
    .with("FAULT_MAX_MESSAGES", MAX_MESSAGES.to_string())
    .with("FAULT_BATCH_SLEEP_MS", BATCH_SLEEP_MS.to_string())
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
    )
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
    .with("NO_COLOR", "1")
}

/// Waits until every partition processed a message that finished after `after_ms`.
fn every_partition_after(out: &Path, after_ms: u128, timeout: Duration) -> bool {
    wait_until(timeout, || {
        let records = Records::read(out);
        let fresh: std::collections::BTreeSet<i32> = records
            .processed
            .iter()
            .filter(|p| p.at_ms > after_ms)
            .map(|p| p.partition)
            .collect();
        fresh.len() as u64 == PARTITIONS
    })
}

/// Non-empty assignments `p` logged (ferrafka logs `partitions=[]` for an empty incremental one).
fn assignments(p: &ConsumerProcess) -> usize {
    p.log_count_where(|l| l.contains("partitions assigned") && !l.contains("partitions=[]"))
}

/// The consumer processes of one run, in slots 0..3, and the exit codes of those stopped.
struct Group<'a> {
    scenario: &'a Scenario,
    spec: ConsumerSpec,
    running: Vec<ConsumerProcess>,
    retired: Vec<ConsumerProcess>,
    /// (process id, exit code), in the order they were stopped.
    exits: Vec<(u32, Option<i32>)>,
}

impl<'a> Group<'a> {
    /// Starts three processes and waits until each has partitions and no assignment or
    /// revocation was logged for two seconds (a mock rebalance lasts `session.timeout.ms` - 1 s).
    fn form(scenario: &'a Scenario, spec: ConsumerSpec) -> Self {
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
                p.log_count("partitions assigned") + p.log_count("partitions revoked")
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
        let log = spec.out.with_file_name(format!("p{slot}-{generation}.log"));
        spec.spawn(&log)
    }

    /// Replaces the process of `slot` with a successor: SIGTERM first and the successor once it
    /// exited, or with `surge` the successor first and SIGTERM once it has partitions. Returns
    /// when the successor has partitions and every partition was processed again.
    fn restart(&mut self, slot: usize) {
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

    fn stop_all(&mut self) {
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
}

/// Stops `p` with SIGTERM and records its exit code.
fn stop(p: &mut ConsumerProcess, exits: &mut Vec<(u32, Option<i32>)>) {
    p.signal("TERM");
    let code = p.wait(Duration::from_secs(30)).and_then(|s| s.code());
    exits.push((p.pid(), code));
}

fn run(scenario: &Scenario) -> Outcome {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mock = MockCluster::new(1).expect("mock cluster");
    let topic = unique("rolling");
    mock.create_topic(&topic, PARTITIONS as i32, 1)
        .expect("mock topic");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let kafka = BTreeMap::from([("bootstrap.servers".to_string(), mock.bootstrap_servers())]);
    let producer = Producer::new(&kafka).expect("producer");
    let dir = std::env::temp_dir().join(unique("rolling"));
    std::fs::create_dir_all(&dir).expect("record dir");
    let out = dir.join("records");
    // Production starts once the group formed, so only the restarts can cause duplicates.
    let mut group = Group::form(
        scenario,
        spec(scenario, mock.bootstrap_servers(), &topic, &out),
    );
    let stream = Stream::start(&rt, producer, topic);
    let flowing = every_partition_after(&out, 0, Duration::from_secs(60));
    assert!(
        flowing,
        "{}: not every partition was processed",
        scenario.name
    );
    std::thread::sleep(Duration::from_secs(1));
    let from = now_ms();
    for slot in 0..PROCESSES {
        group.restart(slot);
        std::thread::sleep(Duration::from_secs(1));
    }
    let to = now_ms();
    let messages = stream.stop(&rt);
    let settled = wait_until(Duration::from_secs(60), || {
        Records::read(&out).lost(messages).is_empty()
    });
    group.stop_all();
    let outcome = Outcome::measure(out, messages, (from, to), group);
    outcome.print(scenario);
    assert!(
        settled,
        "{}: not every message was processed",
        scenario.name
    );
    outcome
}

/// The checks every strategy must pass. At most `lossy_revocations` revocations may make the
/// group redo work, each at most `per_revocation_bound` messages.
fn check(scenario: &Scenario, outcome: &Outcome, lossy_revocations: u64) {
    let name = scenario.name;
    for (pid, code) in &outcome.exits {
        assert_eq!(*code, Some(0), "{name}: process {pid} exit");
    }
    assert_eq!(outcome.exits.len(), 2 * PROCESSES, "{name}: exits");
    assert!(outcome.lost.is_empty(), "{name}: lost {:?}", outcome.lost);
    let (redo, unexplained) = attribute(outcome);
    assert!(
        unexplained.is_empty(),
        "{name}: processed twice without a revocation in between: {unexplained:?}"
    );
    let bound = per_revocation_bound(scenario);
    for ((pid, at, partition), n) in &redo {
        assert!(
            *n <= bound,
            "{name}: revocation of partition {partition} by {pid} at {at}: {n} processed again, bound {bound}"
        );
    }
    assert!(
        redo.len() as u64 <= lossy_revocations,
        "{name}: {} revocations made the group redo work, bound {lossy_revocations}",
        redo.len()
    );
}

/// Most one revocation can make the next owner of a partition redo: the batches that can finish
/// in the window between the last accepted commit and the revocation, plus the running one. The
/// mock coordinator refuses commits while the group is joining; each join window lasts
/// `session.timeout.ms` - 1 s. The window is one commit interval plus the time to notice the
/// rebalance — up to two heartbeat intervals (the heartbeat in flight when it began may still be
/// answered "fine") — and, for cooperative-sticky, whose members keep processing while the group
/// joins, up to two join windows (a cooperative move takes two rebalances).
fn per_revocation_bound(scenario: &Scenario) -> u64 {
    let mut window = COMMIT_INTERVAL_MS + 2 * HEARTBEAT_MS;
    if scenario.strategy == "cooperative-sticky" {
        window += 2 * (scenario.session_timeout_ms - 1000);
    }
    (window.div_ceil(BATCH_SLEEP_MS) + 1) * MAX_MESSAGES
}

#[test]
fn rolling_restart_eager() {
    let scenario = Scenario {
        name: "eager (range)",
        strategy: "range",
        static_membership: false,
        surge: false,
        session_timeout_ms: 3000,
    };
    let outcome = run(&scenario);
    // Each restart: up to three rebalances, each revoking every partition — the leave, and one
    // more for each member (the successor or a survivor) whose JoinGroup missed the mock's join
    // window, which closes after a fixed time.
    check(&scenario, &outcome, PROCESSES as u64 * 3 * PARTITIONS);
}

#[test]
fn rolling_restart_cooperative_sticky() {
    let scenario = Scenario {
        name: "cooperative-sticky",
        strategy: "cooperative-sticky",
        static_membership: false,
        surge: false,
        session_timeout_ms: 3000,
    };
    let outcome = run(&scenario);
    // Each restart revokes only what moves to the successor: its share, two partitions.
    check(&scenario, &outcome, PROCESSES as u64 * 2);
}

#[test]
fn rolling_restart_static_membership() {
    let scenario = Scenario {
        name: "static membership (range)",
        strategy: "range",
        static_membership: true,
        surge: false,
        session_timeout_ms: 6000,
    };
    let outcome = run(&scenario);
    // The mock coordinator ignores `group.instance.id` when a member rejoins, so each restart
    // is a join plus the predecessor's session expiry: up to three rebalances, each revoking
    // every partition.
    check(&scenario, &outcome, PROCESSES as u64 * 3 * PARTITIONS);
}

#[test]
fn rolling_restart_cooperative_sticky_surge() {
    let scenario = Scenario {
        name: "cooperative-sticky, successor first",
        strategy: "cooperative-sticky",
        static_membership: false,
        surge: true,
        session_timeout_ms: 3000,
    };
    let outcome = run(&scenario);
    // Each restart moves the successor's share to it and the predecessor's partitions away
    // from it: four partitions.
    check(&scenario, &outcome, PROCESSES as u64 * 4);
}
