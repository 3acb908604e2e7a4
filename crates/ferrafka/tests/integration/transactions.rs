//! Transactional routes: output and offsets commit together, so a `read_committed` reader sees
//! every input exactly once; an aborted transaction leaves nothing visible; the embedded broker
//! (no transactions) is refused at boot. The Kafka cases run only with
//! `FERRAFKA_TEST_BROKER=kafka`, the embedded one only without.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrafka::rdkafka::Message as _;
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _};
use ferrafka::rdkafka::{Offset, TopicPartitionList};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Record};

use crate::support::*;

fn on_kafka() -> bool {
    std::env::var("FERRAFKA_TEST_BROKER").as_deref() == Ok("kafka")
}

/// Forwards every input's payload to `out` (same partition) in one transaction per batch that
/// also marks the batch; `fail_attempts` first attempts of every batch abort after producing.
struct Forward {
    out: String,
    sleep: Duration,
    fail_attempts: u32,
    attempts: Arc<AtomicUsize>,
}

impl Consumer for Forward {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let fail = ctx.attempt() <= self.fail_attempts;
        let (out, sleep) = (&self.out, self.sleep);
        ctx.transaction(async |tx| {
            let records = messages.iter().map(|m| {
                Record::to(out)
                    .partition(m.partition())
                    .payload(m.payload_or_empty())
            });
            tx.produce_many(records).await?;
            for m in messages {
                tx.mark_as_consumed(m);
            }
            // Widens the window in which a rebalance or a kill meets an open transaction.
            tokio::time::sleep(sleep).await;
            if fail {
                return Err("this attempt aborts its transaction".into());
            }
            Ok(())
        })
        .await
    }
}

#[allow(clippy::too_many_arguments)]
fn app(
    bootstrap: &str,
    (input, out): (&str, &str),
    group: &str,
    transactional_id: &str,
    sleep: Duration,
    fail_attempts: u32,
    attempts: &Arc<AtomicUsize>,
) -> App {
    let (bootstrap, group, transactional_id) = (
        bootstrap.to_string(),
        group.to_string(),
        transactional_id.to_string(),
    );
    let (input, out, attempts) = (input.to_string(), out.to_string(), attempts.clone());
    App::builder()
        .setup(move |c| {
            c.client_id("tx-test")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .kafka("session.timeout.ms", "6000")
                .kafka("heartbeat.interval.ms", "500");
            c.max_messages(20)
                .max_wait_time(Duration::from_millis(50))
                .concurrency(3)
                .pause_timeout(Duration::from_millis(100))
                .pause_max_timeout(Duration::from_millis(100))
                .revocation_timeout(Duration::from_millis(200))
                .shutdown_timeout(Duration::from_secs(20))
                .transactional_id(transactional_id);
        })
        .routes(move |r| {
            r.topic(input)
                .transactional(true)
                .consumer(move || Forward {
                    out: out.clone(),
                    sleep,
                    fail_attempts,
                    attempts: attempts.clone(),
                });
        })
        .build_with_env([])
}

/// Every message of `topic`'s partitions as (partition, payload), read from the start with
/// `isolation.level` until nothing new came for 4 s (or 20 s passed: a topic still written).
fn read_all(bootstrap: &str, topic: &str, partitions: i32, isolation: &str) -> Vec<(i32, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("tx-reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("a reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let (started, mut last) = (Instant::now(), Instant::now());
    while last.elapsed() < Duration::from_secs(4) && started.elapsed() < Duration::from_secs(20) {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let payload = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            seen.push((m.partition(), payload));
            last = Instant::now();
        }
    }
    seen
}

/// How often each payload appears.
fn counts(seen: &[(i32, String)]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (_, payload) in seen {
        *counts.entry(payload.clone()).or_insert(0) += 1;
    }
    counts
}

/// Asserts that `out`, read committed, holds every number `0..n` exactly once, and that the
/// group's committed offsets reached the end of every input partition.
fn assert_exactly_once(cluster: &Cluster, (input, out): (&str, &str), group: &str, n: u64) {
    let committed_to_end = wait_until(Duration::from_secs(60), || {
        cluster
            .broker
            .admin()
            .lags(group, &[input])
            .is_ok_and(|lags| lags.iter().all(|l| l.lag == Some(0)))
    });
    let lags = cluster.broker.admin().lags(group, &[input]).unwrap();
    assert!(
        committed_to_end,
        "committed offsets reach the end: {lags:?}"
    );
    let seen = read_all(&cluster.bootstrap(), out, 3, "read_committed");
    let counts = counts(&seen);
    let missing: Vec<u64> = (0..n)
        .filter(|i| !counts.contains_key(&i.to_string()))
        .collect();
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(missing.is_empty(), "missing from the output: {missing:?}");
    assert!(twice.is_empty(), "more than once in the output: {twice:?}");
    assert_eq!(seen.len() as u64, n);
}

