//! Runs against the broker: with a backlog, the listener hands full batches to the executor
//! together (up to 1,000 messages). A failure inside a run must retry from the failed batch and
//! keep the batches after it; a shutdown must end a run after the batch that runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

/// Records each batch's offsets; fails once the batch holding `fail_number`.
struct Batches {
    tracker: Tracker,
    instance: u32,
    batches: Arc<Mutex<Vec<Vec<i64>>>>,
    fail_number: Option<u64>,
    failed: Arc<AtomicBool>,
    sleep: Duration,
}

impl Consumer for Batches {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        tokio::time::sleep(self.sleep).await;
        let holds = |n: u64| {
            messages
                .iter()
                .any(|m| m.payload_or_empty() == n.to_string().as_bytes())
        };
        if self.fail_number.is_some_and(holds) && !self.failed.swap(true, Ordering::SeqCst) {
            return Err("fails once".into());
        }
        let offsets = messages.iter().map(|m| m.offset()).collect();
        self.batches.lock().unwrap().push(offsets);
        self.tracker.record(self.instance, messages)
    }
}

struct Setup {
    topic: String,
    group: String,
    bootstrap: String,
}

fn app(setup: &Setup, consumer: impl Fn() -> Batches + Send + Sync + 'static) -> App {
    let (topic, group, bootstrap) = (
        setup.topic.clone(),
        setup.group.clone(),
        setup.bootstrap.clone(),
    );
    App::builder()
        .setup(move |c| {
            c.client_id("runs")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(50).max_wait_time(Duration::from_millis(50));
            c.pause_timeout(Duration::from_millis(100));
        })
        .routes(move |r| {
            r.topic(topic).consumer(consumer);
        })
        .build_with_env([])
}

const MESSAGES: u64 = 3_000;

fn backlog(rt: &tokio::runtime::Runtime, cluster: &Cluster, name: &str) -> Setup {
    let topic = unique(name);
    cluster.create_topic(rt, &topic, 1);
    cluster.produce_numbered(rt, &topic, 0, MESSAGES, 1);
    Setup {
        topic,
        group: unique(name),
        bootstrap: cluster.bootstrap(),
    }
}

/// A batch in the middle of a backlog fails once. Everything before it is processed once, the
/// failed batch is retried, and the batches after it (handed over in the same run, never run)
/// are processed after the retry, once each: nothing is skipped or run ahead of the failure.
#[test]
fn a_failure_inside_a_run_is_retried_and_loses_nothing_after_it() {
    let rt = runtime();
    let cluster = Cluster::start();
    let setup = backlog(&rt, &cluster, "run-fail");
    let (tracker, batches, failed) = (
        Tracker::default(),
        Arc::<Mutex<Vec<Vec<i64>>>>::default(),
        Arc::new(AtomicBool::new(false)),
    );
    let (t, b, f) = (tracker.clone(), batches.clone(), failed.clone());
    let app = app(&setup, move || Batches {
        tracker: t.clone(),
        instance: 1,
        batches: b.clone(),
        fail_number: Some(1_234),
        failed: f.clone(),
        sleep: Duration::ZERO,
    });
    let server = app.start(&Filters::default()).unwrap();
    let all = tracker.wait_for(MESSAGES as usize, Duration::from_secs(60));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        all && failed.load(Ordering::SeqCst),
        "processed {} of {MESSAGES}",
        tracker.len()
    );
    let seen = tracker.all();
    assert_contiguous_per_partition(&seen);
    let counts = tracker.counts();
    assert!(
        (0..MESSAGES).all(|n| counts.get(&n) == Some(&1)),
        "every message exactly once (the failed batch recorded nothing)"
    );
    let firsts: Vec<i64> = batches.lock().unwrap().iter().map(|b| b[0]).collect();
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "batches ran in offset order: {firsts:?}"
    );
}

/// A shutdown while a run of slow batches runs: the run ends after the batch that runs (the
/// server stops well before the run's other batches would have run), and a restarted server
/// goes on from there with no gap.
#[test]
fn a_shutdown_ends_a_run_after_its_running_batch() {
    let rt = runtime();
    let cluster = Cluster::start();
    let setup = backlog(&rt, &cluster, "run-cut");
    let (tracker, batches) = (Tracker::default(), Arc::<Mutex<Vec<Vec<i64>>>>::default());
    let consumer = |instance: u32, sleep: Duration| {
        let (t, b) = (tracker.clone(), batches.clone());
        move || Batches {
            tracker: t.clone(),
            instance,
            batches: b.clone(),
            fail_number: None,
            failed: Arc::new(AtomicBool::new(false)),
            sleep,
        }
    };
    let server = app(&setup, consumer(1, Duration::from_millis(100)))
        .start(&Filters::default())
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || batches.lock().unwrap().len()
            >= 3),
        "three batches ran"
    );
    let before = batches.lock().unwrap().len();
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let after = batches.lock().unwrap().len();
    assert!(
        after <= before + 1,
        "{} batches ran after the shutdown began; a run of up to 20 must be cut after its running one (one more may have ended as the shutdown began)",
        after - before
    );
    let server = app(&setup, consumer(2, Duration::ZERO))
        .start(&Filters::default())
        .unwrap();
    let all = wait_until(Duration::from_secs(60), || {
        tracker.counts().len() as u64 == MESSAGES
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        all,
        "processed {} distinct of {MESSAGES}",
        tracker.counts().len()
    );
    assert_contiguous_per_partition(&tracker.all());
}
