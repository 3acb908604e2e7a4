//! The app-wide producer.
//!
//! One librdkafka producer per app, shared by the server's consumers (through
//! [`crate::Context::producer`]) and by code outside of them. Three ways to produce:
//!
//! * [`Producer::produce`] resolves once the broker acknowledged the message (the delivery
//!   report) and returns where it landed;
//! * [`Producer::produce_async`] returns once librdkafka queued the message; a failed delivery is
//!   logged and counted in [`Producer::failed_deliveries`];
//! * [`Producer::produce_many`] queues many and resolves when all are acknowledged.
//!
//! When librdkafka's local queue is full, producing waits for room up to `queue_full_timeout`
//! instead of failing at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use tokio::sync::oneshot;
use tracing::Instrument as _;

use crate::error::{DeliveryFailure, Error, Result};
use crate::instrumentation::statistics::StatisticsSource;
use crate::instrumentation::{Monitor, spans};

mod delivery;

pub(crate) use delivery::{DeliveryContext, ManyState, Tracked, Tracker};

/// Where an acknowledged message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
}

/// A message to produce. Borrowed data is copied by librdkafka when queued.
///
/// ```
/// use ferrafka::Record;
/// let record = Record::to("events").key("user-1").payload(r#"{"n":1}"#).header("source", "docs");
/// ```
#[derive(Debug)]
pub struct Record<'a> {
    topic: &'a str,
    payload: Option<&'a [u8]>,
    key: Option<&'a [u8]>,
    headers: Option<OwnedHeaders>,
    partition: Option<i32>,
    timestamp: Option<i64>,
}

impl<'a> Record<'a> {
    /// A record for `topic`, with no key, payload or headers yet.
    pub fn to(topic: &'a str) -> Self {
        Record {
            topic,
            payload: None,
            key: None,
            headers: None,
            partition: None,
            timestamp: None,
        }
    }

    /// Sets the payload.
    pub fn payload<P: AsRef<[u8]> + ?Sized>(mut self, payload: &'a P) -> Self {
        self.payload = Some(payload.as_ref());
        self
    }

    /// Sets the key, which also picks the partition unless one is given.
    pub fn key<K: AsRef<[u8]> + ?Sized>(mut self, key: &'a K) -> Self {
        self.key = Some(key.as_ref());
        self
    }

    /// Adds a header.
    pub fn header<V: AsRef<[u8]> + ?Sized>(mut self, key: &str, value: &V) -> Self {
        let headers = self.headers.take().unwrap_or_default();
        self.headers = Some(headers.insert(KafkaHeader {
            key,
            value: Some(value.as_ref()),
        }));
        self
    }

    /// Sends to this partition instead of the partitioner's choice.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the create-time timestamp, in milliseconds since the epoch.
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }

    /// The target topic.
    pub fn topic(&self) -> &str {
        self.topic
    }

    /// The record with the trace context of `span` in its headers (with the `opentelemetry`
    /// feature, and only when `span` is traced).
    #[cfg(feature = "opentelemetry")]
    fn traced(self, span: &tracing::Span) -> Self {
        let headers = crate::otel::inject(self.headers, span);
        Record { headers, ..self }
    }

    /// Without the `opentelemetry` feature, the record as it is.
    #[cfg(not(feature = "opentelemetry"))]
    fn traced(self, _: &tracing::Span) -> Self {
        self
    }

    fn into_base(self, tracker: Option<Arc<Tracker>>) -> Outgoing<'a> {
        let mut base = BaseRecord::with_opaque_to(self.topic, Tracked(tracker));
        base.payload = self.payload;
        base.key = self.key;
        base.headers = self.headers;
        base.partition = self.partition;
        base.timestamp = self.timestamp;
        base
    }
}

/// A record on its way into librdkafka, with its delivery tracker.
type Outgoing<'a> = BaseRecord<'a, [u8], [u8], Tracked>;

/// How long to wait before retrying when librdkafka's local queue is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(1);

/// A created librdkafka producer and the thread that serves its delivery reports.
struct Client {
    producer: Arc<BaseProducer<DeliveryContext>>,
    stop: Arc<AtomicBool>,
    poller: Option<std::thread::JoinHandle<()>>,
}

/// How long one poll of the delivery-report thread may block. rdkafka turns the rest of each
/// poll's deadline into whole milliseconds and spins through the last fraction, so a long poll
/// keeps that spin small; reports still arrive as soon as they exist.
const REPORT_POLL: Duration = Duration::from_millis(500);

