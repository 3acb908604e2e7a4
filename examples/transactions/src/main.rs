//! Exactly-once consume-transform-produce with a transactional route:
//!
//! ```sh
//! FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=host:9092 cargo run -p example-transactions   # Apache Kafka
//! cargo run -p example-transactions   # embedded broker: shows the boot refusal
//! ```
//!
//! It produces 100 orders over 3 partitions. The consumer enriches each one into
//! `orders-enriched` and marks it in the same Kafka transaction. The first attempt of every
//! batch holding an order divisible by 10 fails after producing: its transaction aborts, the
//! batch is retried, and a `read_committed` reader of the output still sees every order exactly
//! once (a `read_uncommitted` one sees the aborted copies too). The embedded broker has no
//! transactions: there the server refuses to start and says why.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferrafka::admin::TopicSpec;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record};
use rdkafka::Message as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

const ORDERS: u32 = 100;
const PARTITIONS: i32 = 3;

/// Enriches orders in one transaction per batch.
struct Enrich {
    out: String,
}

impl Consumer for Enrich {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let fail = ctx.attempt() == 1
            && messages
                .iter()
                .any(|m| m.payload_or_empty().ends_with(b"0"));
        let out = &self.out;
        ctx.transaction(async |tx| {
            for m in messages {
                let enriched = [b"enriched order ", m.payload_or_empty()].concat();
                let record = Record::to(out).partition(m.partition()).payload(&enriched);
                tx.produce(record).await?;
                tx.mark_as_consumed(m);
            }
            if fail {
                // Everything produced above is aborted; the batch is retried.
                return Err("a first attempt fails after producing (for the example)".into());
            }
            Ok(())
        })
        .await
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("transactions: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (bootstrap, embedded) = match std::env::var("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS") {
        Ok(servers) => (servers, None),
        Err(_) => {
            let broker = ferrafka_broker::EmbeddedBroker::start()?;
            (broker.bootstrap_servers(), Some(broker))
        }
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let admin = ferrafka::admin::Admin::connect(&bootstrap)?;
    let run_id = std::process::id();
    let (orders, enriched) = (
        format!("orders-{run_id}"),
        format!("orders-enriched-{run_id}"),
    );
    for topic in [&orders, &enriched] {
        runtime.block_on(admin.ensure_topic(&TopicSpec::new(topic.as_str(), PARTITIONS)))?;
    }
    let producer = Producer::new(&[("bootstrap.servers".into(), bootstrap.clone())].into())?;
    let payloads: Vec<String> = (0..ORDERS).map(|n| n.to_string()).collect();
    let records = payloads.iter().enumerate().map(|(n, p)| {
        Record::to(&orders)
            .partition(n as i32 % PARTITIONS)
            .payload(p)
    });
    runtime.block_on(producer.produce_many(records))?;

    let app = {
        let (bootstrap, orders, out) = (bootstrap.clone(), orders.clone(), enriched.clone());
        App::builder()
            .setup(move |c| {
                c.client_id("transactions-example")
                    .kafka("bootstrap.servers", bootstrap)
                    .max_messages(10)
                    .max_wait_time(Duration::from_millis(100))
                    .pause_timeout(Duration::from_millis(100))
                    // One per process, stable across its restarts.
                    .transactional_id(format!("transactions-example-{run_id}"));
            })
            .routes(move |r| {
                r.topic(orders)
                    .transactional(true)
                    .consumer(move || Enrich { out: out.clone() });
            })
            .build()
    };
    let server = match app.start(&Filters::default()) {
        Ok(server) => server,
        Err(e) if embedded.is_some() => {
            println!("refused on the embedded broker, as it should be:\n{e}");
            println!("run it on Apache Kafka: FERRAFKA_KAFKA_BOOTSTRAP_SERVERS=host:9092");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed = Vec::new();
    while committed.len() < ORDERS as usize && Instant::now() < deadline {
        committed = read(&bootstrap, &enriched, "read_committed");
    }
    server.shutdown();
    let uncommitted = read(&bootstrap, &enriched, "read_uncommitted");
    let mut numbers: Vec<u32> = committed
        .iter()
        .filter_map(|p| p.rsplit(' ').next()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    println!(
        "read_committed: {} enriched orders; read_uncommitted: {} (aborted copies included)",
        committed.len(),
        uncommitted.len()
    );
    if numbers != (0..ORDERS).collect::<Vec<_>>() {
        return Err(format!("expected every order once, got {numbers:?}").into());
    }
    println!("every order exactly once");
    Ok(())
}

/// The payloads of `topic` from the start, read with `isolation` until 2 s pass quietly.
fn read(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set(
            "group.id",
            format!("transactions-example-reader-{}", std::process::id()),
        )
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        let _ = tpl.add_partition_offset(topic, p, Offset::Beginning);
    }
    let _ = consumer.assign(&tpl);
    let (mut out, mut last) = (Vec::new(), Instant::now());
    while last.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            last = Instant::now();
        }
    }
    out
}
