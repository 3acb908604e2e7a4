//! The produce phases: ferrafka's producer (fire-and-forget `produce_async`, and awaited
//! `produce_many`) and a hand-written `BaseProducer` loop (send + poll, flush at the end).
//!
//! All use the same librdkafka properties (librdkafka's defaults plus `bootstrap.servers`), the
//! same 100-byte payload, no key, and the same topic. Each producer first sends one awaited
//! message so the connection and metadata are in place; the measurement then runs from the
//! first send to the moment every message is acknowledged (flush or `produce_many` returned).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::error::{KafkaError, RDKafkaErrorCode};
use ferrafka::rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext,
};
use ferrafka::rdkafka::{ClientContext, Message as _};
use ferrafka::{Producer, Record};

use crate::cpu::{Snapshot, Span};

/// How long a final flush may take.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(120);

/// Counts failed deliveries and nothing else: the cheapest useful delivery callback.
#[derive(Default)]
pub struct FailureCounter {
    failed: AtomicU64,
}

impl ClientContext for FailureCounter {}

impl ProducerContext for FailureCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result
            && self.failed.fetch_add(1, Ordering::Relaxed) == 0
        {
            tracing::error!(topic = m.topic(), error = %e, "delivery failed");
        }
    }
}

/// A raw producer.
pub type RawProducer = BaseProducer<FailureCounter>;

/// Creates a raw producer from `properties`.
pub fn raw_producer(properties: &BTreeMap<String, String>) -> Result<RawProducer> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config
        .create_with_context(FailureCounter::default())
        .context("creating the raw producer")
}

/// The raw loop: send, serve delivery reports with a non-blocking poll, wait for room when
/// librdkafka's queue is full, flush at the end.
///
/// On a full queue it polls for 1 ms, as ferrafka sleeps 1 ms: rdkafka's `BaseProducer::poll`
/// always waits its whole timeout, so the usual 100 ms would idle the loop.
pub fn send_all(producer: &RawProducer, topic: &str, messages: u64, payload: &[u8]) -> Result<()> {
    for _ in 0..messages {
        let mut record = BaseRecord::<(), [u8]>::to(topic).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => return Err(e).context("raw send"),
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(FLUSH_TIMEOUT).context("raw flush")?;
    let failed = producer.context().failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} raw deliveries failed");
    }
    Ok(())
}

/// Produces with the raw loop.
pub fn raw(
    properties: &BTreeMap<String, String>,
    topic: &str,
    messages: u64,
    payload: &[u8],
) -> Result<Span> {
    let producer = raw_producer(properties)?;
    send_all(&producer, topic, 1, payload)?; // warm-up
    let start = Snapshot::now();
    send_all(&producer, topic, messages, payload)?;
    let end = Snapshot::now();
    Ok(Span::between(&start, &end))
}

fn ferrafka_producer(
    rt: &tokio::runtime::Runtime,
    properties: &BTreeMap<String, String>,
    topic: &str,
    payload: &[u8],
) -> Result<Producer> {
    let producer = Producer::new(properties)?;
    rt.block_on(producer.produce(Record::to(topic).payload(payload)))
        .context("ferrafka warm-up message")?;
    Ok(producer)
}

fn check_failures(producer: &Producer) -> Result<()> {
    match producer.failed_deliveries() {
        0 => Ok(()),
        n => bail!("{n} ferrafka deliveries failed"),
    }
}

/// Produces with ferrafka's fire-and-forget `produce_async`, then flushes.
pub fn ferrafka_async(
    rt: &tokio::runtime::Runtime,
    properties: &BTreeMap<String, String>,
    topic: &str,
    messages: u64,
    payload: &[u8],
) -> Result<Span> {
    let producer = ferrafka_producer(rt, properties, topic, payload)?;
    let start = Snapshot::now();
    for _ in 0..messages {
        producer.produce_async(Record::to(topic).payload(payload))?;
    }
    producer.flush(FLUSH_TIMEOUT)?;
    let end = Snapshot::now();
    check_failures(&producer)?;
    Ok(Span::between(&start, &end))
}

/// Produces with ferrafka's awaited `produce_many`, which returns once all are acknowledged.
pub fn ferrafka_many(
    rt: &tokio::runtime::Runtime,
    properties: &BTreeMap<String, String>,
    topic: &str,
    messages: u64,
    payload: &[u8],
) -> Result<Span> {
    let producer = ferrafka_producer(rt, properties, topic, payload)?;
    let start = Snapshot::now();
    let sent = rt.block_on(
        producer.produce_many((0..messages).map(|_| Record::to(topic).payload(payload))),
    )?;
    let end = Snapshot::now();
    check_failures(&producer)?;
    if sent as u64 != messages {
        bail!("produce_many queued {sent} of {messages}");
    }
    Ok(Span::between(&start, &end))
}
