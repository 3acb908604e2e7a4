//! A ferrafka app consuming a topic that another client wrote in compressed multi-record batches
//! is stopped with SIGTERM and restarted several times mid-stream: every message must be
//! processed at least once and no offset skipped — each process continues each partition from at
//! most one past the furthest offset processed before, and never jumps ahead within a run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka_broker::EmbeddedBroker;
use ferrafka_faults::{ConsumerSpec, FaultEvent, Processed, Records, wait_until};
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

const PARTITIONS: i32 = 3;
/// Messages in the topic; number n goes to partition n % 3.
const MESSAGES: u64 = 30_000;
/// Codecs of the five producers that write the topic one after another, a fifth each.
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
/// SIGTERM-and-restart rounds before the last run consumes the rest.
const RESTARTS: usize = 4;

#[test]
fn sigterm_restarts_on_another_clients_batched_topic_skip_no_offset() {
    let broker = EmbeddedBroker::start().expect("broker");
    let topic = format!("batched-restarts-{}", std::process::id());
    create_topic(&broker, &topic);
    produce_with_other_client(&broker, &topic);

    let dir = std::env::temp_dir().join(&topic);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let spec = ConsumerSpec {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_fault-consumer")),
        bootstrap: broker.bootstrap_servers(),
        topic: topic.clone(),
        group: format!("{topic}-group"),
        out: dir.join("records"),
        env: vec![
            ("FERRAFKA_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("FERRAFKA_KAFKA_HEARTBEAT_INTERVAL_MS".into(), "500".into()),
            // Batches of ferrafka end inside the producer's batches, so commits and the
            // restarts' first fetches land inside them.
            ("FAULT_MAX_MESSAGES".into(), "70".into()),
            ("FAULT_BATCH_SLEEP_MS".into(), "20".into()),
        ],
    };

    let step = MESSAGES as usize / (RESTARTS + 2);
    for round in 0..RESTARTS {
        let before = processed(&spec);
        let mut process = spec.spawn(&dir.join(format!("run-{round}.log")));
        // Stop it only once it has made progress of its own: mid-stream, handlers installed.
        assert!(
            wait_until(Duration::from_secs(60), || {
                let assigned = process.count_events(|e| matches!(e, FaultEvent::Assigned(_)));
                assigned > 0 && processed(&spec) >= before + step
            }),
            "run {round} processed {step} messages"
        );
        process.signal("TERM");
        let status = process.wait(Duration::from_secs(30)).expect("exits");
        assert_eq!(status.code(), Some(0), "run {round} exits cleanly");
    }
    let mut last = spec.spawn(&dir.join("last.log"));
    let all_seen = wait_until(Duration::from_secs(120), || {
        Records::read(&spec.out).lost(MESSAGES).is_empty()
    });
    last.signal("TERM");
    last.wait(Duration::from_secs(30)).expect("last run exits");

    let records = Records::read(&spec.out);
    assert!(
        all_seen,
        "never processed: {} messages",
        records.lost(MESSAGES).len()
    );
    assert_contiguous_per_partition(&records.processed);
    println!(
        "batched restarts: messages={MESSAGES} runs={} lost=0 duplicates={}",
        RESTARTS + 1,
        records.duplicates()
    );
}

fn processed(spec: &ConsumerSpec) -> usize {
    Records::read(&spec.out).processed.len()
}

fn create_topic(broker: &EmbeddedBroker, topic: &str) {
    let admin = Admin::connect(&broker.bootstrap_servers()).expect("admin");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(admin.create_topic(&TopicSpec::new(topic, PARTITIONS)))
        .expect("topic created");
}

/// Writes the topic with plain rdkafka producers (not ferrafka's), batching and compressing.
fn produce_with_other_client(broker: &EmbeddedBroker, topic: &str) {
    let per_codec = MESSAGES / CODECS.len() as u64;
    for (i, codec) in CODECS.iter().enumerate() {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap_servers())
            .set("linger.ms", "10")
            .set("compression.type", *codec)
            .create()
            .expect("producer");
        let first = i as u64 * per_codec;
        for number in first..first + per_codec {
            let payload = number.to_string();
            let partition = (number % PARTITIONS as u64) as i32;
            let mut record = BaseRecord::<(), str>::to(topic)
                .partition(partition)
                .payload(&payload);
            while let Err((e, returned)) = producer.send(record) {
                assert_eq!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::QueueFull),
                    "send: {e}"
                );
                record = returned;
                producer.poll(Duration::from_millis(10));
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
}

/// Per partition: within each process the offsets never jump ahead, each process starts at
/// most one past the furthest offset processed before it, every offset is processed, and
/// offset k of partition p holds number p + 3k (the producer wrote them in order).
fn assert_contiguous_per_partition(processed: &[Processed]) {
    let mut furthest: BTreeMap<i32, i64> = BTreeMap::new();
    let mut previous: BTreeMap<(u32, i32), i64> = BTreeMap::new();
    let mut seen: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for p in processed {
        let reached = furthest.get(&p.partition).copied().unwrap_or(-1);
        let allowed = previous
            .get(&(p.pid, p.partition))
            .map_or(reached, |prev| (*prev).max(reached))
            + 1;
        assert!(
            p.offset <= allowed,
            "partition {} skipped from {} to {} (pid {})",
            p.partition,
            allowed - 1,
            p.offset,
            p.pid
        );
        assert_eq!(
            p.number,
            p.partition as u64 + PARTITIONS as u64 * p.offset as u64,
            "payload of partition {} offset {}",
            p.partition,
            p.offset
        );
        previous.insert((p.pid, p.partition), p.offset);
        furthest.insert(p.partition, reached.max(p.offset));
        seen.entry(p.partition).or_default().insert(p.offset);
    }
    let per_partition = (MESSAGES / PARTITIONS as u64) as i64;
    for partition in 0..PARTITIONS {
        let offsets = seen.remove(&partition).unwrap_or_default();
        assert_eq!(
            offsets,
            (0..per_partition).collect::<BTreeSet<_>>(),
            "partition {partition} processed every offset once at least"
        );
    }
}
