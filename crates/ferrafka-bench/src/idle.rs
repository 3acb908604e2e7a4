//! The idle phase (`--phase idle`): CPU burnt per second by clients that have nothing to do.
//!
//! A ferrafka server subscribed to an empty topic against a `BaseConsumer` poll loop on the
//! same topic, and ferrafka's `Producer` against a raw `BaseProducer` polled the usual way,
//! each left alone for a few seconds after start-up. Anything above a few CPU-milliseconds per
//! second is a loop that spins instead of blocking.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer};

use crate::cpu::{Snapshot, Span};
use crate::produce;

/// How long clients get to connect and join before the measurement.
const SETTLE: Duration = Duration::from_secs(3);

struct Nothing;

impl Consumer for Nothing {
    async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult {
        Ok(())
    }
}

fn measure(length: Duration, mut tick: impl FnMut()) -> Span {
    let start = Snapshot::now();
    let deadline = Instant::now() + length;
    while Instant::now() < deadline {
        tick();
    }
    Span::between(&start, &Snapshot::now())
}

/// A ferrafka server on the empty `topic`.
pub fn ferrafka_server(
    bootstrap: &str,
    topic: &str,
    group: &str,
    length: Duration,
) -> Result<Span> {
    let (bootstrap, topic_name, group) =
        (bootstrap.to_string(), topic.to_string(), group.to_string());
    let app = App::builder()
        .setup(move |c| {
            c.client_id("ferrafka-bench")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
        })
        .routes(move |r| {
            r.topic(topic_name).consumer(|| Nothing);
        })
        .build_with_env([]);
    let server = app.start(&Filters::default())?;
    std::thread::sleep(SETTLE);
    let span = measure(length, || std::thread::sleep(Duration::from_millis(100)));
    server.shutdown();
    Ok(span)
}

/// A `BaseConsumer` polled with a 100 ms timeout on the empty `topic`.
pub fn raw_consumer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    group: &str,
    length: Duration,
) -> Result<Span> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config.set("group.id", group);
    let consumer: BaseConsumer = config.create().context("creating the raw consumer")?;
    consumer.subscribe(&[topic])?;
    let settle = Instant::now() + SETTLE;
    while Instant::now() < settle {
        let _ = consumer.poll(Duration::from_millis(100));
    }
    Ok(measure(length, || {
        let _ = consumer.poll(Duration::from_millis(100));
    }))
}

/// ferrafka's producer (a `ThreadedProducer` underneath), connected and then left alone.
pub fn ferrafka_producer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    length: Duration,
) -> Result<Span> {
    let producer = Producer::new(properties)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(producer.produce(ferrafka::Record::to(topic).payload("warm-up")))?;
    std::thread::sleep(SETTLE);
    Ok(measure(length, || {
        std::thread::sleep(Duration::from_millis(100))
    }))
}

/// A raw `BaseProducer` polled with a 100 ms timeout, the way its docs suggest.
pub fn raw_producer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    length: Duration,
) -> Result<Span> {
    let producer = produce::raw_producer(properties)?;
    produce::send_all(&producer, topic, 1, b"warm-up")?;
    std::thread::sleep(SETTLE);
    Ok(measure(length, || {
        producer.poll(Duration::from_millis(100))
    }))
}
