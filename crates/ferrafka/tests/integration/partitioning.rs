//! Where the producer puts a key: the partition Apache Kafka's Java client picks,
//! `toPositive(murmur2(key)) % partitions`. This module computes murmur2 itself (from the
//! algorithm Kafka's `Utils.murmur2` documents, checked against the values Kafka's own tests
//! assert), so the producer is judged by an implementation that shares nothing with librdkafka;
//! `java_peer` also asks the Java client.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ferrafka::{App, Producer, Record};

use crate::support::*;

/// Kafka's murmur2 (32-bit MurmurHash2 with Kafka's seed), in u32 arithmetic: Java's `int`
/// wraps the same way and `>>>` is a logical shift.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// The partition of `key` among `partitions` as the Java client computes it: murmur2 with the
/// sign bit cleared (`Utils.toPositive`), modulo the partition count.
pub fn java_partition(key: &[u8], partitions: u32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions) as i32
}

/// 300 keys: customer ids, and the cases murmur2 and "no key" make interesting: the empty key
/// (hashed, not treated as missing), every tail length, non-ASCII UTF-8, binary bytes with
/// zeros and high bits, a 1 KiB key.
pub fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"a".to_vec(),
        b"ab".to_vec(),
        b"abc".to_vec(),
        b"abcd".to_vec(),
        "ключ-ü-日本-🎉".as_bytes().to_vec(),
        vec![0, 255, 128, 0],
        vec![0xff; 7],
        (0..1024u32).map(|i| (i * 31 % 251) as u8).collect(),
    ];
    let customers = 300 - keys.len();
    keys.extend((0..customers).map(|i| format!("customer-{i}").into_bytes()));
    keys
}

/// The partition each of `keys` lands on when `producer` sends it to a new topic with 6
/// partitions, read from the broker's acknowledgement.
pub fn placed(
    rt: &tokio::runtime::Runtime,
    cluster: &Cluster,
    producer: &Producer,
    keys: &[Vec<u8>],
) -> Vec<i32> {
    let topic = unique("partition-per-key");
    cluster.create_topic(rt, &topic, 6);
    let sends = keys
        .iter()
        .map(|k| producer.produce(Record::to(&topic).key(k).payload("ferrafka")));
    rt.block_on(futures::future::join_all(sends))
        .into_iter()
        .map(|d| d.expect("delivered").partition)
        .collect()
}

/// An app's producer on `bootstrap`, its setup changed by `setup`.
pub fn app_producer(bootstrap: &str, setup: impl Fn(&mut ferrafka::Config) + 'static) -> App {
    let bootstrap = bootstrap.to_string();
    App::builder_with_env([])
        .setup(move |c| {
            c.client_id("partitioning")
                .kafka("bootstrap.servers", bootstrap.clone());
            setup(c);
        })
        .routes(|r| {
            r.topic("unused").consumer(|| Noop);
        })
        .build()
}

#[test]
fn murmur2_gives_the_values_kafka_s_own_tests_assert() {
    // Apache Kafka's UtilsTest.testMurmur2 asserts these (Java ints), and its
    // `kafka-clients` 4.4.0 `Utils.murmur2` returns them; the empty and short keys cover
    // every tail length.
    let vectors: [(&[u8], i32); 10] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
        (b"", 275_646_681),
        (b"a", -1_563_381_124),
        (b"ab", 316_155_434),
        (&[0, 255, 128, 0], -1_213_630_108),
    ];
    for (key, expected) in vectors {
        assert_eq!(
            murmur2(key) as i32,
            expected,
            "{:?}",
            String::from_utf8_lossy(key)
        );
    }
    // The peer's README example: `partition 3 a b c` prints 1, 2, 1.
    let abc: Vec<_> = [b"a", b"b", b"c"]
        .iter()
        .map(|k| java_partition(*k, 3))
        .collect();
    assert_eq!(abc, [1, 2, 1]);
}

#[test]
fn the_producer_puts_every_key_where_java_s_murmur2_says() {
    let rt = runtime();
    let cluster = Cluster::start();
    let keys = keys();
    let expected: Vec<i32> = keys.iter().map(|k| java_partition(k, 6)).collect();
    let spread: BTreeSet<_> = expected.iter().collect();
    assert_eq!(spread.len(), 6, "the keys cover every partition");

    let app = app_producer(&cluster.bootstrap(), |_| {});
    let producer = app.producer().expect("producer");
    assert_eq!(
        placed(&rt, &cluster, &producer, &keys),
        expected,
        "the app's"
    );
    let bare = Producer::new(&BTreeMap::from([(
        "bootstrap.servers".to_string(),
        cluster.bootstrap(),
    )]))
    .expect("producer");
    assert_eq!(
        placed(&rt, &cluster, &bare, &keys),
        expected,
        "Producer::new's"
    );

    // The empty key is a key: every one lands on murmur2("")'s partition (3 of 6), where
    // librdkafka's former default (consistent_random) spread them at random.
    let empties = vec![Vec::new(); 20];
    assert_eq!(
        placed(&rt, &cluster, &producer, &empties),
        vec![java_partition(b"", 6); 20]
    );

    // Keyless messages are spread: librdkafka picks a random partition and keeps it for
    // `sticky.partitioning.linger.ms` (10 ms), as Java's sticky partitioner keeps one per batch.
    let topic = unique("keyless");
    cluster.create_topic(&rt, &topic, 6);
    let mut partitions = BTreeSet::new();
    for _ in 0..30 {
        let d = rt.block_on(producer.produce(Record::to(&topic).payload("no key")));
        partitions.insert(d.expect("delivered").partition);
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        partitions.len() >= 3,
        "keyless messages went to {partitions:?}"
    );
}

#[test]
fn librdkafka_s_former_default_disagrees_with_java() {
    // What this module's tests guard against: with consistent_random (CRC32) most keys land
    // elsewhere, so the comparison above can fail.
    let rt = runtime();
    let cluster = Cluster::start();
    let keys: Vec<Vec<u8>> = keys().into_iter().filter(|k| !k.is_empty()).collect();
    let app = app_producer(&cluster.bootstrap(), |c| {
        c.producer_kafka("partitioner", "consistent_random");
    });
    let producer = app.producer().expect("producer");
    let placed = placed(&rt, &cluster, &producer, &keys);
    let agree = keys
        .iter()
        .zip(&placed)
        .filter(|(k, p)| java_partition(k, 6) == **p)
        .count();
    println!(
        "partitioner=consistent_random: {agree} of {} keys on murmur2's partition",
        keys.len()
    );
    assert!(agree < keys.len() / 3, "{agree} of {} agree", keys.len());
}
