//! Tests of the testing harness itself.

use std::time::Duration;

use super::*;
use crate::routing::{DeadLetterQueue, dlq_headers};
use crate::{ConsumeResult, Consumer, Messages};

/// Fails on payload "bad"; pauses on "pause"; seeks back once on "rewind" (once per app:
/// instances do not persist in development).
struct Scripted {
    rewound: Arc<std::sync::atomic::AtomicBool>,
}

impl Consumer for Scripted {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for m in messages {
            match m.payload_or_empty() {
                b"bad" => return Err("bad payload".into()),
                b"pause" => ctx.pause(Duration::from_secs(60)),
                b"rewind" if !self.rewound.swap(true, std::sync::atomic::Ordering::SeqCst) => {
                    ctx.seek(crate::consumer::SeekTo::Earliest);
                }
                _ => {}
            }
            ctx.producer()
                .produce(crate::Record::to("out").payload(m.payload_or_empty()))
                .await?;
        }
        Ok(())
    }
}

fn app(dlq: Option<DeadLetterQueue>, max_messages: usize) -> App {
    let rewound = Arc::new(std::sync::atomic::AtomicBool::new(false));
    App::builder()
        .setup(move |c| {
            c.max_messages(max_messages)
                .pause_timeout(Duration::from_secs(1));
        })
        .routes(move |r| {
            let rewound = rewound.clone();
            let route = r.topic("in").consumer(move || Scripted {
                rewound: rewound.clone(),
            });
            if let Some(dlq) = dlq.clone() {
                route.dead_letter_queue(dlq);
            }
        })
        .build_with_env([])
}

fn outcomes(tester: &Tester) -> Vec<(Vec<i64>, u32, bool)> {
    tester
        .runs()
        .into_iter()
        .map(|r| (r.offsets, r.attempt, r.outcome == RunOutcome::Consumed))
        .collect()
}

#[tokio::test]
async fn batches_run_in_order_and_are_marked() {
    let mut tester = Tester::new(&app(None, 2));
    for p in ["a", "b", "c"] {
        tester.produce("in", p);
    }
    tester.consume().await;
    assert_eq!(
        outcomes(&tester),
        vec![(vec![0, 1], 1, true), (vec![2], 1, true)]
    );
    assert_eq!(tester.marked("in", 0), Some(3));
    let out: Vec<_> = tester
        .produced_to("out")
        .into_iter()
        .map(|r| r.payload.unwrap())
        .collect();
    assert_eq!(out, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
}

#[tokio::test]
async fn a_poison_message_is_isolated_and_dead_lettered_on_a_virtual_clock() {
    let started = std::time::Instant::now();
    let mut tester = Tester::new(&app(Some(DeadLetterQueue::to("in-dlq").max_retries(1)), 10));
    for p in ["a", "bad", "c"] {
        tester.produce("in", p);
    }
    tester.consume().await;
    let dead = tester.dead_lettered("in");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload.as_deref(), Some(&b"bad"[..]));
    assert_eq!(
        dead[0].header(dlq_headers::ERROR),
        Some(&b"bad payload"[..])
    );
    assert_eq!(tester.marked("in", 0), Some(3));
    // The whole batch once, then each message alone; "bad" twice alone, then the DLQ.
    let alone_failures = tester
        .runs()
        .iter()
        .filter(|r| r.offsets == [1] && matches!(r.outcome, RunOutcome::Failed(_)))
        .count();
    assert_eq!(alone_failures, 2, "{:?}", tester.runs());
    // Backoffs on the virtual clock: 1 s after the batch failed, then 2 s.
    let at: Vec<_> = tester.runs().iter().map(|r| r.at.as_secs()).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert!(*at.last().unwrap() >= 3, "{at:?}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "backoffs did not sleep"
    );
}

