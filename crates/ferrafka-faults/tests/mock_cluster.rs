//! Case 3: broker faults on librdkafka's mock cluster — a broker down and up, errors injected on
//! fetch, commit and produce — while an in-process ferrafka server consumes. The consumer is
//! never restarted and never rebalanced, so nothing may be lost and nothing processed twice, and
//! the server must stop cleanly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferrafka::{Producer, Record, ServerExit};
use ferrafka_faults::{Collector, Seen, unique, wait_until};
use rdkafka::mocking::MockCluster;
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr::*;

const N: u64 = 2000;

fn produce(rt: &tokio::runtime::Runtime, producer: &Producer, topic: &str, numbers: &[String]) {
    let records = numbers.iter().map(|v| Record::to(topic).key(v).payload(v));
    rt.block_on(producer.produce_many(records)).unwrap();
}

fn start_server(bootstrap: String, topic: String, seen: Seen) -> ferrafka::RunningServer {
    let app = ferrafka::App::builder()
        .setup(move |c| {
            c.client_id("mock")
                .group_id(unique("mock-group"))
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(50).max_wait_time(Duration::from_millis(50));
            c.kafka("auto.commit.interval.ms", "200");
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Collector(seen.clone()));
        })
        .build_with_env([]);
    app.start(&ferrafka::Filters::default()).unwrap()
}

/// Numbers never processed, and extra processings of one (partition, offset).
fn lost_and_duplicates(seen: &[(u64, i32, i64)]) -> (Vec<u64>, Vec<(i32, i64, usize)>) {
    let mut per_offset: HashMap<(i32, i64), usize> = HashMap::new();
    for (_, p, o) in seen {
        *per_offset.entry((*p, *o)).or_insert(0) += 1;
    }
    let numbers: std::collections::HashSet<u64> = seen.iter().map(|s| s.0).collect();
    let lost = (0..N).filter(|n| !numbers.contains(n)).collect();
    let mut duplicates: Vec<_> = per_offset
        .into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|((p, o), c)| (p, o, c))
        .collect();
    duplicates.sort_unstable();
    (lost, duplicates)
}

#[test]
fn broker_faults_on_the_mock_cluster_lose_nothing() {
    let mock = MockCluster::new(3).expect("mock cluster");
    let topic = unique("mock");
    mock.create_topic(&topic, 3, 3).expect("mock topic");
    let bootstrap = mock.bootstrap_servers();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let kafka = BTreeMap::from([("bootstrap.servers".to_string(), bootstrap.clone())]);
    let producer = Producer::new(&kafka).unwrap();
    let numbers: Vec<String> = (0..N).map(|n| n.to_string()).collect();

    // The first half goes through retriable produce errors.
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ],
    );
    produce(&rt, &producer, &topic, &numbers[..1000]);
    let seen: Seen = Arc::default();
    let server = start_server(bootstrap, topic.clone(), seen.clone());
    assert!(
        wait_until(Duration::from_secs(60), || seen.lock().unwrap().len()
            >= 300),
        "consuming"
    );

    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_UNKNOWN,
        ],
    );
    mock.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
        ],
    );
    mock.broker_down(1).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    mock.broker_up(1).unwrap();
    mock.request_errors(
        RDKafkaApiKey::Produce,
        &[RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS],
    );
    produce(&rt, &producer, &topic, &numbers[1000..]);

    let settled = wait_until(Duration::from_secs(90), || {
        lost_and_duplicates(&seen.lock().unwrap()).0.is_empty()
    });
    let exit = server.shutdown();
    let seen = seen.lock().unwrap();
    let (lost, duplicates) = lost_and_duplicates(&seen);
    println!(
        "fault case 3 (mock cluster: broker down/up, fetch/commit/produce errors): messages={N} processed={} lost={} duplicates={} exit={exit:?}",
        seen.len(),
        lost.len(),
        duplicates.len()
    );
    assert!(settled, "not every message was processed in 90 s");
    assert!(lost.is_empty(), "lost {lost:?}");
    // One member that is never restarted or rebalanced re-reads nothing: no (partition, offset)
    // may run twice.
    assert!(duplicates.is_empty(), "processed twice: {duplicates:?}");
    assert_eq!(exit, ServerExit::Clean);
}
