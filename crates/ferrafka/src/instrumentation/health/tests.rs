use std::sync::Mutex;

use super::*;
use crate::instrumentation::PauseReason;

const STALL: Duration = Duration::from_secs(10);

/// A health judged on a clock the test moves.
fn health() -> (Health, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    let health = Health::with_clock(STALL, Arc::new(move || *clock.lock().unwrap()));
    (health, now)
}

fn advance(clock: &Mutex<Instant>, by: Duration) {
    *clock.lock().unwrap() += by;
}

const P: PartitionRef<'static> = PartitionRef {
    consumer_group: "g",
    topic: "t",
    partition: 0,
};

fn lag(health: &Health, high_watermark: i64, position: i64, next_offset: i64) {
    health.on_event(&Event::ConsumerLag {
        partition: P,
        lag: high_watermark - next_offset,
        high_watermark,
        next_offset,
        position,
        queried: true,
    });
}

#[test]
fn a_listener_that_stops_polling_fails_liveness_after_its_max_poll_interval() {
    let (health, clock) = health();
    health.expect_listener("g/default", Duration::from_secs(5));
    advance(&clock, Duration::from_secs(4));
    assert!(health.liveness().passes());
    advance(&clock, Duration::from_secs(2));
    let verdict = health.liveness();
    assert_eq!(verdict.problems.len(), 1, "{verdict:?}");
    assert!(verdict.problems[0].contains("listener g/default has not polled"));
    health.on_event(&Event::Polled {
        subscription_group: "g/default",
        messages: 0,
    });
    assert!(health.liveness().passes());
}

#[test]
fn readiness_waits_for_every_listener_to_join_and_ends_with_the_app() {
    let (health, _) = health();
    health.expect_listener("g/a", Duration::from_secs(300));
    health.expect_listener("g/b", Duration::from_secs(300));
    let join = |group| {
        health.on_event(&Event::PartitionsAssigned {
            subscription_group: group,
            partitions: &[],
        })
    };
    join("g/a");
    assert_eq!(
        health.readiness().problems,
        ["listener g/b has not joined its group yet"]
    );
    // A member with no partitions has joined too.
    join("g/b");
    assert!(health.readiness().passes());
    health.on_event(&Event::AppState(AppState::Stopping));
    assert!(!health.readiness().passes());
}

#[test]
fn waiting_messages_with_nothing_running_and_no_pause_fail_liveness_after_the_limit() {
    let (health, clock) = health();
    // Caught up: not waiting, however long it stays so.
    lag(&health, 100, 100, 100);
    advance(&clock, STALL * 3);
    lag(&health, 100, 100, 100);
    assert!(health.liveness().passes());
    // The log grows, librdkafka hands nothing over.
    lag(&health, 150, 100, 100);
    advance(&clock, STALL - Duration::from_secs(1));
    lag(&health, 160, 100, 100);
    assert!(health.liveness().passes(), "not yet past the limit");
    advance(&clock, Duration::from_secs(2));
    lag(&health, 170, 100, 100);
    let verdict = health.liveness();
    assert_eq!(verdict.problems.len(), 1, "{verdict:?}");
    assert!(
        verdict.problems[0].starts_with("g t/0: messages wait"),
        "{verdict:?}"
    );
}

#[test]
fn messages_handed_over_but_never_run_are_a_stall_too() {
    let (health, clock) = health();
    // librdkafka handed up to 120; batches ended at 100.
    health.on_event(&Event::BatchStarted {
        partition: P,
        offsets: (90, 99),
        messages: 10,
        attempt: 1,
    });
    health.on_event(&Event::BatchConsumed {
        partition: P,
        offsets: (90, 99),
        messages: 10,
        attempt: 1,
        duration: Duration::from_millis(5),
    });
    lag(&health, 120, 120, 100);
    advance(&clock, STALL + Duration::from_secs(1));
    lag(&health, 120, 120, 100);
    assert!(!health.liveness().passes());
}

