//! `TopicReader` and `topics read` on the test's broker: exact ranges from an offset, a time and
//! the last n, across partitions, merged by timestamp, a stop at the end offsets while a
//! producer keeps writing, empty partitions, tailing, clear errors, and the command line.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrafka::reader::{Order, StartAt, StopAt, TopicReader};
use ferrafka::{Error, Message, Record};
use futures::StreamExt;

use crate::support::*;

/// Each message as (partition, offset, payload).
type Read = Vec<(i32, i64, String)>;

fn read_all(reader: TopicReader) -> Read {
    reader
        .map(|m| {
            let m = m.expect("no read error");
            (m.partition(), m.offset(), payload(&m))
        })
        .collect()
}

fn payload(m: &Message) -> String {
    String::from_utf8(m.payload_or_empty().to_vec()).unwrap()
}

fn offsets_of(read: &Read, partition: i32) -> Vec<i64> {
    read.iter()
        .filter(|(p, _, _)| *p == partition)
        .map(|(_, o, _)| *o)
        .collect()
}

fn reader(topic: &str) -> ferrafka::reader::ReaderBuilder {
    TopicReader::builder(topic).timeout(Duration::from_secs(20))
}

/// From an offset, the last n, and a count: exactly those offsets, each partition in order.
#[test]
fn reads_exactly_the_range_from_an_offset_and_the_last_n() {
    let (rt, cluster, topic) = with_topic("reader-range", 3);
    // Partition p holds the numbers n with n % 3 == p, at offset n / 3: offsets 0..10.
    cluster.produce_spread(&rt, &topic, 0, 30, 3);
    let bootstrap = cluster.bootstrap();

    let read = read_all(
        reader(&topic)
            .partitions([1])
            .start(StartAt::Offset(3))
            .connect(&bootstrap)
            .unwrap(),
    );
    let expected: Read = (3..10).map(|o| (1, o, (o * 3 + 1).to_string())).collect();
    assert_eq!(read, expected);

    let last = reader(&topic)
        .start(StartAt::Last(4))
        .connect(&bootstrap)
        .unwrap();
    let ranges: Vec<_> = last
        .ranges()
        .iter()
        .map(|r| (r.partition, r.start, r.end))
        .collect();
    assert_eq!(
        ranges,
        [(0, 6, Some(10)), (1, 6, Some(10)), (2, 6, Some(10))]
    );
    let read = read_all(last);
    assert_eq!(read.len(), 12, "{read:?}");
    for p in 0..3 {
        assert_eq!(offsets_of(&read, p), [6, 7, 8, 9], "partition {p}");
    }

    let counted = read_all(reader(&topic).max_messages(5).connect(&bootstrap).unwrap());
    assert_eq!(counted.len(), 5, "{counted:?}");
}

/// A time start and a time stop split the topic where the time fell between two writes.
#[test]
fn reads_exactly_the_messages_between_two_times() {
    let (rt, cluster, topic) = with_topic("reader-time", 1);
    cluster.produce_numbered(&rt, &topic, 0, 10, 1);
    // The embedded broker answers times from when each batch was stored: keep them apart.
    std::thread::sleep(Duration::from_millis(1500));
    let middle = SystemTime::now();
    std::thread::sleep(Duration::from_millis(1500));
    cluster.produce_numbered(&rt, &topic, 10, 20, 1);
    let bootstrap = cluster.bootstrap();

    let after = read_all(
        reader(&topic)
            .start(StartAt::Time(middle))
            .connect(&bootstrap)
            .unwrap(),
    );
    let numbers: Vec<String> = after.iter().map(|(_, _, n)| n.clone()).collect();
    let expected: Vec<String> = (10..20).map(|n| n.to_string()).collect();
    assert_eq!(numbers, expected);
    assert_eq!(offsets_of(&after, 0), (10..20).collect::<Vec<_>>());

    let before = read_all(
        reader(&topic)
            .stop(StopAt::Time(middle))
            .connect(&bootstrap)
            .unwrap(),
    );
    assert_eq!(offsets_of(&before, 0), (0..10).collect::<Vec<_>>());

    let future = SystemTime::now() + Duration::from_secs(3600);
    let none = reader(&topic)
        .start(StartAt::Time(future))
        .connect(&bootstrap)
        .unwrap();
    assert_eq!(none.ranges()[0].start, 20, "no message that late: the end");
    assert!(read_all(none).is_empty());
}

