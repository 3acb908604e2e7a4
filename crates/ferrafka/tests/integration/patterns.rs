//! Routing patterns: one route consumes every topic its regular expression matches, topics
//! created after the server started included, with each partition processed gap-free; a topic
//! the pattern does not match is left alone. On both brokers under the classic protocol
//! (librdkafka matches against all-topic metadata), and on Apache Kafka under KIP-848 (the
//! broker matches, RE2/J, whole names).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};

use crate::support::*;

/// (topic, partition, offset, number) of every processed message.
type Processed = Arc<Mutex<Vec<(String, i32, i64, u64)>>>;

struct ByTopic(Processed);

impl Consumer for ByTopic {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut seen = self.0.lock().unwrap();
        for m in messages {
            let number: u64 = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            seen.push((m.topic().to_string(), m.partition(), m.offset(), number));
        }
        Ok(())
    }
}

fn app(bootstrap: &str, group: &str, regex: &str, kip848: bool, seen: &Processed) -> App {
    let (bootstrap, group, regex) = (bootstrap.to_string(), group.to_string(), regex.to_string());
    let seen = seen.clone();
    App::builder()
        .setup(move |c| {
            c.client_id("patterns")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_messages(50)
                .max_wait_time(Duration::from_millis(100));
            if kip848 {
                c.kafka("group.protocol", "consumer");
            } else {
                c.kafka("session.timeout.ms", "6000")
                    .kafka("heartbeat.interval.ms", "500");
            }
        })
        .routes(move |r| {
            // New topics are seen on the next metadata refresh (classic): 5 min by default.
            r.pattern("numbered", regex)
                .consumer(move || ByTopic(seen.clone()))
                .kafka("topic.metadata.refresh.interval.ms", "1000");
        })
        .build_with_env([])
}

/// Every number processed once, each (topic, partition) gap-free, only from `topics`.
fn assert_complete(seen: &Processed, numbers: u64, topics: &[&str]) {
    let seen = seen.lock().unwrap().clone();
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    let mut offsets: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    for (topic, partition, offset, number) in &seen {
        *counts.entry(*number).or_default() += 1;
        offsets
            .entry((topic.clone(), *partition))
            .or_default()
            .push(*offset);
    }
    assert_eq!(counts.len() as u64, numbers, "every message processed");
    assert!(
        counts.values().all(|c| *c == 1),
        "a message was processed twice"
    );
    for ((topic, partition), offsets) in &offsets {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, &expected,
            "{topic}/{partition} not contiguous from 0"
        );
    }
    let consumed: BTreeSet<&str> = seen.iter().map(|(t, ..)| t.as_str()).collect();
    assert_eq!(
        consumed,
        topics.iter().copied().collect(),
        "topics consumed"
    );
}

#[test]
fn a_pattern_consumes_matching_topics_including_one_created_after_start() {
    let cluster = Cluster::start();
    let prefix = unique("pattern");
    let [early, unmatched, late] = ["a", "zz", "b"].map(|s| format!("{prefix}-{s}"));
    let regex = format!("^{prefix}-[a-z]$");
    consumes_early_and_late(&cluster, &regex, false, [&early, &unmatched, &late], 300);
}

#[test]
fn under_kip_848_the_broker_matches_whole_names_with_re2j() {
    let cluster = Cluster::kafka();
    let prefix = unique("pattern848");
    // `^prefix-\d+` searched (classic) would take `-2x` too; the broker matches whole names.
    let [early, unmatched, late] = ["1", "2x", "2"].map(|s| format!("{prefix}-{s}"));
    // `\d` is RE2/J syntax, refused under the classic protocol.
    let regex = format!("^{prefix}-\\d+");
    consumes_early_and_late(&cluster, &regex, true, [&early, &unmatched, &late], 200);
}

/// A server on `regex` consumes `n` messages of `early` (and none of `unmatched`), then `n`
/// more of `late`, created while it runs: found on a metadata refresh, joined without a
/// restart. Every message is processed, each topic gap-free from offset 0.
fn consumes_early_and_late(
    cluster: &Cluster,
    regex: &str,
    kip848: bool,
    [early, unmatched, late]: [&str; 3],
    n: u64,
) {
    let rt = runtime();
    cluster.create_topic(&rt, early, 2);
    cluster.create_topic(&rt, unmatched, 1);
    let seen = Processed::default();
    let group = unique("pattern-group");
    let server = app(&cluster.bootstrap(), &group, regex, kip848, &seen)
        .start(&Filters::default())
        .expect("server starts");
    cluster.produce_numbered(&rt, early, 0, n, 7);
    cluster.produce_numbered(&rt, unmatched, 10_000, 10_010, 7);
    let processed = |at_least: u64| {
        wait_until(Duration::from_secs(90), || {
            seen.lock().unwrap().len() as u64 >= at_least
        })
    };
    assert!(
        processed(n),
        "processed {} of the early topic's {n}",
        seen.lock().unwrap().len()
    );
    let created = std::time::Instant::now();
    cluster.create_topic(&rt, late, 3);
    cluster.produce_numbered(&rt, late, n, 2 * n, 7);
    assert!(
        processed(2 * n),
        "processed {} of {} after the late topic was created",
        seen.lock().unwrap().len(),
        2 * n
    );
    eprintln!(
        "late topic consumed {:?} after its creation",
        created.elapsed()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert_complete(&seen, 2 * n, &[early, late]);
}

#[test]
fn a_pattern_the_classic_engine_lacks_stops_the_boot_naming_route_and_protocol() {
    let seen = Processed::default();
    let error = app("127.0.0.1:9", "g", "^orders-\\d+$", false, &seen)
        .validate()
        .expect_err("`\\d` is refused under the classic protocol")
        .to_string();
    assert!(error.contains("routes.g.numbered.pattern"), "{error}");
    assert!(error.contains("classic group protocol"), "{error}");
    assert!(error.contains("group.protocol=consumer"), "{error}");
    assert!(
        app("127.0.0.1:9", "g", "^orders-\\d+$", true, &seen)
            .validate()
            .is_ok()
    );
}
