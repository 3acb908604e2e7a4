//! `ferrafka-bench`: what ferrafka costs over hand-written rdkafka loops.
//!
//! On one broker per run, it consumes N messages through ferrafka (no-op consumer), through a
//! raw `BaseConsumer` poll loop and through the peers (optional: confluent-kafka-python, Kafka's
//! Java client, Confluent's pure-Rust `confluent-kafka` crate), on one topic per partition
//! count; produces N messages through ferrafka's producer and a raw `BaseProducer` loop; and
//! measures idle clients. It prints messages per second, client CPU-seconds per million
//! messages, Rust allocations per message, idle CPU per second, and the ratios ferrafka/raw
//! against issue 12's targets (printed, not asserted), and what instrumentation events cost
//! (consume CPU and instructions per message with 0 and with 1 subscriber). The embedded
//! broker runs in a child process so `getrusage(RUSAGE_SELF)` counts the client only. See the
//! crate's README.

mod alloc;
mod broker;
mod consume;
mod cpu;
mod idle;
mod instructions;
mod peer;
mod produce;
mod report;
mod rounds;
mod summary;
mod virtual_partitions;
mod web_pages;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use ferrafka::admin::Admin;

use crate::broker::Cluster;
use crate::peer::Peer;
use crate::rounds::Bench;
use crate::summary::Summary;

/// Throughput and CPU cost of ferrafka against hand-written rdkafka loops.
#[derive(Debug, Parser)]
#[command(name = "ferrafka-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Messages per consume phase (and the size of each consume topic). From batched topics
    /// tansu serves ~200 k msg/s here, so 300 k keeps the measured window (which includes the
    /// ~0.4 s until the first fetch returns) well above a second.
    #[arg(long, default_value_t = 300_000)]
    messages: u64,

    /// Messages per produce phase; 5 x `--messages` by default. Producing is ~5 times faster
    /// than consuming here, and rdkafka's flush waits in 100 ms polls: a longer phase keeps
    /// that and the timer noise small.
    #[arg(long)]
    produce_messages: Option<u64>,

    /// Consume this topic instead of a fresh one: created and filled when missing, used as it is
    /// (it must hold at least `--messages` messages) when present, never deleted. Lets repeated
    /// runs, e.g. under a profiler, skip the fill.
    #[arg(long)]
    consume_topic: Option<String>,

    /// Partition counts to consume from, comma-separated: one consume topic (and one row) per
    /// count. With one partition both clients read one identical ordered stream and ferrafka
    /// runs a single executor (per-message framework cost, not parallelism); three show the
    /// per-partition work. Produce and idle topics use the first count.
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    partitions: Vec<i32>,

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
    /// ferrafka's `max_wait_time` in milliseconds: how long a partial batch waits to fill. It
    /// ends each consume phase: the last batch of a partition whose message count is not a
    /// multiple of `max_messages` waits this long (ferrafka's default, 1000, adds up to 1 s).
    #[arg(long, default_value_t = 1000)]
    max_wait_ms: u64,

    /// Which directions to measure.
    #[arg(long, value_enum, default_value_t = Phases::All)]
    phase: Phases,

    /// Which clients to measure (for profiling one of them). `events0` and `events1` run only
    /// ferrafka's consume phase with no event subscriber or with one; produce phases treat
    /// them as `all`.
    #[arg(long, value_enum, default_value_t = Clients::All)]
    client: Clients,

    /// Also run ferrafka's consume phase with no event subscriber and with one (a counting
    /// closure) in every round, and print what events cost (`--events-cost false`: skip them).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    events_cost: bool,

    /// Also run ferrafka's consume phase with reporting for `web` on (`report_interval` 1 s)
    /// in every round, and print its cost against the plain ferrafka row
    /// (`--reporting-cost false`: skip it).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    reporting_cost: bool,

    /// Extra librdkafka property for every measured client, consumers and producers alike
    /// (`--kafka fetch.wait.max.ms=100`); repeatable.
    #[arg(long = "kafka", value_name = "KEY=VALUE", value_parser = parse_property)]
    kafka: Vec<(String, String)>,

    /// Python for the confluent-kafka-python peer row; by default the virtualenv
    /// /var/tmp/ferrafka-peer-venv when it exists. Without one the row is skipped.
    #[arg(long)]
    peer_python: Option<PathBuf>,

    /// The pure-Rust peer's binary (`peer/pure-rust`); by default `ferrafka-pure-rust-peer`
    /// next to this binary, in `$CARGO_TARGET_DIR/release` or in the peer crate's
    /// `target/release`, the first that exists. Without one the row is skipped.
    #[arg(long, value_name = "PATH")]
    peer_pure_rust: Option<PathBuf>,

    /// Longest a consume phase may run before it counts as stalled, in seconds; a stalled
    /// phase is reported with the figures of the messages it got through.
    #[arg(long, default_value = "30", value_parser = parse_secs)]
    timeout: Duration,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the embedded broker, prints its address, serves until stdin closes (internal).
    #[command(hide = true)]
    Broker,
    /// Renders every web UI page from synthetic reports and prints milliseconds per page (no
    /// broker: the pages' data is built in memory).
    WebPages(web_pages::Args),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phases {
    /// Consume, produce, idle and virtual.
    All,
    /// Consume only.
    Consume,
    /// Produce only.
    Produce,
    /// CPU per second of clients with nothing to do.
    Idle,
    /// A CPU-bound consumer on one partition with and without virtual partitions.
    Virtual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Clients {
    All,
    Ferrafka,
    Raw,
    /// Consume: only ferrafka with no event subscriber (`profile.sh` compares it with `events1`).
    Events0,
    /// Consume: only ferrafka with one event subscriber, a counting closure.
    Events1,
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
        Some(Command::WebPages(_)) | None => "warn",
    });
    let result = match cli.command {
        Some(Command::Broker) => broker::serve(),
        Some(Command::WebPages(ref args)) => web_pages::run(args),
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

/// Logs to stderr (`RUST_LOG`, default `warn`), plus the layer that times ferrafka's assignment
/// in the phases that measure what events cost ([`consume::AssignLog`]).
fn init_tracing(default_filter: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{EnvFilter, Layer as _, filter::Targets};
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter)),
        );
    let assignments = consume::AssignLog
        .with_filter(Targets::new().with_target(consume::AssignLog::TARGET, tracing::Level::INFO));
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(assignments)
        .try_init();
}