/// Merged by timestamp: numbers spread over three partitions in an irregular pattern, each
/// stamped in number order, come back in number order.
#[test]
fn merged_read_is_in_timestamp_order_across_partitions() {
    let (rt, cluster, topic) = with_topic("reader-merge", 3);
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let numbers: Vec<(i32, String)> = (0..60u32)
        .map(|n| (((n * n + n / 4) % 3) as i32, n.to_string()))
        .collect();
    let records = numbers.iter().enumerate().map(|(i, (p, text))| {
        Record::to(&topic)
            .partition(*p)
            .payload(text)
            .timestamp(base + i as i64 * 10)
    });
    rt.block_on(cluster.producer.produce_many(records)).unwrap();

    let read = read_all(
        reader(&topic)
            .order(Order::Timestamp)
            .connect(&cluster.bootstrap())
            .unwrap(),
    );
    let got: Vec<u32> = read.iter().map(|(_, _, n)| n.parse().unwrap()).collect();
    assert_eq!(got, (0..60).collect::<Vec<_>>());
    for p in 0..3 {
        let offsets = offsets_of(&read, p);
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, expected, "partition {p} whole and in offset order");
    }
}

/// Merged, with one partition's messages all later than the other's: the later partition
/// waits in the merge, its fetching paused at 10,000 waiting messages and resumed as they
/// drain, and every message of both still comes once, in order.
#[test]
fn a_merge_holding_one_partition_back_keeps_every_message_in_order() {
    let (rt, cluster, topic) = with_topic("reader-merge-far", 2);
    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 600_000;
    const EACH: i64 = 30_000;
    let texts: Vec<String> = (0..2 * EACH).map(|n| n.to_string()).collect();
    // Partition 1 holds 0..EACH, stamped first; partition 0 the rest, stamped later.
    let records = texts.iter().enumerate().map(|(n, text)| {
        let n = n as i64;
        Record::to(&topic)
            .partition(if n < EACH { 1 } else { 0 })
            .payload(text)
            .timestamp(base + n)
    });
    rt.block_on(cluster.producer.produce_many(records)).unwrap();

    let read = read_all(
        reader(&topic)
            .order(Order::Timestamp)
            .connect(&cluster.bootstrap())
            .unwrap(),
    );
    let numbers: Vec<i64> = read.iter().map(|(_, _, n)| n.parse().unwrap()).collect();
    assert!(
        numbers == (0..2 * EACH).collect::<Vec<_>>(),
        "{} messages, out of order or missing",
        numbers.len()
    );
    assert_eq!(offsets_of(&read, 0), (0..EACH).collect::<Vec<_>>());
}

/// The end offsets are taken at start: a producer writing all along does not extend the read,
/// and the read still returns every offset up to them.
#[test]
fn stops_at_the_end_offsets_taken_at_start_while_a_producer_keeps_writing() {
    let (rt, cluster, topic) = with_topic("reader-stop", 2);
    cluster.produce_spread(&rt, &topic, 0, 400, 2);
    let writing = Arc::new(AtomicBool::new(true));
    let producer = cluster.producer.clone();
    let (flag, name) = (writing.clone(), topic.clone());
    let background = rt.spawn(async move {
        let mut n = 400u64;
        while flag.load(Ordering::Relaxed) {
            let text = n.to_string();
            let record = Record::to(&name).partition((n % 2) as i32).payload(&text);
            producer.produce(record).await.expect("produced");
            n += 1;
        }
        n - 400
    });
    std::thread::sleep(Duration::from_millis(300));

    let started = reader(&topic).connect(&cluster.bootstrap()).unwrap();
    let ends: BTreeMap<i32, i64> = started
        .ranges()
        .iter()
        .map(|r| (r.partition, r.end.unwrap()))
        .collect();
    let read = read_all(started);
    std::thread::sleep(Duration::from_millis(300));
    writing.store(false, Ordering::Relaxed);
    let written_meanwhile = rt.block_on(background).unwrap();

    for (p, end) in &ends {
        assert!(*end >= 200, "partition {p} ends at {end}");
        assert_eq!(
            offsets_of(&read, *p),
            (0..*end).collect::<Vec<_>>(),
            "partition {p}"
        );
        let (_, high) = cluster.admin.watermarks(&topic, *p).unwrap();
        assert!(
            high > *end,
            "partition {p}: written after start ({high} > {end})"
        );
    }
    assert!(written_meanwhile > 0);
}

