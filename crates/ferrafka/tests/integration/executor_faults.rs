//! A partition's executor must never end without a report, and if it does, the partition must
//! recover: user code outside `consume` (an error's `Display`, an instance's `Drop`) runs
//! guarded, and the listener replaces an executor task that ended on its own.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

const MESSAGES: u64 = 100;

/// An error whose `Display` panics.
#[derive(Debug)]
struct UnprintableError;

impl fmt::Display for UnprintableError {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        panic!("Display of the consumer's error panics")
    }
}

impl std::error::Error for UnprintableError {}

/// Fails its first batch with an error that cannot be printed; drops panic while `bomb` is
/// armed (once).
struct Faulty {
    tracker: Tracker,
    failed: Arc<AtomicBool>,
    drop_bomb: Arc<AtomicBool>,
    unprintable: bool,
}

impl Consumer for Faulty {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if self.unprintable && !self.failed.swap(true, Ordering::SeqCst) {
            return Err(Box::new(UnprintableError));
        }
        self.tracker.record(1, messages)
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        if self.drop_bomb.swap(false, Ordering::SeqCst) {
            panic!("Drop of the consumer instance panics");
        }
    }
}

/// Runs `MESSAGES` messages through a `Faulty` consumer; `during` runs once consuming began.
fn all_processed(
    unprintable: bool,
    drop_bomb: bool,
    during: impl FnOnce(&ferrafka::RunningServer),
) {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("executor-faults");
    cluster.create_topic(&rt, &topic, 2);
    cluster.produce_spread(&rt, &topic, 0, MESSAGES / 2, 2);
    let tracker = Tracker::default();
    let (t, topic2, bootstrap, group) = (
        tracker.clone(),
        topic.clone(),
        cluster.bootstrap(),
        unique("executor-faults"),
    );
    let failed = Arc::new(AtomicBool::new(false));
    let bomb = Arc::new(AtomicBool::new(drop_bomb));
    let app = App::builder()
        .setup(move |c| {
            c.client_id("executor-faults")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(20));
            c.pause_timeout(Duration::from_millis(100));
            // A fresh instance per batch: every batch drops one.
            c.consumer_persistence(false);
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || Faulty {
                tracker: t.clone(),
                failed: failed.clone(),
                drop_bomb: bomb.clone(),
                unprintable,
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    assert!(tracker.wait_for(10, Duration::from_secs(30)), "consuming");
    during(&server);
    cluster.produce_spread(&rt, &topic, MESSAGES / 2, MESSAGES, 2);
    let done = wait_until(Duration::from_secs(30), || {
        tracker.counts().len() == MESSAGES as usize
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        done,
        "processed {} of {MESSAGES}: a partition stopped",
        tracker.counts().len()
    );
    assert_contiguous_per_partition(&tracker.all());
}

#[test]
fn an_error_whose_display_panics_fails_the_batch_and_it_is_retried() {
    all_processed(true, false, |_| {});
}

#[test]
fn a_consumer_instance_whose_drop_panics_stops_nothing() {
    all_processed(false, true, |_| {});
}

#[test]
fn executor_tasks_that_end_without_a_report_are_replaced() {
    all_processed(false, false, |server| {
        server.drill_executor_death();
        std::thread::sleep(Duration::from_millis(200));
    });
}

/// Blocks its thread (no `.await`, so an abort cannot end it) in its first batch; counts two
/// batches running at once.
struct Blocker {
    tracker: Tracker,
    block: Duration,
    blocked: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
    overlaps: Arc<std::sync::atomic::AtomicUsize>,
}

impl Consumer for Blocker {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if self.running.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if !self.blocked.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.block);
        }
        let result = self.tracker.record(1, messages);
        self.running.store(false, Ordering::SeqCst);
        result
    }
}

struct BlockerRun {
    server: ferrafka::RunningServer,
    tracker: Tracker,
    blocked: Arc<AtomicBool>,
    overlaps: Arc<std::sync::atomic::AtomicUsize>,
    _cluster: Cluster,
}

/// A server on a one-partition topic of `MESSAGES` messages whose first batch blocks.
fn blocker_run(block: Duration, virtual_partitions: bool) -> BlockerRun {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("blocker");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, MESSAGES, 4);
    let tracker = Tracker::default();
    let blocked = Arc::new(AtomicBool::new(false));
    let overlaps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let running = Arc::new(AtomicBool::new(false));
    let (t, b, o, bootstrap, group) = (
        tracker.clone(),
        blocked.clone(),
        overlaps.clone(),
        cluster.bootstrap(),
        unique("blocker"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("blocker")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(20));
            c.shutdown_timeout(Duration::from_secs(1));
        })
        .routes(move |r| {
            let route = r.topic(topic).consumer(move || Blocker {
                tracker: t.clone(),
                block,
                blocked: b.clone(),
                running: running.clone(),
                overlaps: o.clone(),
            });
            if virtual_partitions {
                route.virtual_partitions(ferrafka::VirtualPartitions::new(2));
            }
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || blocked.load(Ordering::SeqCst)),
        "the first batch started"
    );
    BlockerRun {
        server,
        tracker,
        blocked,
        overlaps,
        _cluster: cluster,
    }
}

/// Defect 2: a virtual-partition group stuck in user code at shutdown holds messages of the
/// client; destroying the client would wait for it. The shutdown gives up on it after a
/// bounded wait instead (the client is left to the process exit).
#[test]
fn shutdown_does_not_wait_for_a_virtual_partition_group_stuck_in_user_code() {
    let run = blocker_run(Duration::from_secs(25), true);
    let started = std::time::Instant::now();
    let exit = run.server.shutdown();
    let took = started.elapsed();
    assert_eq!(exit, ServerExit::Forced);
    assert!(
        took < Duration::from_secs(15),
        "shutdown took {took:?}: it waited for the stuck group"
    );
    assert!(run.blocked.load(Ordering::SeqCst));
}

/// Defect 6c: after a fatal error the old client's executor may still be stuck in user code
/// (an abort ends a task only when it yields); the rebuilt client's new executor for the same
/// partition waits for it, so the partition never runs twice at once.
#[test]
fn a_rebuilt_client_waits_for_the_old_clients_stuck_batch() {
    let run = blocker_run(Duration::from_secs(20), false);
    run.server.drill_fatal_error();
    let done = wait_until(Duration::from_secs(60), || {
        run.tracker.counts().len() == MESSAGES as usize
    });
    assert_eq!(run.server.shutdown(), ServerExit::Clean);
    assert!(
        done,
        "processed {} of {MESSAGES}",
        run.tracker.counts().len()
    );
    assert_eq!(
        run.overlaps.load(Ordering::SeqCst),
        0,
        "two batches of the partition ran at once"
    );
}
