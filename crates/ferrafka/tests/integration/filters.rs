//! Filters and consumer hooks against a real broker: a throttled partition processes every
//! message in order, no faster than its limit, and its stored offset never passes a message
//! that did not run; a delayed one sees only old enough messages; expired messages are
//! dropped, counted and committed past; `eofed` runs once per end reached, `tick` and `idle`
//! run while no message comes; a filter's pause across rebalances still finishes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrafka::filters::{Delay, Expire, Throttle};
use ferrafka::instrumentation::{Event, PauseReason};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Record, ServerExit};

use crate::support::*;

/// Records what it processes, and when each batch started.
#[derive(Clone, Default)]
struct Probe {
    tracker: Tracker,
    batches: Arc<Mutex<Vec<Instant>>>,
    /// The smallest age of a message when its batch ran.
    youngest: Arc<Mutex<Option<Duration>>>,
    ticks: Arc<AtomicUsize>,
    idles: Arc<AtomicUsize>,
    eofs: Arc<AtomicUsize>,
}

impl Consumer for Probe {
    async fn consume(&mut self, _: &mut Context, messages: &Messages) -> ConsumeResult {
        self.batches.lock().unwrap().push(Instant::now());
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
        for m in messages {
            let age = m.timestamp().millis().map(|t| (now - t).max(0) as u64);
            if let Some(age) = age.map(Duration::from_millis) {
                let mut youngest = self.youngest.lock().unwrap();
                *youngest = Some(youngest.map_or(age, |y| y.min(age)));
            }
        }
        self.tracker.record(1, messages)
    }

