//! Regression tests of the processing core against the broker: each reproduces a path of the
//! old listener that marked offsets past messages that never ran, or ran a partition twice.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::consumer::SeekTo;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

/// Fails the batch holding `number` once, asking for `request` in that failing batch.
struct FailOnceWith {
    tracker: Tracker,
    number: u64,
    failed: Arc<AtomicBool>,
    request: fn(&mut Context),
}

impl Consumer for FailOnceWith {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let holds = messages
            .iter()
            .any(|m| m.payload_or_empty() == self.number.to_string().as_bytes());
        if holds && !self.failed.swap(true, Ordering::SeqCst) {
            (self.request)(ctx);
            return Err("fails once".into());
        }
        self.tracker.record(1, messages)
    }
}

fn run_fail_once(request: fn(&mut Context)) -> Vec<Seen> {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("fail-once");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, 60, 1);
    let tracker = Tracker::default();
    let failed = Arc::new(AtomicBool::new(false));
    let (t, f, topic2, bootstrap, group) = (
        tracker.clone(),
        failed.clone(),
        topic.clone(),
        cluster.bootstrap(),
        unique("fail-once"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("fail-once")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            c.pause_timeout(Duration::from_millis(100));
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || FailOnceWith {
                tracker: t.clone(),
                number: 25,
                failed: f.clone(),
                request,
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    let all = tracker.wait_for(60, Duration::from_secs(30));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        failed.load(Ordering::SeqCst),
        "the batch with 25 failed once"
    );
    assert!(
        all,
        "processed {} of 60: {:?}",
        tracker.len(),
        tracker.counts()
    );
    tracker.all()
}

/// Defect 2: `ctx.resume()` in a failing batch used to clear the retry, so the next success
/// marked past the failed messages.
#[test]
fn resume_in_a_failing_batch_still_retries_it() {
    let seen = run_fail_once(|ctx| ctx.resume());
    assert_contiguous_per_partition(&seen);
    assert_eq!(seen.first().map(|s| s.offset), Some(0));
}

/// Defect 3: a seek librdkafka refuses (or an invalid one) used to drop the buffered and
/// failed messages before seeking.
#[test]
fn a_refused_seek_in_a_failing_batch_loses_nothing() {
    let seen = run_fail_once(|ctx| ctx.seek(SeekTo::Offset(-1)));
    assert_contiguous_per_partition(&seen);
}

/// Runs its first batch for a long time (`slow_once` is raised when it starts); flags two
/// batches of one partition running at once.
struct Overlap {
    tracker: Tracker,
    running: Arc<AtomicBool>,
    overlaps: Arc<AtomicUsize>,
    slow_once: Arc<AtomicBool>,
    slow: Duration,
    revoked_marks: Arc<Mutex<Vec<bool>>>,
}

impl Consumer for Overlap {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if self.running.swap(true, Ordering::SeqCst) {
            self.overlaps.fetch_add(1, Ordering::SeqCst);
        }
        if !self.slow_once.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(self.slow).await;
            // The partition was revoked meanwhile: marking must be refused.
            let marked = ctx.mark_as_consumed(messages.last());
            self.revoked_marks.lock().unwrap().push(marked);
        }
        let result = self.tracker.record(1, messages);
        self.running.store(false, Ordering::SeqCst);
        result
    }
}

