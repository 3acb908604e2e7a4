//! ferrafka's web UI on a small fleet: a shop whose orders and payments are consumed by any
//! number of server processes, each reporting through Kafka, and one `web` process showing them.
//!
//! ```text
//! cargo run -p example-web                       # the demo: everything in one process, UI on :3000
//! export FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092
//! cargo run -p example-web -- topics migrate     # the shop's topics and the reporting topics
//! cargo run -p example-web -- server             # run it in several terminals: a fleet
//! cargo run -p example-web -- web                # the UI on http://127.0.0.1:3000
//! cargo run -p example-web -- produce --messages 500 --topic payments --declined-every 50
//! cargo run -p example-web -- produce --messages 1 --topic payments --poison   # to the DLQ
//! EXAMPLE_WEB_FIXED=1 cargo run -p example-web -- server   # the billing consumer, fixed
//! ```
//!
//! The demo (no command, or `demo`) uses the configured brokers or, outside production, starts an
//! embedded tansu broker; it creates the topics, runs one server, produces a trickle of orders
//! and payments and serves the UI until Ctrl-C. Every other command is ferrafka's own CLI
//! ([`ferrafka::cli`]) on the same app, plus `produce`; they need `bootstrap.servers` configured
//! (`FERRAFKA_KAFKA_BOOTSTRAP_SERVERS`), since separate processes must share one cluster.
//!
//! `EXAMPLE_WEB_PREFIX` prefixes every topic and group name (the browser tests use a fresh one per
//! run); `EXAMPLE_WEB_REPLICATION` is the declared replication factor (default 1). Payments that
//! fail 3 times go to `payments_dlq`, where the UI can republish them: a poison payment fails
//! until the server starts with `EXAMPLE_WEB_FIXED=1`, and `EXAMPLE_WEB_BOOKED=<file>` appends a
//! JSON line per booked payment (with its offset and republish id) to count what was consumed.

mod shop;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Parser, Subcommand};
use ferrafka::config::Environment;
use ferrafka::{Filters, Producer, Record};
use ferrafka_broker::EmbeddedBroker;

use shop::{Names, Stream};

/// Command line of the example: the demo by default, `produce`, or one of ferrafka's commands.
#[derive(Debug, Parser)]
#[command(version, about = "ferrafka's web UI on a small fleet")]
struct Cli {
    /// A command; without one, the demo runs.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// One server, a trickle of orders and payments, and the UI, in one process (the default).
    Demo(DemoArgs),
    /// Produce orders or payments; prints one JSON line per message (topic, partition, offset,
    /// key, payload).
    Produce(ProduceArgs),
    #[command(flatten)]
    Ferrafka(ferrafka::cli::Command),
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Where the UI listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    bind: Option<SocketAddr>,
    /// Orders and payments produced per second.
    #[arg(long, default_value_t = DEMO_RATE)]
    rate: u32,
}

/// Orders and payments a second the demo produces by default.
const DEMO_RATE: u32 = 20;

impl Default for DemoArgs {
    fn default() -> Self {
        DemoArgs {
            bind: None,
            rate: DEMO_RATE,
        }
    }
}

