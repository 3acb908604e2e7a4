//! ferrafka's quickstart: a shop that produces page-visit events and counts them per user.
//!
//! ```text
//! cargo run -p quickstart                    # the demo: embedded broker, 100,000 events
//! cargo run -p quickstart -- --messages 1000000
//! FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run -p quickstart
//! cargo run -p quickstart -- info            # the whole ferrafka CLI, on this app
//! cargo run -p quickstart -- doctor --env production
//! cargo run -p quickstart -- topics plan
//! cargo run -p quickstart -- server
//! ```
//!
//! The demo (no arguments, `--messages`/`--partitions`, or `demo`): with no `bootstrap.servers`
//! configured (the `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` variable) and outside production, it starts
//! an embedded tansu broker for the run. It creates its topic, produces a stream of JSON events
//! (batched and zstd-compressed, as a real producer sends them), consumes them in batches while
//! they are produced, prints progress and stops after `--messages` events, saying where the time
//! went.
//!
//! Every other command is ferrafka's own CLI ([`ferrafka::cli`]) run on the same app. Those that
//! talk to a cluster (`server`, `topics` except `lock` and `check`, `doctor --live`) start an
//! embedded broker for the command when none is configured outside production, and say so; it
//! stops when the command ends. `info`, `doctor`, `topics lock` and `topics check` need no broker.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::config::Environment;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record};
use ferrafka_broker::EmbeddedBroker;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

const TOPIC: &str = "visits";

/// Partitions of the demo topic, as declared (and created by the demo unless `--partitions`).
const PARTITIONS: i32 = 3;

/// Command line of the quickstart: the demo by default, or one of ferrafka's commands.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "ferrafka's quickstart: the demo by default, and ferrafka's CLI on the same app",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// A ferrafka command; without one, the demo runs.
    #[command(subcommand)]
    command: Option<Command>,
    /// The demo's options, when no command is given.
    #[command(flatten)]
    demo: Args,
}

/// The quickstart's commands: `demo` and every ferrafka command.
#[derive(Debug, Subcommand)]
enum Command {
    /// Produce and consume demo events (the default when no command is given).
    Demo(Args),
    #[command(flatten)]
    Ferrafka(ferrafka::cli::Command),
}

/// Options of the demo.
#[derive(Debug, clap::Args)]
struct Args {
    /// How many events to produce and consume before stopping.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = PARTITIONS)]
    partitions: i32,
}

/// A page visit, as produced and consumed.
#[derive(Debug, Serialize, Deserialize)]
struct Visit {
    id: u64,
    user: String,
    page: String,
}

/// Counts visits per user; one instance per assigned partition, kept across batches.
struct VisitsConsumer {
    per_user: HashMap<String, u64>,
    consumed: Arc<AtomicU64>,
    /// When the first batch of the run was consumed, by any partition.
    first_event: Arc<OnceLock<Instant>>,
    progress: ProgressBar,
}

impl Consumer for VisitsConsumer {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for message in messages {
            let visit: Visit = message.payload_json()?;
            *self.per_user.entry(visit.user).or_default() += 1;
        }
        let meta = messages.metadata();
        self.progress.set_message(format!(
            "partition {} offsets {}..={} lag {:?}",
            meta.partition, meta.first_offset, meta.last_offset, meta.consumption_lag
        ));
        self.first_event.get_or_init(Instant::now);
        self.progress.inc(messages.len() as u64);
        self.consumed
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(()) // the batch is marked as consumed
    }

    async fn shutdown(&mut self, ctx: &mut Context) -> ConsumeResult {
        let top = self.per_user.iter().max_by_key(|(_, n)| **n);
        if let Some((user, n)) = top {
            println!(
                "partition {}: busiest user {user} with {n} visits",
                ctx.partition()
            );
        }
        Ok(())
    }
}

