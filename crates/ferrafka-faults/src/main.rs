//! A consumer process for the fault suite: it records every message it processes in a file, so a
//! test can kill it, restart it and count what was lost or processed twice.
//!
//! Configured by environment: `FAULT_TOPIC`, `FAULT_GROUP`, `FAULT_OUT` (the record file),
//! `FAULT_EVENTS` (the events file; none when unset), `FAULT_TX_OUT` (a transactional route:
//! each batch forwards its payloads to that topic, same partition, in one transaction that
//! marks the batch; needs `FAULT_TRANSACTIONAL_ID`, the `transactional_id` setting),
//! `FAULT_BATCH_SLEEP_MS`, `FAULT_MAX_MESSAGES`, `FAULT_SHUTDOWN_TIMEOUT_MS`,
//! `FAULT_COMMIT_INTERVAL_MS` (the `commit_interval` setting; its default when unset),
//! `FAULT_PARTITION_BUFFER_BYTES`, `FAULT_STALL_PARTITION` (its first batch never ends),
//! `FAULT_FAIL_FIRST_ATTEMPT` (the first attempt of every batch starting at an even offset fails,
//! so its partition pauses for the retry backoff, `FAULT_PAUSE_TIMEOUT_MS`), `FAULT_CTX_PAUSE_MS`
//! (every batch ends with `ctx.pause` for that long), and any librdkafka
//! property through `FERRAFKA_KAFKA_*` — the group settings the suite varies are
//! `FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY`, `FERRAFKA_KAFKA_GROUP_INSTANCE_ID`,
//! `FERRAFKA_KAFKA_SESSION_TIMEOUT_MS`, `FERRAFKA_KAFKA_HEARTBEAT_INTERVAL_MS` and
//! `FERRAFKA_KAFKA_AUTO_COMMIT_INTERVAL_MS`. Run it as `fault-consumer server`.
//!
//! Each batch appends `S <partition> <first offset>` when it starts and, when it finishes,
//! `<unix ms> <partition> <offset> <number> <pid>` per message — written and flushed before `consume`
//! returns, so the record of processing always precedes the mark.
//!
//! With `FAULT_EVENTS`, an instrumentation subscriber appends one line per rebalance, state
//! change and fetch pause or resume of the server to that file, `<unix ms> <what>`, e.g.
//! `1795805103915 assigned orders:0,orders:3`, `… revoked -` (an empty revocation),
//! `… state stopping`, `… paused orders:1 retry`, `… resumed orders:1` (the format and its
//! parser: `ferrafka_faults::EventLine`). Each line is one unbuffered write, made on the thread
//! where the event happens, as it happens. The fault suite counts rebalances and pauses from
//! this file, never from the log (`ConsumerSpec::spawn` puts it beside the process's log).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrafka::instrumentation::Event;
use ferrafka::{App, ConsumeResult, Consumer, Context, Messages, Record};
use ferrafka_faults::{EventLine, now_ms};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn millis(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        env_or(name, &default.to_string())
            .parse()
            .expect("a number of milliseconds"),
    )
}

/// Appends what it processes to the shared record file.
struct RecordingConsumer {
    out: Arc<Mutex<File>>,
    batch_sleep: Duration,
    /// A partition whose first batch never ends.
    stall_partition: Option<i32>,
    /// Fail the first attempt of batches that start at an even offset.
    fail_first_attempt: bool,
    /// Pause the partition this long after every batch.
    ctx_pause: Option<Duration>,
    /// The output topic of the transactional mode.
    tx_out: Option<String>,
}

impl RecordingConsumer {
    /// Forwards the batch's payloads to `out` and marks it, in one transaction that stays
    /// open for the batch sleep (so kills meet open transactions).
    async fn forward(&self, ctx: &mut Context, messages: &Messages, out: &str) -> ConsumeResult {
        let sleep = self.batch_sleep;
        ctx.transaction(async |tx| {
            let records = messages.iter().map(|m| {
                Record::to(out)
                    .partition(m.partition())
                    .payload(m.payload_or_empty())
            });
            tx.produce_many(records).await?;
            for m in messages {
                tx.mark_as_consumed(m);
            }
            tokio::time::sleep(sleep).await;
            Ok(())
        })
        .await
    }
}

