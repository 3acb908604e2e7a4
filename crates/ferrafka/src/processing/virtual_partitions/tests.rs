//! Tests of the mark combiner and of [`VirtualConsumer`] run directly, with the timing of its
//! groups under the test's control. Tests through the `Tester` harness are in `harness.rs`.

use std::sync::Mutex;

use proptest::prelude::*;
use tokio::sync::Notify;

use super::*;
use crate::config::Config;
use crate::consumer::Consumer;
use crate::messages::Message;
use crate::producer::Producer;

fn forwarded_by(combiner: &MarkCombiner, group: usize, next: i64) -> Option<i64> {
    let mut out = None;
    combiner.mark(group, next, |m| out = Some(m));
    out
}

#[test]
fn a_group_mark_is_forwarded_only_up_to_another_groups_first_unfinished_message() {
    // Offsets 10..16: group 0 holds the even ones, group 1 the odd ones.
    let combiner = MarkCombiner::new(10, 16, vec![vec![10, 12, 14], vec![11, 13, 15]]);
    assert_eq!(
        forwarded_by(&combiner, 0, 15),
        Some(11),
        "group 1 has not finished 11"
    );
    assert_eq!(
        forwarded_by(&combiner, 1, 12),
        Some(13),
        "11 is done and group 0 finished 12 and 14: 13 is the lowest unfinished"
    );
    assert_eq!(forwarded_by(&combiner, 1, 12), None, "no progress, no mark");
    assert_eq!(combiner.batch_mark(), Some(13));
    let mut finished = None;
    combiner.finish(1, |m| finished = Some(m));
    assert_eq!(
        finished,
        Some(16),
        "group 0 marked up to 14, group 1 is done"
    );
    assert_eq!(combiner.batch_mark(), Some(16));
}

#[test]
fn nothing_finished_marks_nothing() {
    let combiner = MarkCombiner::new(3, 6, vec![vec![3, 5], vec![4]]);
    assert_eq!(forwarded_by(&combiner, 1, 5), None, "3 is unfinished");
    assert_eq!(combiner.batch_mark(), None);
}

/// One step of a randomized batch: a group marks up to (and including) its `k`-th message,
/// finishes (`Ok`), or fails (reports nothing more).
#[derive(Debug, Clone)]
enum Step {
    Mark(usize, usize),
    Finish(usize),
}

fn batch() -> impl Strategy<Value = (Vec<i64>, Vec<usize>, usize, Vec<Step>)> {
    (1usize..5, 1usize..40).prop_flat_map(|(groups, len)| {
        (
            proptest::collection::vec(1i64..4, len),
            proptest::collection::vec(0..groups, len),
            Just(groups),
            proptest::collection::vec(
                prop_oneof![
                    (0..groups, 0usize..40).prop_map(|(g, k)| Step::Mark(g, k)),
                    (0..groups).prop_map(Step::Finish),
                ],
                0..30,
            ),
        )
    })
}

/// The lowest offset not finished, by brute force over every message.
fn lowest_unfinished(offsets: &[i64], group_of: &[usize], done: &[usize], end: i64) -> i64 {
    let mut seen = vec![0; done.len()];
    let mut lowest = end;
    for (&offset, &g) in offsets.iter().zip(group_of) {
        if seen[g] >= done[g] {
            lowest = lowest.min(offset);
        }
        seen[g] += 1;
    }
    lowest
}

proptest! {
    #[test]
    fn the_combined_mark_never_passes_an_unfinished_message(
        (gaps, group_of, groups, steps) in batch()
    ) {
        // Offsets ascend with random gaps (compaction, transaction markers).
        let offsets: Vec<i64> = gaps.iter().scan(100, |o, g| { *o += g; Some(*o) }).collect();
        let (first, end) = (offsets[0], offsets[offsets.len() - 1] + 1);
        let mut per_group = vec![Vec::new(); groups];
        for (&o, &g) in offsets.iter().zip(&group_of) {
            per_group[g].push(o);
        }
        let sizes: Vec<usize> = per_group.iter().map(Vec::len).collect();
        let combiner = MarkCombiner::new(first, end, per_group.clone());
        let (mut done, mut forwarded) = (vec![0; groups], vec![first]);
        for step in steps {
            let mut out = None;
            match step {
                Step::Mark(g, k) if k < sizes[g] => {
                    done[g] = done[g].max(k + 1);
                    combiner.mark(g, per_group[g][k] + 1, |m| out = Some(m));
                }
                Step::Mark(..) => continue,
                Step::Finish(g) => {
                    done[g] = sizes[g];
                    combiner.finish(g, |m| out = Some(m));
                }
            }
            let low = lowest_unfinished(&offsets, &group_of, &done, end);
            let last = *forwarded.last().expect("starts with first");
            if let Some(m) = out {
                prop_assert!(m > last, "forwarded marks increase: {m} after {last}");
                forwarded.push(m);
            }
            let last = *forwarded.last().expect("starts with first");
            prop_assert!(last <= low, "forwarded {last} passes unfinished {low}");
            prop_assert_eq!(last, low, "every advance of the lowest unfinished is forwarded");
            prop_assert_eq!(combiner.batch_mark(), (low > first).then_some(low));
        }
        for g in 0..groups {
            combiner.finish(g, |_| {});
        }
        prop_assert_eq!(combiner.batch_mark(), Some(end), "all finished: the batch's end");
    }
}

