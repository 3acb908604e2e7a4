//! A partition paused when a rebalance hands it back to the same member must fetch again.
//!
//! librdkafka's application pause survives a revocation and the next assignment; only an
//! explicit resume clears it. Each test pauses both partitions of a topic for one reason
//! (a retry's backoff, `ctx.pause`, the backlog bound, quiet mode), makes a second member join
//! and leave the group (two rebalances, each of which revokes and assigns again), and checks
//! that every message is then processed, in order, once the pause reason is gone (a partition
//! the rebalances did not move keeps its pause until it ends).
//!
//! The eager protocol runs on the suite's broker; cooperative-sticky runs on librdkafka's mock
//! cluster (the embedded broker's coordinator mishandles cooperative members), and on Kafka in
//! the suite's Kafka half; KIP-848 (`group.protocol=consumer`, strategy `"consumer"` here) runs
//! on Apache Kafka in both halves, as only its coordinator speaks that protocol.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::mocking::MockCluster;

use crate::support::*;

const MESSAGES: u64 = 200;

/// Why the partitions are paused when the rebalance comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    /// The first batch of each partition fails: a long retry backoff.
    Backoff,
    /// The first batch of each partition calls `ctx.pause` for a minute.
    ConsumerPause,
    /// The first batch of each partition is slow and the backlog bound is tiny.
    Backlog,
    /// The server is in quiet mode.
    Quiet,
}

/// Pauses its partition once, for `reason`; records everything it processes.
struct Pauser {
    tracker: Tracker,
    reason: Reason,
    /// Partitions whose first batch already paused.
    paused: Arc<Mutex<HashSet<i32>>>,
    /// Batches that started, to see quiet mode hold.
    started: Arc<AtomicUsize>,
    /// How long a backoff or `ctx.pause` lasts.
    pause: Duration,
}

impl Consumer for Pauser {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        self.started.fetch_add(1, Ordering::SeqCst);
        let first = self.paused.lock().unwrap().insert(ctx.partition());
        if first {
            match self.reason {
                Reason::Backoff => return Err("the first attempt fails".into()),
                Reason::ConsumerPause => ctx.pause(self.pause),
                Reason::Backlog => tokio::time::sleep(Duration::from_secs(3)).await,
                Reason::Quiet => {}
            }
        }
        self.tracker.record(1, messages)
    }
}

