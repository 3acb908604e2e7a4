//! The measured rounds: consume on one topic per partition count (ferrafka, the raw loop and
//! the optional peers), and produce (raw, `produce_async`, `produce_many`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use ferrafka::admin::{Admin, TopicSpec};

use crate::broker::Cluster;
use crate::consume::Listening;
use crate::peer::Peer;
use crate::report::{Sample, Series};
use crate::{Cli, Clients, consume, produce};

/// What every phase of a run shares.
pub struct Bench<'a> {
    /// The command line.
    pub cli: &'a Cli,
    /// The broker.
    pub cluster: &'a Cluster,
    /// For ferrafka's async calls and the admin client.
    pub rt: &'a tokio::runtime::Runtime,
    /// Unique per run: names topics and groups.
    pub run_id: String,
    /// The payload of every message.
    pub payload: Vec<u8>,
    /// The peers that can run (confluent-kafka-python, the Java client).
    pub peers: Vec<Peer>,
    /// Topics this run created (deleted at the end on an external cluster).
    pub created: Vec<String>,
}

/// The consume series of one partition count.
pub struct ConsumeRows {
    /// Partitions of the topic.
    pub partitions: i32,
    /// The hand-written `BaseConsumer` loop.
    pub raw: Series,
    /// The ferrafka server with a no-op consumer.
    pub ferrafka: Series,
    /// The same with no event subscriber (what events cost: [`consume::Listening::Nobody`]).
    pub events_none: Series,
    /// The same with one subscriber, a closure counting every event.
    pub events_one: Series,
    /// The ferrafka row again with reporting for `web` on (`report_interval` 1 s).
    pub reporting: Series,
    /// One per peer, in the order of `Bench::peers`.
    pub peers: Vec<Series>,
}

/// The consume clients of a round, by index.
const FERRAFKA: usize = 0;
const RAW: usize = 1;
const EVENTS_NONE: usize = 2;
const EVENTS_ONE: usize = 3;
const REPORTING: usize = 4;
/// The first peer's index; the others follow.
const PEERS: usize = 5;

/// The produce series.
pub struct ProduceRows {
    /// The hand-written `BaseProducer` loop.
    pub raw: Series,
    /// ferrafka's fire-and-forget `produce_async` then `flush`.
    pub produce_async: Series,
    /// ferrafka's awaited `produce_many`.
    pub produce_many: Series,
}

/// Producer properties for filling the consume topic: record batches of many messages,
/// compressed, as an application's producer writes them.
fn fill_properties() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("linger.ms".to_string(), "5".to_string()),
        ("compression.type".to_string(), "lz4".to_string()),
    ])
}

