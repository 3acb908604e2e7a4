//! The idle phase (part of `all`, or alone with `--phase idle`): CPU burnt per second by
//! clients that have nothing to do.
//!
//! A ferrafka server subscribed to an empty topic against a `BaseConsumer` poll loop on the
//! same topic, both measured once their partitions are assigned (so both sit in the fetch
//! loop, long-polling an empty partition), and ferrafka's `Producer` against a raw
//! `BaseProducer` polled the usual way, after one delivered message. Anything above a few
//! CPU-milliseconds per second is a loop that spins instead of blocking.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer};

use crate::Cli;
use crate::broker::Cluster;
use crate::consume::{self, AssignClock, EventWatch};
use crate::cpu::{Snapshot, Span};
use crate::produce;

/// One idle client's reading.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    /// CPU-milliseconds per second of wall-clock time.
    pub cpu_ms_per_s: f64,
    /// Consumers: whether the assignment was seen before the measurement (else it measured
    /// a client still joining).
    pub assigned: bool,
}

impl Reading {
    fn new(span: Span, assigned: bool) -> Self {
        Reading {
            cpu_ms_per_s: span.cpu.as_secs_f64() * 1e3 / span.wall.as_secs_f64().max(1e-9),
            assigned,
        }
    }
}

/// Polls `done` every 10 ms until it holds or `timeout` passed; returns its last answer.
fn wait_for(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// How long clients get, after their assignment (consumers) or first delivery (producers),
/// to finish start-up work (first fetches, metadata refresh) before the measurement.
const SETTLE: Duration = Duration::from_secs(1);

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
    timeout: Duration,
) -> Result<Reading> {
    let (bootstrap, topic_name, group) =
        (bootstrap.to_string(), topic.to_string(), group.to_string());
    let builder = App::builder()
        .setup(move |c| {
            c.client_id("ferrafka-bench")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
        })
        .routes(move |r| {
            r.topic(topic_name).consumer(|| Nothing);
        });
    let watch = Arc::new(EventWatch::default());
    let app = consume::watched(builder, &watch).build_with_env([]);
    let server = app.start(&Filters::default())?;
    let assigned = wait_for(timeout, || watch.assigned().is_some());
    std::thread::sleep(SETTLE);
    let span = measure(length, || std::thread::sleep(Duration::from_millis(100)));
    server.shutdown();
    Ok(Reading::new(span, assigned))
}

/// A `BaseConsumer` polled with a 100 ms timeout on the empty `topic`.
pub fn raw_consumer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    group: &str,
    length: Duration,
    timeout: Duration,
) -> Result<Reading> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config.set("group.id", group);
    let consumer: BaseConsumer<AssignClock> = config
        .create_with_context(AssignClock::default())
        .context("creating the raw consumer")?;
    consumer.subscribe(&[topic])?;
    let poll = || {
        let _ = consumer.poll(Duration::from_millis(100));
    };
    // The rebalance callback runs inside poll: keep polling until it saw the assignment.
    let deadline = Instant::now() + timeout;
    while consumer.context().assigned().is_none() && Instant::now() < deadline {
        poll();
    }
    let assigned = consumer.context().assigned().is_some();
    let settle = Instant::now() + SETTLE;
    while Instant::now() < settle {
        poll();
    }
    Ok(Reading::new(measure(length, poll), assigned))
}

/// ferrafka's producer (a `ThreadedProducer` underneath), connected and then left alone.
pub fn ferrafka_producer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    length: Duration,
) -> Result<Reading> {
    let producer = Producer::new(properties)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(producer.produce(ferrafka::Record::to(topic).payload("warm-up")))?;
    std::thread::sleep(SETTLE);
    let span = measure(length, || std::thread::sleep(Duration::from_millis(100)));
    Ok(Reading::new(span, true))
}

/// A raw `BaseProducer` polled with a 100 ms timeout, the way its docs suggest.
pub fn raw_producer(
    properties: &BTreeMap<String, String>,
    topic: &str,
    length: Duration,
) -> Result<Reading> {
    let producer = produce::raw_producer(properties)?;
    produce::send_all(&producer, topic, 1, b"warm-up")?;
    std::thread::sleep(SETTLE);
    let span = measure(length, || producer.poll(Duration::from_millis(100)));
    Ok(Reading::new(span, true))
}

/// The idle ferrafka server's name in the readings.
pub const FERRAFKA_SERVER: &str = "ferrafka server";
/// The idle raw consumer's name in the readings.
pub const RAW_CONSUMER: &str = "raw BaseConsumer poll(100ms)";

/// Creates an empty topic and measures the four idle clients on it, one after the other.
pub fn run(
    cli: &Cli,
    cluster: &Cluster,
    rt: &tokio::runtime::Runtime,
    run_id: &str,
) -> Result<Vec<(&'static str, Reading)>> {
    const LENGTH: Duration = Duration::from_secs(5);
    let topic = format!("ferrafka-bench-idle-{run_id}");
    let partitions = cli.partitions[0];
    {
        let admin = Admin::connect(&cluster.bootstrap)?;
        rt.block_on(admin.create_topic(&TopicSpec::new(&topic, partitions)))?;
    }
    let mut properties =
        BTreeMap::from([("bootstrap.servers".to_string(), cluster.bootstrap.clone())]);
    properties.extend(cli.kafka.iter().cloned());
    let setup = consume::Setup {
        bootstrap: cluster.bootstrap.clone(),
        topic: topic.clone(),
        messages: 1,
        max_messages: cli.max_messages,
        max_wait: Duration::from_millis(cli.max_wait_ms),
        timeout: cli.timeout,
        kafka: cli.kafka.clone(),
    };
    let consumer_properties = consume::ferrafka_properties(&setup, "ferrafka-bench-probe")?;
    let (ferrafka_group, raw_group) = (format!("idle-{run_id}-f"), format!("idle-{run_id}-r"));
    type Run<'a> = (&'static str, Box<dyn Fn() -> Result<Reading> + 'a>);
    let runs: [Run<'_>; 4] = [
        (
            FERRAFKA_SERVER,
            Box::new(|| {
                ferrafka_server(
                    &cluster.bootstrap,
                    &topic,
                    &ferrafka_group,
                    LENGTH,
                    cli.timeout,
                )
            }),
        ),
        (
            RAW_CONSUMER,
            Box::new(|| {
                raw_consumer(
                    &consumer_properties,
                    &topic,
                    &raw_group,
                    LENGTH,
                    cli.timeout,
                )
            }),
        ),
        (
            "ferrafka Producer",
            Box::new(|| ferrafka_producer(&properties, &topic, LENGTH)),
        ),
        (
            "raw BaseProducer poll(100ms)",
            Box::new(|| raw_producer(&properties, &topic, LENGTH)),
        ),
    ];
    println!();
    println!(
        "idle clients on an empty {partitions}-partition topic, {LENGTH:?} each after start-up:"
    );
    let mut readings = Vec::new();
    for (name, run) in runs {
        let reading = cluster.with_broker_cpu(run).0?;
        println!(
            "  {name:<30} {:>7.1} CPU-ms per second{}",
            reading.cpu_ms_per_s,
            if reading.assigned {
                ""
            } else {
                "  (no assignment seen within --timeout: measured while joining)"
            }
        );
        readings.push((name, reading));
    }
    if cluster.child.is_none() {
        let admin = Admin::connect(&cluster.bootstrap)?;
        let _ = rt.block_on(admin.delete_topic(&topic));
    }
    Ok(readings)
}
