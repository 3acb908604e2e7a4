//! Virtual partitions through the `Tester` harness: the server's state machine and executor
//! on a virtual clock, with the groups run by [`super::VirtualConsumer`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::routing::{DeadLetterQueue, VirtualPartitions};
use crate::testing::{RunOutcome, TestRecord, Tester};
use crate::{App, ConsumeResult, Consumer, Context, Messages};

/// What every instance of a test saw, and how it should behave.
#[derive(Default)]
struct Shared {
    /// (instance, key, offset) in processing order.
    seen: Mutex<Vec<(usize, String, i64)>>,
    /// Offsets that fail once (then succeed), and payloads that always fail.
    fail_once: Mutex<Vec<i64>>,
    instances: AtomicUsize,
}

/// Processes and marks message by message, failing where `Shared` says.
struct Recorder {
    id: usize,
    shared: Arc<Shared>,
}

impl Consumer for Recorder {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            if m.payload_or_empty() == b"poison" {
                return Err("poison".into());
            }
            let mut fail_once = self.shared.fail_once.lock().unwrap();
            if let Some(i) = fail_once.iter().position(|&o| o == m.offset()) {
                fail_once.remove(i);
                return Err(format!("offset {} failed", m.offset()).into());
            }
            drop(fail_once);
            let key = m.key_str().unwrap_or_default().to_string();
            self.shared
                .seen
                .lock()
                .unwrap()
                .push((self.id, key, m.offset()));
            ctx.mark_as_consumed(m);
        }
        Ok(())
    }
}

/// An app with one topic "in" split into `vp` virtual partitions, `max_messages` per batch.
fn app(shared: &Arc<Shared>, vp: VirtualPartitions, max_messages: usize, dlq: bool) -> App {
    let shared = shared.clone();
    App::builder()
        .setup(move |c| {
            c.max_messages(max_messages);
        })
        .routes(move |r| {
            let shared = shared.clone();
            let route = r
                .topic("in")
                .consumer_persistence(true)
                .virtual_partitions(vp.clone())
                .consumer(move || Recorder {
                    id: shared.instances.fetch_add(1, Ordering::SeqCst),
                    shared: shared.clone(),
                });
            if dlq {
                route.dead_letter_queue(DeadLetterQueue::to("in_dlq").max_retries(1));
            }
        })
        .build_with_env([])
}

/// Groups by the key's digit: key "0" to group 0, "1" to group 1.
fn by_digit() -> VirtualPartitions {
    VirtualPartitions::new(2).partitioner(|m| u64::from(m.key().unwrap()[0] - b'0'))
}

#[tokio::test]
async fn each_key_keeps_its_order_on_one_instance_across_batches() {
    let shared = Arc::new(Shared::default());
    let mut tester = Tester::new(&app(&shared, VirtualPartitions::new(3), 7, false));
    for i in 0..40 {
        tester.produce("in", TestRecord::new("x").key(format!("k{}", (i * 7) % 5)));
    }
    tester.consume().await;
    assert_eq!(tester.marked("in", 0), Some(40));
    let seen = shared.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 40, "every message once");
    let mut per_key: BTreeMap<String, (Vec<usize>, Vec<i64>)> = BTreeMap::new();
    for (instance, key, offset) in seen {
        let entry = per_key.entry(key).or_default();
        entry.0.push(instance);
        entry.1.push(offset);
    }
    for (key, (instances, offsets)) in &per_key {
        assert!(offsets.is_sorted(), "{key} out of order: {offsets:?}");
        assert!(
            instances.iter().all(|&i| i == instances[0]),
            "{key} moved between instances: {instances:?}"
        );
    }
    let built = shared.instances.load(Ordering::SeqCst);
    assert!(
        (2..=3).contains(&built),
        "one instance per used group, kept across 6 batches: {built}"
    );
}

#[tokio::test]
async fn a_failing_group_holds_the_mark_at_its_first_unfinished_message_and_is_retried() {
    let shared = Arc::new(Shared::default());
    shared.fail_once.lock().unwrap().push(5);
    let mut tester = Tester::new(&app(&shared, by_digit(), 10, false));
    for o in 0..10 {
        tester.produce("in", TestRecord::new("x").key(format!("{}", o % 2)));
    }
    tester.max_attempts(1).consume().await;
    // Group 0 finished 0..8, group 1 marked 1 and 3, then failed at 5.
    assert_eq!(tester.marked("in", 0), Some(5));
    let runs = tester.runs();
    assert!(
        matches!(&runs[0].outcome, RunOutcome::Failed(e) if e.contains("virtual partition 1 of 2")),
        "{runs:?}"
    );
    tester.max_attempts(10).consume().await;
    assert_eq!(tester.marked("in", 0), Some(10));
    let runs = tester.runs();
    assert_eq!(
        runs[1].offsets,
        vec![5, 6, 7, 8, 9],
        "retried from the mark"
    );
    let odd: Vec<i64> = offsets_of(&shared, "1");
    assert_eq!(
        odd,
        vec![1, 3, 5, 7, 9],
        "the failed group's key keeps its order"
    );
    let even: Vec<i64> = offsets_of(&shared, "0");
    assert_eq!(
        even,
        vec![0, 2, 4, 6, 8, 6, 8],
        "at-least-once: finished messages after the mark run again"
    );
}

fn offsets_of(shared: &Shared, key: &str) -> Vec<i64> {
    let seen = shared.seen.lock().unwrap();
    seen.iter().filter(|s| s.1 == key).map(|s| s.2).collect()
}

#[tokio::test]
async fn a_poison_message_is_isolated_and_dead_lettered_while_other_groups_go_on() {
    let shared = Arc::new(Shared::default());
    let mut tester = Tester::new(&app(&shared, by_digit(), 10, true));
    for o in 0..8 {
        let payload = if o == 3 { "poison" } else { "x" };
        tester.produce("in", TestRecord::new(payload).key(format!("{}", o % 2)));
    }
    tester.consume().await;
    assert_eq!(tester.marked("in", 0), Some(8));
    let dead = tester.dead_lettered("in");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(
        dead[0].header(crate::routing::dlq_headers::SOURCE_OFFSET),
        Some(&b"3"[..])
    );
    let mut processed: Vec<i64> = shared.seen.lock().unwrap().iter().map(|s| s.2).collect();
    processed.sort();
    processed.dedup();
    assert_eq!(processed, vec![0, 1, 2, 4, 5, 6, 7]);
}