impl Bench<'_> {
    fn base_properties(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            "bootstrap.servers".to_string(),
            self.cluster.bootstrap.clone(),
        )])
    }

    /// Creates and fills the consume topic of `partitions` unless `--consume-topic` names one
    /// that exists; returns its name.
    fn consume_topic(&mut self, partitions: i32) -> Result<String> {
        let topic = self
            .cli
            .consume_topic
            .clone()
            .unwrap_or_else(|| format!("ferrafka-bench-consume-{}-{partitions}p", self.run_id));
        {
            // Dropped before measuring: its idle librdkafka threads would count as client CPU.
            let admin = Admin::connect(&self.cluster.bootstrap)?;
            if admin.partition_count(&topic)?.is_some() {
                println!("consuming the existing topic {topic}");
                return Ok(topic);
            }
            self.rt
                .block_on(admin.create_topic(&TopicSpec::new(&topic, partitions)))
                .with_context(|| format!("creating {topic}"))?;
        }
        if self.cli.consume_topic.is_none() {
            self.created.push(topic.clone());
        }
        // Batched and compressed the way an application's producer writes, on every cluster.
        let mut fill = self.base_properties();
        fill.extend(fill_properties());
        let started = Instant::now();
        let producer = produce::raw_producer(&fill)?;
        produce::send_all(&producer, &topic, self.cli.messages, &self.payload)?;
        drop(producer);
        println!(
            "filled {topic} ({partitions} partitions) with {} messages in {:.1} s \
             (linger.ms=5, lz4)",
            self.cli.messages,
            started.elapsed().as_secs_f64()
        );
        Ok(topic)
    }

    /// The consume rounds on a topic of `partitions` partitions.
    pub fn consume(&mut self, partitions: i32) -> Result<ConsumeRows> {
        let topic = self.consume_topic(partitions)?;
        let cli = self.cli;
        let setup = consume::Setup {
            bootstrap: self.cluster.bootstrap.clone(),
            topic,
            messages: cli.messages,
            max_messages: cli.max_messages,
            max_wait: Duration::from_millis(cli.max_wait_ms),
            timeout: cli.timeout,
            kafka: cli.kafka.clone(),
        };
        let properties = consume::ferrafka_properties(&setup, "ferrafka-bench-probe")?;
        let phase = format!("consume {partitions}p");
        let mut rows = ConsumeRows {
            partitions,
            raw: Series::new(&phase, "raw BaseConsumer"),
            ferrafka: Series::new(&phase, "ferrafka"),
            events_none: Series::new(&phase, "ferrafka, 0 subscribers"),
            events_one: Series::new(&phase, "ferrafka, 1 subscriber"),
            reporting: Series::new(&phase, "ferrafka, reporting on"),
            peers: self
                .peers
                .iter()
                .map(|p| Series::new(&phase, p.name))
                .collect(),
        };
        let mut events = if cli.events_cost {
            vec![EVENTS_NONE, EVENTS_ONE]
        } else {
            Vec::new()
        };
        if cli.reporting_cost {
            self.create_reporting_topics(&setup)?;
            events.push(REPORTING);
        }
        let mut order = match cli.client {
            Clients::All => [vec![FERRAFKA, RAW], events].concat(),
            Clients::Ferrafka => [vec![FERRAFKA], events].concat(),
            Clients::Raw => vec![RAW],
            Clients::Events0 => vec![EVENTS_NONE],
            Clients::Events1 => vec![EVENTS_ONE],
        };
        if cli.client == Clients::All {
            order.extend(PEERS..PEERS + self.peers.len());
        }
        for round in 0..cli.rounds {
            // The two events-cost phases take turns at going first, whatever the rotation did.
            let at = |which| order.iter().position(|&w| w == which);
            if let (Some(none), Some(one)) = (at(EVENTS_NONE), at(EVENTS_ONE))
                && (none < one) != (round % 2 == 0)
            {
                order.swap(none, one);
            }
            for &which in &order {
                let group = format!(
                    "ferrafka-bench-{}-{partitions}p-{round}-{which}",
                    self.run_id
                );
                let ferrafka = |listening| consume::ferrafka(&setup, &group, listening);
                let (outcome, broker_cpu) = self.cluster.with_broker_cpu(|| match which {
                    FERRAFKA => ferrafka(Listening::Watch).map(|o| (o, None)),
                    RAW => consume::raw(&setup, &group, &properties).map(|o| (o, None)),
                    EVENTS_NONE => ferrafka(Listening::Nobody).map(|o| (o, None)),
                    EVENTS_ONE => ferrafka(Listening::Counter).map(|o| (o, None)),
                    REPORTING => ferrafka(Listening::Reporting).map(|o| (o, None)),
                    peer => self.peer_consume(peer - PEERS, &setup, &group, &properties),
                });
                let series = match which {
                    FERRAFKA => &mut rows.ferrafka,
                    RAW => &mut rows.raw,
                    EVENTS_NONE => &mut rows.events_none,
                    EVENTS_ONE => &mut rows.events_one,
                    REPORTING => &mut rows.reporting,
                    peer => &mut rows.peers[peer - PEERS],
                };
                record_consume(round, series, outcome, broker_cpu, cli.payload_bytes);
            }
            // Alternate who goes first: the order of the clients moves the broker's state.
            order.rotate_left(1);
        }
        Ok(rows)
    }

    /// Creates the reporting phase's topics, as ferrafka declares them, unless they exist.
    fn create_reporting_topics(&mut self, setup: &consume::Setup) -> Result<()> {
        let admin = Admin::connect(&self.cluster.bootstrap)?;
        for spec in consume::reporting_topics(setup) {
            if admin.partition_count(&spec.name)?.is_some() {
                continue;
            }
            self.rt
                .block_on(admin.create_topic(&spec))
                .with_context(|| format!("creating {}", spec.name))?;
            self.created.push(spec.name.clone());
        }
        Ok(())
    }

    fn peer_consume(
        &self,
        peer: usize,
        setup: &consume::Setup,
        group: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<(consume::Outcome, Option<Duration>)> {
        let (outcome, process) = self.peers[peer].consume(setup, group, properties)?;
        Ok((outcome, Some(process)))
    }

    /// The produce rounds on a fresh topic of the first partition count.
    pub fn produce(&mut self) -> Result<ProduceRows> {
        let cli = self.cli;
        let messages = cli.produce_messages.unwrap_or(cli.messages * 5);
        let topic = format!("ferrafka-bench-produce-{}", self.run_id);
        {
            let admin = Admin::connect(&self.cluster.bootstrap)?;
            self.rt
                .block_on(admin.create_topic(&TopicSpec::new(&topic, cli.partitions[0])))
                .with_context(|| format!("creating {topic}"))?;
        }
        self.created.push(topic.clone());
        let mut properties = self.base_properties();
        properties.extend(cli.kafka.iter().cloned());
        let mut rows = ProduceRows {
            raw: Series::new("produce", "raw BaseProducer"),
            produce_async: Series::new("produce", "ferrafka produce_async"),
            produce_many: Series::new("produce", "ferrafka produce_many"),
        };
        let mut order: Vec<&str> = Vec::new();
        if cli.client != Clients::Ferrafka {
            order.push("raw");
        }
        if cli.client != Clients::Raw {
            order.extend(["async", "many"]);
        }
        for round in 0..cli.rounds {
            for &which in &order {
                let (span, broker_cpu) = self.cluster.with_broker_cpu(|| {
                    let (p, t, pl, rt) = (&properties, topic.as_str(), &self.payload, self.rt);
                    match which {
                        "raw" => produce::raw(p, t, messages, pl),
                        "async" => produce::ferrafka_async(rt, p, t, messages, pl),
                        _ => produce::ferrafka_many(rt, p, t, messages, pl),
                    }
                });
                let series = match which {
                    "raw" => &mut rows.raw,
                    "async" => &mut rows.produce_async,
                    _ => &mut rows.produce_many,
                };
                let sample = span.map(|s| Sample::new(&s, messages, broker_cpu));
                record(round, series, sample, "");
            }
            order.reverse();
        }
        Ok(rows)
    }
}

