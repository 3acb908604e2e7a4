//! Testing your consumers without a broker (feature `testing`).
//!
//! [`Tester`] takes your real [`App`]: you produce messages to its routed topics, call
//! [`Tester::consume`], and look at what happened. Batches run through the *same* driver,
//! per-partition state machines and executor tasks as in `server` — batching by
//! `max_messages`, runs of full batches, retries with the app's backoff (on a virtual clock,
//! so a test never sleeps), dead-letter isolation, marks, `ctx.pause`/`ctx.seek` — over an
//! in-memory log instead of librdkafka, with a producer that keeps what your consumer
//! produces.
//!
//! ```
//! use ferrafka::testing::Tester;
//! use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};
//!
//! struct Orders;
//!
//! impl Consumer for Orders {
//!     async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
//!         for m in messages {
//!             let order: serde_json::Value = m.payload_json()?;
//!             let id = order["id"].to_string();
//!             ctx.producer().produce(ferrafka::Record::to("receipts").payload(&id)).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let app = App::builder().routes(|r| { r.topic("orders").consumer(|| Orders); }).build_with_env([]);
//! let mut tester = Tester::new(&app);
//! tester.produce("orders", r#"{"id":1}"#);
//! tester.produce("orders", r#"{"id":2}"#);
//! tester.consume().await;
//! assert_eq!(tester.marked("orders", 0), Some(2));
//! assert_eq!(tester.produced_to("receipts").len(), 2);
//! # });
//! ```
//!
//! For a unit test of one `consume` call, build its arguments with [`context`] and
//! [`crate::Messages::from_messages`].

mod log;
mod runs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant, SystemTime};

use rdkafka::error::RDKafkaErrorCode;
use tokio::sync::Semaphore;

use crate::app::App;
use crate::config::Config;
use crate::consumer::{Context, PartitionHandle};
use crate::instrumentation::Monitor;
use crate::messages::TopicInfo;
use crate::processing::doorbell::Doorbell;
use crate::processing::driver::{Partitions, Spawned};
use crate::processing::executor::{ExecutorReport, ReportKind, ReportSink};
use crate::producer::{Capture, CapturedRecord, Producer};
use crate::routing::Topic;
use log::TestLog;
use runs::{Recorded, since};

pub use crate::noop::Noop;
pub use log::TestRecord;
pub use runs::{Run, RunOutcome};

/// A `consume()` call that runs more batches than this, plus as many as every message of the
/// log failing every allowed attempt four times over, is looping.
const LOOP_RUNS: usize = 1_000;

/// The server's driver, over the tester's log and recording executors.
type Driver = Partitions<Recorded, TestLog>;

/// Runs an app's routed consumers on messages you produce, without a broker.
pub struct Tester {
    config: Arc<Config>,
    topics: BTreeMap<String, (Arc<Topic>, Arc<TopicInfo>)>,
    /// The active pattern routes, in declared order (the first that matches a topic wins).
    patterns: Vec<Arc<Topic>>,
    capture: Arc<Capture>,
    producer: Producer,
    log: TestLog,
    /// Started by the first `consume`, on its runtime.
    driver: Option<(Driver, Receiver<ExecutorReport>)>,
    assigned: BTreeSet<(String, i32)>,
    runs: Vec<Run>,
    /// The virtual clock: backoffs, pauses and `max_wait_time` pass without sleeping.
    now: Instant,
    started: Instant,
    max_attempts: u32,
    /// The app's event subscribers: they see what the server would emit.
    monitor: Monitor,
}

impl std::fmt::Debug for Tester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tester")
            .field("topics", &self.topics.keys().collect::<Vec<_>>())
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

impl Tester {
    /// A tester for every active routed topic of `app`.
    pub fn new(app: &App) -> Self {
        let topics = app
            .subscription_groups()
            .iter()
            .flat_map(|sg| sg.topics.iter())
            .filter(|t| t.active && !t.is_pattern())
            .map(|t| {
                let info = Arc::new(TopicInfo {
                    name: t.name.clone(),
                    deserializer: t.deserializer.clone(),
                });
                (t.name.to_string(), (t.clone(), info))
            })
            .collect();
        let patterns = app
            .subscription_groups()
            .iter()
            .flat_map(|sg| sg.topics.iter())
            .filter(|t| t.active && t.is_pattern())
            .cloned()
            .collect();
        let capture = Arc::new(Capture::default());
        let now = Instant::now();
        Tester {
            config: app.config_arc(),
            topics,
            patterns,
            producer: Producer::capturing(capture.clone()),
            capture,
            log: TestLog::default(),
            driver: None,
            assigned: BTreeSet::new(),
            runs: Vec::new(),
            now,
            started: now,
            max_attempts: 10,
            monitor: app.monitor().clone(),
        }
    }

