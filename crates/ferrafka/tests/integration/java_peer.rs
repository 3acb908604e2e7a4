//! Interop with Apache Kafka's own Java client, on Apache Kafka: the Java peer
//! (`testing/kafka/peer`, built with Maven on first use) writes records with null, empty and
//! binary keys and values, tombstones, repeated and null headers, explicit timestamps and every
//! codec, and ferrafka must read them exactly; the peer reads back exactly what ferrafka's
//! producer writes; and ferrafka's producer must put every key on the partition the Java
//! client's default partitioner picks (on the embedded broker too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ferrafka::messages::Timestamp;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record};

use crate::support::*;

/// One record as both clients see it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: i64,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// The newest modification time of `path` and, for a directory, everything under it.
fn newest(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            newest = newest.max(self::newest(&entry.path()).unwrap_or(newest));
        }
    }
    Some(newest)
}

/// `java -jar kafka-peer.jar`, built with Maven (offline when it can) the first time and
/// whenever the pom or a source file is newer than the jar.
fn peer() -> Command {
    static BUILD: Mutex<()> = Mutex::new(());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testing/kafka/peer");
    let jar = dir.join("target/kafka-peer.jar");
    let _one_build = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let sources = newest(&dir.join("pom.xml")).max(newest(&dir.join("src")));
    let stale = match newest(&jar) {
        Some(built) => sources.is_some_and(|s| s > built),
        None => true,
    };
    if stale {
        let pom = dir.join("pom.xml");
        let mvn = |offline: bool| {
            let mut c = Command::new("mvn");
            c.args(["-q", "-f"]).arg(&pom).arg("package");
            if offline {
                c.arg("-o");
            }
            c.status().is_ok_and(|s| s.success())
        };
        assert!(
            mvn(true) || mvn(false),
            "cannot build the Java peer: `mvn -q -f {} package` failed (needs Java 17+ and Maven)",
            pom.display()
        );
    }
    let mut java = Command::new("java");
    java.arg("-jar").arg(jar).env("LANG", "C.UTF-8");
    java
}

/// Runs the peer with `args`; its stdout's JSON lines.
fn run_peer(args: &[&str]) -> Vec<serde_json::Value> {
    let out = peer().args(args).output().expect("java runs");
    assert!(
        out.status.success(),
        "peer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("ASCII JSON")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn bytes(v: &serde_json::Value) -> Option<Vec<u8>> {
    let b64 = v.as_str()?;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64"),
    )
}

fn parse(v: &serde_json::Value) -> Rec {
    Rec {
        partition: v["partition"].as_i64().expect("partition") as i32,
        offset: v["offset"].as_i64().expect("offset"),
        key: bytes(&v["key"]),
        value: bytes(&v["value"]),
        timestamp: v["timestamp"].as_i64().expect("timestamp"),
        headers: v["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| {
                (
                    h["key"].as_str().expect("key").to_string(),
                    bytes(&h["value"]),
                )
            })
            .collect(),
    }
}

/// Every record it consumes, as a [`Rec`].
struct Collect(Arc<Mutex<Vec<Rec>>>);

impl Consumer for Collect {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut seen = self.0.lock().unwrap();
        for m in messages {
            let timestamp = match m.timestamp() {
                Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => t,
                Timestamp::NotAvailable => -1,
            };
            seen.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp,
                headers: m
                    .headers()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
            });
        }
        Ok(())
    }
}

#[test]
fn ferrafka_reads_exactly_what_the_java_client_writes() {
    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("java-to-ferrafka");
    cluster.create_topic(&rt, &topic, 3);
    let mut written: Vec<Rec> = run_peer(&["produce", &cluster.bootstrap(), &topic, "3"])
        .iter()
        .map(parse)
        .collect();
    written.sort();
    assert_eq!(written.len(), 200, "the peer writes 200 records");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = {
        let (bootstrap, topic, seen) = (cluster.bootstrap(), topic.clone(), seen.clone());
        App::builder()
            .setup(move |c| {
                c.client_id("java-peer")
                    .group_id(unique("java-peer-group"))
                    .kafka("bootstrap.servers", bootstrap);
                c.max_wait_time(Duration::from_millis(50));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Collect(seen.clone()));
            })
            .build_with_env([])
            .start(&Filters::default())
            .expect("starts")
    };
    let all = wait_until(Duration::from_secs(60), || {
        seen.lock().unwrap().len() >= 200
    });
    server.shutdown();
    assert!(all, "read {} of 200", seen.lock().unwrap().len());
    let mut read = seen.lock().unwrap().clone();
    read.sort();
    for (w, r) in written.iter().zip(&read) {
        assert_eq!(w, r, "record {}/{}", w.partition, w.offset);
    }
    assert_eq!(read.len(), written.len(), "nothing read twice");
}