impl Client {
    fn create(kafka: &BTreeMap<String, String>, monitor: &Monitor) -> Result<Self, KafkaError> {
        let mut config = ClientConfig::new();
        for (k, v) in kafka {
            config.set(k, v);
        }
        let producer: Arc<BaseProducer<DeliveryContext>> =
            Arc::new(config.create_with_context(DeliveryContext {
                failed: AtomicU64::new(0),
                monitor: monitor.clone(),
                statistics: Arc::new(StatisticsSource {
                    client: "producer".into(),
                    consumer_group: None,
                    kafka: kafka.clone(),
                }),
                watched: crate::kafka::WatchedContext {
                    client: "producer".into(),
                    watch: Arc::new(crate::kafka::FailureWatch::new(kafka)),
                },
            })?);
        let stop = Arc::new(AtomicBool::new(false));
        let (p, flag) = (producer.clone(), stop.clone());
        let poller = std::thread::Builder::new()
            .name("ferrafka-producer".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    p.poll(REPORT_POLL);
                }
            })
            .map_err(|_| KafkaError::ClientCreation("cannot start the producer's thread".into()))?;
        Ok(Client {
            producer,
            stop,
            poller: Some(poller),
        })
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

struct Inner {
    kafka: BTreeMap<String, String>,
    /// Keeps records instead of sending them (the testing harness's producer).
    capture: Option<Arc<Capture>>,
    /// Created on first use, so an app that never produces runs no producer.
    client: OnceLock<Result<Client, KafkaError>>,
    queue_full_timeout: Duration,
    /// Where delivery and statistics events go.
    monitor: Monitor,
}

