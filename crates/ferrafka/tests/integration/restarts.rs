//! Stopping and restarting servers: nothing marked is redone, nothing unmarked is skipped.

use std::time::Duration;

use ferrafka::{App, Filters, ServerExit};

use crate::support::*;

fn app(
    bootstrap: &str,
    topic: &str,
    group: &str,
    instance: u32,
    tracker: &Tracker,
    batch_sleep: Duration,
    shutdown_timeout: Duration,
) -> App {
    let tracker = tracker.clone();
    let topic = topic.to_string();
    let (bootstrap, group) = (bootstrap.to_string(), group.to_string());
    App::builder()
        .setup(move |c| {
            c.client_id("restarts")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10)
                .max_wait_time(Duration::from_millis(50))
                .concurrency(2);
            c.shutdown_timeout(shutdown_timeout);
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Recording {
                instance,
                tracker: tracker.clone(),
                batch_sleep,
            });
        })
        .build_with_env([])
}

#[test]
fn a_restarted_server_reprocesses_nothing_that_was_marked() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("restart");
    let group = unique("restart-group");
    cluster.create_topic(&rt, &topic, 2);
    let tracker = Tracker::default();
    let secs = Duration::from_secs(10);

    cluster.produce_numbered(&rt, &topic, 0, 500, 7);
    let first = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        1,
        &tracker,
        Duration::ZERO,
        secs,
    )
    .start(&Filters::default())
    .unwrap();
    assert!(
        tracker.wait_for(500, Duration::from_secs(60)),
        "first run processed {}",
        tracker.len()
    );
    assert_eq!(first.shutdown(), ServerExit::Clean);

    cluster.produce_numbered(&rt, &topic, 500, 800, 7);
    let second = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        2,
        &tracker,
        Duration::ZERO,
        secs,
    )
    .start(&Filters::default())
    .unwrap();
    assert!(
        tracker.wait_for(800, Duration::from_secs(60)),
        "after restart processed {}",
        tracker.len()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(second.shutdown(), ServerExit::Clean);

    let counts = tracker.counts();
    assert_eq!(counts.len(), 800, "every message processed");
    let again: Vec<_> = tracker
        .all()
        .into_iter()
        .filter(|s| s.instance == 2 && s.number < 500)
        .collect();
    assert!(
        again.is_empty(),
        "the second run redid marked messages: {again:?}"
    );
    assert!(counts.values().all(|c| *c == 1));
}

#[test]
fn shutdown_in_the_middle_of_a_stream_loses_nothing() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("midstream");
    let group = unique("midstream-group");
    cluster.create_topic(&rt, &topic, 3);
    let tracker = Tracker::default();
    const N: u64 = 1500;
    cluster.produce_numbered(&rt, &topic, 0, N, 11);

    // Slow batches, so the stop lands while batches are in flight.
    let slow = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        1,
        &tracker,
        Duration::from_millis(40),
        Duration::from_secs(10),
    )
    .start(&Filters::default())
    .unwrap();
    assert!(tracker.wait_for(200, Duration::from_secs(60)));
    assert_eq!(
        slow.shutdown(),
        ServerExit::Clean,
        "in-flight batches finish within the timeout"
    );
    let processed_before = tracker.len();
    assert!(processed_before < N as usize, "the stop came mid-stream");

    let fast = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        2,
        &tracker,
        Duration::ZERO,
        Duration::from_secs(10),
    )
    .start(&Filters::default())
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || tracker.counts().len() as u64
            == N),
        "distinct processed: {}",
        tracker.counts().len()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(fast.shutdown(), ServerExit::Clean);

    let counts = tracker.counts();
    let duplicates = counts.values().filter(|c| **c > 1).count();
    assert!(
        (0..N).all(|n| counts.contains_key(&n)),
        "a message was lost"
    );
    // A clean shutdown commits every finished batch: nothing is processed twice.
    assert_eq!(duplicates, 0, "duplicates after a clean shutdown");
}

#[test]
fn a_batch_slower_than_the_shutdown_timeout_is_abandoned_and_redone_after_restart() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("forced");
    let group = unique("forced-group");
    cluster.create_topic(&rt, &topic, 1);
    let tracker = Tracker::default();
    cluster.produce_numbered(&rt, &topic, 0, 5, 1);

    let stuck = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        1,
        &tracker,
        Duration::from_secs(30),
        Duration::from_millis(800),
    )
    .start(&Filters::default())
    .unwrap();
    std::thread::sleep(Duration::from_secs(2)); // the batch is now sleeping
    let started = std::time::Instant::now();
    assert_eq!(stuck.shutdown(), ServerExit::Forced);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        started.elapsed()
    );
    assert_eq!(tracker.len(), 0, "the abandoned batch never completed");

    let rerun = app(
        &cluster.bootstrap(),
        &topic,
        &group,
        2,
        &tracker,
        Duration::ZERO,
        Duration::from_secs(10),
    )
    .start(&Filters::default())
    .unwrap();
    assert!(
        tracker.wait_for(5, Duration::from_secs(30)),
        "the abandoned batch is redone"
    );
    assert_eq!(rerun.shutdown(), ServerExit::Clean);
}
