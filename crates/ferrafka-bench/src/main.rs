//! `ferrafka-bench`: what ferrafka costs over hand-written rdkafka loops.
//!
//! On one broker and topic per run, it consumes N messages through ferrafka (no-op consumer)
//! and through a raw `BaseConsumer` poll loop, and produces N messages through ferrafka's
//! producer and a raw `BaseProducer` loop. For each it prints messages per second and client
//! CPU-seconds per million messages, and the ratios ferrafka/raw. The embedded broker runs in a
//! child process so `getrusage(RUSAGE_SELF)` counts the client only. See the crate's README.

mod broker;
mod consume;
mod cpu;
mod idle;
mod produce;
mod report;
mod virtual_partitions;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand, ValueEnum};
use ferrafka::admin::{Admin, TopicSpec};

use crate::broker::BrokerChild;
use crate::report::{Sample, Series};

/// The CPU-per-message ratio ferrafka/raw that issue 2 aims for.
const TARGET: f64 = 1.10;

/// Throughput and CPU cost of ferrafka against hand-written rdkafka loops.
#[derive(Debug, Parser)]
#[command(name = "ferrafka-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Messages per consume phase (and the size of the consume topic).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,

    /// Messages per produce phase; 5 x `--messages` by default. Producing is ~30 times faster
    /// than consuming from tansu, and rdkafka's flush waits in 100 ms polls: a longer phase
    /// keeps that and the timer noise small.
    #[arg(long)]
    produce_messages: Option<u64>,

    /// Consume this topic instead of a fresh one: created and filled when missing, used as it is
    /// (it must hold at least `--messages` messages) when present, never deleted. Lets repeated
    /// runs, e.g. under a profiler, skip the fill.
    #[arg(long)]
    consume_topic: Option<String>,

    /// Partitions of both topics. One by default: both clients then read one identical ordered
    /// stream, ferrafka runs a single executor (the comparison is per-message framework cost,
    /// not parallelism), and on 2 cores the broker child already needs about one of them.
    #[arg(long, default_value_t = 1)]
    partitions: i32,

    /// Rounds; the order of the clients alternates between rounds and medians are printed.
    #[arg(long, default_value_t = 3)]
    rounds: usize,

    /// Use this cluster (`HOST:PORT[,…]`) instead of an embedded broker in a child process.
    #[arg(long)]
    brokers: Option<String>,

    /// Payload size in bytes.
    #[arg(long, default_value_t = 100)]
    payload_bytes: usize,

    /// ferrafka's `max_messages` (batch size); the raw consume loop stores an offset as often.
    #[arg(long, default_value_t = 100)]
    max_messages: usize,

    /// Which directions to measure.
    #[arg(long, value_enum, default_value_t = Phases::All)]
    phase: Phases,

    /// Which clients to measure (for profiling one of them).
    #[arg(long, value_enum, default_value_t = Clients::All)]
    client: Clients,

    /// Extra librdkafka property for every measured client, consumers and producers alike
    /// (`--kafka fetch.wait.max.ms=100`); repeatable.
    #[arg(long = "kafka", value_name = "KEY=VALUE", value_parser = parse_property)]
    kafka: Vec<(String, String)>,

    /// Longest a consume phase may run before it counts as stalled, in seconds; a stalled
    /// phase is reported with the figures of the messages it got through.
    #[arg(long, default_value = "15", value_parser = parse_secs)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the embedded broker, prints its address, serves until stdin closes (internal).
    #[command(hide = true)]
    Broker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phases {
    /// Consume and produce.
    All,
    /// Consume only.
    Consume,
    /// Produce only.
    Produce,
    /// CPU per second of clients with nothing to do (not part of `all`).
    Idle,
    /// A CPU-bound consumer with and without virtual partitions (not part of `all`).
    Virtual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Clients {
    All,
    Ferrafka,
    Raw,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("KEY=VALUE expected, got {s:?}"))
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|e| format!("seconds expected: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(match cli.command {
        // tansu logs every client that hangs up mid-response (a stopped consumer) as an error.
        Some(Command::Broker) => "warn,tansu_service::stream=off",
        None => "warn",
    });
    let result = match cli.command {
        Some(Command::Broker) => broker::serve(),
        None => run(&cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrafka-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (`RUST_LOG`, default `warn`), plus the layer that times ferrafka's assignment.
fn init_tracing(default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _, filter::Targets};
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        );
    let assignments = consume::ListenerWatch.with_filter(
        Targets::new().with_target(consume::ListenerWatch::TARGET, tracing::Level::DEBUG),
    );
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(assignments)
        .try_init();
}