/// The quickstart's app: one topic, declared with `partitions` and counted by
/// [`VisitsConsumer`]. Without `servers`, the setup sets no `bootstrap.servers` (the
/// `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` variable still applies).
fn visits_app(
    servers: Option<String>,
    partitions: i32,
    counter: Arc<AtomicU64>,
    first: Arc<OnceLock<Instant>>,
    bar: ProgressBar,
) -> App {
    App::builder()
        .setup(move |c| {
            c.client_id("quickstart");
            if let Some(servers) = servers {
                c.kafka("bootstrap.servers", servers);
            }
            c.concurrency(4)
                .max_messages(200)
                .max_wait_time(Duration::from_millis(200));
            c.shutdown_timeout(Duration::from_secs(10));
            // The per-user counts live in the consumer across batches; development turns
            // persistence off by default (a fresh instance per batch), so ask for it.
            c.consumer_persistence(true);
        })
        .routes(move |r| {
            r.topic(TOPIC)
                .consumer(move || VisitsConsumer {
                    per_user: HashMap::new(),
                    consumed: counter.clone(),
                    first_event: first.clone(),
                    progress: bar.clone(),
                })
                .config(|t| t.partitions(partitions));
        })
        .build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        None => cli.demo,
        Some(Command::Demo(args)) => args,
        Some(Command::Ferrafka(command)) => return ferrafka_command(command),
    };
    ferrafka::cli::init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::from(1)
        }
    }
}

/// Whether a ferrafka command talks to a cluster (and so gets an embedded broker when none is
/// configured).
fn needs_broker(command: &ferrafka::cli::Command) -> bool {
    use ferrafka::cli::Command as C;
    use ferrafka::cli::topics::TopicsAction as T;
    match command {
        C::Server(_) => true,
        C::Info => false,
        // `doctor --env X` for another environment re-runs this binary with FERRAFKA_ENV=X,
        // and that run decides (a production run never gets an embedded broker).
        C::Doctor(args) => {
            args.live
                && args
                    .env
                    .as_deref()
                    .is_none_or(|name| Environment::from_name(name) == environment())
        }
        C::Topics(args) => !matches!(args.action, T::Lock | T::Check),
        // `web` reads the reports, groups and topics of the cluster the servers use.
        C::Web(_) => true,
    }
}

/// Runs one of ferrafka's commands on the quickstart's app, with an embedded broker for the
/// command when it needs one and none is configured (outside production).
fn ferrafka_command(command: ferrafka::cli::Command) -> ExitCode {
    let mut servers = None;
    // Keep the embedded broker alive for the whole command; it stops when dropped.
    let mut _embedded = None;
    if needs_broker(&command) && configured_servers().is_none() && !environment().is_production() {
        let broker = match EmbeddedBroker::start() {
            Ok(b) => b,
            Err(e) => {
                eprintln!("quickstart: cannot start an embedded broker: {e}");
                return ExitCode::from(1);
            }
        };
        eprintln!(
            "quickstart: no FERRAFKA_KAFKA_BOOTSTRAP_SERVERS configured: started an embedded tansu \
             broker on {} for this command (it stops when the command ends)",
            broker.bootstrap_servers()
        );
        if matches!(command, ferrafka::cli::Command::Server(_)) {
            // A fresh broker has no topics: create the declared one for the server to consume.
            if let Err(e) = create_topic(&broker.bootstrap_servers(), PARTITIONS) {
                eprintln!("quickstart: cannot create {TOPIC}: {e}");
                return ExitCode::from(1);
            }
        }
        servers = Some(broker.bootstrap_servers());
        _embedded = Some(broker);
    }
    let app = visits_app(
        servers,
        PARTITIONS,
        Default::default(),
        Default::default(),
        ProgressBar::hidden(),
    );
    ferrafka::cli::run_with(app, ferrafka::cli::Cli { command })
}

