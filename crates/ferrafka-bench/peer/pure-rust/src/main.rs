//! The pure-Rust peer row of ferrafka-bench: Confluent's `confluent-kafka` crate (a Rust
//! translation of Kafka's Java client, no librdkafka), run by the bench (`src/peer.rs`) as
//!
//! ```text
//! ferrafka-pure-rust-peer BOOTSTRAP GROUP TOPIC MESSAGES TIMEOUT_S
//! ferrafka-pure-rust-peer --version      # prints the confluent-kafka version it was built with
//! ```
//!
//! A `KafkaConsumer::poll` loop like the Java peer's: it reads every value's length (values are
//! `bytes::Bytes` slices of the fetched batch, no copy per record) until MESSAGES or TIMEOUT_S.
//! The crate speaks only the KIP-848 group protocol (`group.protocol=consumer`). It has no
//! offset store: `enable.auto.commit` commits the positions `poll` returned every 5 s, like the
//! Java peer (the librdkafka clients auto-commit the offsets they stored, also every 5 s).
//!
//! The window runs from the first non-empty assignment (`ConsumerRebalanceListener::
//! on_partitions_assigned`, run inside `poll`) to the last message: wall time from `Instant`,
//! process CPU time of every thread (the client's `kafka-consumer-io` thread included) from
//! `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)`. It prints one line:
//!
//! ```text
//! result messages=N bytes=B startup_s=S wall_s=W cpu_s=C first_ms=F stalled=0|1
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use confluent_kafka::common::serialization::BytesDeserializer;
use confluent_kafka::common::{Error, TopicPartition};
use confluent_kafka::consumer::{
    Consumer, ConsumerConfig, ConsumerRebalanceListener, KafkaConsumer,
};

/// The `confluent-kafka` version in `Cargo.lock`, written by `build.rs`.
const CLIENT_VERSION: &str = env!("CONFLUENT_KAFKA_VERSION");

/// Wall and process CPU time at one moment.
#[derive(Clone, Copy, Debug)]
struct Stamp {
    wall: Instant,
    cpu: Duration,
}

impl Stamp {
    fn now() -> Stamp {
        Stamp {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }
}

/// CPU time of every thread of this process.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID) failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Keeps the moment of the first non-empty assignment.
#[derive(Default)]
struct FirstAssignment(Mutex<Option<Stamp>>);

#[async_trait]
impl ConsumerRebalanceListener for FirstAssignment {
    async fn on_partitions_revoked(&self, _partitions: &[TopicPartition]) -> Result<(), Error> {
        Ok(())
    }

    async fn on_partitions_assigned(&self, partitions: &[TopicPartition]) -> Result<(), Error> {
        let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !partitions.is_empty() && first.is_none() {
            *first = Some(Stamp::now());
        }
        Ok(())
    }
}

struct Args {
    bootstrap: String,
    group: String,
    topic: String,
    messages: u64,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, group, topic, messages, timeout] = args.as_slice() else {
        return Err(
            "usage: ferrafka-pure-rust-peer BOOTSTRAP GROUP TOPIC MESSAGES TIMEOUT_S".into(),
        );
    };
    Ok(Args {
        bootstrap: bootstrap.clone(),
        group: group.clone(),
        topic: topic.clone(),
        messages: messages.parse().map_err(|e| format!("MESSAGES: {e}"))?,
        timeout: timeout
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("TIMEOUT_S: seconds expected, got {timeout:?}"))?,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!("confluent-kafka {CLIENT_VERSION}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        // A stalled run is a result too (`stalled=1`), as for the Python peer.
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pure-rust peer: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Consumes and prints the result line.
async fn run(args: Args) -> Result<(), Error> {
    let started = Stamp::now();
    let props: HashMap<String, String> = [
        ("bootstrap.servers", args.bootstrap.as_str()),
        ("group.id", &args.group),
        ("group.protocol", "consumer"),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let mut consumer: KafkaConsumer<Bytes, Bytes> = KafkaConsumer::new(
        ConsumerConfig::new(&props)?,
        BytesDeserializer::new(),
        BytesDeserializer::new(),
    )?;
    let assigned = Arc::new(FirstAssignment::default());
    consumer
        .subscribe_with_topics_listener(vec![args.topic.clone()], assigned.clone())
        .await?;

    let deadline = started.wall + args.timeout;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut first: Option<Instant> = None;
    let mut stalled = false;
    while messages < args.messages {
        if Instant::now() >= deadline {
            stalled = true;
            break;
        }
        let records = consumer.poll(Duration::from_millis(100)).await?;
        for record in &records {
            first.get_or_insert_with(Instant::now);
            bytes += record.value().map_or(0, |v| v.len() as u64);
            messages += 1;
        }
    }
    let end = Stamp::now();
    // Closing (final commit, leaving the group) is not measured, as for the other clients.
    let start = assigned
        .0
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or(end);
    let first_ms = first.map_or(-1.0, |f| {
        f.saturating_duration_since(start.wall).as_secs_f64() * 1e3
    });
    println!(
        "result messages={messages} bytes={bytes} startup_s={:.6} wall_s={:.6} cpu_s={:.6} \
         first_ms={first_ms:.3} stalled={}",
        start.wall.duration_since(started.wall).as_secs_f64(),
        end.wall.duration_since(start.wall).as_secs_f64(),
        end.cpu.saturating_sub(start.cpu).as_secs_f64(),
        u8::from(stalled),
    );
    if let Err(e) = consumer.close().await {
        eprintln!("pure-rust peer: close: {e}");
    }
    Ok(())
}