/// The broker: a child process, or an external cluster.
struct Cluster {
    child: Option<BrokerChild>,
    bootstrap: String,
}

impl Cluster {
    fn broker_cpu(&self) -> Option<Duration> {
        self.child.as_ref().and_then(BrokerChild::cpu)
    }

    /// Waits (up to 30 s) until the broker child is idle, so work left over from one phase (a
    /// stalled consumer's last fetches) does not slow the next. No-op for external clusters.
    fn settle(&self) {
        const STEP: Duration = Duration::from_millis(250);
        let Some(mut last) = self.broker_cpu() else {
            return;
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(STEP);
            let Some(now) = self.broker_cpu() else { return };
            // Under 10% of a core: idle, give or take the 10 ms resolution.
            if now.saturating_sub(last) <= STEP / 10 {
                return;
            }
            last = now;
        }
        println!("  note: the broker was still busy 30 s after the previous phase");
    }
}

/// Producer properties for filling the consume topic: record batches of many messages,
/// compressed, as an application's producer writes them.
fn fill_properties() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("linger.ms".to_string(), "5".to_string()),
        ("compression.type".to_string(), "lz4".to_string()),
    ])
}

/// Waits for an idle broker, runs `f`, and reads the broker child's CPU time around it.
fn with_broker_cpu<T>(cluster: &Cluster, f: impl FnOnce() -> T) -> (T, Option<Duration>) {
    cluster.settle();
    let before = cluster.broker_cpu();
    let out = f();
    let after = cluster.broker_cpu();
    (out, before.zip(after).map(|(b, a)| a.saturating_sub(b)))
}