/// The app-wide producer; cheap to clone.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates a producer from librdkafka properties, connecting now so a bad property fails
    /// here. Every property is validated first: invalid ones are reported together as
    /// [`Error::Config`] (secrets redacted) and nothing connects.
    ///
    /// Keys are placed like the app's producer and Java's client place them
    /// (`partitioner=murmur2_random`) unless `kafka` sets `partitioner` (see
    /// [`guide::partitioning`](crate::guide::partitioning)).
    pub fn new(kafka: &BTreeMap<String, String>) -> Result<Self> {
        crate::kafka::check_kafka("producer", kafka)?;
        let producer = Self::lazy(kafka);
        producer.client()?;
        Ok(producer)
    }

    /// A producer that creates its librdkafka client on first use (properties are expected to
    /// be validated already, as the app does at boot). Keys are placed as with
    /// [`Producer::new`].
    pub fn lazy(kafka: &BTreeMap<String, String>) -> Self {
        Self::monitored(kafka, Monitor::default())
    }

    /// [`Producer::lazy`] emitting delivery and statistics events to `monitor`.
    pub(crate) fn monitored(kafka: &BTreeMap<String, String>, monitor: Monitor) -> Self {
        Producer {
            inner: Arc::new(Inner {
                kafka: crate::kafka::with_producer_defaults(kafka),
                capture: None,
                client: OnceLock::new(),
                queue_full_timeout: Duration::from_secs(10),
                monitor,
            }),
        }
    }

    fn client(&self) -> Result<&BaseProducer<DeliveryContext>> {
        match self
            .inner
            .client
            .get_or_init(|| Client::create(&self.inner.kafka, &self.inner.monitor))
        {
            Ok(client) => Ok(&client.producer),
            Err(source) => Err(Error::create_client("producer", source, &self.inner.kafka)),
        }
    }

    /// The librdkafka producer (created now if needed), for the transactional calls rdkafka
    /// offers on it.
    pub(crate) fn base_kafka(&self) -> Result<&BaseProducer<DeliveryContext>, KafkaError> {
        self.client()
            .map_err(|e| KafkaError::ClientCreation(crate::error::error_chain(&e)))
    }

    fn created(&self) -> Option<&BaseProducer<DeliveryContext>> {
        self.inner
            .client
            .get()
            .and_then(|c| c.as_ref().ok())
            .map(|c| &*c.producer)
    }

    /// A producer that keeps every record in `capture` instead of sending it.
    #[cfg(feature = "testing")]
    pub(crate) fn capturing(capture: Arc<Capture>) -> Self {
        Producer {
            inner: Arc::new(Inner {
                kafka: BTreeMap::new(),
                capture: Some(capture),
                client: OnceLock::new(),
                queue_full_timeout: Duration::ZERO,
                monitor: Monitor::default(),
            }),
        }
    }

    /// Produces one message and waits for the broker's acknowledgement.
    pub async fn produce(&self, record: Record<'_>) -> Result<Delivery> {
        let span = spans::produce(record.topic, 1);
        let record = record.traced(&span);
        let result = self.produce_traced(record).instrument(span.clone()).await;
        match &result {
            Ok(delivery) => {
                span.record("partition", delivery.partition);
                span.record("offset", delivery.offset);
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }

    async fn produce_traced(&self, record: Record<'_>) -> Result<Delivery> {
        if let Some(capture) = &self.inner.capture {
            return capture.keep(record);
        }
        let topic = record.topic.to_string();
        let (tx, rx) = oneshot::channel();
        let tracker = Arc::new(Tracker::One(Mutex::new(Some(tx))));
        self.enqueue(record.into_base(Some(tracker))).await?;
        match rx.await {
            Ok(Ok(delivery)) => Ok(delivery),
            Ok(Err(source)) => Err(self.delivery_error(topic, source)),
            Err(_) => Err(Error::Produce {
                topic,
                source: Box::new(KafkaError::Canceled),
            }),
        }
    }

    /// The error for a failed delivery to `topic`: [`Error::Connection`] when it timed out
    /// while the client could not connect because of its security settings,
    /// [`Error::NotAuthorized`] when the ACLs deny Write on the topic, [`Error::Produce`]
    /// otherwise.
    fn delivery_error(&self, topic: String, source: KafkaError) -> Error {
        let code = source.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::TopicAuthorizationFailed) {
            return Error::NotAuthorized {
                client: "producer".into(),
                operation: "Write",
                kind: "topic",
                name: topic,
            };
        }
        let timed_out = code == Some(RDKafkaErrorCode::MessageTimedOut);
        match self
            .created()
            .and_then(|p| p.context().watched.watch.last())
        {
            Some(failure) if timed_out => Error::Connection {
                client: "producer".into(),
                failure,
            },
            _ => Error::Produce {
                topic,
                source: Box::new(source),
            },
        }
    }

    /// Queues one message and returns; a failed delivery is logged and counted.
    ///
    /// Blocks the calling thread while librdkafka's queue is full (up to `queue_full_timeout`).
    pub fn produce_async(&self, record: Record<'_>) -> Result<()> {
        let span = spans::produce(record.topic, 1);
        let _entered = span.enter();
        let record = record.traced(&span);
        if let Some(capture) = &self.inner.capture {
            return capture.keep(record).map(|_| ());
        }
        let mut base = record.into_base(None);
        let mut deadline = None;
        while let Some(back) = self.try_send(base, &mut deadline)? {
            base = back;
            std::thread::sleep(QUEUE_FULL_WAIT);
        }
        Ok(())
    }

    /// Produces many messages and waits until all are acknowledged. When some fail, the error
    /// lists each failure; the others were delivered.
    pub async fn produce_many<'a, I>(&self, records: I) -> Result<usize>
    where
        I: IntoIterator<Item = Record<'a>>,
    {
        // Collected before the first await: a future holding a borrowing iterator would not be
        // `Send` for closures like `|(k, v)| Record::to(t).key(k).payload(v)` (rust#64552).
        let records: Vec<Record<'a>> = records.into_iter().collect();
        let topic = records.first().map_or("", |r| r.topic);
        let span = spans::produce(topic, records.len());
        let records: Vec<Record<'a>> = records.into_iter().map(|r| r.traced(&span)).collect();
        self.produce_many_traced(records).instrument(span).await
    }

    async fn produce_many_traced(&self, records: Vec<Record<'_>>) -> Result<usize> {
        if let Some(capture) = &self.inner.capture {
            return capture.keep_many(records);
        }
        let count = records.len();
        let (tx, rx) = oneshot::channel();
        // Every report is expected up front (plus one while queuing goes on): a counter shared
        // with the delivery thread and touched per message costs a cache-line transfer each.
        let state = Arc::new(Tracker::Many(ManyState {
            remaining: AtomicUsize::new(count + 1),
            failures: Mutex::new(Vec::new()),
            done: Mutex::new(Some(tx)),
        }));
        let Tracker::Many(many) = &*state else {
            unreachable!("built as Many above")
        };
        let mut total = 0usize;
        for record in records {
            if let Err(e) = self.enqueue(record.into_base(Some(state.clone()))).await {
                // This one and the ones after it will never get a report; then the guard.
                many.finish(count - total + 1);
                let _ = rx.await;
                return Err(e);
            }
            total += 1;
        }
        many.finish_one();
        let _ = rx.await;
        let failures = std::mem::take(&mut *many.failures.lock().expect("not poisoned"));
        if failures.is_empty() {
            Ok(total)
        } else {
            Err(Error::ProduceMany { total, failures })
        }
    }

    async fn enqueue(&self, mut base: Outgoing<'_>) -> Result<()> {
        let mut deadline = None;
        while let Some(back) = self.try_send(base, &mut deadline)? {
            base = back;
            tokio::time::sleep(QUEUE_FULL_WAIT).await;
        }
        Ok(())
    }

    /// Queues `base`; hands it back when librdkafka's queue is full and `deadline` is not
    /// reached yet, so the caller can wait its own way (blocking or async) and try again. The
    /// deadline is set at the first full queue (`queue_full_timeout` from then): reading the
    /// clock for every message shows in the producer's CPU per message.
    fn try_send<'a>(
        &self,
        base: Outgoing<'a>,
        deadline: &mut Option<Instant>,
    ) -> Result<Option<Outgoing<'a>>> {
        match self.client()?.send(base) {
            Ok(()) => Ok(None),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if self.may_wait(deadline) =>
            {
                Ok(Some(back))
            }
            Err((source, back)) => Err(Error::Produce {
                topic: back.topic.to_string(),
                source: Box::new(source),
            }),
        }
    }

    /// Whether a full queue may still be waited for; the first call sets the deadline.
    fn may_wait(&self, deadline: &mut Option<Instant>) -> bool {
        let now = Instant::now();
        now < *deadline.get_or_insert(now + self.inner.queue_full_timeout)
    }

    /// Waits until every queued message was delivered or failed, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let Some(producer) = self.created() else {
            return Ok(()); // never used: nothing to flush
        };
        producer.flush(timeout).map_err(|source| Error::Produce {
            topic: "(flush)".into(),
            source: Box::new(source),
        })
    }

    /// Messages queued but not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.created().map_or(0, |p| p.in_flight_count())
    }

    /// How many deliveries failed since the producer started (all three ways of producing).
    pub fn failed_deliveries(&self) -> u64 {
        self.created()
            .map_or(0, |p| p.context().failed.load(Ordering::Relaxed))
    }
}