/// Empty partitions end at once, in either order, and an empty topic reads nothing.
#[test]
fn empty_partitions_and_an_empty_topic_end_at_once() {
    let (rt, cluster, topic) = with_topic("reader-empty", 3);
    let records = (0..5).map(|_| Record::to(&topic).partition(0).payload("x"));
    rt.block_on(cluster.producer.produce_many(records)).unwrap();
    let bootstrap = cluster.bootstrap();
    for order in [Order::PerPartition, Order::Timestamp] {
        let reader = reader(&topic).order(order).connect(&bootstrap).unwrap();
        let ranges: Vec<_> = reader.ranges().iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(ranges, [(0, Some(5)), (0, Some(0)), (0, Some(0))]);
        let read = read_all(reader);
        assert_eq!(offsets_of(&read, 0), [0, 1, 2, 3, 4], "{order:?}");
        assert_eq!(read.len(), 5);
    }

    let empty = unique("reader-empty-topic");
    cluster.create_topic(&rt, &empty, 2);
    let started = Instant::now();
    let read = read_all(reader(&empty).connect(&bootstrap).unwrap());
    assert!(read.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Tailing (as a stream, merged): the last message of each partition, then one produced after
/// the start, while the other partition stays idle.
#[test]
fn tailing_returns_a_message_produced_after_the_start() {
    let (rt, cluster, topic) = with_topic("reader-tail", 2);
    cluster.produce_spread(&rt, &topic, 0, 6, 2);
    let stream = reader(&topic)
        .start(StartAt::Last(1))
        .stop(StopAt::Never)
        .order(Order::Timestamp)
        .connect(&cluster.bootstrap())
        .unwrap()
        .into_stream();
    let within = Duration::from_secs(20);
    rt.block_on(async {
        let mut stream = stream;
        let mut next = async || {
            let m = tokio::time::timeout(within, stream.next())
                .await
                .expect("a message within the timeout")
                .expect("the stream goes on")
                .expect("no read error");
            (m.partition(), m.offset(), payload(&m))
        };
        let mut first = vec![next().await, next().await];
        first.sort();
        assert_eq!(first, [(0, 2, "4".into()), (1, 2, "5".into())]);
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster
            .producer
            .produce(Record::to(&topic).partition(1).payload("later"))
            .await
            .unwrap();
        assert_eq!(next().await, (1, 3, "later".into()));
    });
}

/// Transaction markers take offsets without being messages, and aborted messages are not
/// returned (`read_committed`): the read still ends, at the end-of-partition event, with the
/// committed messages only. Apache Kafka: the embedded broker's transactions are untested.
#[test]
fn transaction_markers_and_aborted_messages_do_not_stall_the_end() {
    use ferrafka::rdkafka::ClientConfig;
    use ferrafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};

    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("reader-tx");
    cluster.create_topic(&rt, &topic, 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("transactional.id", unique("reader-tx"))
        .create()
        .unwrap();
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).unwrap();
    let transaction = |payloads: &[&str], commit: bool| {
        producer.begin_transaction().unwrap();
        for p in payloads {
            producer
                .send(BaseRecord::<(), str>::to(&topic).partition(0).payload(*p))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        if commit {
            producer.commit_transaction(timeout).unwrap();
        } else {
            producer.flush(timeout).unwrap();
            producer.abort_transaction(timeout).unwrap();
        }
    };
    // Offsets 0-4 committed, 5 its marker; 6-7 aborted, 8 their marker.
    transaction(&["a", "b", "c", "d", "e"], true);
    transaction(&["x", "y"], false);
    let bootstrap = cluster.bootstrap();

    let started = Instant::now();
    let all = reader(&topic).connect(&bootstrap).unwrap();
    assert_eq!(all.ranges()[0].end, Some(9));
    let read = read_all(all);
    let payloads: Vec<&str> = read.iter().map(|(_, _, p)| p.as_str()).collect();
    assert_eq!(payloads, ["a", "b", "c", "d", "e"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let last = reader(&topic)
        .start(StartAt::Last(3))
        .connect(&bootstrap)
        .unwrap();
    assert_eq!(last.ranges()[0].start, 6);
    assert!(
        read_all(last).is_empty(),
        "offsets 6-8 hold no committed message"
    );
}

/// An unknown topic or partition is refused at open, naming it.
#[test]
fn an_unknown_topic_or_partition_is_a_clear_error() {
    let (_rt, cluster, topic) = with_topic("reader-unknown", 2);
    let bootstrap = cluster.bootstrap();
    let missing = unique("reader-missing");
    let error = reader(&missing).connect(&bootstrap).unwrap_err();
    assert!(matches!(error, Error::Read { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.contains(&missing) && text.contains("does not exist"),
        "{text}"
    );

    let error = reader(&topic)
        .partitions([0, 5])
        .connect(&bootstrap)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("partition 5 does not exist") && error.contains("2 partition(s), 0 to 1"),
        "{error}"
    );
}

const FIXTURE: &str = env!("CARGO_BIN_EXE_ferrafka-reload-fixture");

/// `topics read ARGS` of an app's binary (the test fixture app), on `bootstrap`.
fn topics_read_command(bootstrap: &str, dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(FIXTURE);
    command
        .args(["topics", "read"])
        .args(args)
        .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .env("RELOAD_FIXTURE_TOPIC", "unused")
        .env("RELOAD_FIXTURE_GROUP", "unused")
        .env("RELOAD_FIXTURE_OUT", dir.join("out"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null());
    command
}

/// `topics read` run to its end: exit code, stdout and stderr.
fn topics_read(bootstrap: &str, args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let output = topics_read_command(bootstrap, dir.path(), args)
        .output()
        .expect("fixture runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `topics read --last 1 --follow` prints the last message, then one produced after it
/// started, and keeps running until stopped.
#[test]
fn topics_read_follow_prints_a_message_produced_after_it_started() {
    use std::io::BufRead;

    let (rt, cluster, topic) = with_topic("reader-cli-follow", 1);
    for payload in ["old", "last"] {
        rt.block_on(
            cluster
                .producer
                .produce(Record::to(&topic).payload(payload)),
        )
        .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = topics_read_command(
        &cluster.bootstrap(),
        dir.path(),
        &[&topic, "--last", "1", "--follow"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("fixture starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let within = Duration::from_secs(30);
    let fields = |line: String| -> (String, String) {
        let f: Vec<&str> = line.split('\t').collect();
        (f[1].to_string(), f[4].to_string())
    };
    let first = lines.recv_timeout(within).expect("the last message");
    assert_eq!(fields(first), ("1".into(), "last".into()));
    rt.block_on(cluster.producer.produce(Record::to(&topic).payload("new")))
        .unwrap();
    let second = lines.recv_timeout(within).expect("the new message");
    assert_eq!(fields(second), ("2".into(), "new".into()));
    assert!(child.try_wait().unwrap().is_none(), "still following");
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The command line prints the requested range, every byte a terminal could act on escaped,
/// as text or JSON, merged; an unknown topic fails with exit code 1.
#[test]
fn topics_read_prints_the_range_with_unsafe_bytes_escaped() {
    let (rt, cluster, topic) = with_topic("reader-cli", 2);
    let payloads: [&[u8]; 4] = [b"zero", b"tab\there", b"\x1b[2Jclear\xff", b"three"];
    let records = payloads.iter().enumerate().map(|(i, p)| {
        Record::to(&topic)
            .partition(0)
            .key("k")
            .payload(*p)
            .timestamp(1_796_635_800_000 + i as i64)
    });
    rt.block_on(cluster.producer.produce_many(records)).unwrap();
    rt.block_on(
        cluster.producer.produce(
            Record::to(&topic)
                .partition(1)
                .payload("p1")
                .timestamp(1_796_635_800_010),
        ),
    )
    .unwrap();
    let bootstrap = cluster.bootstrap();

    let (code, out, err) = topics_read(
        &bootstrap,
        &[&topic, "-p", "0", "--from-offset", "1", "--count", "2"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "0\t1\t2026-12-07T09:30:00.001Z\tk\ttab\\there\n\
         0\t2\t2026-12-07T09:30:00.002Z\tk\t\\u{1b}[2Jclear\\xff\n"
    );

    let (code, out, err) = topics_read(
        &bootstrap,
        &[&topic, "--last", "1", "--merged", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(
        (lines[0]["partition"].as_i64(), lines[0]["payload"].as_str()),
        (Some(0), Some("three"))
    );
    assert_eq!(
        (lines[1]["partition"].as_i64(), lines[1]["payload"].as_str()),
        (Some(1), Some("p1"))
    );
    assert_eq!(lines[1]["key"], serde_json::Value::Null);

    let missing = unique("reader-cli-missing");
    let (code, out, err) = topics_read(&bootstrap, &[&missing]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains(&format!(
            "cannot read topic {missing}: the topic does not exist"
        )),
        "{err}"
    );
}