fn run(cli: &Cli) -> Result<()> {
    anyhow::ensure!(cli.messages > 0, "--messages needs to be at least 1");
    anyhow::ensure!(cli.partitions > 0, "--partitions needs to be at least 1");
    anyhow::ensure!(cli.rounds > 0, "--rounds needs to be at least 1");
    anyhow::ensure!(
        cli.max_messages > 0,
        "--max-messages needs to be at least 1"
    );
    let produce_messages = cli.produce_messages.unwrap_or(cli.messages * 5);
    anyhow::ensure!(
        produce_messages > 0,
        "--produce-messages needs to be at least 1"
    );
    let cluster = match &cli.brokers {
        Some(b) => Cluster {
            child: None,
            bootstrap: b.clone(),
        },
        None => {
            let child = BrokerChild::spawn()?;
            Cluster {
                bootstrap: child.bootstrap().to_string(),
                child: Some(child),
            }
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_id = format!("{}-{stamp}", std::process::id());
    let consume_topic = cli
        .consume_topic
        .clone()
        .unwrap_or_else(|| format!("ferrafka-bench-consume-{run_id}"));
    let produce_topic = format!("ferrafka-bench-produce-{run_id}");
    let payload: Vec<u8> = (0..cli.payload_bytes)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let do_consume = matches!(cli.phase, Phases::All | Phases::Consume);
    let do_produce = matches!(cli.phase, Phases::All | Phases::Produce);

    print_header(cli, &cluster, produce_messages);
    if cli.phase == Phases::Idle {
        return run_idle(cli, &cluster, &rt, &run_id);
    }
    if cli.phase == Phases::Virtual {
        return virtual_partitions::run(&cluster.bootstrap, &rt, &run_id);
    }

    let mut produce_properties =
        BTreeMap::from([("bootstrap.servers".to_string(), cluster.bootstrap.clone())]);
    let mut created = Vec::new();
    let fill_consume_topic = {
        // Dropped before measuring: its idle librdkafka threads would count as client CPU.
        let admin = Admin::connect(&cluster.bootstrap)?;
        let mut fill = false;
        if do_consume && admin.partition_count(&consume_topic)?.is_none() {
            rt.block_on(admin.create_topic(&TopicSpec::new(&consume_topic, cli.partitions)))
                .with_context(|| format!("creating {consume_topic}"))?;
            if cli.consume_topic.is_none() {
                created.push(consume_topic.clone());
            }
            fill = true;
        }
        if do_produce {
            rt.block_on(admin.create_topic(&TopicSpec::new(&produce_topic, cli.partitions)))
                .with_context(|| format!("creating {produce_topic}"))?;
            created.push(produce_topic.clone());
        }
        fill
    };

    if fill_consume_topic {
        // Batched and compressed the way an application's producer writes, on every cluster.
        let mut fill = produce_properties.clone();
        fill.extend(fill_properties());
        let started = std::time::Instant::now();
        let producer = produce::raw_producer(&fill)?;
        produce::send_all(&producer, &consume_topic, cli.messages, &payload)?;
        drop(producer);
        println!(
            "filled {consume_topic} with {} messages in {:.1} s (linger.ms=5, lz4)",
            cli.messages,
            started.elapsed().as_secs_f64()
        );
    } else if do_consume {
        println!("consuming the existing topic {consume_topic}");
    }

    produce_properties.extend(cli.kafka.iter().cloned());
    let setup = consume::Setup {
        bootstrap: cluster.bootstrap.clone(),
        topic: consume_topic.clone(),
        messages: cli.messages,
        max_messages: cli.max_messages,
        timeout: cli.timeout,
        kafka: cli.kafka.clone(),
    };
    let consumer_properties = consume::ferrafka_properties(&setup, "ferrafka-bench-probe")?;

    let mut consume_ferrafka = Series::new("consume", "ferrafka");
    let mut consume_raw = Series::new("consume", "raw BaseConsumer");
    let mut produce_raw = Series::new("produce", "raw BaseProducer");
    let mut produce_async = Series::new("produce", "ferrafka produce_async");
    let mut produce_many = Series::new("produce", "ferrafka produce_many");
    let want_ferrafka = cli.client != Clients::Raw;
    let want_raw = cli.client != Clients::Ferrafka;

    for round in 0..cli.rounds {
        let raw_first = round % 2 == 1;
        if do_consume {
            let mut order = vec![("ferrafka", want_ferrafka), ("raw", want_raw)];
            if raw_first {
                order.reverse();
            }
            for (which, wanted) in order {
                if !wanted {
                    continue;
                }
                let group = format!("ferrafka-bench-{run_id}-{round}-{which}");
                let (outcome, broker_cpu) = with_broker_cpu(&cluster, || match which {
                    "ferrafka" => consume::ferrafka(&setup, &group),
                    _ => consume::raw(&setup, &group, &consumer_properties),
                });
                let series = match which {
                    "ferrafka" => &mut consume_ferrafka,
                    _ => &mut consume_raw,
                };
                record_consume(round, series, outcome, broker_cpu, cli.payload_bytes);
            }
        }
        if do_produce {
            let mut order: Vec<&str> = Vec::new();
            if want_raw {
                order.push("raw");
            }
            if want_ferrafka {
                order.extend(["async", "many"]);
            }
            if raw_first {
                order.reverse();
            }
            for which in order {
                let (span, broker_cpu) = with_broker_cpu(&cluster, || match which {
                    "raw" => produce::raw(
                        &produce_properties,
                        &produce_topic,
                        produce_messages,
                        &payload,
                    ),
                    "async" => produce::ferrafka_async(
                        &rt,
                        &produce_properties,
                        &produce_topic,
                        produce_messages,
                        &payload,
                    ),
                    _ => produce::ferrafka_many(
                        &rt,
                        &produce_properties,
                        &produce_topic,
                        produce_messages,
                        &payload,
                    ),
                });
                let series = match which {
                    "raw" => &mut produce_raw,
                    "async" => &mut produce_async,
                    _ => &mut produce_many,
                };
                match span {
                    Ok(span) => {
                        let sample = Sample::new(&span, produce_messages, broker_cpu);
                        println!(
                            "round {} produce {:<24} {}",
                            round + 1,
                            series.client,
                            sample.line()
                        );
                        series.samples.push(sample);
                    }
                    Err(e) => {
                        println!(
                            "round {} produce {:<24} FAILED: {e:#}",
                            round + 1,
                            series.client
                        );
                        series.failures += 1;
                    }
                }
            }
        }
    }

    let series: Vec<Series> = [
        consume_raw,
        consume_ferrafka,
        produce_raw,
        produce_async,
        produce_many,
    ]
    .into_iter()
    .filter(|s| !s.samples.is_empty() || s.failures > 0)
    .collect();
    report::print_summary(
        &series,
        &[
            ("ferrafka", "raw BaseConsumer"),
            ("ferrafka produce_async", "raw BaseProducer"),
            ("ferrafka produce_many", "raw BaseProducer"),
        ],
        TARGET,
    );

    if cluster.child.is_none() && !created.is_empty() {
        // Leave an external cluster as we found it.
        let admin = Admin::connect(&cluster.bootstrap)?;
        for topic in &created {
            if let Err(e) = rt.block_on(admin.delete_topic(topic)) {
                eprintln!("could not delete {topic}: {e}");
            }
        }
    }
    drop(cluster); // kills the broker child
    Ok(())
}

fn run_idle(
    cli: &Cli,
    cluster: &Cluster,
    rt: &tokio::runtime::Runtime,
    run_id: &str,
) -> Result<()> {
    const LENGTH: Duration = Duration::from_secs(5);
    let topic = format!("ferrafka-bench-idle-{run_id}");
    {
        let admin = Admin::connect(&cluster.bootstrap)?;
        rt.block_on(admin.create_topic(&TopicSpec::new(&topic, cli.partitions)))?;
    }
    let mut properties =
        BTreeMap::from([("bootstrap.servers".to_string(), cluster.bootstrap.clone())]);
    properties.extend(cli.kafka.iter().cloned());
    let setup = consume::Setup {
        bootstrap: cluster.bootstrap.clone(),
        topic: topic.clone(),
        messages: 1,
        max_messages: cli.max_messages,
        timeout: cli.timeout,
        kafka: cli.kafka.clone(),
    };
    let consumer_properties = consume::ferrafka_properties(&setup, "ferrafka-bench-probe")?;
    type Run<'a> = (&'static str, Box<dyn Fn() -> Result<cpu::Span> + 'a>);
    let runs: [Run<'_>; 4] = [
        (
            "ferrafka server",
            Box::new(|| {
                idle::ferrafka_server(
                    &cluster.bootstrap,
                    &topic,
                    &format!("idle-{run_id}-f"),
                    LENGTH,
                )
            }),
        ),
        (
            "raw BaseConsumer poll(100ms)",
            Box::new(|| {
                idle::raw_consumer(
                    &consumer_properties,
                    &topic,
                    &format!("idle-{run_id}-r"),
                    LENGTH,
                )
            }),
        ),
        (
            "ferrafka Producer",
            Box::new(|| idle::ferrafka_producer(&properties, &topic, LENGTH)),
        ),
        (
            "raw BaseProducer poll(100ms)",
            Box::new(|| idle::raw_producer(&properties, &topic, LENGTH)),
        ),
    ];
    println!();
    println!(
        "idle clients, {LENGTH:?} each after a {:?} start-up:",
        Duration::from_secs(3)
    );
    for (name, run) in runs {
        let span = run()?;
        println!(
            "  {name:<30} {:>7.1} CPU-ms per second",
            span.cpu.as_secs_f64() * 1e3 / span.wall.as_secs_f64()
        );
    }
    if cluster.child.is_none() {
        let admin = Admin::connect(&cluster.bootstrap)?;
        let _ = rt.block_on(admin.delete_topic(&topic));
    }
    Ok(())
}

fn record_consume(
    round: usize,
    series: &mut Series,
    outcome: Result<consume::Outcome>,
    broker_cpu: Option<Duration>,
    payload_bytes: usize,
) {
    match outcome {
        Ok(o) => {
            // Broker CPU is taken over the whole phase (join included): an upper bound.
            let sample = Sample::new(&o.steady, o.messages, broker_cpu);
            println!(
                "round {} consume {:<24} {}  (join {:.2} s, first {:.0} ms{}){}",
                round + 1,
                series.client,
                sample.line(),
                o.startup.wall.as_secs_f64(),
                o.first_message.as_secs_f64() * 1e3,
                o.pauses
                    .map(|p| format!(", {p} pauses"))
                    .unwrap_or_default(),
                if o.stalled {
                    format!(
                        "\n  STALLED: only {} messages within the timeout; figures cover those",
                        o.messages
                    )
                } else {
                    String::new()
                }
            );
            if o.stalled {
                series.stalled += 1;
            }
            if !o.stalled && o.bytes != o.messages * payload_bytes as u64 {
                println!(
                    "  warning: saw {} payload bytes for {} messages",
                    o.bytes, o.messages
                );
            }
            series.samples.push(sample);
        }
        Err(e) => {
            println!(
                "round {} consume {:<24} FAILED: {e:#}",
                round + 1,
                series.client
            );
            series.failures += 1;
        }
    }
}

fn print_header(cli: &Cli, cluster: &Cluster, produce_messages: u64) {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let broker = match &cluster.child {
        Some(_) => format!(
            "embedded tansu broker (child process) at {}",
            cluster.bootstrap
        ),
        None => format!("external cluster at {}", cluster.bootstrap),
    };
    println!(
        "ferrafka-bench {}: consume {} / produce {} messages of {} bytes, {} partition(s), \
         {} round(s), max_messages {}, timeout {:?}",
        env!("CARGO_PKG_VERSION"),
        cli.messages,
        produce_messages,
        cli.payload_bytes,
        cli.partitions,
        cli.rounds,
        cli.max_messages,
        cli.timeout
    );
    if !cli.kafka.is_empty() {
        println!("extra librdkafka properties: {:?}", cli.kafka);
    }
    println!("machine: {cpus} CPUs ({model}); {broker}");
}