/// A record a capturing producer kept instead of sending it (see `ferrafka::testing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRecord {
    /// Target topic.
    pub topic: String,
    /// The partition asked for, if any.
    pub partition: Option<i32>,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Payload, if any.
    pub payload: Option<Vec<u8>>,
    /// Headers in order; a null value is empty.
    pub headers: Vec<(String, Vec<u8>)>,
}

impl CapturedRecord {
    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// Where a capturing producer keeps its records, and whether deliveries fail.
#[derive(Debug, Default)]
pub(crate) struct Capture {
    pub(crate) records: Mutex<Vec<CapturedRecord>>,
    /// While set, deliveries fail with this librdkafka error code.
    pub(crate) failing: Mutex<Option<RDKafkaErrorCode>>,
}

impl Capture {
    fn keep(&self, record: Record<'_>) -> Result<Delivery> {
        use rdkafka::message::Headers as _;
        if let Some(code) = *self.failing.lock().expect("not poisoned") {
            return Err(Error::Produce {
                topic: record.topic.to_string(),
                source: Box::new(KafkaError::MessageProduction(code)),
            });
        }
        let headers = record
            .headers
            .as_ref()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let mut records = self.records.lock().expect("not poisoned");
        records.push(CapturedRecord {
            topic: record.topic.to_string(),
            partition: record.partition,
            key: record.key.map(<[u8]>::to_vec),
            payload: record.payload.map(<[u8]>::to_vec),
            headers,
        });
        let offset = records.iter().filter(|r| r.topic == record.topic).count() as i64 - 1;
        Ok(Delivery {
            partition: record.partition.unwrap_or(0),
            offset,
        })
    }

    fn keep_many(&self, records: Vec<Record<'_>>) -> Result<usize> {
        let total = records.len();
        let mut failures = Vec::new();
        for record in records {
            let (topic, key) = (record.topic.to_string(), record.key.map(<[u8]>::to_vec));
            if let Err(Error::Produce { source, .. }) = self.keep(record) {
                failures.push(DeliveryFailure {
                    topic,
                    key,
                    error: *source,
                });
            }
        }
        if failures.is_empty() {
            Ok(total)
        } else {
            Err(Error::ProduceMany { total, failures })
        }
    }
}

#[cfg(test)]
mod tests;