    async fn tick(&mut self, _: &mut Context) -> ConsumeResult {
        self.ticks.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn idle(&mut self, _: &mut Context) -> ConsumeResult {
        self.idles.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn eofed(&mut self, _: &mut Context) -> ConsumeResult {
        self.eofs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// What the filters' events said, and stores that passed an unprocessed message.
#[derive(Clone, Default)]
struct Watch {
    filter_pauses: Arc<AtomicUsize>,
    skipped: Arc<AtomicUsize>,
    early_stores: Arc<Mutex<Vec<(i32, i64)>>>,
    stored: Arc<Mutex<std::collections::HashMap<i32, i64>>>,
}

fn app(
    cluster: &Cluster,
    topic: &str,
    probe: &Probe,
    watch: &Watch,
    route: impl Fn(&mut ferrafka::routing::TopicRoute) + Send + Sync + 'static,
) -> App {
    let (bootstrap, topic, probe, watch) = (
        cluster.bootstrap(),
        topic.to_string(),
        probe.clone(),
        watch.clone(),
    );
    let group = unique("filters");
    let tracker = probe.tracker.clone();
    App::builder()
        .setup(move |c| {
            c.client_id("filters")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_messages(10)
                .max_wait_time(Duration::from_millis(50));
        })
        .routes(move |r| {
            let probe = probe.clone();
            route(r.topic(topic.clone()).consumer(move || probe.clone()));
        })
        .subscribe(move |e: &Event<'_>| match e {
            Event::Paused {
                reason: PauseReason::Filter,
                ..
            } => {
                watch.filter_pauses.fetch_add(1, Ordering::SeqCst);
            }
            Event::MessagesSkipped { count, .. } => {
                watch.skipped.fetch_add(*count, Ordering::SeqCst);
            }
            Event::OffsetStored { partition, next } => {
                // Everything below `next` must have run (or been dropped on purpose: no
                // filter here drops what a store covers without the test knowing).
                let done = tracker
                    .all()
                    .iter()
                    .filter(|s| s.partition == partition.partition && s.offset < *next)
                    .map(|s| s.offset)
                    .collect::<std::collections::HashSet<_>>()
                    .len() as i64;
                let skipped = watch.skipped.load(Ordering::SeqCst) as i64;
                if done + skipped < *next {
                    let p = partition.partition;
                    watch.early_stores.lock().unwrap().push((p, *next));
                }
                watch
                    .stored
                    .lock()
                    .unwrap()
                    .insert(partition.partition, *next);
            }
            _ => {}
        })
        .build_with_env([])
}

/// Produces `count` messages numbered from `from` to partition 0, created `age` ago.
fn produce_aged(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    topic: &str,
    from: u64,
    count: u64,
    age: Duration,
) {
    let created = (SystemTime::now() - age)
        .duration_since(UNIX_EPOCH)
        .unwrap();
    let payloads: Vec<String> = (from..from + count).map(|n| n.to_string()).collect();
    let records = payloads.iter().map(|p| {
        Record::to(topic)
            .partition(0)
            .payload(p)
            .timestamp(created.as_millis() as i64)
    });
    rt.block_on(cluster.producer.produce_many(records))
        .expect("produced");
}

#[test]
fn a_throttled_partition_processes_everything_in_order_no_faster_than_its_limit() {
    init_logging();
    let (rt, cluster, topic) = with_topic("throttle", 1);
    produce_aged(&rt, &cluster, &topic, 0, 60, Duration::ZERO);
    let (probe, watch) = (Probe::default(), Watch::default());
    let app = app(&cluster, &topic, &probe, &watch, |r| {
        r.filter(Throttle::new(20, Duration::from_secs(1)));
    });
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        probe.tracker.wait_for(60, Duration::from_secs(60)),
        "all 60 ran"
    );
    let stored = wait_until(Duration::from_secs(10), || {
        watch.stored.lock().unwrap().get(&0) == Some(&60)
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        stored,
        "offset 60 stored: {:?}",
        watch.stored.lock().unwrap()
    );
    let seen = probe.tracker.all();
    let numbers: Vec<u64> = seen.iter().map(|s| s.number).collect();
    assert_eq!(numbers, (0..60).collect::<Vec<_>>(), "each once, in order");
    assert_contiguous_per_partition(&seen);
    assert_eq!(
        *watch.early_stores.lock().unwrap(),
        vec![],
        "stored past unprocessed"
    );
    // 60 messages at 20 a second: the third 20 start two windows after the first.
    let batches = probe.batches.lock().unwrap().clone();
    let spread = *batches.last().unwrap() - batches[0];
    assert!(
        spread >= Duration::from_millis(1900),
        "too fast: {spread:?}"
    );
    assert!(
        watch.filter_pauses.load(Ordering::SeqCst) >= 2,
        "paused by the filter"
    );
}

#[test]
fn expired_messages_are_dropped_counted_and_committed_past() {
    init_logging();
    let (rt, cluster, topic) = with_topic("expire", 1);
    produce_aged(&rt, &cluster, &topic, 0, 30, Duration::from_secs(7200));
    produce_aged(&rt, &cluster, &topic, 30, 10, Duration::ZERO);
    let (probe, watch) = (Probe::default(), Watch::default());
    let app = app(&cluster, &topic, &probe, &watch, |r| {
        r.filter(Expire::after(Duration::from_secs(3600)));
    });
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        probe.tracker.wait_for(10, Duration::from_secs(60)),
        "the fresh 10 ran"
    );
    let stored = wait_until(Duration::from_secs(10), || {
        watch.stored.lock().unwrap().get(&0) == Some(&40)
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        stored,
        "offset 40 stored: {:?}",
        watch.stored.lock().unwrap()
    );
    let numbers: Vec<u64> = probe.tracker.all().iter().map(|s| s.number).collect();
    assert_eq!(numbers, (30..40).collect::<Vec<_>>(), "only the fresh ones");
    assert_eq!(watch.skipped.load(Ordering::SeqCst), 30);
}

#[test]
fn a_delayed_partition_sees_only_messages_old_enough() {
    init_logging();
    let (rt, cluster, topic) = with_topic("delay", 1);
    let (probe, watch) = (Probe::default(), Watch::default());
    let app = app(&cluster, &topic, &probe, &watch, |r| {
        r.filter(Delay::by(Duration::from_secs(2)));
    });
    let server = app.start(&Filters::default()).unwrap();
    produce_aged(&rt, &cluster, &topic, 0, 20, Duration::ZERO);
    assert!(
        probe.tracker.wait_for(20, Duration::from_secs(60)),
        "all 20 ran"
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let youngest = probe.youngest.lock().unwrap().expect("timestamps");
    assert!(
        youngest >= Duration::from_millis(1990),
        "ran at {youngest:?} old"
    );
    assert!(watch.filter_pauses.load(Ordering::SeqCst) >= 1);
    assert_contiguous_per_partition(&probe.tracker.all());
}

#[test]
fn eofed_runs_once_per_end_reached_and_tick_and_idle_run_without_messages() {
    init_logging();
    let (rt, cluster, topic) = with_topic("hooks", 1);
    produce_aged(&rt, &cluster, &topic, 0, 25, Duration::ZERO);
    let (probe, watch) = (Probe::default(), Watch::default());
    let app = app(&cluster, &topic, &probe, &watch, |r| {
        r.eofed(true)
            .tick_interval(Duration::from_millis(200))
            .idle_after(Duration::from_millis(500));
    });
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        probe.tracker.wait_for(25, Duration::from_secs(60)),
        "all 25 ran"
    );
    assert!(wait_until(Duration::from_secs(10), || probe
        .eofs
        .load(Ordering::SeqCst)
        == 1));
    assert!(wait_until(Duration::from_secs(10), || probe
        .idles
        .load(Ordering::SeqCst)
        == 1));
    let ticks = probe.ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        probe.eofs.load(Ordering::SeqCst),
        1,
        "once per end, not in a loop"
    );
    assert_eq!(
        probe.idles.load(Ordering::SeqCst),
        1,
        "once per quiet spell"
    );
    let more = probe.ticks.load(Ordering::SeqCst) - ticks;
    assert!(more >= 5, "ticks while idle: {more} in 2 s at 200 ms");
    produce_aged(&rt, &cluster, &topic, 25, 5, Duration::ZERO);
    assert!(
        probe.tracker.wait_for(30, Duration::from_secs(30)),
        "5 more ran"
    );
    assert!(wait_until(Duration::from_secs(10), || probe
        .eofs
        .load(Ordering::SeqCst)
        == 2));
    assert!(wait_until(Duration::from_secs(10), || probe
        .idles
        .load(Ordering::SeqCst)
        == 2));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert_contiguous_per_partition(&probe.tracker.all());
}

#[test]
fn a_throttle_pause_across_rebalances_still_finishes() {
    init_logging();
    let (rt, cluster, topic) = with_topic("throttle-rebalance", 2);
    cluster.produce_spread(&rt, &topic, 0, 100, 2);
    let (probe, watch) = (Probe::default(), Watch::default());
    let app = app(&cluster, &topic, &probe, &watch, |r| {
        r.filter(Throttle::new(10, Duration::from_secs(2)));
    });
    let group = app.subscription_groups()[0].consumer_group().to_string();
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || watch
            .filter_pauses
            .load(Ordering::SeqCst)
            >= 2),
        "both partitions paused by the throttle"
    );
    crate::rebalance_pause::join_and_leave(&cluster.bootstrap(), &group, &topic, "range");
    assert!(
        probe.tracker.wait_for(100, Duration::from_secs(90)),
        "all 100 ran"
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let seen = probe.tracker.all();
    assert_contiguous_per_partition(&seen);
    let counts = probe.tracker.counts();
    assert_eq!(counts.len(), 100, "every number ran");
    assert_eq!(
        *watch.early_stores.lock().unwrap(),
        vec![],
        "stored past unprocessed"
    );
}
