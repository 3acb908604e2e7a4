//! Virtual partitions against the embedded broker: one partition's batches split by key into
//! parallel groups; every message is processed in per-key order, and a failing group loses
//! nothing across a restart (the committed offset never passes an unfinished message).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{
    App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit, VirtualPartitions,
};

use crate::support::*;

/// (server instance, group instance, key, offset) in processing order.
type Log = Arc<Mutex<Vec<(u32, u32, String, i64)>>>;

/// Marks message by message; fails on offset `fail_at` while `fail_at` is set.
struct Keyed {
    server: u32,
    id: u32,
    log: Log,
    fail_at: Option<i64>,
    failures: Arc<AtomicU32>,
}

impl Consumer for Keyed {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            if Some(m.offset()) == self.fail_at {
                self.failures.fetch_add(1, Ordering::SeqCst);
                return Err("injected failure".into());
            }
            let key = m.key_str().unwrap_or_default().to_string();
            let entry = (self.server, self.id, key, m.offset());
            self.log.lock().unwrap().push(entry);
            ctx.mark_as_consumed(m);
        }
        Ok(())
    }
}

struct Setup {
    bootstrap: String,
    topic: String,
    group: String,
    log: Log,
    failures: Arc<AtomicU32>,
}

fn app(s: &Setup, server: u32, fail_at: Option<i64>) -> App {
    let (bootstrap, group, topic) = (s.bootstrap.clone(), s.group.clone(), s.topic.clone());
    let (log, failures) = (s.log.clone(), s.failures.clone());
    let ids = Arc::new(AtomicU32::new(0));
    App::builder()
        .setup(move |c| {
            c.client_id("vp")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(50)
                .max_wait_time(Duration::from_millis(100))
                .concurrency(3)
                .pause_timeout(Duration::from_millis(300))
                .consumer_persistence(true);
        })
        .routes(move |r| {
            r.topic(topic)
                .virtual_partitions(VirtualPartitions::new(3))
                .consumer(move || Keyed {
                    server,
                    id: ids.fetch_add(1, Ordering::SeqCst),
                    log: log.clone(),
                    fail_at,
                    failures: failures.clone(),
                });
        })
        .build_with_env([])
}

fn setup(cluster: &Cluster, rt: &tokio::runtime::Runtime, name: &str) -> Setup {
    let topic = unique(name);
    cluster.create_topic(rt, &topic, 1);
    Setup {
        bootstrap: cluster.bootstrap(),
        topic,
        group: unique("vp-group"),
        log: Arc::default(),
        failures: Arc::default(),
    }
}

fn logged(s: &Setup) -> Vec<(u32, u32, String, i64)> {
    s.log.lock().unwrap().clone()
}

#[test]
fn keyed_messages_run_once_each_in_per_key_order_on_parallel_groups() {
    let rt = runtime();
    let cluster = Cluster::start();
    let s = setup(&cluster, &rt, "vp-order");
    const N: u64 = 600;
    cluster.produce_numbered(&rt, &s.topic, 0, N, 20);
    let server = app(&s, 1, None).start(&Filters::default()).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || s.log.lock().unwrap().len()
            >= N as usize),
        "processed {} of {N}",
        s.log.lock().unwrap().len()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.shutdown(), ServerExit::Clean);

    let log = logged(&s);
    let offsets: BTreeSet<i64> = log.iter().map(|e| e.3).collect();
    assert_eq!(log.len(), N as usize, "no message twice");
    assert_eq!(offsets, (0..N as i64).collect(), "every message once");
    let mut per_key: BTreeMap<&str, Vec<(u32, i64)>> = BTreeMap::new();
    for (_, id, key, offset) in &log {
        per_key.entry(key).or_default().push((*id, *offset));
    }
    for (key, runs) in &per_key {
        assert!(
            runs.iter().all(|r| r.0 == runs[0].0),
            "{key} changed groups"
        );
        assert!(
            runs.is_sorted_by_key(|r| r.1),
            "{key} out of order: {runs:?}"
        );
    }
    let groups: BTreeSet<u32> = log.iter().map(|e| e.1).collect();
    assert!(groups.len() >= 2, "the batch was split: {groups:?}");
}

#[test]
fn a_failing_group_loses_nothing_across_a_restart() {
    let rt = runtime();
    let cluster = Cluster::start();
    let s = setup(&cluster, &rt, "vp-restart");
    const N: i64 = 400;
    const FAIL_AT: i64 = 120;
    cluster.produce_numbered(&rt, &s.topic, 0, N as u64, 20);
    // The first server's group holding FAIL_AT fails on it every time, while the other
    // groups finish the rest of their batch and mark it message by message.
    let first = app(&s, 1, Some(FAIL_AT))
        .start(&Filters::default())
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || s
            .failures
            .load(Ordering::SeqCst)
            >= 2),
        "the injected failure never ran twice"
    );
    assert_eq!(first.shutdown(), ServerExit::Clean);
    let first_run = logged(&s);
    assert!(
        first_run.iter().any(|e| e.3 > FAIL_AT),
        "other groups went past the failing message"
    );

    let second = app(&s, 2, None).start(&Filters::default()).unwrap();
    let missing = || {
        let seen: BTreeSet<i64> = logged(&s).iter().map(|e| e.3).collect();
        (0..N).filter(|o| !seen.contains(o)).collect::<Vec<_>>()
    };
    let done = wait_until(Duration::from_secs(30), || missing().is_empty());
    assert!(done, "offsets never processed: {:?}", missing());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(second.shutdown(), ServerExit::Clean);

    let log = logged(&s);
    let resumed_at = log.iter().filter(|e| e.0 == 2).map(|e| e.3).min();
    assert!(
        resumed_at.is_some_and(|o| o <= FAIL_AT),
        "the restart resumed at {resumed_at:?}, past the unfinished offset {FAIL_AT}"
    );
    // Offsets in order on one "instance": the helper then checks the union has no gap.
    let mut seen: Vec<Seen> = log
        .iter()
        .map(|e| Seen {
            instance: 0,
            partition: 0,
            offset: e.3,
            number: 0,
        })
        .collect();
    seen.sort_by_key(|s| s.offset);
    assert_contiguous_per_partition(&seen);
    assert_eq!(seen.first().map(|s| s.offset), Some(0));
    assert_eq!(seen.last().map(|s| s.offset), Some(N - 1));
}
