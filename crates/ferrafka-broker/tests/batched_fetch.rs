//! Consumers of batched, compressed topics on the embedded broker, started from every kind of
//! position, must each see a contiguous run of offsets to the end of the partition; the high
//! watermark must count every record.
//!
//! One test per codec; each writes `MESSAGES` records with a batching producer (`linger.ms`),
//! in chunks of irregular sizes flushed one after another so that every chunk becomes one
//! multi-record batch whose bounds the test knows.

mod common;

use std::time::Duration;

use common::{BatchPlan, assign_at, consumer, create_topic, expect_run, produce_batched};
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// Records per topic.
const MESSAGES: i64 = 20_000;

#[test]
fn uncompressed_batches() {
    every_position("none");
}

#[test]
fn gzip_batches() {
    every_position("gzip");
}

#[test]
fn snappy_batches() {
    every_position("snappy");
}

#[test]
fn lz4_batches() {
    every_position("lz4");
}

#[test]
fn zstd_batches() {
    every_position("zstd");
}

/// Writes a batched topic compressed with `codec` and reads it from every kind of position.
fn every_position(codec: &str) {
    let topic = format!("batched-{codec}");
    create_topic(&topic, 1);
    let plan = BatchPlan::new(MESSAGES);
    let batching = produce_batched(&topic, codec, &plan);
    eprintln!("{topic}: {batching:?}");
    // Many batches of many records each: fetches from most offsets start inside a batch.
    assert!(
        batching.batches >= 20 && MESSAGES / batching.batches >= 50,
        "the producer must write many multi-record batches: {batching:?}"
    );

    high_watermark_counts_every_record(&topic);
    from_the_start(&topic);
    from_inside_a_batch(&topic, &plan);
    from_the_last_offset(&topic);
    from_a_committed_offset_after_restart(&topic, &plan);
    after_pause_and_resume(&topic, &plan);
    after_seek(&topic, &plan);
    in_small_fetches(&topic, &plan);
    at_the_high_watermark(&topic, codec);
}

fn high_watermark_counts_every_record(topic: &str) {
    let consumer = consumer(&format!("{topic}-watermarks"), &[]);
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    assert_eq!((low, high), (0, MESSAGES), "{topic}: watermarks");
}

fn from_the_start(topic: &str) {
    let consumer = consumer(&format!("{topic}-start"), &[]);
    assign_at(&consumer, topic, Offset::Beginning);
    expect_run(&consumer, topic, 0, MESSAGES);
}

fn from_inside_a_batch(topic: &str, plan: &BatchPlan) {
    for offset in [
        plan.inside_batch_near(1),
        plan.inside_batch_near(MESSAGES / 4 + 1),
    ] {
        let consumer = consumer(&format!("{topic}-inside-{offset}"), &[]);
        assign_at(&consumer, topic, Offset::Offset(offset));
        expect_run(&consumer, topic, offset, MESSAGES);
    }
}

fn from_the_last_offset(topic: &str) {
    let consumer = consumer(&format!("{topic}-last"), &[]);
    assign_at(&consumer, topic, Offset::Offset(MESSAGES - 1));
    expect_run(&consumer, topic, MESSAGES - 1, MESSAGES);
}

/// Commits an offset inside a batch, closes the consumer, and resumes the group with a new one.
fn from_a_committed_offset_after_restart(topic: &str, plan: &BatchPlan) {
    let group = format!("{topic}-restart");
    let committed = plan.inside_batch_near(MESSAGES / 2);
    {
        let first = consumer(&group, &[]);
        assign_at(&first, topic, Offset::Beginning);
        expect_run(&first, topic, 0, committed);
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(topic, 0, Offset::Offset(committed))
            .expect("offset");
        first.commit(&offsets, CommitMode::Sync).expect("commit");
    }
    let second = consumer(&group, &[]);
    let (_, high) = second
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .expect("watermarks");
    let mut partition = TopicPartitionList::new();
    partition.add_partition(topic, 0);
    let stored = second
        .committed_offsets(partition, Duration::from_secs(10))
        .expect("committed offsets")
        .find_partition(topic, 0)
        .map(|p| p.offset());
    assert_eq!(
        stored,
        Some(Offset::Offset(committed)),
        "{topic}: committed"
    );
    assert_eq!(high - committed, MESSAGES - committed, "{topic}: lag");
    assign_at(&second, topic, Offset::Stored);
    expect_run(&second, topic, committed, MESSAGES);
}

/// librdkafka drops what it fetched while paused and fetches again from the position on
/// resume, which is inside a batch.
fn after_pause_and_resume(topic: &str, plan: &BatchPlan) {
    let consumer = consumer(&format!("{topic}-pause"), &[]);
    assign_at(&consumer, topic, Offset::Beginning);
    let paused_at = plan.inside_batch_near(MESSAGES * 3 / 4);
    expect_run(&consumer, topic, 0, paused_at);
    let assignment = consumer.assignment().expect("assignment");
    consumer.pause(&assignment).expect("pause");
    // Let the fetcher notice the pause before resuming.
    let _ = consumer.poll(Duration::from_millis(300));
    consumer.resume(&assignment).expect("resume");
    expect_run(&consumer, topic, paused_at, MESSAGES);
}

fn after_seek(topic: &str, plan: &BatchPlan) {
    let consumer = consumer(&format!("{topic}-seek"), &[]);
    assign_at(&consumer, topic, Offset::Beginning);
    expect_run(&consumer, topic, 0, 10);
    let target = plan.inside_batch_near(MESSAGES * 2 / 3);
    consumer
        .seek(topic, 0, Offset::Offset(target), Duration::from_secs(10))
        .expect("seek");
    expect_run(&consumer, topic, target, MESSAGES);
}

/// Fetches smaller than one batch: every response holds one batch, the first one trimmed.
fn in_small_fetches(topic: &str, plan: &BatchPlan) {
    let small = [
        ("fetch.max.bytes", "1000"),
        ("message.max.bytes", "1000"),
        ("max.partition.fetch.bytes", "1000"),
        // Each small response would otherwise wait half of fetch.wait.max.ms in tansu.
        ("fetch.wait.max.ms", "10"),
    ];
    let consumer = consumer(&format!("{topic}-small"), &small);
    let from = plan.inside_batch_near(MESSAGES - MESSAGES / 10);
    assign_at(&consumer, topic, Offset::Offset(from));
    expect_run(&consumer, topic, from, MESSAGES);
}

/// A fetch at the high watermark waits without error and returns the next record once written.
fn at_the_high_watermark(topic: &str, codec: &str) {
    let consumer = consumer(&format!("{topic}-hwm"), &[]);
    assign_at(&consumer, topic, Offset::Offset(MESSAGES));
    if let Some(polled) = consumer.poll(Duration::from_secs(1)) {
        panic!("{topic}: nothing lies at the high watermark, got {polled:?}");
    }
    let one_more = BatchPlan::new(1).starting_at(MESSAGES);
    produce_batched(topic, codec, &one_more);
    expect_run(&consumer, topic, MESSAGES, MESSAGES + 1);
}