    /// Stops retrying a failing batch after this many attempts (default 10), so a test of a
    /// message that always fails ends; the partition is then left as it is.
    pub fn max_attempts(&mut self, attempts: u32) -> &mut Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Appends a message to `topic` (partition 0 unless the record names one); returns its
    /// offset. Offsets count from 0 per partition.
    pub fn produce(&mut self, topic: &str, record: impl Into<TestRecord>) -> i64 {
        let info = self.route(topic).1;
        self.log.append(&info, record.into())
    }

    /// Runs every partition until nothing more can happen without new messages: all
    /// messages processed, or a partition paused indefinitely, or a batch failed
    /// [`Tester::max_attempts`] times in this call. Waits (backoffs, `max_wait_time`, a
    /// consumer's `ctx.pause`) pass on the virtual clock; [`Run::at`] tells when each batch
    /// ran.
    pub async fn consume(&mut self) {
        self.start();
        let runs_before = self.runs.len();
        loop {
            self.assign_new();
            self.fetch();
            self.wait_for_reports().await;
            let (driver, _) = self.driver.as_mut().expect("started");
            driver.tick(&self.log, self.now);
            let ran = self.runs.len() - runs_before;
            let bound = LOOP_RUNS + 4 * self.log.len() * self.max_attempts as usize;
            assert!(
                ran < bound,
                "consume() ran {ran} batches without becoming idle; does a consumer seek back \
                 or pause forever? (last run: {:?})",
                self.runs.last()
            );
            if driver.any_running() || self.log.fetchable() {
                continue;
            }
            let given_up = given_up(&self.runs[runs_before..], self.max_attempts);
            let next = driver.next_wakeup_where(self.now, |topic, partition| {
                !given_up.contains(&(topic, partition))
            });
            match next {
                Some(t) => self.now = self.now.max(t),
                None => return self.emit_lag(),
            }
        }
    }

    /// A [`ConsumerLag`](crate::instrumentation::Event::ConsumerLag) event per partition, as
    /// the server's statistics report them, from the log.
    fn emit_lag(&self) {
        for (topic, partition, end, position, stored) in self.log.lag_figures() {
            let Some(route) = self.route_of(&topic) else {
                continue;
            };
            let next = stored.unwrap_or(0);
            self.monitor
                .emit(|| crate::instrumentation::Event::ConsumerLag {
                    partition: crate::instrumentation::PartitionRef {
                        consumer_group: &route.consumer_group,
                        topic: &topic,
                        partition,
                    },
                    lag: end - next,
                    high_watermark: end,
                    next_offset: next,
                    position,
                    queried: false,
                });
        }
    }

    /// Makes the next pause of `topic`/`partition` stay whatever the driver asks later (a
    /// fault of the simulated librdkafka, for tests of stall detection).
    #[cfg(test)]
    pub(crate) fn stick_next_pause(&mut self, topic: &str, partition: i32) {
        self.log.stick_next_pause(topic, partition);
    }

    /// Starts the driver on the current runtime (once), and points its executors at it.
    fn start(&mut self) {
        let runtime = tokio::runtime::Handle::current();
        if let Some((driver, _)) = &mut self.driver {
            driver.workers().spawned.runtime = runtime;
            return;
        }
        let (reports_tx, reports) = std::sync::mpsc::channel();
        let spawned = Spawned {
            config: self.config.clone(),
            runtime,
            producer: self.producer.clone(),
            // One batch at a time, in the order handed over: the same runs on every test run.
            workers: Arc::new(Semaphore::new(1)),
            reports: ReportSink::new(reports_tx, Arc::new(Doorbell::default())),
            tasks: Default::default(),
            monitor: self.monitor.clone(),
            // The harness has no broker to run transactions with.
            transactions: None,
        };
        let topics = self.topics.values().map(|(t, _)| t.clone());
        let topics = topics.chain(self.patterns.iter().cloned());
        let epoch = Arc::new(AtomicU64::new(0));
        let workers = Recorded::new(spawned);
        let monitor = self.monitor.clone();
        let driver = Partitions::new(&self.config, topics, workers, epoch, monitor);
        self.driver = Some((driver, reports));
    }

    /// Assigns the partitions produced to since the last call.
    fn assign_new(&mut self) {
        let (driver, _) = self.driver.as_mut().expect("started");
        let new: Vec<_> = self
            .log
            .partitions()
            .into_iter()
            .filter(|p| !self.assigned.contains(p))
            .collect();
        if new.is_empty() {
            return;
        }
        self.assigned.extend(new.iter().cloned());
        let epoch = driver.next_epoch();
        driver.assign(&self.log, "tester", &new, (epoch, self.now));
    }

    /// Fetches every message the log can deliver now, as a burst: like librdkafka's queue,
    /// full batches gather into runs while more is there to take.
    fn fetch(&mut self) {
        let (driver, _) = self.driver.as_mut().expect("started");
        driver.workers().at = since(self.started, self.now);
        if !self.log.fetchable() {
            return;
        }
        driver.set_gathering(&self.log, true, self.now);
        while let Some(message) = self.log.fetch() {
            let fetched = std::iter::once((driver.epoch(), message));
            driver.on_burst(&self.log, fetched, (SystemTime::now(), self.now));
        }
        driver.set_gathering(&self.log, false, self.now);
    }