fn validate(cli: &Cli) -> Result<()> {
    anyhow::ensure!(cli.messages > 0, "--messages needs to be at least 1");
    anyhow::ensure!(
        !cli.partitions.is_empty() && cli.partitions.iter().all(|&p| p > 0),
        "--partitions needs counts of at least 1"
    );
    anyhow::ensure!(
        cli.consume_topic.is_none() || cli.partitions.len() == 1,
        "--consume-topic takes one partition count"
    );
    anyhow::ensure!(cli.rounds > 0, "--rounds needs to be at least 1");
    anyhow::ensure!(
        cli.max_messages > 0,
        "--max-messages needs to be at least 1"
    );
    anyhow::ensure!(
        cli.produce_messages != Some(0),
        "--produce-messages needs to be at least 1"
    );
    Ok(())
}

fn run(cli: &Cli) -> Result<()> {
    validate(cli)?;
    let cluster = Cluster::start(cli.brokers.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let do_consume = matches!(cli.phase, Phases::All | Phases::Consume);
    let mut bench = Bench {
        cli,
        cluster: &cluster,
        rt: &rt,
        run_id: format!("{}-{stamp}", std::process::id()),
        payload: (0..cli.payload_bytes)
            .map(|i| b'a' + (i % 26) as u8)
            .collect(),
        peers: Vec::new(),
        created: Vec::new(),
    };
    let mut peers_skipped = Vec::new();
    for peer in [
        Peer::python(cli.peer_python.as_deref()),
        Peer::java(),
        Peer::pure_rust(cli.peer_pure_rust.as_deref()),
    ] {
        match peer {
            Ok(peer) => bench.peers.push(peer),
            Err(why) => peers_skipped.push(why),
        }
    }
    report::print_header(cli, &cluster, &bench.peers);

    let mut summary = Summary::default();
    if do_consume {
        for &partitions in &cli.partitions {
            summary.consume.push(bench.consume(partitions)?);
        }
        if cli.client == Clients::All {
            summary.peers_skipped = peers_skipped;
        }
    }
    if matches!(cli.phase, Phases::All | Phases::Produce) {
        summary.produce = Some(bench.produce()?);
    }
    if matches!(cli.phase, Phases::All | Phases::Idle) {
        summary.idle = idle::run(cli, &cluster, &rt, &bench.run_id)?;
    }
    summary.print();
    if matches!(cli.phase, Phases::All | Phases::Virtual) {
        virtual_partitions::run(&cluster.bootstrap, &rt, &bench.run_id)?;
    }

    if cluster.child.is_none() && !bench.created.is_empty() {
        // Leave an external cluster as we found it.
        let admin = Admin::connect(&cluster.bootstrap)?;
        for topic in &bench.created {
            if let Err(e) = rt.block_on(admin.delete_topic(topic)) {
                eprintln!("could not delete {topic}: {e}");
            }
        }
    }
    drop(bench);
    drop(cluster); // kills the broker child
    Ok(())
}