/// A key, a value and headers (ferrafka's producer writes no null header values).
type Shape = (Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Vec<u8>)>);

/// The records ferrafka's producer writes with each codec.
fn ferrafka_records() -> Vec<Shape> {
    let binary: Vec<u8> = (0..=255u8).collect();
    let h = |pairs: &[(&str, &[u8])]| -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    };
    vec![
        (None, Some(b"no key".to_vec()), vec![]),
        (Some(b"k-1".to_vec()), Some(b"one".to_vec()), vec![]),
        (Some(Vec::new()), Some(b"empty key".to_vec()), vec![]),
        (Some(vec![0, 255, 128, 0]), Some(binary.clone()), vec![]),
        (Some(b"k-2".to_vec()), None, vec![]), // a tombstone
        (Some(b"k-3".to_vec()), Some(Vec::new()), vec![]),
        (
            Some("ключ".as_bytes().to_vec()),
            Some("grüße 世界 🎉".as_bytes().to_vec()),
            h(&[("ünïcode", "välue".as_bytes())]),
        ),
        (
            Some(b"k-4".to_vec()),
            Some(b"headers".to_vec()),
            h(&[
                ("dup", b"first"),
                ("other", b"x"),
                ("dup", b"second"),
                ("empty", b""),
            ]),
        ),
        (
            None,
            Some(b"binary header".to_vec()),
            h(&[("bin", &[0, 255, 0])]),
        ),
    ]
}

#[test]
fn the_java_client_reads_exactly_what_ferrafka_writes() {
    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("ferrafka-to-java");
    cluster.create_topic(&rt, &topic, 3);
    let mut written = Vec::new();
    for (i, codec) in ["none", "gzip", "snappy", "lz4", "zstd"]
        .into_iter()
        .enumerate()
    {
        let producer = Producer::new(&BTreeMap::from([
            ("bootstrap.servers".to_string(), cluster.bootstrap()),
            ("compression.codec".to_string(), codec.to_string()),
        ]))
        .expect("producer");
        for (n, (key, value, headers)) in ferrafka_records().into_iter().enumerate() {
            let timestamp = 1_700_000_000_000 + 1000 * i as i64 + n as i64;
            let mut record = Record::to(&topic).timestamp(timestamp);
            if let Some(k) = &key {
                record = record.key(k);
            } else {
                record = record.partition((n % 3) as i32);
            }
            if let Some(v) = &value {
                record = record.payload(v);
            }
            for (hk, hv) in &headers {
                record = record.header(hk, hv);
            }
            let delivered = rt.block_on(producer.produce(record)).expect("delivered");
            written.push(Rec {
                partition: delivered.partition,
                offset: delivered.offset,
                key,
                value,
                timestamp,
                headers: headers.into_iter().map(|(k, v)| (k, Some(v))).collect(),
            });
        }
    }
    written.sort();
    let expected = written.len().to_string();
    let mut read: Vec<Rec> =
        run_peer(&["consume", &cluster.bootstrap(), &topic, &expected, "30000"])
            .iter()
            .map(parse)
            .collect();
    read.sort();
    assert_eq!(read, written);
}

