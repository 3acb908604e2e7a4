//! Events of a real server on the broker: the lifecycle in order, each partition assigned and
//! revoked, and every produced message reported consumed and its offset stored, per partition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::instrumentation::{AppState, Event};
use ferrafka::{App, Filters, ServerExit};

use crate::support::*;

/// What a subscriber saw, owned.
#[derive(Debug, Default)]
struct Seen {
    states: Vec<AppState>,
    assigned: Vec<(String, i32)>,
    revoked: Vec<(String, i32)>,
    consumed: BTreeMap<i32, usize>,
    stored: BTreeMap<i32, i64>,
    failures: usize,
}

fn record(seen: &Mutex<Seen>, event: &Event<'_>) {
    let mut seen = seen.lock().unwrap();
    match event {
        Event::AppState(state) => seen.states.push(*state),
        Event::PartitionsAssigned { partitions, .. } => seen.assigned.extend_from_slice(partitions),
        Event::PartitionsRevoked { partitions, .. } => seen.revoked.extend_from_slice(partitions),
        Event::BatchConsumed {
            partition,
            messages,
            ..
        } => *seen.consumed.entry(partition.partition).or_default() += messages,
        Event::OffsetStored { partition, next } => {
            let stored = seen.stored.entry(partition.partition).or_default();
            assert!(*next > *stored, "stored {next} after {stored}");
            *stored = *next;
        }
        Event::BatchFailed { .. } | Event::Error { .. } => seen.failures += 1,
        _ => {}
    }
}

#[test]
fn a_server_reports_its_lifecycle_partitions_batches_and_offsets() {
    let (rt, cluster, topic) = with_topic("events", 3);
    const N: u64 = 300;
    cluster.produce_spread(&rt, &topic, 0, N, 3);

    let seen = Arc::new(Mutex::new(Seen::default()));
    let tracker = Tracker::default();
    let app = {
        let (seen, tracker, topic) = (seen.clone(), tracker.clone(), topic.clone());
        let bootstrap = cluster.bootstrap();
        App::builder()
            .setup(move |c| {
                c.client_id("events")
                    .group_id(unique("events-group"))
                    .kafka("bootstrap.servers", bootstrap)
                    .max_messages(20)
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Recording {
                    instance: 1,
                    tracker: tracker.clone(),
                    batch_sleep: Duration::ZERO,
                });
            })
            .subscribe(move |e: &Event<'_>| record(&seen, e))
            .build_with_env([])
    };
    let server = app.start(&Filters::default()).expect("starts");
    assert!(
        tracker.wait_for(N as usize, Duration::from_secs(60)),
        "consumed"
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.states,
        [AppState::Running, AppState::Stopping, AppState::Stopped]
    );
    let partitions: Vec<_> = (0..3).map(|p| (topic.clone(), p)).collect();
    let sorted = |v: &[(String, i32)]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert_eq!(
        sorted(&seen.assigned),
        partitions,
        "each partition assigned once"
    );
    assert_eq!(sorted(&seen.revoked), partitions, "and revoked at shutdown");
    assert_eq!(
        seen.consumed,
        BTreeMap::from([(0, 100), (1, 100), (2, 100)])
    );
    assert_eq!(seen.stored, BTreeMap::from([(0, 100), (1, 100), (2, 100)]));
    assert_eq!(seen.failures, 0);
}