/// Prints a round's line and adds its sample (or failure) to `series`.
fn record(round: usize, series: &mut Series, sample: Result<Sample>, extra: &str) {
    let label = format!(
        "round {} {:<12} {:<24}",
        round + 1,
        series.phase,
        series.client
    );
    match sample {
        Ok(sample) => {
            println!("{label} {}{extra}", sample.line());
            series.samples.push(sample);
        }
        Err(e) => {
            println!("{label} FAILED: {e:#}");
            series.failures += 1;
        }
    }
}

/// Records a consume round; `process_cpu` is the whole peer process's CPU time.
fn record_consume(
    round: usize,
    series: &mut Series,
    outcome: Result<(consume::Outcome, Option<Duration>)>,
    broker_cpu: Option<Duration>,
    payload_bytes: usize,
) {
    let (o, process_cpu) = match outcome {
        Ok(o) => o,
        Err(e) => return record(round, series, Err(e), ""),
    };
    // Broker CPU is taken over the whole phase (join included): an upper bound.
    let mut sample = Sample::new(&o.steady, o.messages, broker_cpu);
    if process_cpu.is_some() {
        sample.allocs_per_msg = None; // another process: not counted
    }
    let mut extra = format!(
        "  (join {:.2} s, first {:.0} ms",
        o.startup.wall.as_secs_f64(),
        o.first_message.as_secs_f64() * 1e3
    );
    if let Some(p) = o.pauses {
        extra += &format!(", {p} pauses");
    }
    if let Some(events) = o.events {
        sample.events_per_msg = Some(events as f64 / o.messages as f64);
        extra += &format!(", {events} events");
    }
    if let Some(cpu) = process_cpu {
        extra += &format!(", process {:.2} CPU-s in all", cpu.as_secs_f64());
    }
    extra.push(')');
    if o.stalled {
        series.stalled += 1;
        extra += &format!(
            "\n  STALLED: only {} messages within the timeout; figures cover those",
            o.messages
        );
    } else if o.bytes != o.messages * payload_bytes as u64 {
        extra += &format!(
            "\n  warning: saw {} payload bytes for {} messages",
            o.bytes, o.messages
        );
    }
    record(round, series, Ok(sample), &extra);
}
