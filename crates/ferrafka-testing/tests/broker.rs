//! The broker fixture: topics are created, produced to and read back.

use std::time::Duration;

use ferrafka::rdkafka::Message as _;
use ferrafka::{Producer, Record};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_topic_reads_back_what_was_produced() {
    let broker = ferrafka_testing::broker();
    broker.create_topic("fixture", 2).await;
    let kafka = [("bootstrap.servers".to_string(), broker.bootstrap_servers())].into();
    let producer = Producer::new(&kafka).unwrap();
    let payloads: Vec<String> = (0..10).map(|n| n.to_string()).collect();
    let records = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| Record::to("fixture").partition(i as i32 % 2).payload(p));
    producer.produce_many(records).await.unwrap();
    let read = tokio::task::spawn_blocking(move || {
        broker.read_topic("fixture", 2, 10, Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert_eq!(read.len(), 10);
    let per_partition: Vec<(i32, i64)> = read.iter().map(|m| (m.partition(), m.offset())).collect();
    let expected: Vec<(i32, i64)> = (0..2).flat_map(|p| (0..5).map(move |o| (p, o))).collect();
    assert_eq!(
        per_partition, expected,
        "every message, contiguous offsets per partition"
    );
}
