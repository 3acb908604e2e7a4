//! Rolling restarts of a group of three `fault-consumer` processes over six partitions while
//! messages keep coming: each process in turn gets SIGTERM and a successor starts (or, in a
//! surge, the successor starts first). Used by `tests/rolling_restart.rs` (librdkafka's mock
//! cluster) and `tests/rolling_deploy.rs` (Apache Kafka, rebalances counted by its coordinator).
//!
//! A run measures what was lost, what was processed twice and which revocation made the group
//! redo it (revocations and assignments as the processes report them in their events files,
//! see `fault-consumer`), the longest pause of a partition, and on Kafka the group generations (classic
//! protocol) or group epochs (KIP-848) each restart cost, read from the brokers' logs.

mod coordinator;
mod group;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferrafka::{Producer, Record};

pub use coordinator::Coordinator;
use group::{Group, every_partition_after};

use crate::{Duplicate, Gap, Records, now_ms, unique, wait_until};

/// Partitions of the topic.
pub const PARTITIONS: u64 = 6;
/// Processes in the group.
pub const PROCESSES: usize = 3;
/// Largest batch, and the batch time of `fault-consumer`.
pub const MAX_MESSAGES: u64 = 10;
const BATCH_SLEEP_MS: u64 = 50;
/// `auto.commit.interval.ms` of the group.
pub const COMMIT_INTERVAL_MS: u64 = 200;
/// `heartbeat.interval.ms` of the classic protocol.
pub const HEARTBEAT_MS: u64 = 300;
/// KIP-848's heartbeat interval: the broker's `group.consumer.heartbeat.interval.ms` default.
pub const KIP848_HEARTBEAT_MS: u64 = 5000;
/// The producer writes one message to each partition every `TICK_MS` (150 messages a second).
const TICK_MS: u64 = 40;
/// A partition that processed nothing for longer than this during the restarts stalled.
const STALL_MS: u128 = 1000;

/// The cases share two cores: run them one after another so pauses measure the group.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// One way of running the group.
#[derive(Debug)]
pub struct Scenario {
    /// Shown in the figures.
    pub name: &'static str,
    /// The classic protocol's assignor (`range`, `cooperative-sticky`), or `consumer` for
    /// KIP-848 (`group.protocol=consumer`, whose assignor and timeouts are the broker's).
    pub strategy: &'static str,
    /// Each slot's process has `group.instance.id` `member-<slot>`.
    pub static_membership: bool,
    /// Start the successor first and stop its predecessor once it has partitions (a surge
    /// deploy); otherwise stop first.
    pub surge: bool,
    /// `session.timeout.ms` of the classic protocol (ignored under KIP-848).
    pub session_timeout_ms: u64,
    /// Why partitions are paused when the rebalances come, if they are.
    pub pause: Pause,
}

/// Keeps partitions paused much of the time, so the restarts' rebalances catch some paused: a
/// partition paused when a rebalance hands it back must fetch again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Nothing pauses partitions.
    None,
    /// Half the batches fail their first attempt: a 200 ms retry backoff.
    Backoff,
    /// Every batch ends with `ctx.pause` for 200 ms.
    ConsumerPause,
    /// A 64-byte `partition_buffer_bytes`: the backlog bound pauses fetching.
    Backlog,
}

impl Scenario {
    /// A plain rolling restart: dynamic members, stop before start, nothing paused.
    pub fn new(name: &'static str, strategy: &'static str, session_timeout_ms: u64) -> Self {
        Scenario {
            name,
            strategy,
            static_membership: false,
            surge: false,
            session_timeout_ms,
            pause: Pause::None,
        }
    }

    fn kip848(&self) -> bool {
        self.strategy == "consumer"
    }

    /// Most one revocation can make the next owner of a partition redo: the batches that can
    /// finish between the last accepted commit and the revocation, plus the running one. The
    /// window is one commit interval plus the time to notice the rebalance — up to two
    /// heartbeat intervals (the heartbeat in flight when it began may still be answered
    /// "fine"). The mock coordinator also refuses commits while the group joins (each join
    /// window lasts `session.timeout.ms` - 1 s), and cooperative members keep processing
    /// through up to two of them (a cooperative move takes two rebalances); Kafka accepts
    /// commits of the current generation while the group rebalances.
    pub fn per_revocation_bound(&self, on_mock: bool) -> u64 {
        let heartbeat = match self.kip848() {
            true => KIP848_HEARTBEAT_MS,
            false => HEARTBEAT_MS,
        };
        let mut window = COMMIT_INTERVAL_MS + 2 * heartbeat;
        if on_mock && self.strategy == "cooperative-sticky" {
            window += 2 * (self.session_timeout_ms - 1000);
        }
        (window.div_ceil(BATCH_SLEEP_MS) + 1) * MAX_MESSAGES
    }
}

/// A revocation a process reported: (process id, ms since the epoch, revoked partitions).
pub type Revocation = (u32, u128, Vec<i32>);

/// Messages processed again per revocation: (process id, revocation time, partition) → count.
pub type Redo = BTreeMap<(u32, u128, i32), u64>;

