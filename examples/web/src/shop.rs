//! The shop: two routed topics in two consumer groups, with reporting on.

use std::fs::File;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::routing::dlq_headers::REPUBLISH_ID;
use ferrafka::{App, ConsumeResult, Consumer, Context, DeadLetterQueue, Messages};

/// Prefixes every topic and group name (unique names per test run).
pub const PREFIX_VAR: &str = "EXAMPLE_WEB_PREFIX";
/// The declared replication factor (default 1, what a one-node or embedded broker allows).
pub const REPLICATION_VAR: &str = "EXAMPLE_WEB_REPLICATION";
/// Partitions of each of the shop's topics.
pub const PARTITIONS: i32 = 3;
/// `1`: the billing consumer is "fixed" and books poison payments too (read at start, like
/// a deploy of a fix).
pub const FIXED_VAR: &str = "EXAMPLE_WEB_FIXED";
/// A file each booked payment is appended to, one JSON line (payment, topic, partition,
/// offset, republish id), so a test can count how often a message was consumed.
pub const BOOKED_VAR: &str = "EXAMPLE_WEB_BOOKED";
/// Retries of a failing payment before it is dead-lettered.
pub const PAYMENT_RETRIES: u32 = 2;

/// The shop's two streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Stream {
    /// Orders, consumed by the `shop` group.
    Orders,
    /// Payments, consumed by the `billing` group.
    Payments,
}

/// Topic and group names, under the run's prefix.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
    replication: i32,
}

impl Names {
    /// The names `EXAMPLE_WEB_PREFIX` and `EXAMPLE_WEB_REPLICATION` give.
    pub fn from_env() -> Names {
        let replication = std::env::var(REPLICATION_VAR)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        Names {
            prefix: std::env::var(PREFIX_VAR).unwrap_or_default(),
            replication,
        }
    }

    fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// The dead-letter topic of payments.
    pub fn payments_dead_letters(&self) -> String {
        self.name("payments_dlq")
    }

    /// The topic of `stream`.
    pub fn topic(&self, stream: Stream) -> String {
        match stream {
            Stream::Orders => self.name("orders"),
            Stream::Payments => self.name("payments"),
        }
    }
}

/// The shop's app: `orders` in the default group (`<prefix>shop`), `payments` in
/// `<prefix>billing`, every process reporting each second. Without `servers`, the setup sets no
/// `bootstrap.servers` (the `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` variable applies).
pub fn app(names: &Names, servers: Option<String>) -> App {
    let setup_names = names.clone();
    let replication = names.replication;
    let dead_letters = names.payments_dead_letters();
    let billing = Billing::from_env();
    App::builder()
        .setup(move |c| {
            c.client_id("shop").group_id(setup_names.name("shop"));
            if let Some(servers) = servers {
                c.kafka("bootstrap.servers", servers);
            }
            c.max_messages(50).max_wait_time(Duration::from_millis(200));
            // Short retry pauses: a declined payment is retried within a second.
            c.pause_timeout(Duration::from_millis(500))
                .pause_max_timeout(Duration::from_secs(2));
            // Every process reports each second; `web` flags one stale after 3 × 1 s + 5 s.
            c.reporting(true)
                .report_interval(Duration::from_secs(1))
                .reports_topic(setup_names.name("ferrafka_reports"))
                .errors_topic(setup_names.name("ferrafka_errors"))
                .commands_topic(setup_names.name("ferrafka_commands"))
                .audit_topic(setup_names.name("ferrafka_audit"));
        })
        .declarations({
            let dead_letters = dead_letters.clone();
            move |d| {
                d.defaults(move |t| t.replication_factor(replication));
                d.topic(dead_letters.clone(), |t| t.partitions(1));
            }
        })
        .routes({
            let names = names.clone();
            move |r| {
                r.topic(names.topic(Stream::Orders))
                    .consumer(|| Orders)
                    .config(|t| t.partitions(PARTITIONS));
                r.consumer_group(names.name("billing"), |g| {
                    g.topic(names.topic(Stream::Payments))
                        .consumer(move || Payments(billing.clone()))
                        .dead_letter_queue(
                            DeadLetterQueue::to(dead_letters.clone()).max_retries(PAYMENT_RETRIES),
                        )
                        .config(|t| t.partitions(PARTITIONS));
                });
            }
        })
        .build()
}