/// Marks every message of its group; a group whose first key is in `lagging` waits for the
/// gate first, and a group whose first key is "0" signals `marked` once done.
struct Gated {
    gate: Arc<Notify>,
    marked: Arc<Notify>,
    lagging: &'static [u8],
    results: Arc<Mutex<Vec<(i64, bool)>>>,
}

impl Consumer for Gated {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let key = messages.first().key().unwrap_or_default().to_vec();
        if key == self.lagging {
            self.gate.notified().await;
        }
        for m in messages {
            let ok = ctx.mark_as_consumed(m);
            self.results.lock().unwrap().push((m.offset(), ok));
        }
        if key == b"0" {
            self.marked.notify_one();
        }
        Ok(())
    }
}

type Sink = Arc<Mutex<Vec<i64>>>;

/// A partition context whose listener marks land in the returned sink.
fn partition_context() -> (Context, Sink) {
    let sink: Sink = Arc::default();
    let marks = sink.clone();
    let handle = PartitionHandle::new(
        ("g".into(), "t".into()),
        0,
        1,
        Box::new(move |_, mark| marks.lock().unwrap().push(mark)),
    );
    let ctx = Context {
        handle: Arc::new(handle),
        producer: Producer::lazy(&Default::default()),
        consumer_group: "g".into(),
        config: Arc::new(Config::default()),
        attempt: 1,
        batch: Some(0),
        mark: None,
        requests: Vec::new(),
        virtual_group: None,
        transactions: None,
    };
    (ctx, sink)
}

/// Offsets 0..10, key "0" on even offsets and "1" on odd ones, two groups by key.
fn even_odd_batch() -> (Messages, VirtualPartitions) {
    let messages = (0..10)
        .map(|o| {
            let key = if o % 2 == 0 { "0" } else { "1" };
            Message::builder("t", 0, o).key(key).build()
        })
        .collect();
    let options = VirtualPartitions::new(2).partitioner(|m| u64::from(m.key().unwrap()[0] - b'0'));
    (Messages::from_messages(messages), options)
}

struct Run {
    gate: Arc<Notify>,
    marked: Arc<Notify>,
    results: Arc<Mutex<Vec<(i64, bool)>>>,
    handle: Arc<PartitionHandle>,
    sink: Sink,
    task: tokio::task::JoinHandle<(ConsumeResult, Option<i64>)>,
}