#[test]
fn an_aborted_transaction_leaves_neither_output_nor_offset() {
    if !on_kafka() {
        return eprintln!("skipped: needs FERRAFKA_TEST_BROKER=kafka (transactions)");
    }
    let rt = runtime();
    let cluster = Cluster::start();
    let (input, out, group) = (
        unique("tx-abort-in"),
        unique("tx-abort-out"),
        unique("tx-abort"),
    );
    cluster.create_topic(&rt, &input, 3);
    cluster.create_topic(&rt, &out, 3);
    const N: u64 = 90;
    cluster.produce_spread(&rt, &input, 0, N, 3);
    let attempts = Arc::new(AtomicUsize::new(0));
    let id = unique("tx-abort-id");

    // Every attempt aborts: the output holds aborted records only, and no offset is committed.
    let failing = app(
        &cluster.bootstrap(),
        (&input, &out),
        &group,
        &id,
        Duration::ZERO,
        u32::MAX,
        &attempts,
    );
    let server = failing.start(&Filters::default()).expect("starts on Kafka");
    let uncommitted = wait_until(Duration::from_secs(60), || {
        read_all(&cluster.bootstrap(), &out, 3, "read_uncommitted").len() as u64 >= 2 * N
    });
    server.stop();
    assert!(matches!(server.wait(), ferrafka::ServerExit::Clean));
    assert!(
        uncommitted,
        "the aborted attempts did produce (read_uncommitted sees them)"
    );
    assert!(
        attempts.load(Ordering::SeqCst) >= 6,
        "every batch was retried"
    );
    let committed = read_all(&cluster.bootstrap(), &out, 3, "read_committed");
    assert!(
        committed.is_empty(),
        "aborted output is invisible: {committed:?}"
    );
    let lags = cluster
        .broker
        .admin()
        .lags(&group, &[input.as_str()])
        .unwrap();
    assert!(
        lags.iter().all(|l| l.committed.is_none()),
        "no offset committed: {lags:?}"
    );

    // The first attempt of every batch aborts, the second commits: each input once.
    let retrying = app(
        &cluster.bootstrap(),
        (&input, &out),
        &group,
        &id,
        Duration::ZERO,
        1,
        &attempts,
    );
    let server = retrying.start(&Filters::default()).unwrap();
    assert_exactly_once(&cluster, (&input, &out), &group, N);
    server.stop();
    assert!(matches!(server.wait(), ferrafka::ServerExit::Clean));
}

#[test]
fn rebalances_mid_transaction_yield_every_input_exactly_once() {
    if !on_kafka() {
        return eprintln!("skipped: needs FERRAFKA_TEST_BROKER=kafka (transactions)");
    }
    let rt = runtime();
    let cluster = Cluster::start();
    let (input, out, group) = (
        unique("tx-rebal-in"),
        unique("tx-rebal-out"),
        unique("tx-rebal"),
    );
    cluster.create_topic(&rt, &input, 3);
    cluster.create_topic(&rt, &out, 3);
    const N: u64 = 1500;
    cluster.produce_spread(&rt, &input, 0, N, 3);
    let attempts = Arc::new(AtomicUsize::new(0));
    // Batches hold their transaction open 300 ms, past the 200 ms revocation timeout: each
    // rebalance meets open transactions that must not commit.
    let slow = Duration::from_millis(300);
    let start = |id: &str| {
        app(
            &cluster.bootstrap(),
            (&input, &out),
            &group,
            id,
            slow,
            0,
            &attempts,
        )
        .start(&Filters::default())
        .unwrap()
    };
    let first = start(&unique("tx-rebal-a"));
    let batches = |n: usize| {
        wait_until(Duration::from_secs(60), || {
            attempts.load(Ordering::SeqCst) >= n
        })
    };
    assert!(batches(5), "the first server works");
    let second = start(&unique("tx-rebal-b"));
    assert!(batches(20), "both work");
    first.stop(); // its partitions move to the second mid-transaction
    let _ = first.wait();
    assert!(batches(30));
    let third = start(&unique("tx-rebal-c"));
    assert_exactly_once(&cluster, (&input, &out), &group, N);
    second.stop();
    third.stop();
    let _ = (second.wait(), third.wait());
}

#[test]
fn the_embedded_broker_refuses_a_transactional_route_at_boot_naming_it() {
    if on_kafka() {
        return eprintln!("skipped: the embedded broker's refusal");
    }
    let (rt, cluster, input) = with_topic("tx-embedded", 1);
    let out = unique("tx-embedded-out");
    cluster.create_topic(&rt, &out, 1);
    let attempts = Arc::new(AtomicUsize::new(0));
    let app = app(
        &cluster.bootstrap(),
        (&input, &out),
        "tx-embedded",
        "tx-embedded-0",
        Duration::ZERO,
        0,
        &attempts,
    );
    let started = Instant::now();
    let error = match app.start(&Filters::default()) {
        Ok(_) => panic!("a transactional route must not start without transactions"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains(&format!("tx-embedded/{input}")), "{error}");
    assert!(error.contains(".transactional(true)"), "{error}");
    assert!(
        error.contains("embedded broker has no transactions"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_transactional_route_needs_a_transactional_id_and_no_virtual_partitions() {
    let app = App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", "127.0.0.1:1");
        })
        .routes(|r| {
            r.topic("in")
                .transactional(true)
                .virtual_partitions(ferrafka::VirtualPartitions::new(2))
                .consumer(|| Noop);
        })
        .build_with_env([]);
    let error = app.validate().unwrap_err().to_string();
    assert!(error.contains("transactional_id"), "{error}");
    assert!(error.contains("without virtual partitions"), "{error}");
}