/// Defects 1 and 9: an eager rebalance revokes a partition whose batch runs far longer than
/// `revocation_timeout` and gives it back to the same listener. The poll thread waits only
/// `revocation_timeout`, the old batch can no longer mark, and the new assignment does not
/// start a second batch of the partition while the old one runs.
#[test]
fn a_partition_given_back_during_a_long_batch_never_runs_twice_at_once() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (slow_topic, other_topic) = (unique("slow-p"), unique("other-p"));
    cluster.create_topic(&rt, &slow_topic, 1);
    cluster.create_topic(&rt, &other_topic, 1);
    cluster.produce_numbered(&rt, &slow_topic, 0, 50, 1);
    cluster.produce_numbered(&rt, &other_topic, 0, 20, 1);
    let group = unique("giveback");
    let tracker = Tracker::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let revoked_marks = Arc::new(Mutex::new(Vec::new()));
    let slow = Duration::from_secs(20);
    let (t, o, m, topic, bootstrap, g) = (
        tracker.clone(),
        overlaps.clone(),
        revoked_marks.clone(),
        slow_topic.clone(),
        cluster.bootstrap(),
        group.clone(),
    );
    let running = Arc::new(AtomicBool::new(false));
    let slow_started = Arc::new(AtomicBool::new(false));
    let slow_once = slow_started.clone();
    let first = App::builder()
        .setup(move |c| {
            c.client_id("giveback-a")
                .group_id(g)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            c.revocation_timeout(Duration::from_secs(1));
            c.kafka("partition.assignment.strategy", "range");
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Overlap {
                tracker: t.clone(),
                running: running.clone(),
                overlaps: o.clone(),
                slow_once: slow_once.clone(),
                slow,
                revoked_marks: m.clone(),
            });
        })
        .build_with_env([]);
    let first = first.start(&Filters::default()).unwrap();
    assert!(wait_until(Duration::from_secs(20), || slow_started
        .load(Ordering::SeqCst)));

    // A second member of the same group, on another topic: joining revokes everything (eager)
    // and the slow topic's only partition goes back to the first member.
    let other = Tracker::default();
    let (t2, topic2, bootstrap2, g2) = (
        other.clone(),
        other_topic.clone(),
        cluster.bootstrap(),
        group.clone(),
    );
    let joined_at = Instant::now();
    let second = App::builder()
        .setup(move |c| {
            c.client_id("giveback-b")
                .group_id(g2)
                .kafka("bootstrap.servers", bootstrap2);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            c.kafka("partition.assignment.strategy", "range");
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || Recording {
                instance: 2,
                tracker: t2.clone(),
                batch_sleep: Duration::ZERO,
            });
        })
        .build_with_env([]);
    let second = second.start(&Filters::default()).unwrap();
    // Well before the slow batch ends: the old listener waited for it inside the rebalance.
    let rebalanced = other.wait_for(20, slow - Duration::from_secs(8));
    let rebalance_took = joined_at.elapsed();
    assert!(
        tracker.wait_for(50, Duration::from_secs(40)),
        "slow topic: {} processed",
        tracker.len()
    );
    assert_eq!(second.shutdown(), ServerExit::Clean);
    let _ = first.shutdown();

    assert!(
        rebalanced,
        "the rebalance waited for the slow batch: the new member got nothing within {rebalance_took:?}"
    );
    assert_eq!(
        overlaps.load(Ordering::SeqCst),
        0,
        "two batches of one partition ran at once"
    );
    assert_eq!(
        *revoked_marks.lock().unwrap(),
        vec![false],
        "a revoked batch could still mark"
    );
    assert_contiguous_per_partition(&tracker.all());
    assert!((0..50).all(|n| tracker.counts().contains_key(&n)));
}

/// A consumer factory that panics once.
struct Counting {
    tracker: Tracker,
}

impl Consumer for Counting {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        self.tracker.record(1, messages)
    }
}

/// Defect 8: a panicking consumer factory used to leave its partition `running` forever, so
/// shutdown waited its whole timeout and reported `Forced`.
#[test]
fn a_panicking_consumer_factory_fails_the_batch_and_is_retried() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("factory");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, 30, 1);
    let tracker = Tracker::default();
    let panicked = Arc::new(AtomicBool::new(false));
    let (t, p, topic2, bootstrap, group) = (
        tracker.clone(),
        panicked.clone(),
        topic.clone(),
        cluster.bootstrap(),
        unique("factory"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("factory")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            c.pause_timeout(Duration::from_millis(100));
            c.shutdown_timeout(Duration::from_secs(5));
        })
        .routes(move |r| {
            r.topic(topic2).consumer(move || {
                if !p.swap(true, Ordering::SeqCst) {
                    panic!("factory cannot build its first consumer");
                }
                Counting { tracker: t.clone() }
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    let all = tracker.wait_for(30, Duration::from_secs(20));
    let stopping = Instant::now();
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(panicked.load(Ordering::SeqCst));
    assert!(all, "processed {}", tracker.len());
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "shutdown waited for a batch that never ran"
    );
    assert_contiguous_per_partition(&tracker.all());
}