/// Creates the demo topic with `partitions` unless it exists.
fn create_topic(bootstrap: &str, partitions: i32) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let admin = Admin::connect(bootstrap)?;
    runtime.block_on(admin.ensure_topic(&TopicSpec::new(TOPIC, partitions)))?;
    Ok(())
}

/// The environment the app is built for (`FERRAFKA_ENV`).
fn environment() -> Environment {
    Environment::from_name(&std::env::var(ferrafka::config::ENV_VAR).unwrap_or_default())
}

/// The brokers configured through the environment, if any.
fn configured_servers() -> Option<String> {
    std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS").ok()
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // Keep the embedded broker alive for the whole run; it stops when dropped.
    let (bootstrap, _embedded) = match configured_servers() {
        Some(servers) => (servers, None),
        None if environment().is_production() => {
            return Err("no brokers configured: set FERRAFKA_KAFKA_BOOTSTRAP_SERVERS".into());
        }
        None => {
            let broker = EmbeddedBroker::start()?;
            println!(
                "started an embedded tansu broker on {}",
                broker.bootstrap_servers()
            );
            (broker.bootstrap_servers(), Some(broker))
        }
    };

    let runtime = tokio::runtime::Runtime::new()?;
    let admin = Admin::connect(&bootstrap)?;
    runtime.block_on(admin.ensure_topic(&TopicSpec::new(TOPIC, args.partitions)))?;

    let consumed = Arc::new(AtomicU64::new(0));
    let progress = ProgressBar::new(args.messages);
    progress.set_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} {per_sec} {msg}",
    )?);

    let first_event = Arc::new(OnceLock::new());
    let app = visits_app(
        Some(bootstrap.clone()),
        args.partitions,
        consumed.clone(),
        first_event.clone(),
        progress.clone(),
    );
    let server = app.start(&Filters::default())?;

    let started = Instant::now();
    let producer = demo_producer(&bootstrap)?;
    let produced = runtime.spawn(produce_visits(producer, args.messages));
    let total = args.messages;
    while consumed.load(Ordering::Relaxed) < total {
        if produced.is_finished() && started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let consume_time = started.elapsed();
    let produce_time = runtime.block_on(produced)??;
    let exit = server.shutdown();
    progress.finish();
    let n = consumed.load(Ordering::Relaxed);
    print_timings(&Timings {
        total,
        consumed: n,
        produce: produce_time,
        first_event: first_event.get().map(|t| t.duration_since(started)),
        consume: consume_time,
    });
    println!("server exit: {exit:?}");
    if n < total {
        return Err(format!("only {n} of {total} events were consumed").into());
    }
    Ok(())
}

/// Produces `total` visits in chunks; returns how long it took until every one was acknowledged.
async fn produce_visits(producer: Producer, total: u64) -> ferrafka::Result<Duration> {
    const CHUNK: u64 = 5_000;
    let pages = ["/", "/cart", "/checkout", "/search", "/product/42"];
    let started = Instant::now();
    for chunk_start in (0..total).step_by(CHUNK as usize) {
        let visits: Vec<(String, String)> = (chunk_start..(chunk_start + CHUNK).min(total))
            .map(|id| {
                let visit = Visit {
                    id,
                    user: format!("user-{}", id % 17),
                    page: pages[id as usize % pages.len()].into(),
                };
                let json = serde_json::to_string(&visit).expect("serializable");
                (visit.user, json)
            })
            .collect();
        producer
            .produce_many(
                visits
                    .iter()
                    .map(|(user, json)| Record::to(TOPIC).key(user).payload(json)),
            )
            .await?;
    }
    Ok(started.elapsed())
}

/// Where the time of a run went; produce and consume overlap, both start with the run.
struct Timings {
    total: u64,
    consumed: u64,
    produce: Duration,
    /// From the start to the first consumed batch: joining the group and the first fetch.
    first_event: Option<Duration>,
    consume: Duration,
}

