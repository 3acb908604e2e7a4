//! Records gone from under a group, on Apache Kafka: records deleted past the group's
//! committed offset (DeleteRecords) while it is stopped, and a log truncated by an unclean
//! leader election while it runs, which re-uses offsets for new messages. ferrafka follows
//! `auto.offset.reset` or the truncation and says in a warning which offsets it skipped or
//! processed again. `cargo test -p ferrafka-faults --test truncation -- --nocapture` prints
//! the warnings.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrafka::{Producer, Record};
use ferrafka_faults::{ConsumerProcess, ConsumerSpec, Records, unique, wait_until};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A `fault-consumer` of `topic` recording into `dir/records`, logging uncoloured.
fn spec(bootstrap: &str, topic: &str, dir: &Path) -> ConsumerSpec {
    ConsumerSpec {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_fault-consumer")),
        bootstrap: bootstrap.to_string(),
        topic: topic.to_string(),
        group: unique("truncation-group"),
        out: dir.join("records"),
        env: Vec::new(),
    }
    .with("NO_COLOR", "1")
    .with("FAULT_MAX_MESSAGES", "10")
}

/// Produces `numbers` to partition 0 of `topic`, each number its payload.
fn produce(
    rt: &tokio::runtime::Runtime,
    producer: &Producer,
    topic: &str,
    numbers: std::ops::Range<u64>,
) {
    let payloads: Vec<String> = numbers.map(|n| n.to_string()).collect();
    let records = payloads
        .iter()
        .map(|p| Record::to(topic).partition(0).payload(p));
    rt.block_on(producer.produce_many(records))
        .expect("produced");
}

/// Waits until every number of `numbers` was processed.
fn processed(out: &Path, numbers: std::ops::Range<u64>) -> bool {
    wait_until(Duration::from_secs(60), || {
        let counts = Records::read(out).counts();
        numbers.clone().all(|n| counts.contains_key(&n))
    })
}

fn stop(mut process: ConsumerProcess) -> ConsumerProcess {
    process.signal("TERM");
    let status = process.wait(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "clean exit");
    process
}

