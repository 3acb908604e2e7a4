//! Testing your consumers without a broker (feature `testing`).
//!
//! [`Tester`] takes your real [`App`]: you produce messages to its routed topics, call
//! [`Tester::consume`], and look at what happened. Batches run through the *same* per-partition
//! state machine and executor as in `server` — batching by `max_messages`, retries with the
//! app's backoff (on a virtual clock, so a test never sleeps), dead-letter isolation, marks,
//! `ctx.pause`/`ctx.seek` — with a producer that keeps what your consumer produces.
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

mod lane;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::error::RDKafkaErrorCode;

use crate::app::App;
use crate::config::Config;
use crate::consumer::{Context, PartitionHandle};
use crate::producer::{Capture, CapturedRecord, Producer};
use crate::routing::Topic;
use lane::Lane;

pub use crate::noop::Noop;
pub use lane::{Run, RunOutcome, TestRecord};

/// Runs an app's routed consumers on messages you produce, without a broker.
pub struct Tester {
    config: Arc<Config>,
    topics: BTreeMap<String, Arc<Topic>>,
    capture: Arc<Capture>,
    producer: Producer,
    lanes: BTreeMap<(String, i32), Lane>,
    /// The virtual clock: backoffs, pauses and `max_wait_time` pass without sleeping.
    now: Instant,
    started: Instant,
    max_attempts: u32,
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
            .filter(|t| t.active)
            .map(|t| (t.name.to_string(), t.clone()))
            .collect();
        let capture = Arc::new(Capture::default());
        let now = Instant::now();
        Tester {
            config: app.config_arc(),
            topics,
            producer: Producer::capturing(capture.clone()),
            capture,
            lanes: BTreeMap::new(),
            now,
            started: now,
            max_attempts: 10,
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
        let record = record.into();
        let partition = record.partition;
        self.lane(topic, partition).append(record)
    }

    /// Runs every partition until nothing more can happen without new messages: all
    /// messages processed, or a partition paused indefinitely, or a batch failed
    /// [`Tester::max_attempts`] times in this call. Waits (backoffs, `max_wait_time`, a
    /// consumer's `ctx.pause`) pass on the virtual clock; [`Run::at`] tells when each batch
    /// ran.
    pub async fn consume(&mut self) {
        let max_attempts = self.max_attempts;
        for lane in self.lanes.values_mut() {
            lane.drive(self.started, &mut self.now, max_attempts).await;
        }
    }

    /// The next offset stored for commit on `topic`/`partition`, as the server would commit
    /// it; `None` when nothing was marked.
    pub fn marked(&self, topic: &str, partition: i32) -> Option<i64> {
        self.lanes
            .get(&(topic.to_string(), partition))
            .and_then(|l| l.stored)
    }

    /// Every batch run so far, in order, with its attempt number and outcome.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs: Vec<Run> = self.lanes.values().flat_map(|l| l.runs.clone()).collect();
        runs.sort_by_key(|r| r.seq);
        runs
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

    fn route(&self, topic: &str) -> Arc<Topic> {
        match self.topics.get(topic) {
            Some(t) => t.clone(),
            None => panic!(
                "topic {topic:?} is not an active route of this app; its routed topics: {:?}",
                self.topics.keys().collect::<Vec<_>>()
            ),
        }
    }

    fn lane(&mut self, topic: &str, partition: i32) -> &mut Lane {
        let route = self.route(topic);
        let (config, producer) = (self.config.clone(), self.producer.clone());
        self.lanes
            .entry((topic.to_string(), partition))
            .or_insert_with(|| Lane::new(config, route, producer, partition))
    }
}

/// A [`Context`] for a unit test of one `consume` call on `topic`/`partition`: its producer
/// keeps records instead of sending them, and what the call asked for can be read back with
/// [`Context::marked`], [`Context::requested_pause`], [`Context::requested_seek`].
pub fn context(topic: &str, partition: i32) -> Context {
    let handle = PartitionHandle::new(topic.into(), partition, 1, Box::new(|_, _| {}));
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
    }
}

#[cfg(test)]
mod tests;