/// Starts the even/odd batch on a [`VirtualConsumer`] with two workers; the group keyed
/// `lagging` waits for `gate`.
fn start(lagging: &'static [u8]) -> Run {
    let (gate, marked) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let results: Arc<Mutex<Vec<(i64, bool)>>> = Arc::default();
    let (g, m, r) = (gate.clone(), marked.clone(), results.clone());
    let factory: ConsumerFactory = Arc::new(move || {
        Box::new(Gated {
            gate: g.clone(),
            marked: m.clone(),
            lagging,
            results: r.clone(),
        }) as Box<dyn DynConsumer>
    });
    let (messages, options) = even_odd_batch();
    let mut split = two_worker_split(options, factory);
    let (mut ctx, sink) = partition_context();
    let handle = ctx.handle.clone();
    let task = tokio::spawn(async move {
        let result = split.consume(&mut ctx, &messages).await;
        (result, ctx.mark)
    });
    Run {
        gate,
        marked,
        results,
        handle,
        sink,
        task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_marks_of_one_group_wait_for_a_lagging_group() {
    let run = start(b"1");
    run.marked.notified().await;
    assert_eq!(
        *run.sink.lock().unwrap(),
        vec![1],
        "group 0 marked 0..8, but group 1 has not finished 1"
    );
    run.gate.notify_one();
    let (result, mark) = run.task.await.unwrap();
    assert!(result.is_ok());
    assert_eq!(mark, Some(10));
    assert_eq!(*run.sink.lock().unwrap(), vec![1, 3, 5, 7, 9, 10]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marks_after_revocation_are_refused_and_not_forwarded() {
    let run = start(b"1");
    run.marked.notified().await;
    run.handle
        .revoked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    run.gate.notify_one();
    let (result, _) = run.task.await.unwrap();
    assert!(result.is_ok());
    assert_eq!(
        *run.sink.lock().unwrap(),
        vec![1],
        "nothing forwarded after revocation"
    );
    let refused: Vec<i64> = run
        .results
        .lock()
        .unwrap()
        .iter()
        .filter(|r| !r.1)
        .map(|r| r.0)
        .collect();
    assert_eq!(
        refused,
        vec![1, 3, 5, 7, 9],
        "the lagging group's marks were refused"
    );
}

/// Group "0" waits until group "1" ended, then seeks; group "1" pauses and seeks.
struct Requesting {
    one_done: Arc<Notify>,
}

impl Consumer for Requesting {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        if messages.first().key() == Some(b"0") {
            self.one_done.notified().await;
            ctx.seek(crate::consumer::SeekTo::Offset(100));
        } else {
            ctx.pause(std::time::Duration::from_secs(1));
            ctx.seek(crate::consumer::SeekTo::Offset(200));
            self.one_done.notify_one();
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_merged_in_group_order_whatever_order_groups_end_in() {
    use crate::consumer::{PartitionRequest, SeekTo};
    let one_done = Arc::new(Notify::new());
    let factory: ConsumerFactory = Arc::new(move || {
        Box::new(Requesting {
            one_done: one_done.clone(),
        }) as Box<dyn DynConsumer>
    });
    let (messages, options) = even_odd_batch();
    let mut split = two_worker_split(options, factory);
    let (mut ctx, _) = partition_context();
    split.consume(&mut ctx, &messages).await.unwrap();
    assert_eq!(
        ctx.requests,
        vec![
            PartitionRequest::Seek(SeekTo::Offset(100)),
            PartitionRequest::Pause(std::time::Duration::from_secs(1)),
            PartitionRequest::Seek(SeekTo::Offset(200)),
        ]
    );
    assert_eq!(ctx.mark, Some(10));
}

/// Panics once in group "1"; counts `revoked` hooks.
struct Panicky {
    panic_once: Arc<std::sync::atomic::AtomicBool>,
    revoked: Arc<std::sync::atomic::AtomicUsize>,
}

impl Consumer for Panicky {
    async fn consume(&mut self, _: &mut Context, messages: &Messages) -> ConsumeResult {
        if messages.first().key() == Some(b"1")
            && self
                .panic_once
                .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("group 1 blew up");
        }
        Ok(())
    }

    async fn revoked(&mut self, _: &mut Context) -> ConsumeResult {
        self.revoked
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_panicking_group_fails_the_batch_and_gets_a_fresh_instance_and_hooks_reach_every_group() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let (built, revoked) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let panic_once = Arc::new(AtomicBool::new(true));
    let (b, r) = (built.clone(), revoked.clone());
    let factory: ConsumerFactory = Arc::new(move || {
        b.fetch_add(1, SeqCst);
        Box::new(Panicky {
            panic_once: panic_once.clone(),
            revoked: r.clone(),
        }) as Box<dyn DynConsumer>
    });
    let (messages, options) = even_odd_batch();
    let mut split = two_worker_split(options, factory);
    let (mut ctx, _) = partition_context();
    let error = split.consume(&mut ctx, &messages).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("virtual partition 1 of 2: consumer panicked: group 1 blew up"),
        "{error}"
    );
    assert_eq!(ctx.mark, Some(1), "group 1 finished nothing");
    let (mut ctx, _) = partition_context();
    split.consume(&mut ctx, &messages).await.unwrap();
    assert_eq!(ctx.mark, Some(10));
    assert_eq!(
        built.load(SeqCst),
        3,
        "group 1's panicked instance was replaced"
    );
    let (mut ctx, _) = partition_context();
    ctx.batch = None;
    split.revoked(&mut ctx).await.unwrap();
    assert_eq!(
        revoked.load(SeqCst),
        2,
        "every group's instance got the hook"
    );
}

/// A `VirtualConsumer` with two workers and automatic marking, as the executor builds it.
fn two_worker_split(options: VirtualPartitions, factory: ConsumerFactory) -> VirtualConsumer {
    VirtualConsumer::new(
        options,
        factory,
        Arc::new(Semaphore::new(2)),
        false,
        Default::default(),
    )
}
