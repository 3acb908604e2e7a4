//! ferrafka's quickstart: a shop that produces page-visit events and counts them per user.
//!
//! ```text
//! cargo run -p quickstart                    # embedded broker, 1000 events
//! cargo run -p quickstart -- --messages 50000
//! FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 cargo run -p quickstart
//! ```
//!
//! With no `bootstrap.servers` configured (the `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` variable) and
//! outside production, it starts an embedded tansu broker for the run. It creates its topic,
//! produces a stream of JSON events, consumes them in batches, prints progress and stops after
//! `--messages` events.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::config::Environment;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record};
use ferrafka_broker::EmbeddedBroker;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

const TOPIC: &str = "visits";

/// Command line of the quickstart.
#[derive(Debug, Parser)]
struct Args {
    /// How many events to produce and consume before stopping.
    #[arg(long, default_value_t = 1000)]
    messages: u64,
    /// Partitions of the demo topic.
    #[arg(long, default_value_t = 3)]
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

fn main() -> ExitCode {
    let args = Args::parse();
    ferrafka::cli::init_logging();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let env = Environment::from_name(&std::env::var(ferrafka::config::ENV_VAR).unwrap_or_default());
    let configured = std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS").ok();
    // Keep the embedded broker alive for the whole run; it stops when dropped.
    let (bootstrap, embedded) = match configured {
        Some(servers) => (servers, None),
        None if env.is_production() => {
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

    let (counter, bar, servers) = (consumed.clone(), progress.clone(), bootstrap.clone());
    let app = App::builder()
        .setup(move |c| {
            c.client_id("quickstart")
                .kafka("bootstrap.servers", servers);
            c.concurrency(4)
                .max_messages(200)
                .max_wait_time(Duration::from_millis(200));
            c.shutdown_timeout(Duration::from_secs(10));
            // The per-user counts live in the consumer across batches; development turns
            // persistence off by default (a fresh instance per batch), so ask for it.
            c.consumer_persistence(true);
        })
        .routes(move |r| {
            r.topic(TOPIC).consumer(move || VisitsConsumer {
                per_user: HashMap::new(),
                consumed: counter.clone(),
                progress: bar.clone(),
            });
        })
        .build();
    let server = app.start(&Filters::default())?;

    let producer = demo_producer(&bootstrap, embedded.is_some())?;
    let total = args.messages;
    let produced = runtime.spawn(async move {
        let pages = ["/", "/cart", "/checkout", "/search", "/product/42"];
        for chunk_start in (0..total).step_by(500) {
            let visits: Vec<(String, String)> = (chunk_start..(chunk_start + 500).min(total))
                .map(|id| {
                    let visit = Visit {
                        id,
                        user: format!("user-{}", id % 17),
                        page: pages[id as usize % pages.len()].into(),
                    };
                    (
                        visit.user.clone(),
                        serde_json::to_string(&visit).expect("serializable"),
                    )
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
        Ok::<_, ferrafka::Error>(())
    });

    let started = Instant::now();
    while consumed.load(Ordering::Relaxed) < total {
        if produced.is_finished() && started.elapsed() > Duration::from_secs(120) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    runtime.block_on(produced)??;
    let exit = server.shutdown();
    progress.finish();
    let n = consumed.load(Ordering::Relaxed);
    println!(
        "consumed {n} of {total} events in {:.2?} ({:.0} events/s); server exit: {exit:?}",
        started.elapsed(),
        n as f64 / started.elapsed().as_secs_f64()
    );
    if n < total {
        return Err(format!("only {n} of {total} events were consumed").into());
    }
    Ok(())
}

/// The producer for demo events; one message per record batch on the embedded broker (see
/// `ferrafka_broker` for why).
fn demo_producer(bootstrap: &str, embedded: bool) -> ferrafka::Result<Producer> {
    let mut kafka = if embedded {
        EmbeddedBroker::producer_properties()
    } else {
        Default::default()
    };
    kafka.insert("bootstrap.servers".into(), bootstrap.into());
    Producer::new(&kafka)
}