/// The test's broker: the suite's (embedded, or Apache Kafka on the Kafka half), or the mock
/// cluster.
enum Broker {
    Suite(Box<Cluster>),
    Mock(MockCluster<'static, rdkafka::producer::DefaultProducerContext>),
}

impl Broker {
    fn bootstrap(&self) -> String {
        match self {
            Broker::Suite(c) => c.bootstrap(),
            Broker::Mock(m) => m.bootstrap_servers(),
        }
    }
}

/// The group settings of `strategy`: the classic protocol with that assignor, or KIP-848
/// (`"consumer"`), whose assignor and timeouts are the broker's.
fn group_settings(strategy: &str) -> Vec<(&'static str, String)> {
    match strategy {
        "consumer" => vec![("group.protocol", "consumer".into())],
        _ => vec![
            ("partition.assignment.strategy", strategy.into()),
            ("session.timeout.ms", "6000".into()),
            ("heartbeat.interval.ms", "300".into()),
        ],
    }
}

/// A second member of the group: joining makes the group rebalance, leaving gives its
/// partitions back. It commits nothing.
pub(crate) fn join_and_leave(bootstrap: &str, group: &str, topic: &str, strategy: &str) {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    for (key, value) in group_settings(strategy) {
        config.set(key, value);
    }
    let member: BaseConsumer = config.create().expect("second member");
    member.subscribe(&[topic]).expect("subscribes");
    let assigned = wait_until(Duration::from_secs(30), || {
        let _ = member.poll(Duration::from_millis(50));
        member.assignment().is_ok_and(|a| a.count() > 0)
    });
    assert!(assigned, "the second member got a partition");
    // Hold it for a moment, then leave (a clean close sends LeaveGroup).
    let until = Instant::now() + Duration::from_millis(500);
    while Instant::now() < until {
        let _ = member.poll(Duration::from_millis(50));
    }
    member.unsubscribe();
    let _ = member.poll(Duration::from_millis(200));
}

fn paused_partitions_come_back(reason: Reason, strategy: &str) {
    let rt = runtime();
    init_logging();
    let topic = unique("rebalance-pause");
    // The embedded broker's coordinator mishandles cooperative members: there, cooperative
    // runs on librdkafka's mock cluster; on the Kafka half of the suite, on Kafka.
    let on_kafka = std::env::var("FERRAFKA_TEST_BROKER").as_deref() == Ok("kafka");
    let broker = if strategy == "cooperative-sticky" && !on_kafka {
        let mock = MockCluster::new(1).expect("mock cluster");
        mock.create_topic(&topic, 2, 1).expect("mock topic");
        Broker::Mock(mock)
    } else if strategy == "consumer" {
        let cluster = Cluster::kafka();
        cluster.create_topic(&rt, &topic, 2);
        Broker::Suite(Box::new(cluster))
    } else {
        let cluster = Cluster::start();
        cluster.create_topic(&rt, &topic, 2);
        Broker::Suite(Box::new(cluster))
    };
    let bootstrap = broker.bootstrap();
    let producer = ferrafka::Producer::new(&std::collections::BTreeMap::from([(
        "bootstrap.servers".to_string(),
        bootstrap.clone(),
    )]))
    .expect("producer");
    let records: Vec<String> = (0..MESSAGES).map(|n| n.to_string()).collect();
    rt.block_on(
        producer.produce_many(records.iter().enumerate().map(|(i, n)| {
            ferrafka::Record::to(&topic)
                .partition((i % 2) as i32)
                .payload(n)
        })),
    )
    .expect("produced");

    // An eager rebalance assigns every partition again, so a pause that outlasts the test
    // shows the stall. A cooperative one moves only one partition (to the second member and
    // back); the other keeps its machine, and its pause, which must end for the test to end.
    // KIP-848 moves partitions one by one too.
    let pause = match strategy {
        "cooperative-sticky" | "consumer" => Duration::from_secs(8),
        _ => Duration::from_secs(120),
    };
    let group = unique("rebalance-pause");
    let tracker = Tracker::default();
    let paused = Arc::new(Mutex::new(HashSet::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let app = {
        let (t, p, s, topic, bootstrap, group, strategy) = (
            tracker.clone(),
            paused.clone(),
            started.clone(),
            topic.clone(),
            bootstrap.clone(),
            group.clone(),
            strategy.to_string(),
        );
        App::builder()
            .setup(move |c| {
                c.client_id("rebalance-pause")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap);
                for (key, value) in group_settings(&strategy) {
                    c.kafka(key, value);
                }
                c.max_messages(10).max_wait_time(Duration::from_millis(20));
                c.pause_timeout(pause).pause_max_timeout(pause);
                if reason == Reason::Backlog {
                    c.partition_buffer_bytes(64);
                }
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Pauser {
                    tracker: t.clone(),
                    reason,
                    paused: p.clone(),
                    started: s.clone(),
                    pause,
                });
            })
            .build_with_env([])
    };
    let server = app.start(&Filters::default()).unwrap();
    if reason == Reason::Quiet {
        assert!(tracker.wait_for(20, Duration::from_secs(30)), "consuming");
        server.stopper().quiet();
        std::thread::sleep(Duration::from_millis(300));
    } else {
        let both = wait_until(Duration::from_secs(30), || {
            paused.lock().unwrap().len() == 2
        });
        assert!(both, "both partitions paused for {reason:?}");
    }

    let before = started.load(Ordering::SeqCst);
    join_and_leave(&bootstrap, &group, &topic, strategy);

    let server = if reason == Reason::Quiet {
        // Quiet mode covers the partitions the rebalances assigned again.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            started.load(Ordering::SeqCst),
            before,
            "a quiet server started batches after a rebalance"
        );
        assert_eq!(server.shutdown(), ServerExit::Clean);
        // The next process finishes the work.
        let (t, topic, bootstrap, group) = (tracker.clone(), topic.clone(), bootstrap, group);
        // Same assignor as the first process: a member of the old group may still be
        // in it, and a coordinator may pick a protocol this member does not know.
        let settings = group_settings(strategy);
        App::builder()
            .setup(move |c| {
                c.client_id("rebalance-pause")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap);
                for (key, value) in settings {
                    c.kafka(key, value);
                }
                c.max_messages(10).max_wait_time(Duration::from_millis(20));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Recording {
                    instance: 2,
                    tracker: t.clone(),
                    batch_sleep: Duration::ZERO,
                });
            })
            .build_with_env([])
            .start(&Filters::default())
            .unwrap()
    } else {
        server
    };
    let done = wait_until(Duration::from_secs(40), || {
        tracker.counts().len() == MESSAGES as usize
    });
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(
        done,
        "{reason:?}/{strategy}: processed {} of {MESSAGES} after the rebalances: a paused partition never fetched again",
        tracker.counts().len()
    );
    assert_contiguous_per_partition(&tracker.all());
    drop(broker);
}

#[test]
fn eager_rebalance_resumes_a_partition_paused_for_a_retry() {
    paused_partitions_come_back(Reason::Backoff, "range");
}

#[test]
fn eager_rebalance_resumes_a_partition_paused_by_the_consumer() {
    paused_partitions_come_back(Reason::ConsumerPause, "range");
}

#[test]
fn eager_rebalance_resumes_a_partition_paused_for_its_backlog() {
    paused_partitions_come_back(Reason::Backlog, "range");
}

#[test]
fn eager_rebalance_keeps_a_quiet_server_quiet() {
    paused_partitions_come_back(Reason::Quiet, "range");
}

#[test]
fn cooperative_rebalance_resumes_a_partition_paused_for_a_retry() {
    paused_partitions_come_back(Reason::Backoff, "cooperative-sticky");
}

#[test]
fn cooperative_rebalance_resumes_a_partition_paused_by_the_consumer() {
    paused_partitions_come_back(Reason::ConsumerPause, "cooperative-sticky");
}

#[test]
fn cooperative_rebalance_resumes_a_partition_paused_for_its_backlog() {
    paused_partitions_come_back(Reason::Backlog, "cooperative-sticky");
}

#[test]
fn cooperative_rebalance_keeps_a_quiet_server_quiet() {
    paused_partitions_come_back(Reason::Quiet, "cooperative-sticky");
}

#[test]
fn kip848_rebalance_resumes_a_partition_paused_for_a_retry() {
    paused_partitions_come_back(Reason::Backoff, "consumer");
}

#[test]
fn kip848_rebalance_resumes_a_partition_paused_by_the_consumer() {
    paused_partitions_come_back(Reason::ConsumerPause, "consumer");
}

#[test]
fn kip848_rebalance_resumes_a_partition_paused_for_its_backlog() {
    paused_partitions_come_back(Reason::Backlog, "consumer");
}

#[test]
fn kip848_rebalance_keeps_a_quiet_server_quiet() {
    paused_partitions_come_back(Reason::Quiet, "consumer");
}
