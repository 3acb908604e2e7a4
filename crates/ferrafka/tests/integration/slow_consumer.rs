//! A batch that takes longer than `max.poll.interval.ms` causes no rebalance and no duplicate,
//! because the listener keeps polling while the batch runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

/// Sleeps in the first batch of the run, whichever instance gets it: shared, so the test
/// does not depend on consumer persistence.
struct Sleepy {
    tracker: Tracker,
    revocations: Arc<AtomicUsize>,
    slept: Arc<AtomicBool>,
}

impl Consumer for Sleepy {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if !self.slept.swap(true, Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(9)).await;
        }
        self.tracker.record(1, messages)
    }

    async fn revoked(&mut self, _ctx: &mut Context) -> ConsumeResult {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_batch_longer_than_max_poll_interval_causes_no_rebalance_and_no_duplicate() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("slow");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, 40, 1);
    let tracker = Tracker::default();
    let revocations = Arc::new(AtomicUsize::new(0));
    let slept = Arc::new(AtomicBool::new(false));
    let s = slept.clone();
    let (t, r, bootstrap, topic2, group) = (
        tracker.clone(),
        revocations.clone(),
        cluster.bootstrap(),
        topic.clone(),
        unique("slow-group"),
    );
    let app = App::builder()
        .setup(move |c| {
            c.client_id("slow")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(10).max_wait_time(Duration::from_millis(50));
            c.kafka("max.poll.interval.ms", "6000")
                .kafka("session.timeout.ms", "6000");
        })
        .routes(move |routes| {
            routes.topic(topic2).consumer(move || Sleepy {
                tracker: t.clone(),
                revocations: r.clone(),
                slept: s.clone(),
            });
        })
        .build_with_env([]);
    let server = app.start(&Filters::default()).unwrap();
    assert!(
        tracker.wait_for(40, Duration::from_secs(40)),
        "processed {}",
        tracker.len()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(slept.load(Ordering::SeqCst), "the slow batch ran");
    assert_eq!(
        revocations.load(Ordering::SeqCst),
        0,
        "the slow batch triggered a revocation"
    );
    let counts = tracker.counts();
    assert_eq!(counts.len(), 40);
    assert!(counts.values().all(|c| *c == 1), "duplicates: {counts:?}");
}