fn print_timings(t: &Timings) {
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "produced {} events in {:.2?} ({:.0} events/s, acknowledged, linger.ms=5, zstd)",
        t.total,
        t.produce,
        rate(t.total, t.produce)
    );
    if let Some(first) = t.first_event {
        println!("first event consumed after {first:.2?} (group join and first fetch)");
    }
    println!(
        "consumed {} of {} events in {:.2?} ({:.0} events/s), {:.2?} after the last one was produced",
        t.consumed,
        t.total,
        t.consume,
        rate(t.consumed, t.consume),
        t.consume.saturating_sub(t.produce)
    );
}

/// The producer for demo events: batched (5 ms linger) and zstd-compressed, on any broker.
fn demo_producer(bootstrap: &str) -> ferrafka::Result<Producer> {
    let kafka = std::collections::BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.to_string()),
        ("linger.ms".to_string(), "5".to_string()),
        ("compression.type".to_string(), "zstd".to_string()),
    ]);
    Producer::new(&kafka)
}

/// The quickstart's consumer tested both ways, without a broker: the whole app through
/// `ferrafka::testing::Tester`, and one `consume` call with `ferrafka::testing::context`.
#[cfg(test)]
mod tests {
    use super::*;
    use ferrafka::Message;
    use ferrafka::testing::{RunOutcome, Tester, context};

    fn visit(id: u64, user: &str) -> String {
        let page = "/".to_string();
        serde_json::to_string(&Visit {
            id,
            user: user.into(),
            page,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_app_counts_every_visit_and_marks_it() {
        let consumed = Arc::new(AtomicU64::new(0));
        let app = visits_app(
            Some("127.0.0.1:9092".into()),
            PARTITIONS,
            consumed.clone(),
            Default::default(),
            ProgressBar::hidden(),
        );
        let mut tester = Tester::new(&app);
        for id in 0..450 {
            tester.produce(TOPIC, visit(id, "ada"));
        }
        tester.consume().await;
        assert_eq!(consumed.load(Ordering::Relaxed), 450);
        assert_eq!(tester.marked(TOPIC, 0), Some(450));
        let sizes: Vec<usize> = tester.runs().iter().map(|r| r.offsets.len()).collect();
        assert_eq!(sizes, vec![200, 200, 50], "batches of max_messages");
    }

    #[tokio::test]
    async fn a_malformed_visit_fails_its_batch_and_is_retried() {
        let consumed = Arc::new(AtomicU64::new(0));
        let app = visits_app(
            Some("127.0.0.1:9092".into()),
            PARTITIONS,
            consumed,
            Default::default(),
            ProgressBar::hidden(),
        );
        let mut tester = Tester::new(&app);
        tester.max_attempts(3);
        tester.produce(TOPIC, "not a visit");
        tester.consume().await;
        let attempts: Vec<u32> = tester.runs().iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, vec![1, 2, 3]);
        assert!(
            tester
                .runs()
                .iter()
                .all(|r| matches!(r.outcome, RunOutcome::Failed(_)))
        );
        assert_eq!(
            tester.marked(TOPIC, 0),
            None,
            "a failing message is never marked"
        );
    }

    #[tokio::test]
    async fn one_call_counts_per_user() {
        let mut consumer = VisitsConsumer {
            per_user: HashMap::new(),
            consumed: Default::default(),
            first_event: Default::default(),
            progress: ProgressBar::hidden(),
        };
        let batch = Messages::from_messages(
            [(0, "ada"), (1, "bob"), (2, "ada")]
                .into_iter()
                .map(|(o, user)| {
                    Message::builder(TOPIC, 0, o)
                        .payload(visit(o as u64, user))
                        .build()
                })
                .collect(),
        );
        let mut ctx = context(TOPIC, 0);
        consumer.consume(&mut ctx, &batch).await.unwrap();
        assert_eq!(consumer.per_user["ada"], 2);
        assert_eq!(consumer.per_user["bob"], 1);
    }
}