/// WARN lines of `process`'s log containing every one of `needles`.
fn warnings(process: &ConsumerProcess, needles: &[&str]) -> Vec<String> {
    let log = std::fs::read_to_string(&process.log).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains(" WARN ") && needles.iter().all(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

#[test]
fn records_deleted_past_the_committed_offset_are_named_in_a_warning() {
    let kafka = ferrafka_testing::kafka();
    let rt = runtime();
    let topic = unique("deleted-records");
    rt.block_on(kafka.create_topic(&topic, 1));
    let bootstrap = kafka.bootstrap_servers();
    let producer = Producer::new(&BTreeMap::from([(
        "bootstrap.servers".to_string(),
        bootstrap.clone(),
    )]))
    .expect("producer");
    let dir = std::env::temp_dir().join(unique("deleted-records"));
    std::fs::create_dir_all(&dir).expect("record dir");
    let spec = spec(&bootstrap, &topic, &dir);

    // The group processes offsets 0..100 and commits 100 when it stops.
    produce(&rt, &producer, &topic, 0..100);
    let first = spec.spawn(&dir.join("first.log"));
    assert!(
        processed(&spec.out, 0..100),
        "the first run processed 0..100"
    );
    stop(first);

    // While it is stopped, 200 more arrive and everything before offset 250 is deleted.
    produce(&rt, &producer, &topic, 100..300);
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let mut before = TopicPartitionList::new();
    before
        .add_partition_offset(&topic, 0, Offset::Offset(250))
        .expect("partition");
    let result = rt
        .block_on(admin.delete_records(&before, &AdminOptions::new()))
        .expect("records deleted");
    let low = result.find_partition(&topic, 0).map(|e| e.offset());
    assert_eq!(low, Some(Offset::Offset(250)), "new log start");

    // The next run resumes at the log start and names what it skipped.
    let second = stop({
        let second = spec.spawn(&dir.join("second.log"));
        assert!(
            processed(&spec.out, 250..300),
            "the second run processed 250..300"
        );
        second
    });
    let records = Records::read(&spec.out);
    let numbers: BTreeSet<u64> = records.processed.iter().map(|p| p.number).collect();
    let expected: BTreeSet<u64> = (0..100).chain(250..300).collect();
    assert_eq!(numbers, expected, "processed exactly what still existed");
    assert_eq!(records.duplicates(), 0, "nothing processed twice");
    let named = warnings(&second, &["first_skipped=100", "last_skipped=249"]);
    for line in &named {
        println!("{line}");
    }
    assert_eq!(
        named.len(),
        1,
        "one warning names offsets 100..=249 as skipped"
    );
}

/// Waits until partition 0 of `topic` has `leader` and exactly the in-sync replicas `isr`.
fn wait_partition(admin: &ferrafka::admin::Admin, topic: &str, leader: i32, isr: &[i32]) {
    let mut seen = None;
    let reached = wait_until(Duration::from_secs(60), || {
        let info = admin.topic_info(topic).ok().flatten();
        seen = info.and_then(|t| t.partitions.into_iter().find(|p| p.id == 0));
        seen.as_ref().is_some_and(|p| {
            let mut got = p.isr.clone();
            got.sort_unstable();
            p.leader == leader && got == isr
        })
    });
    assert!(
        reached,
        "partition 0: want leader {leader} and ISR {isr:?}, last seen {seen:?}"
    );
}

#[test]
fn a_log_truncated_by_an_unclean_election_is_followed_and_named_in_a_warning() {
    // Node 0 alone is the controller, so nodes 1 and 2 (the topic's replicas) can both be down
    // at once without losing the quorum; brokers are fenced 3 s after their last heartbeat.
    let cluster = ferrafka_testing::KafkaCluster::start_with(
        3,
        &[
            "--controllers",
            "1",
            "--broker-config",
            "broker.session.timeout.ms=3000",
            "--broker-config",
            "broker.heartbeat.interval.ms=500",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = cluster.bootstrap.clone();
    let rt = runtime();
    let topic = unique("unclean");
    let client: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let new_topic = rdkafka::admin::NewTopic::new(
        &topic,
        1,
        rdkafka::admin::TopicReplication::Variable(&[&[1, 2]]),
    )
    .set("unclean.leader.election.enable", "true")
    .set("min.insync.replicas", "1");
    let created = rt.block_on(client.create_topics([&new_topic], &AdminOptions::new()));
    assert!(
        created.is_ok_and(|r| r.iter().all(Result::is_ok)),
        "topic created"
    );
    let admin = ferrafka::admin::Admin::connect(&bootstrap).expect("admin");
    wait_partition(&admin, &topic, 1, &[1, 2]);
    let producer = Producer::new(&BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.clone()),
        ("message.timeout.ms".to_string(), "120000".to_string()),
    ]))
    .expect("producer");
    let dir = std::env::temp_dir().join(unique("unclean"));
    std::fs::create_dir_all(&dir).expect("record dir");
    let spec = spec(&bootstrap, &topic, &dir);
    let consumer = spec.spawn(&dir.join("consumer.log"));

    // Offsets 0..100 on both replicas, processed.
    produce(&rt, &producer, &topic, 0..100);
    assert!(processed(&spec.out, 0..100), "processed 0..100");
    // The follower goes down; offsets 100..150 exist on the leader only, and are processed.
    cluster.kill_broker(2);
    wait_partition(&admin, &topic, 1, &[1]);
    produce(&rt, &producer, &topic, 100..150);
    assert!(processed(&spec.out, 100..150), "processed 100..150");
    // The leader goes down and the stale follower comes back: an unclean election makes it the
    // leader of a log that ends at 100, and new messages re-use offsets 100..130.
    cluster.kill_broker(1);
    cluster.start_broker(2);
    wait_partition(&admin, &topic, 2, &[2]);
    produce(&rt, &producer, &topic, 1000..1030);
    assert!(
        processed(&spec.out, 1000..1030),
        "the messages at re-used offsets were processed"
    );
    let consumer = stop(consumer);

    let records = Records::read(&spec.out);
    let counts = records.counts();
    for n in (0..150).chain(1000..1030) {
        assert_eq!(counts.get(&n), Some(&1), "number {n} processed once");
    }
    let offsets: Vec<i64> = records
        .processed
        .iter()
        .filter(|p| p.number >= 1000)
        .map(|p| p.offset)
        .collect();
    assert_eq!(
        offsets,
        (100..130).collect::<Vec<_>>(),
        "new messages at re-used offsets"
    );
    let named = warnings(&consumer, &["first_refetched=100", "last_refetched=149"]);
    for line in &named {
        println!("{line}");
    }
    assert!(
        !named.is_empty(),
        "a warning names offsets 100..=149 as fetched again"
    );
}