/// The key and JSON payload of a poison payment: the billing consumer fails on it at every
/// attempt until it is fixed (`EXAMPLE_WEB_FIXED=1`), so it lands in the dead-letter topic.
pub fn poison_payment(id: u64) -> (String, String) {
    let payload = serde_json::json!({"payment": id, "customer": "customer-poison", "poison": true});
    (format!("customer-{}", id % 7), payload.to_string())
}

/// The key and JSON payload of message `id` of `stream`; with `declined_every` N > 0, every Nth
/// payment is declined.
pub fn message(stream: Stream, id: u64, declined_every: u64) -> (String, String) {
    let customer = format!("customer-{}", id % 7);
    let payload = match stream {
        Stream::Orders => serde_json::json!({
            "order": id,
            "customer": customer,
            "total_cents": 1_000 + (id * 37) % 9_000,
        }),
        Stream::Payments => serde_json::json!({
            "payment": id,
            "customer": customer,
            "declined": declined_every > 0 && id % declined_every == declined_every - 1,
        }),
    };
    (customer, payload.to_string())
}

/// Checks each order; a little work per batch, so the UI has running batches to show.
struct Orders;

impl Consumer for Orders {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for message in messages {
            let order: serde_json::Value = message.payload_json()?;
            if order["order"].as_u64().is_none() {
                return Err(
                    format!("an order without an id at offset {}", message.offset()).into(),
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }
}

/// What the billing consumer knows at start: whether it is fixed, and where it records what
/// it booked.
#[derive(Clone)]
struct Billing {
    fixed: bool,
    booked: Option<Arc<Mutex<File>>>,
}

impl Billing {
    fn from_env() -> Billing {
        let booked = std::env::var(BOOKED_VAR).ok().map(|path| {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{BOOKED_VAR}={path}: cannot open it to append: {e}"));
            Arc::new(Mutex::new(file))
        });
        Billing {
            fixed: std::env::var(FIXED_VAR).is_ok_and(|v| v == "1"),
            booked,
        }
    }
}

/// Books payments; a declined one fails its batch's first attempt (the retry books it), so the
/// UI has errors to show; a poison one fails every attempt until the consumer is fixed, so it is
/// dead-lettered. Each booked payment is marked at once (a retry starts after it) and recorded.
struct Payments(Billing);

impl Consumer for Payments {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for message in messages {
            let payment: serde_json::Value = message.payload_json()?;
            if payment["declined"] == true && ctx.attempt() == 1 {
                return Err(format!(
                    "payment {} declined by the bank (retried)",
                    payment["payment"]
                )
                .into());
            }
            if payment["poison"] == true && !self.0.fixed {
                return Err(format!(
                    "payment {} cannot be booked: its customer is unknown (a bug; deploy the fix: {FIXED_VAR}=1)",
                    payment["payment"]
                )
                .into());
            }
            self.book(&payment, message)?;
            ctx.mark_as_consumed(message);
        }
        Ok(())
    }
}

impl Payments {
    fn book(
        &self,
        payment: &serde_json::Value,
        message: &ferrafka::Message,
    ) -> std::io::Result<()> {
        let republish_id = message.header(REPUBLISH_ID).map(String::from_utf8_lossy);
        let line = serde_json::json!({
            "payment": payment["payment"],
            "topic": message.topic(),
            "partition": message.partition(),
            "offset": message.offset(),
            "republish_id": republish_id,
        });
        if payment["poison"] == true {
            eprintln!("example-web: booked poison payment {line}");
        }
        if let Some(file) = &self.0.booked {
            // One write per line, appended: lines of several processes never interleave.
            let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
            file.write_all(format!("{line}\n").as_bytes())?;
        }
        Ok(())
    }
}