#[derive(Debug, clap::Args)]
struct ProduceArgs {
    /// Which stream.
    #[arg(long, value_enum, default_value_t = Stream::Orders)]
    topic: Stream,
    /// How many messages.
    #[arg(long, default_value_t = 100)]
    messages: u64,
    /// The first message's id (ids are consecutive).
    #[arg(long, default_value_t = 0)]
    first_id: u64,
    /// Payments only: every Nth one is declined, which fails its first attempt (0: none).
    #[arg(long, default_value_t = 0)]
    declined_every: u64,
    /// Payments only: poison payments, which fail every attempt until the consumer is fixed
    /// (`EXAMPLE_WEB_FIXED=1`) and so land in the dead-letter topic.
    #[arg(long)]
    poison: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let names = Names::from_env();
    let result = match cli.command {
        None => demo(&names, &DemoArgs::default()),
        Some(Command::Demo(args)) => demo(&names, &args),
        Some(Command::Produce(args)) => produce_command(&names, &args),
        Some(Command::Ferrafka(command)) => return ferrafka_command(&names, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-web: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs one of ferrafka's commands on the shop's app; those that talk to a cluster need
/// `bootstrap.servers` configured.
fn ferrafka_command(names: &Names, command: ferrafka::cli::Command) -> ExitCode {
    use ferrafka::cli::Command as C;
    use ferrafka::cli::topics::TopicsAction as T;
    let needs_cluster = match &command {
        C::Info => false,
        C::Doctor(args) => args.live,
        C::Topics(args) => !matches!(args.action, T::Lock | T::Check),
        _ => true,
    };
    if needs_cluster && configured_servers().is_none() {
        eprintln!("example-web: {}", NO_BROKERS);
        return ExitCode::from(1);
    }
    let app = shop::app(names, None);
    ferrafka::cli::run_with(app, ferrafka::cli::Cli { command })
}

const NO_BROKERS: &str = "no brokers configured: set FERRAFKA_KAFKA_BOOTSTRAP_SERVERS (every process \
     of the fleet and `web` must share one cluster), or run the demo (no command), which starts an \
     embedded broker";

/// The brokers configured through the environment, if any.
fn configured_servers() -> Option<String> {
    std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS").ok()
}

fn produce_command(names: &Names, args: &ProduceArgs) -> Result<(), Box<dyn std::error::Error>> {
    let bootstrap = configured_servers().ok_or(NO_BROKERS)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let producer = Producer::new(&[("bootstrap.servers".into(), bootstrap)].into())?;
    if args.poison && args.topic != Stream::Payments {
        return Err("--poison: only payments can be poison; add --topic payments".into());
    }
    let topic = names.topic(args.topic);
    let messages: Vec<(String, String)> = (args.first_id..args.first_id + args.messages)
        .map(|id| match args.poison {
            true => shop::poison_payment(id),
            false => shop::message(args.topic, id, args.declined_every),
        })
        .collect();
    // Every message in flight at once (librdkafka batches them); deliveries come back in order.
    let deliveries =
        runtime.block_on(futures::future::try_join_all(messages.iter().map(
            |(key, payload)| producer.produce(Record::to(&topic).key(key).payload(payload)),
        )))?;
    for ((key, payload), delivery) in messages.iter().zip(deliveries) {
        let line = serde_json::json!({
            "topic": topic,
            "partition": delivery.partition,
            "offset": delivery.offset,
            "key": key,
            "payload": payload,
        });
        println!("{line}");
    }
    Ok(())
}

/// The demo: topics, one server, a producer and the UI, until Ctrl-C.
fn demo(names: &Names, args: &DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    ferrafka::cli::init_logging();
    let production =
        Environment::from_name(&std::env::var(ferrafka::config::ENV_VAR).unwrap_or_default())
            .is_production();
    // Keep the embedded broker alive for the whole run; it stops when dropped.
    let (bootstrap, _embedded) = match configured_servers() {
        Some(servers) => (servers, None),
        None if production => return Err(NO_BROKERS.into()),
        None => {
            let broker = EmbeddedBroker::start()?;
            eprintln!(
                "example-web: started an embedded tansu broker on {}",
                broker.bootstrap_servers()
            );
            (broker.bootstrap_servers(), Some(broker))
        }
    };
    let app = shop::app(names, Some(bootstrap.clone()));
    let migrate = ferrafka::cli::Cli::try_parse_from(["example-web", "topics", "migrate"])?;
    let ferrafka::cli::Command::Topics(migrate) = migrate.command else {
        unreachable!("parsed a topics command");
    };
    ferrafka::cli::topics::execute(&app, &migrate, &mut std::io::stderr())?;
    let server = app.start(&Filters::default())?;

    let stop = Arc::new(AtomicBool::new(false));
    let producing = {
        let (names, stop, rate) = (names.clone(), stop.clone(), args.rate.max(1));
        let bootstrap = bootstrap.clone();
        std::thread::spawn(move || trickle(&names, &bootstrap, rate, &stop))
    };

    let bind = args.bind.unwrap_or_else(|| ([127, 0, 0, 1], 3000).into());
    eprintln!("example-web: the UI is on http://{bind}/ (Ctrl-C stops the demo)");
    let web =
        ferrafka::cli::Cli::try_parse_from(["example-web", "web", "--bind", &bind.to_string()])?;
    let code = ferrafka::cli::run_with(shop::app(names, Some(bootstrap)), web);
    stop.store(true, Ordering::Relaxed);
    let produced = producing
        .join()
        .map_err(|_| "the producer thread panicked")?
        .map_err(|e| e.to_string())?;
    let exit = server.shutdown();
    eprintln!("example-web: produced {produced} messages; server exit: {exit:?}; web: {code:?}");
    Ok(())
}

/// Produces `rate` orders and `rate` payments a second until `stop`; returns how many.
fn trickle(
    names: &Names,
    bootstrap: &str,
    rate: u32,
    stop: &AtomicBool,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let runtime = tokio::runtime::Runtime::new()?;
    let producer = Producer::new(&[("bootstrap.servers".into(), bootstrap.to_string())].into())?;
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        for stream in [Stream::Orders, Stream::Payments] {
            let (key, payload) = shop::message(stream, id, 50);
            let topic = names.topic(stream);
            runtime.block_on(producer.produce(Record::to(&topic).key(&key).payload(&payload)))?;
        }
        id += 1;
        std::thread::sleep(Duration::from_secs(1) / rate);
    }
    Ok(id * 2)
}