/// What one rolling restart measured.
#[derive(Debug)]
pub struct Outcome {
    /// Messages produced.
    pub messages: u64,
    /// Numbers never processed.
    pub lost: Vec<u64>,
    /// Numbers processed more than once.
    pub duplicates: Vec<Duplicate>,
    /// Stretches longer than a second in which a partition processed nothing.
    pub stalls: Vec<Gap>,
    /// The longest time a partition processed nothing during the restarts.
    pub longest_gap: Gap,
    /// Non-empty assignments reported by all processes (their events files).
    pub assignments: usize,
    /// Fetch pauses (`Paused` events) reported by all processes, over the whole run.
    pub fetch_pauses: usize,
    /// Revocations reported by all processes.
    pub revocations: Vec<Revocation>,
    /// (process id, exit code) of every process, in the order they were stopped.
    pub exits: Vec<(u32, Option<i32>)>,
    /// Per restart, the generations (classic) or group epochs (KIP-848) the broker's
    /// coordinator logged; empty on the mock cluster.
    pub broker_rebalances: Vec<u64>,
    /// The record file.
    pub records: PathBuf,
}

impl Outcome {
    /// Extra processings: a number processed k times adds k - 1.
    pub fn duplicate_count(&self) -> usize {
        self.duplicates.iter().map(|d| d.by.len() - 1).sum()
    }

    fn print(&self, s: &Scenario, on_mock: bool) {
        let g = &self.longest_gap;
        let stalled_ms: u128 = self.stalls.iter().map(Gap::ms).sum();
        let unit = if s.kip848() { "epochs" } else { "generations" };
        println!(
            "rolling restart, {}: messages={} lost={} duplicates={} broker_{unit}_per_restart={:?} longest_pause_ms={} (partition {} {}..{}) stalls_over_1s={} stalled_partition_ms={stalled_ms} assignments={} revocations={} fetch_pauses={} exits={:?} records={}",
            s.name,
            self.messages,
            self.lost.len(),
            self.duplicate_count(),
            self.broker_rebalances,
            g.ms(),
            g.partition,
            g.from_ms,
            g.to_ms,
            self.stalls.len(),
            self.assignments,
            self.revocations.len(),
            self.fetch_pauses,
            self.exits,
            self.records.display()
        );
        let (redo, _) = attribute(self);
        println!(
            "  bound per revocation: {}",
            s.per_revocation_bound(on_mock)
        );
        for ((pid, at, partition), n) in &redo {
            println!("  revocation of partition {partition} by {pid} at {at}: {n} processed again");
        }
    }
}

/// Attributes every second processing of a (partition, offset) to the revocation that caused
/// it: a revocation of that partition by the process that processed it first, between the two
/// processings. Returns how much each (process, revocation time, partition) made the group
/// redo, and the duplicates nothing explains.
pub fn attribute(outcome: &Outcome) -> (Redo, Vec<&Duplicate>) {
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

/// Runs `scenario` on `coordinator`: the group forms, traffic starts, each process is
/// restarted in turn, traffic stops and the group finishes the backlog. Prints the figures.
/// Panics when the group does not form, settle or finish.
pub fn run(scenario: &Scenario, coordinator: &Coordinator) -> Outcome {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let topic = unique("rolling");
    coordinator.create_topic(&rt, &topic);
    let kafka = BTreeMap::from([("bootstrap.servers".to_string(), coordinator.bootstrap())]);
    let producer = Producer::new(&kafka).expect("producer");
    let dir = std::env::temp_dir().join(unique("rolling"));
    std::fs::create_dir_all(&dir).expect("record dir");
    let out = dir.join("records");
    // Production starts once the group formed, so only the restarts can cause duplicates.
    let spec = group::spec(scenario, coordinator.bootstrap(), &topic, &out);
    let mut group = Group::form(scenario, spec);
    let stream = Stream::start(&rt, producer, topic);
    let flowing = every_partition_after(&out, 0, Duration::from_secs(60));
    assert!(
        flowing,
        "{}: not every partition was processed",
        scenario.name
    );
    std::thread::sleep(Duration::from_secs(1));
    let from = now_ms();
    let mut broker_rebalances = Vec::new();
    for slot in 0..PROCESSES {
        let before = coordinator.group_epoch(&group.spec.group);
        group.restart(slot);
        std::thread::sleep(Duration::from_secs(1));
        let after = coordinator.group_epoch(&group.spec.group);
        broker_rebalances.extend(before.zip(after).map(|(b, a)| a - b));
    }
    let to = now_ms();
    let messages = stream.stop(&rt);
    let settled = wait_until(Duration::from_secs(60), || {
        Records::read(&out).lost(messages).is_empty()
    });
    group.stop_all();
    let outcome = group.measure(out, messages, (from, to), broker_rebalances);
    outcome.print(scenario, coordinator.is_mock());
    assert!(
        settled,
        "{}: not every message was processed",
        scenario.name
    );
    outcome
}

/// The checks every strategy must pass: every process exits 0, nothing is lost, every message
/// processed twice follows a revocation of its partition by its first processor, each
/// revocation redoes at most [`Scenario::per_revocation_bound`], and at most
/// `lossy_revocations` revocations redo anything.
pub fn check(
    scenario: &Scenario,
    coordinator: &Coordinator,
    outcome: &Outcome,
    lossy_revocations: u64,
) {
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
    let bound = scenario.per_revocation_bound(coordinator.is_mock());
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

/// The log file of the process in `slot`, `generation`, beside the record file `out`.
fn log_path(out: &Path, slot: usize, generation: usize) -> PathBuf {
    out.with_file_name(format!("p{slot}-{generation}.log"))
}
