//! Exactly once under SIGKILL, on Apache Kafka (the suite's cluster from `FERRAFKA_TEST_KAFKA`,
//! or a one-node cluster the test starts; the embedded broker refuses transactions): a transactional
//! `fault-consumer` forwards numbered inputs to an output topic, is killed mid-stream and
//! restarted several times, and a `read_committed` reader of the output finds every number
//! exactly once, while the group's committed offsets reach the end of every input partition.
//! The record file shows the work that was done more than once (aborted by the kills), so the
//! test also proves the kills met open transactions.
//!
//! `FERRAFKA_TEST_KAFKA=host:9092 cargo test -p ferrafka-faults --test transactions --
//! --nocapture` prints the figures.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::rdkafka::Message as _;
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::rdkafka::{Offset, TopicPartitionList};
use ferrafka::{Producer, Record};
use ferrafka_faults::*;

const PARTITIONS: i32 = 3;

/// Every payload of `topic`, read committed from the start until 4 s pass quietly.
fn read_committed(bootstrap: &str, topic: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("tx-kill-reader"))
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let (mut out, mut last) = (Vec::new(), Instant::now());
    while last.elapsed() < Duration::from_secs(4) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            last = Instant::now();
        }
    }
    out
}

#[test]
fn sigkill_and_restart_several_times_yields_every_input_exactly_once() {
    let broker = ferrafka_testing::kafka();
    let bootstrap = broker.bootstrap_servers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = Admin::connect(&bootstrap).unwrap();
    let (input, output) = (unique("tx-kill-in"), unique("tx-kill-out"));
    for topic in [&input, &output] {
        rt.block_on(admin.create_topic(&TopicSpec::new(topic.as_str(), PARTITIONS)))
            .unwrap();
    }
    const N: u64 = 3000;
    let producer =
        Producer::new(&[("bootstrap.servers".to_string(), bootstrap.clone())].into()).unwrap();
    let payloads: Vec<(i32, String)> = (0..N)
        .map(|n| ((n % PARTITIONS as u64) as i32, n.to_string()))
        .collect();
    let records = payloads
        .iter()
        .map(|(p, v)| Record::to(&input).partition(*p).payload(v));
    rt.block_on(producer.produce_many(records)).unwrap();

    let dir = std::env::temp_dir().join(unique("tx-kill"));
    std::fs::create_dir_all(&dir).unwrap();
    let group = unique("tx-kill-group");
    let spec = ConsumerSpec {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_fault-consumer")),
        bootstrap: bootstrap.clone(),
        topic: input.clone(),
        group: group.clone(),
        out: dir.join("records"),
        env: vec![
            ("FERRAFKA_KAFKA_SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("FERRAFKA_KAFKA_HEARTBEAT_INTERVAL_MS".into(), "500".into()),
        ],
    }
    .with("FAULT_TX_OUT", output.clone())
    // The same id for every run: each restart fences its killed predecessor.
    .with("FAULT_TRANSACTIONAL_ID", unique("tx-kill-id"))
    .with("FAULT_MAX_MESSAGES", "20")
    // Each transaction stays open 40 ms: a kill almost always meets open ones.
    .with("FAULT_BATCH_SLEEP_MS", "40");

    const KILLS: usize = 4;
    let mut at_kills = Vec::new();
    for run in 0..KILLS {
        let mut process = spec.spawn(&dir.join(format!("run{run}.log")));
        let before = Records::read(&spec.out).processed.len();
        let progressed = wait_until(Duration::from_secs(90), || {
            Records::read(&spec.out).processed.len() >= before + 300
        });
        assert!(
            progressed,
            "run {run} made progress (see {:?})",
            process.log
        );
        process.signal("KILL");
        process.wait(Duration::from_secs(10)).expect("killed");
        at_kills.push(Records::read(&spec.out).processed.len());
    }
    let mut last = spec.spawn(&dir.join("last.log"));
    let finished = wait_until(Duration::from_secs(120), || {
        admin
            .lags(&group, &[input.as_str()])
            .is_ok_and(|lags| lags.iter().all(|l| l.lag == Some(0)))
    });
    let lags = admin.lags(&group, &[input.as_str()]).unwrap();
    assert!(
        finished,
        "committed offsets reach the end of the input: {lags:?}"
    );
    last.signal("TERM");
    assert_eq!(
        last.wait(Duration::from_secs(30)).and_then(|s| s.code()),
        Some(0)
    );

    let seen = read_committed(&bootstrap, &output);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for payload in &seen {
        *counts.entry(payload.as_str()).or_insert(0) += 1;
    }
    let missing: Vec<u64> = (0..N)
        .filter(|n| !counts.contains_key(n.to_string().as_str()))
        .collect();
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    // Batches started but never recorded as finished: the transactions the kills cut off.
    let records = Records::read(&spec.out);
    let (started, finished) = (records.started.len(), records.processed.len());
    println!(
        "transactions under SIGKILL: inputs={N} kills={KILLS} processed_at_kills={at_kills:?} \
         output_read_committed={} missing={} duplicated={} batches_started={started} \
         messages_recorded={finished}",
        seen.len(),
        missing.len(),
        twice.len()
    );
    assert!(missing.is_empty(), "missing from the output: {missing:?}");
    let some: Vec<_> = twice.iter().take(10).collect();
    assert!(
        twice.is_empty(),
        "{} numbers in the output more than once, e.g. {some:?}",
        twice.len()
    );
    assert_eq!(seen.len() as u64, N);
}
