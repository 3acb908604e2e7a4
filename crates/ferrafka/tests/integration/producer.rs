//! The producer: delivery reports, explicit partitions, headers, failure reporting.

use std::collections::BTreeMap;
use std::time::Duration;

use ferrafka::{Error, Producer, Record};

use crate::support::*;

#[test]
fn awaited_produce_reports_partition_and_offset_and_honours_explicit_partitions() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("produce");
    cluster.create_topic(&rt, &topic, 3);
    let first = rt
        .block_on(
            cluster
                .producer
                .produce(Record::to(&topic).payload("a").partition(2)),
        )
        .unwrap();
    let second = rt
        .block_on(
            cluster.producer.produce(
                Record::to(&topic)
                    .payload("b")
                    .partition(2)
                    .header("h", "v"),
            ),
        )
        .unwrap();
    assert_eq!((first.partition, second.partition), (2, 2));
    assert_eq!(second.offset, first.offset + 1);
    let n = rt
        .block_on(
            cluster
                .producer
                .produce_many((0..100).map(|_| Record::to(&topic).payload("x").key("same-key"))),
        )
        .unwrap();
    assert_eq!(n, 100);
}

#[test]
fn failed_deliveries_are_reported_for_every_way_of_producing() {
    let rt = runtime();
    let cluster = Cluster::start();
    // tansu does not auto-create topics, so delivery to a missing topic fails after the timeout.
    let producer = Producer::new(&BTreeMap::from([
        ("bootstrap.servers".to_string(), cluster.bootstrap()),
        ("message.timeout.ms".to_string(), "1500".to_string()),
    ]))
    .unwrap();
    let missing = unique("missing");
    let err = rt
        .block_on(producer.produce(Record::to(&missing).payload("x")))
        .unwrap_err();
    assert!(
        matches!(err, Error::Produce { ref topic, .. } if *topic == missing),
        "{err}"
    );

    producer
        .produce_async(Record::to(&missing).payload("y"))
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || producer.failed_deliveries()
            >= 2),
        "fire-and-forget failure counted"
    );

    let err = rt
        .block_on(producer.produce_many((0..3).map(|_| Record::to(&missing).payload("z"))))
        .unwrap_err();
    match err {
        Error::ProduceMany { total, failures } => {
            assert_eq!(total, 3);
            assert_eq!(failures.len(), 3);
        }
        other => panic!("expected ProduceMany, got {other}"),
    }
}