/// 300 keys placed by the Java client's default partitioner and by ferrafka's producers, on a
/// topic with 6 partitions. The Java side: the peer's `partition-b64` (the client's own
/// `BuiltInPartitioner`, no broker) and `produce-keys` (the client producing them, each
/// acknowledged partition checked against `Utils.toPositive(Utils.murmur2(key)) % 6`), and
/// `partitioning`'s own murmur2. The ferrafka side, on the suite's broker (the embedded one,
/// then Apache Kafka): the app's producer with default settings, one from `Producer::new`, and
/// one on librdkafka's default (`consistent_random`), which must disagree. The Java client
/// cannot produce to the embedded broker (its connection to the broker's node is closed at the
/// first ApiVersions request), so in the embedded half it produces on Apache Kafka, where
/// ferrafka's default producer places the keys too.
#[test]
fn every_key_lands_on_the_partition_the_java_client_picks() {
    use crate::partitioning::{app_producer, java_partition, keys, placed};
    let rt = runtime();
    let cluster = Cluster::start();
    let separate_kafka = (!cluster.broker.is_kafka()).then(Cluster::kafka);
    let kafka = separate_kafka.as_ref().unwrap_or(&cluster);
    let keys = keys();
    let b64: Vec<String> = keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k))
        .collect();
    let partitions = |lines: Vec<serde_json::Value>| -> Vec<i32> {
        assert_eq!(lines.len(), keys.len(), "one line per key");
        lines
            .iter()
            .zip(&b64)
            .map(|(v, key)| {
                assert_eq!(v["key"].as_str(), Some(key.as_str()), "in argument order");
                v["partition"].as_i64().expect("partition") as i32
            })
            .collect()
    };
    let peer_args = |head: &[&str]| -> Vec<serde_json::Value> {
        let mut args: Vec<&str> = head.to_vec();
        args.extend(b64.iter().map(String::as_str));
        run_peer(&args)
    };
    let java = partitions(peer_args(&["partition-b64", "6"]));
    let topic = unique("java-keys");
    kafka.create_topic(&rt, &topic, 6);
    let java_produced = partitions(peer_args(&[
        "produce-keys",
        &kafka.bootstrap(),
        &topic,
        "6",
    ]));
    assert_eq!(
        java_produced, java,
        "the Java client produces where it computes"
    );
    let murmur2: Vec<i32> = keys.iter().map(|k| java_partition(k, 6)).collect();
    assert_eq!(java, murmur2, "the Java client places keys by murmur2");

    let app = app_producer(&cluster.bootstrap(), |_| {});
    let default = placed(&rt, &cluster, &app.producer().expect("producer"), &keys);
    let bare = Producer::new(&BTreeMap::from([(
        "bootstrap.servers".to_string(),
        cluster.bootstrap(),
    )]))
    .expect("producer");
    let bare = placed(&rt, &cluster, &bare, &keys);
    let former = app_producer(&cluster.bootstrap(), |c| {
        c.producer_kafka("partitioner", "consistent_random");
    });
    let former = placed(&rt, &cluster, &former.producer().expect("producer"), &keys);
    let on_kafka = separate_kafka.as_ref().map(|kafka| {
        let app = app_producer(&kafka.bootstrap(), |_| {});
        placed(&rt, kafka, &app.producer().expect("producer"), &keys)
    });

    let agree = |placed: &[i32]| placed.iter().zip(&java).filter(|(a, b)| a == b).count();
    println!(
        "partition per key, 6 partitions, {} keys, on the Java client's partition ({} broker): \
         ferrafka's default ({}) {}, Producer::new {}, librdkafka's consistent_random (CRC32) \
         {}{}",
        keys.len(),
        if cluster.broker.is_kafka() {
            "Apache Kafka"
        } else {
            "embedded"
        },
        app.clients()
            .producer()
            .get("partitioner")
            .unwrap_or("unset"),
        agree(&default),
        agree(&bare),
        agree(&former),
        on_kafka
            .as_ref()
            .map(|k| format!("; ferrafka's default on Apache Kafka {}", agree(k)))
            .unwrap_or_default()
    );
    for (i, key) in keys.iter().enumerate().skip(9).take(5) {
        println!(
            "  {}: java {} ferrafka {} consistent_random {}",
            String::from_utf8_lossy(key),
            java[i],
            default[i],
            former[i]
        );
    }
    assert_eq!(default, java, "the app's producer places keys like Java's");
    assert_eq!(
        app.clients().producer().get("partitioner"),
        Some("murmur2_random")
    );
    assert_eq!(bare, java, "Producer::new places keys like Java's");
    if let Some(on_kafka) = on_kafka {
        assert_eq!(on_kafka, java, "on Apache Kafka too");
    }
    assert!(
        agree(&former) < keys.len() / 3,
        "consistent_random is not Java's partitioner: {} of {} agree",
        agree(&former),
        keys.len()
    );
}