#[test]
fn a_long_batch_and_a_deliberate_pause_never_fail_liveness() {
    let (health, clock) = health();
    health.on_event(&Event::BatchStarted {
        partition: P,
        offsets: (0, 9),
        messages: 10,
        attempt: 1,
    });
    for _ in 0..10 {
        advance(&clock, STALL);
        lag(&health, 500, 10, 0);
        assert!(health.liveness().passes(), "a batch running for long");
    }
    health.on_event(&Event::BatchConsumed {
        partition: P,
        offsets: (0, 9),
        messages: 10,
        attempt: 1,
        duration: STALL * 10,
    });
    health.on_event(&Event::Paused {
        partition: P,
        reason: PauseReason::Consumer,
    });
    for _ in 0..10 {
        advance(&clock, STALL);
        lag(&health, 500, 10, 10);
        assert!(health.liveness().passes(), "a pause the consumer asked for");
    }
    health.on_event(&Event::Resumed { partition: P });
    advance(&clock, STALL + Duration::from_secs(1));
    lag(&health, 500, 10, 10);
    assert!(!health.liveness().passes(), "resumed, and nothing moves");
}

#[test]
fn stale_lag_figures_claim_no_stall_and_a_revoked_partition_is_forgotten() {
    let (health, clock) = health();
    lag(&health, 150, 100, 100);
    // No figure since (statistics off, the cluster unreachable): a restart cures neither.
    advance(&clock, STALL * 2);
    assert!(health.liveness().passes());
    lag(&health, 150, 100, 100);
    assert!(!health.liveness().passes());
    health.on_event(&Event::PartitionsRevoked {
        subscription_group: "g/default",
        partitions: &[("t".to_string(), 0)],
    });
    assert!(health.liveness().passes());
}

/// The stall issue 17 fixed, simulated through the `PartitionClient` seam: the log keeps a
/// retry's pause after the driver resumed. `/healthz`'s judgement catches it within the
/// limit; without the fault, the same run is healthy.
#[cfg(feature = "testing")]
mod through_the_tester {
    use super::*;
    use crate::testing::Tester;
    use crate::{App, ConsumeResult, Consumer, Context, Messages};

    /// Fails the first attempt of every batch.
    struct FailsFirst;

    impl Consumer for FailsFirst {
        async fn consume(&mut self, ctx: &mut Context, _: &Messages) -> ConsumeResult {
            if ctx.attempt() == 1 {
                return Err("first attempts fail".into());
            }
            Ok(())
        }
    }

    async fn run(stuck: bool) -> Verdict {
        let (health, clock) = health();
        let app = App::builder()
            .setup(|c| {
                c.max_messages(10);
            })
            .routes(|r| {
                r.topic("in").consumer(|| FailsFirst);
            })
            .subscribe(health.clone())
            .build_with_env([]);
        let mut tester = Tester::new(&app);
        if stuck {
            tester.stick_next_pause("in", 0);
        }
        for i in 0..4 {
            tester.produce("in", format!("m{i}"));
        }
        tester.consume().await;
        assert_eq!(tester.marked("in", 0), Some(4), "what was fetched ran");
        for i in 4..8 {
            tester.produce("in", format!("m{i}"));
        }
        tester.consume().await;
        advance(&clock, STALL + Duration::from_secs(1));
        // The next statistics: the server reports lag every few seconds.
        tester.consume().await;
        health.liveness()
    }

    #[tokio::test]
    async fn a_partition_whose_pause_outlived_its_resume_fails_liveness() {
        let verdict = run(true).await;
        assert_eq!(verdict.problems.len(), 1, "{verdict:?}");
        assert!(
            verdict.problems[0].starts_with("ferrafka in/0: messages wait, nothing runs"),
            "{verdict:?}"
        );
    }

    #[tokio::test]
    async fn the_same_run_without_the_fault_is_live() {
        let verdict = run(false).await;
        assert!(verdict.passes(), "{verdict:?}");
    }
}