impl Consumer for RecordingConsumer {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let meta = messages.metadata();
        if Some(meta.partition) == self.stall_partition {
            // Stalls for good: the memory case measures what the partition's backlog holds.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        if self.fail_first_attempt && ctx.attempt() == 1 && meta.first_offset % 2 == 0 {
            return Err("the first attempt of this batch fails (FAULT_FAIL_FIRST_ATTEMPT)".into());
        }
        if let Some(pause) = self.ctx_pause {
            ctx.pause(pause);
        }
        let started = format!("S {} {}\n", meta.partition, meta.first_offset);
        self.out
            .lock()
            .expect("not poisoned")
            .write_all(started.as_bytes())?;
        match &self.tx_out {
            Some(out) => self.forward(ctx, messages, out).await?,
            None => tokio::time::sleep(self.batch_sleep).await,
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let mut lines = String::new();
        for m in messages {
            // The number, then (in the memory case) padding after a space.
            let payload = std::str::from_utf8(m.payload_or_empty())?;
            let number = payload.split(' ').next().unwrap_or_default();
            lines.push_str(&format!(
                "{now} {} {} {number} {}\n",
                m.partition(),
                m.offset(),
                std::process::id()
            ));
        }
        let mut out = self.out.lock().expect("not poisoned");
        out.write_all(lines.as_bytes())?;
        out.flush()?;
        Ok(())
    }
}

fn main() -> ExitCode {
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(env_or("FAULT_OUT", "fault-consumer.out"))
        .expect("record file opens");
    let out = Arc::new(Mutex::new(out));
    let batch_sleep = millis("FAULT_BATCH_SLEEP_MS", 0);
    let stall_partition = std::env::var("FAULT_STALL_PARTITION")
        .ok()
        .map(|p| p.parse().expect("a partition"));
    let fail_first_attempt = std::env::var_os("FAULT_FAIL_FIRST_ATTEMPT").is_some();
    let ctx_pause = std::env::var_os("FAULT_CTX_PAUSE_MS").map(|_| millis("FAULT_CTX_PAUSE_MS", 0));
    let tx_out = std::env::var("FAULT_TX_OUT").ok();
    let mut app = App::builder()
        .setup(|c| {
            c.client_id("fault-consumer")
                .group_id(env_or("FAULT_GROUP", "faults"));
            c.max_messages(
                env_or("FAULT_MAX_MESSAGES", "20")
                    .parse()
                    .expect("a number"),
            );
            c.max_wait_time(Duration::from_millis(50));
            c.shutdown_timeout(millis("FAULT_SHUTDOWN_TIMEOUT_MS", 10_000));
            if let Ok(bytes) = std::env::var("FAULT_PARTITION_BUFFER_BYTES") {
                c.partition_buffer_bytes(bytes.parse().expect("a number of bytes"));
            }
            if std::env::var_os("FAULT_PAUSE_TIMEOUT_MS").is_some() {
                let backoff = millis("FAULT_PAUSE_TIMEOUT_MS", 0);
                c.pause_timeout(backoff).pause_max_timeout(backoff);
            }
            if let Ok(id) = std::env::var("FAULT_TRANSACTIONAL_ID") {
                c.transactional_id(id);
            }
            if let Ok(ms) = std::env::var("FAULT_COMMIT_INTERVAL_MS") {
                c.commit_interval(Duration::from_millis(ms.parse().expect("a number")));
            }
        })
        .routes(|r| {
            r.topic(env_or("FAULT_TOPIC", "faults"))
                .transactional(tx_out.is_some())
                .consumer(move || RecordingConsumer {
                    out: out.clone(),
                    batch_sleep,
                    stall_partition,
                    fail_first_attempt,
                    ctx_pause,
                    tx_out: tx_out.clone(),
                });
        });
    if let Some(path) = std::env::var_os("FAULT_EVENTS") {
        let events = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .expect("events file opens");
        let events = Mutex::new(events);
        app = app.subscribe(move |event: &Event<'_>| {
            if let Some(line) = EventLine::format(now_ms(), event) {
                let mut file = events.lock().unwrap_or_else(PoisonError::into_inner);
                // Unbuffered, one write per line: a kill cuts at most the last line short.
                if let Err(e) = file.write_all(line.as_bytes()) {
                    eprintln!("fault-consumer: cannot write the events file: {e}");
                }
            }
        });
    }
    ferrafka::cli::run(app.build())
}
