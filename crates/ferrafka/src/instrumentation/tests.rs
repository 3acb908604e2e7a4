use std::sync::Mutex;

use super::*;

#[test]
fn an_event_is_built_only_for_subscribers_and_a_panicking_one_is_skipped() {
    let built = std::cell::Cell::new(0);
    Monitor::default().emit(|| {
        built.set(built.get() + 1);
        Event::AppState(AppState::Running)
    });
    assert_eq!(built.get(), 0, "an event was built with nobody subscribed");

    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = seen.clone();
    let monitor = Monitor::new(vec![
        Box::new(|_: &Event<'_>| panic!("a broken subscriber")),
        Box::new(move |e: &Event<'_>| kept.lock().unwrap().push(format!("{e:?}"))),
    ]);
    monitor.emit(|| Event::AppState(AppState::Stopping));
    assert_eq!(*seen.lock().unwrap(), ["AppState(Stopping)"]);
}

/// Events through the testing harness, which runs the server's driver and executors.
#[cfg(feature = "testing")]
mod through_the_driver {
    use std::time::Duration;

    use super::*;
    use crate::testing::Tester;
    use crate::{App, ConsumeResult, Consumer, Context, DeadLetterQueue, Messages};

    /// Fails on "bad", asks for a pause on "pause".
    struct Scripted;

    impl Consumer for Scripted {
        async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
            for m in messages {
                match m.payload_or_empty() {
                    b"bad" => return Err("bad payload".into()),
                    b"pause" => ctx.pause(Duration::from_secs(5)),
                    _ => {}
                }
            }
            Ok(())
        }
    }

    /// An app whose events land in the returned list, one line each.
    fn app(dlq: bool) -> (App, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let kept = seen.clone();
        let app = App::builder()
            .setup(|c| {
                c.max_messages(2).pause_timeout(Duration::from_secs(1));
            })
            .routes(move |r| {
                let route = r.topic("in").consumer(|| Scripted);
                if dlq {
                    route.dead_letter_queue(DeadLetterQueue::to("in-dlq").max_retries(1));
                }
            })
            .subscribe(move |e: &Event<'_>| kept.lock().unwrap().push(line(e)))
            .build_with_env([]);
        (app, seen)
    }

    /// An event as a short line, without durations.
    fn line(e: &Event<'_>) -> String {
        match e {
            Event::PartitionsAssigned { partitions, .. } => format!("assigned {partitions:?}"),
            Event::BatchStarted {
                offsets, attempt, ..
            } => format!("started {offsets:?} attempt {attempt}"),
            Event::BatchConsumed { offsets, .. } => format!("consumed {offsets:?}"),
            Event::BatchFailed { offsets, error, .. } => format!("failed {offsets:?}: {error}"),
            Event::DeadLettered {
                offset,
                dead_letter_topic,
                ..
            } => format!("dead-lettered {offset} to {dead_letter_topic}"),
            Event::RetryScheduled {
                offset,
                attempt,
                backoff,
                ..
            } => format!("retry at {offset} as attempt {attempt} in {backoff:?}"),
            Event::Paused { reason, .. } => format!("paused {reason:?}"),
            Event::Resumed { .. } => "resumed".into(),
            Event::OffsetStored { next, .. } => format!("stored {next}"),
            Event::ConsumerLag { lag, .. } => format!("lag {lag}"),
            other => format!("{other:?}"),
        }
    }

    async fn run(dlq: bool, payloads: &[&str]) -> Vec<String> {
        let (app, seen) = app(dlq);
        let mut tester = Tester::new(&app);
        tester.max_attempts(4);
        for p in payloads {
            tester.produce("in", *p);
        }
        tester.consume().await;
        seen.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn a_happy_path_starts_consumes_and_stores_each_batch_in_order() {
        let events = run(false, &["a", "b", "c"]).await;
        assert_eq!(
            events,
            [
                "assigned [(\"in\", 0)]",
                "started (0, 1) attempt 1",
                "consumed (0, 1)",
                "stored 2",
                "started (2, 2) attempt 1",
                "consumed (2, 2)",
                "stored 3",
                "lag 0",
            ]
        );
    }

    #[tokio::test]
    async fn a_failure_pauses_for_the_retry_and_a_poison_message_is_dead_lettered() {
        let events = run(true, &["a", "bad"]).await;
        assert_eq!(
            events,
            [
                "assigned [(\"in\", 0)]",
                "started (0, 1) attempt 1",
                "failed (0, 1): bad payload",
                "retry at 0 as attempt 2 in 1s",
                "paused Retry",
                "resumed",
                // The failure is isolated: the messages before it run alone first.
                "started (0, 0) attempt 2",
                "consumed (0, 0)",
                "stored 1",
                "started (1, 1) attempt 2",
                "failed (1, 1): bad payload",
                "retry at 1 as attempt 3 in 2s",
                "paused Retry",
                "resumed",
                // Dead-lettered after failing alone max_retries + 1 times, once the backoff
                // passed: no retry is announced.
                "started (1, 1) attempt 3",
                "failed (1, 1): bad payload",
                "paused Retry",
                "resumed",
                "dead-lettered 1 to in-dlq",
                "stored 2",
                "lag 0",
            ]
        );
    }

    #[tokio::test]
    async fn a_consumer_pause_is_reported_with_its_reason_and_ends() {
        let events = run(false, &["pause", "x", "y"]).await;
        let pauses: Vec<_> = events
            .iter()
            .filter(|e| e.starts_with("paused") || *e == "resumed")
            .collect();
        assert_eq!(pauses, ["paused Consumer", "resumed"], "{events:#?}");
        assert_eq!(
            events.last().map(String::as_str),
            Some("lag 0"),
            "{events:#?}"
        );
    }

    #[tokio::test]
    async fn metrics_count_what_the_events_say() {
        let metrics = crate::instrumentation::Metrics::new();
        let app = App::builder()
            .setup(|c| {
                c.max_messages(2).pause_timeout(Duration::from_secs(1));
            })
            .routes(|r| {
                r.topic("in")
                    .consumer(|| Scripted)
                    .dead_letter_queue(DeadLetterQueue::to("in-dlq").max_retries(1));
            })
            .subscribe(metrics.clone())
            .build_with_env([]);
        let mut tester = Tester::new(&app);
        for p in ["a", "b", "bad", "c"] {
            tester.produce("in", p);
        }
        tester.consume().await;
        let text = metrics.render();
        // Paused for each retry, resumed after each: no pause series is left.
        assert!(!text.contains("ferrafka_partition_paused{"), "{text}");
        for line in [
            "ferrafka_messages_consumed_total{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\"} 3",
            // [0, 1] and [3]; [2, 3] failed once, then [2] alone twice and was dead-lettered.
            "ferrafka_batches_total{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\",outcome=\"consumed\"} 2",
            "ferrafka_batches_total{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\",outcome=\"failed\"} 3",
            "ferrafka_messages_dead_lettered_total{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\"} 1",
            "ferrafka_offset_stored{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\"} 4",
            "ferrafka_retries_total{consumer_group=\"ferrafka\",topic=\"in\",partition=\"0\"} 2",
            "ferrafka_batch_duration_seconds_count{consumer_group=\"ferrafka\",topic=\"in\"} 5",
            "ferrafka_partitions_assigned_total{subscription_group=\"tester\"} 1",
            "ferrafka_rebalances_total{subscription_group=\"tester\"} 1",
            "# TYPE ferrafka_batch_duration_seconds histogram",
            "# UNIT ferrafka_batch_duration_seconds seconds",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }
}