    /// Hands executor reports to the driver until no batch runs.
    async fn wait_for_reports(&mut self) {
        let mut quiet_rounds = 0u32;
        loop {
            let (driver, reports) = self.driver.as_mut().expect("started");
            let mut got = false;
            while let Ok(report) = reports.try_recv() {
                got = true;
                if let ReportKind::Finished(r) = &report.kind {
                    let key = (&*report.topic, report.partition);
                    let runs = driver.workers().finished(key, r.batch, &r.outcome);
                    self.runs.extend(runs);
                }
                driver.workers().at = since(self.started, self.now);
                driver.on_report(&self.log, report, self.now);
            }
            if !driver.any_running() {
                return;
            }
            quiet_rounds = if got { 0 } else { quiet_rounds + 1 };
            // Executors are tasks of this runtime: let them run; a consumer that awaits a
            // real timer is waited for without spinning.
            if quiet_rounds < 64 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    /// The next offset stored for commit on `topic`/`partition`, as the server would commit
    /// it; `None` when nothing was marked.
    pub fn marked(&self, topic: &str, partition: i32) -> Option<i64> {
        self.log.stored(topic, partition)
    }

    /// Every batch run so far, in order, with its attempt number and outcome.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.clone()
    }

    /// Every record your consumers produced (dead letters included), in order.
    pub fn produced(&self) -> Vec<CapturedRecord> {
        self.capture.records.lock().expect("not poisoned").clone()
    }

    /// The records produced to `topic`.
    pub fn produced_to(&self, topic: &str) -> Vec<CapturedRecord> {
        let mut records = self.produced();
        records.retain(|r| r.topic == topic);
        records
    }

    /// Messages moved to `topic`'s dead-letter queue.
    pub fn dead_lettered(&self, topic: &str) -> Vec<CapturedRecord> {
        let dlq = self
            .route(topic)
            .0
            .dead_letter_queue
            .as_ref()
            .map(|d| d.topic.clone());
        dlq.map(|d| self.produced_to(&d)).unwrap_or_default()
    }

    /// Makes every delivery fail (as a broker that is down would) until called with `false`.
    pub fn fail_deliveries(&mut self, fail: bool) -> &mut Self {
        *self.capture.failing.lock().expect("not poisoned") =
            fail.then_some(RDKafkaErrorCode::MessageTimedOut);
        self
    }

    /// Moves the virtual clock on, e.g. past a consumer's `ctx.pause`.
    pub fn advance(&mut self, by: Duration) -> &mut Self {
        self.now += by;
        self
    }

    /// The route of `topic`: its own, else the first pattern route that matches it.
    fn route_of(&self, topic: &str) -> Option<Arc<Topic>> {
        match self.topics.get(topic) {
            Some((t, _)) => Some(t.clone()),
            None => self
                .patterns
                .iter()
                .find(|t| t.pattern().is_some_and(|p| p.matches(topic)))
                .cloned(),
        }
    }

    fn route(&self, topic: &str) -> (Arc<Topic>, Arc<TopicInfo>) {
        if let Some(routed) = self.topics.get(topic) {
            return routed.clone();
        }
        match self.route_of(topic) {
            Some(t) => {
                let info = Arc::new(TopicInfo {
                    name: topic.into(),
                    deserializer: t.deserializer.clone(),
                });
                (t, info)
            }
            None => panic!(
                "topic {topic:?} is not an active route of this app; its routed topics: {:?}",
                self.topics.keys().collect::<Vec<_>>()
            ),
        }
    }
}

/// Partitions whose last batch in `runs` failed for the `max_attempts`th time (or later).
fn given_up(runs: &[Run], max_attempts: u32) -> BTreeSet<(&str, i32)> {
    let mut last = BTreeMap::new();
    for run in runs {
        last.insert((run.topic.as_str(), run.partition), run);
    }
    last.into_iter()
        .filter(|(_, r)| {
            matches!(
                r.outcome,
                RunOutcome::Failed(_) | RunOutcome::DeadLetterFailed(_)
            ) && r.attempt >= max_attempts
        })
        .map(|(k, _)| k)
        .collect()
}

/// A [`Context`] for a unit test of one `consume` call on `topic`/`partition`: its producer
/// keeps records instead of sending them, and what the call asked for can be read back with
/// [`Context::marked`], [`Context::requested_pause`], [`Context::requested_seek`].
pub fn context(topic: &str, partition: i32) -> Context {
    let handle = PartitionHandle::new(
        ("test".into(), topic.into()),
        partition,
        1,
        Box::new(|_, _| {}),
    );
    Context {
        handle: Arc::new(handle),
        producer: Producer::capturing(Arc::new(Capture::default())),
        consumer_group: "test".into(),
        config: Arc::new(Config::default()),
        attempt: 1,
        batch: Some(0),
        mark: None,
        requests: Vec::new(),
        virtual_group: None,
        transactions: None,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod filter_tests;
