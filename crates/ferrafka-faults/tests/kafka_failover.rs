//! Broker failover on Apache Kafka (needs a real cluster: replication and leader election).
//!
//! Three brokers of the test's own (`scripts/kafka`, so killing one disturbs no other test), a
//! topic with replication factor 3 and `min.insync.replicas=2`, an idempotent `acks=all`
//! producer and a ferrafka server consuming it. Mid-stream the leader of partition 0 is killed
//! (SIGKILL) and started again later. Producer and consumer must carry on: every message
//! acknowledged, none written twice, every one processed; the window without acknowledgements
//! is measured.
//!
//! `cargo test -p ferrafka-faults --test kafka_failover -- --nocapture` prints the figures.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::rdkafka::Message as _;
use ferrafka::{Producer, Record, ServerExit};
use ferrafka_faults::{Collector, Seen, unique, wait_until};
use ferrafka_testing::{KafkaCluster, read_topic};

const N: u64 = 4000;
/// Messages produced together; the next chunk goes once every one is acknowledged.
const CHUNK: u64 = 20;
const PARTITIONS: i32 = 3;

fn consumer(bootstrap: String, topic: String, seen: Seen) -> ferrafka::App {
    ferrafka::App::builder()
        .setup(move |c| {
            c.client_id("failover")
                .group_id(unique("failover-group"))
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(50).max_wait_time(Duration::from_millis(20));
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Collector(seen.clone()));
        })
        .build_with_env([])
}

#[test]
fn killing_a_partition_leader_loses_nothing_and_duplicates_nothing_it_produced() {
    let cluster = KafkaCluster::start(3).unwrap_or_else(|e| panic!("{e}"));
    let bootstrap = cluster.bootstrap.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = Admin::connect(&bootstrap).unwrap();
    let topic = unique("failover");
    let mut spec = TopicSpec::new(&topic, PARTITIONS);
    spec.replication_factor = 3;
    spec.settings
        .insert("min.insync.replicas".into(), "2".into());
    rt.block_on(admin.create_topic(&spec)).unwrap();
    let producer = Producer::new(&BTreeMap::from([
        ("bootstrap.servers".to_string(), bootstrap.clone()),
        ("acks".to_string(), "all".to_string()),
        ("enable.idempotence".to_string(), "true".to_string()),
        ("message.timeout.ms".to_string(), "120000".to_string()),
    ]))
    .unwrap();
    let seen = Seen::default();
    let server = consumer(bootstrap.clone(), topic.clone(), seen.clone())
        .start(&ferrafka::Filters::default())
        .unwrap();

    let leader = wait_leader(&admin, &topic);
    let mut acks = Vec::with_capacity((N / CHUNK) as usize);
    let mut killed_at = None;
    let mut restarted_at = None;
    std::thread::scope(|scope| {
        let mut restart = None;
        for chunk in (0..N).step_by(CHUNK as usize) {
            if chunk == N / 4 {
                cluster.kill_broker(leader as u32);
                killed_at = Some(Instant::now());
            }
            if chunk == N / 2 {
                // Back while production goes on; it rejoins as a follower and catches up.
                restart = Some(scope.spawn(|| {
                    cluster.start_broker(leader as u32);
                    Instant::now()
                }));
            }
            let payloads: Vec<String> = (chunk..chunk + CHUNK).map(|n| n.to_string()).collect();
            let records = payloads.iter().zip(chunk..).map(|(payload, n)| {
                Record::to(&topic)
                    .partition((n % PARTITIONS as u64) as i32)
                    .payload(payload)
            });
            let delivered = rt.block_on(producer.produce_many(records));
            assert!(
                delivered.is_ok(),
                "messages {chunk}.. not acknowledged: {delivered:?}"
            );
            acks.push(Instant::now());
        }
        restarted_at = restart.map(|r| r.join().expect("restart"));
    });
    let restarted_at = restarted_at.expect("restarted");
    let killed_at = killed_at.expect("killed");
    // The longest time without an acknowledgement, around the kill.
    let (gap, gap_at) = acks
        .windows(2)
        .map(|w| (w[1] - w[0], w[0]))
        .max()
        .expect("acks");

    let all = wait_until(Duration::from_secs(90), || {
        let seen = seen.lock().unwrap();
        let distinct: std::collections::HashSet<_> = seen.iter().map(|s| s.0).collect();
        distinct.len() as u64 == N
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);

    // What the topic holds: each number exactly once (idempotence kept retries from writing
    // twice across the leader change).
    // Records in the topic, from the watermarks: a duplicate would be one more.
    let records: i64 = (0..PARTITIONS)
        .map(|p| {
            let (low, high) = admin.watermarks(&topic, p).unwrap();
            high - low
        })
        .sum();
    let written = read_topic(
        &bootstrap,
        &topic,
        PARTITIONS,
        records as usize,
        Duration::from_secs(60),
    );
    assert_eq!(written.len() as i64, records, "every record read back");
    let mut copies: HashMap<u64, usize> = HashMap::new();
    for m in &written {
        let n: u64 = std::str::from_utf8(m.payload().unwrap_or_default())
            .unwrap()
            .parse()
            .unwrap();
        *copies.entry(n).or_default() += 1;
    }
    let written_twice = copies.values().filter(|c| **c > 1).count();
    let seen = seen.lock().unwrap();
    let mut processed: HashMap<u64, usize> = HashMap::new();
    for (n, _, _) in seen.iter() {
        *processed.entry(*n).or_default() += 1;
    }
    let processed_twice: usize = processed.values().map(|c| c - 1).sum();
    println!(
        "failover (Kafka, 3 brokers, RF 3, min.insync.replicas 2): produced {N}, acknowledged {N}, \
         written twice {written_twice}, processed {} distinct ({} twice); broker {leader} killed \
         {:.1} s into the run and back (in every broker's metadata) {:.1} s after the kill; longest time without an \
         acknowledgement {:.2} s (from {:.1} s after the kill)",
        processed.len(),
        processed_twice,
        (killed_at - acks[0]).as_secs_f64(),
        (restarted_at - killed_at).as_secs_f64(),
        gap.as_secs_f64(),
        gap_at.saturating_duration_since(killed_at).as_secs_f64(),
    );
    assert!(all, "processed {} of {N}", processed.len());
    assert_eq!(copies.len() as u64, N, "every number is in the topic");
    assert_eq!(
        records, N as i64,
        "{records} records written for {N} messages"
    );
    assert_eq!(written_twice, 0, "no number written twice");
}

/// The leader of partition 0 once the topic has one.
fn wait_leader(admin: &Admin, topic: &str) -> i32 {
    let mut leader = -1;
    let found = wait_until(Duration::from_secs(30), || {
        leader = admin
            .topic_info(topic)
            .ok()
            .flatten()
            .and_then(|t| t.partitions.iter().find(|p| p.id == 0).map(|p| p.leader))
            .unwrap_or(-1);
        leader >= 0
    });
    assert!(found, "partition 0 has a leader");
    leader
}