#[tokio::test]
async fn a_failing_delivery_keeps_the_message_and_stops_after_max_attempts() {
    let mut tester = Tester::new(&app(None, 10));
    tester.max_attempts(3).fail_deliveries(true);
    tester.produce("in", "a");
    tester.consume().await;
    assert_eq!(tester.runs().len(), 3);
    assert_eq!(tester.marked("in", 0), None);
    tester.fail_deliveries(false);
    tester.consume().await;
    assert_eq!(tester.marked("in", 0), Some(1));
    assert_eq!(tester.runs().last().unwrap().attempt, 4);
}

#[tokio::test]
async fn pause_and_seek_requests_are_carried_out() {
    let mut tester = Tester::new(&app(None, 1));
    for p in ["pause", "x"] {
        tester.produce("in", p);
    }
    tester.consume().await;
    let runs = tester.runs();
    assert_eq!(runs.len(), 2);
    assert!(
        runs[1].at - runs[0].at >= Duration::from_secs(60),
        "the second batch waited for the pause: {runs:?}"
    );
    assert_eq!(tester.marked("in", 0), Some(2));
    tester.advance(Duration::from_secs(3600));
    tester.produce("in", "later");
    tester.consume().await;
    assert!(tester.runs()[2].at >= runs[1].at + Duration::from_secs(3600));

    let mut tester = Tester::new(&app(None, 5));
    for p in ["a", "rewind"] {
        tester.produce("in", p);
    }
    tester.consume().await;
    let offsets: Vec<_> = tester.runs().into_iter().map(|r| r.offsets).collect();
    assert_eq!(offsets, vec![vec![0, 1], vec![0, 1]]);
}

#[tokio::test]
async fn context_records_what_one_call_asked_for() {
    let mut ctx = context("in", 0);
    let messages = Messages::from_messages(vec![
        crate::Message::builder("in", 0, 7).payload("pause").build(),
    ]);
    Scripted {
        rewound: Default::default(),
    }
    .consume(&mut ctx, &messages)
    .await
    .unwrap();
    assert_eq!(ctx.requested_pause(), Some(Duration::from_secs(60)));
    assert!(ctx.mark_as_consumed(messages.last()));
    assert_eq!(ctx.marked(), Some(8));
}

/// A consumer that seeks back forever makes `consume()` fail loudly instead of hanging.
struct Rewinder;

impl Consumer for Rewinder {
    async fn consume(&mut self, ctx: &mut Context, _messages: &Messages) -> ConsumeResult {
        ctx.seek(crate::consumer::SeekTo::Earliest);
        Ok(())
    }
}

#[tokio::test]
#[should_panic(expected = "without becoming idle")]
async fn an_endless_loop_is_reported() {
    let app = App::builder()
        .routes(|r| {
            r.topic("in").consumer(|| Rewinder);
        })
        .build_with_env([]);
    let mut tester = Tester::new(&app);
    tester.produce("in", "a");
    tester.consume().await;
}

#[test]
#[should_panic(expected = "not an active route")]
fn producing_to_an_unrouted_topic_names_the_routed_ones() {
    Tester::new(&app(None, 1)).produce("nope", "x");
}

#[tokio::test]
async fn a_pattern_route_consumes_every_matching_topic_and_a_named_route_wins() {
    let rewound = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = App::builder()
        .routes(move |r| {
            r.topic("orders-vip").consumer(|| crate::noop::Noop);
            r.pattern("orders", "^orders-[a-z]+$")
                .consumer(move || Scripted {
                    rewound: rewound.clone(),
                });
        })
        .build_with_env([]);
    let mut tester = Tester::new(&app);
    tester.produce("orders-eu", "a");
    tester.produce("orders-us", "b");
    tester.produce("orders-vip", "c");
    tester.consume().await;
    assert_eq!(tester.marked("orders-eu", 0), Some(1));
    assert_eq!(tester.marked("orders-us", 0), Some(1));
    assert_eq!(tester.marked("orders-vip", 0), Some(1));
    // Only the pattern's consumer produces: the named route took orders-vip.
    let mut out: Vec<_> = tester
        .produced_to("out")
        .into_iter()
        .map(|r| r.payload.unwrap())
        .collect();
    out.sort();
    assert_eq!(out, vec![b"a".to_vec(), b"b".to_vec()]);
}
