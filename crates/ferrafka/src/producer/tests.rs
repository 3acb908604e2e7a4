//! Producer paths that need no broker: a full local queue.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;

/// A producer whose local queue holds `capacity` messages, pointed at a port where nothing
/// listens (nothing is ever delivered; each message fails after `message.timeout.ms`), that
/// waits `wait` for room in a full queue.
fn unreachable_producer(capacity: usize, wait: Duration) -> Producer {
    let kafka = BTreeMap::from([
        ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
        (
            "queue.buffering.max.messages".to_string(),
            capacity.to_string(),
        ),
        ("message.timeout.ms".to_string(), "1000".to_string()),
    ]);
    Producer {
        inner: Arc::new(Inner {
            kafka,
            capture: None,
            client: OnceLock::new(),
            queue_full_timeout: wait,
            monitor: Default::default(),
        }),
    }
}

/// `produce_many` stops at the first message the full queue does not take, and returns once
/// the messages it did queue got their (failed) reports: it expects exactly those reports,
/// so it neither hangs nor returns early.
#[tokio::test]
async fn produce_many_stops_at_a_full_queue_and_waits_only_for_what_it_queued() {
    let producer = unreachable_producer(3, Duration::from_millis(50));
    let records = (0..10).map(|_| Record::to("t").payload("x"));
    let result = tokio::time::timeout(Duration::from_secs(20), producer.produce_many(records))
        .await
        .expect("returns once the 3 queued messages failed");
    match result {
        Err(Error::Produce { topic, source }) => {
            assert_eq!(topic, "t");
            assert!(
                matches!(
                    *source,
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
                ),
                "{source}"
            );
        }
        other => panic!("expected a full-queue error, got {other:?}"),
    }
    assert_eq!(producer.failed_deliveries(), 3, "the queued ones failed");
}

/// Fire-and-forget messages carry no tracker; their failures are still counted.
#[tokio::test]
async fn fire_and_forget_failures_are_counted() {
    let producer = unreachable_producer(10, Duration::ZERO);
    for _ in 0..2 {
        producer
            .produce_async(Record::to("t").payload("x"))
            .unwrap();
    }
    let _ = producer.flush(Duration::from_secs(10));
    assert_eq!(producer.failed_deliveries(), 2);
}
