use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::instrumentation::{ErrorKind, Event, PartitionRef, PauseReason, Subscriber};
use crate::web::report::{Decoded, decode};

const STALL: Duration = Duration::from_secs(10);
const SG: &str = "g/default";

fn p(partition: i32) -> PartitionRef<'static> {
    PartitionRef {
        consumer_group: "g",
        topic: "t",
        partition,
    }
}

/// A sampler on a clock the test moves.
fn sampler() -> (Sampler, Arc<Mutex<Instant>>) {
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock = now.clone();
    let sampler = Sampler::with_clock(STALL, Arc::new(move || *clock.lock().unwrap()));
    sampler.begin("host:1:abc", &[SG.to_string()]);
    (sampler, now)
}

fn advance(clock: &Mutex<Instant>, by: Duration) {
    *clock.lock().unwrap() += by;
}

fn identity() -> Identity {
    Identity {
        process_id: "host:1:abc".into(),
        host: "host".into(),
        pid: 1,
        environment: "test".into(),
        client_id: "app".into(),
        started_at_ms: 1,
        stale_after_ms: build::stale_after(Duration::from_secs(5)),
    }
}

fn assign(s: &Sampler, partitions: &[i32]) {
    let partitions: Vec<(String, i32)> = partitions.iter().map(|n| ("t".into(), *n)).collect();
    s.on_event(&Event::PartitionsAssigned {
        subscription_group: SG,
        partitions: &partitions,
    });
}

#[test]
fn a_report_carries_offsets_lag_pauses_running_batches_and_totals() {
    let (s, clock) = sampler();
    assign(&s, &[0, 1]);
    s.on_event(&Event::Polled {
        subscription_group: SG,
        messages: 3,
    });
    s.on_event(&Event::BatchStarted {
        partition: p(0),
        offsets: (0, 9),
        messages: 10,
        attempt: 1,
    });
    s.on_event(&Event::BatchStarted {
        partition: p(1),
        offsets: (5, 6),
        messages: 2,
        attempt: 1,
    });
    advance(&clock, Duration::from_millis(700));
    s.on_event(&Event::BatchConsumed {
        partition: p(0),
        offsets: (0, 9),
        messages: 10,
        attempt: 1,
        duration: Duration::from_millis(700),
    });
    s.on_event(&Event::OffsetStored {
        partition: p(0),
        next: 10,
    });
    s.on_event(&Event::OffsetsCommitted {
        subscription_group: SG,
        offsets: &[("t".into(), 0, 8)],
        error: None,
    });
    // A failed commit changes nothing.
    s.on_event(&Event::OffsetsCommitted {
        subscription_group: SG,
        offsets: &[("t".into(), 0, 10)],
        error: Some("coordinator moved"),
    });
    s.on_event(&Event::ConsumerLag {
        partition: p(0),
        lag: 12,
        high_watermark: 20,
        next_offset: 8,
        position: 20,
        queried: false,
    });
    s.on_event(&Event::Paused {
        partition: p(0),
        reason: PauseReason::Backlog,
    });
    let report = s.report(&identity(), None);
    assert_eq!(report.id, "host:1:abc");
    assert_eq!(report.state, "running");
    assert_eq!(report.stale_after_ms, 20_000);
    assert_eq!(report.listeners.len(), 1);
    assert_eq!(report.listeners[0].consumer_group, "g");
    assert_eq!(report.listeners[0].last_poll_age_ms, Some(700));
    let p0 = &report.partitions[0];
    assert_eq!(
        (p0.stored_offset, p0.committed_offset, p0.high_watermark),
        (Some(10), Some(8), Some(20))
    );
    // The stored offset is newer than the lag figure's: 20 - 10.
    assert_eq!(p0.lag, Some(10));
    assert_eq!(p0.paused.as_deref(), Some("backlog"));
    assert_eq!(p0.running_batch, None);
    let p1 = &report.partitions[1];
    let running = p1.running_batch.as_ref().expect("a running batch");
    assert_eq!(
        (running.offsets, running.messages, running.age_ms),
        ((5, 6), 2, 700)
    );
    assert_eq!((p1.lag, p1.paused.as_ref()), (None, None));
    assert_eq!((report.totals.messages, report.totals.batches), (10, 1));
    s.on_event(&Event::Resumed { partition: p(0) });
    assert_eq!(s.report(&identity(), None).partitions[0].paused, None);
}

#[test]
fn rates_count_from_the_previous_report() {
    let (s, clock) = sampler();
    assign(&s, &[0]);
    let consumed = |n| Event::BatchConsumed {
        partition: p(0),
        offsets: (0, n as i64 - 1),
        messages: n,
        attempt: 1,
        duration: Duration::ZERO,
    };
    s.on_event(&consumed(100));
    let first = s.report(&identity(), None);
    assert_eq!(first.rates.messages, 0.0, "no previous report");
    advance(&clock, Duration::from_secs(2));
    s.on_event(&consumed(50));
    s.on_event(&consumed(50));
    let second = s.report(&identity(), None);
    assert_eq!(second.rates.messages, 50.0);
    assert_eq!(second.rates.batches, 1.0);
    assert_eq!(second.totals.messages, 200);
}

#[test]
fn a_stalled_partition_is_flagged_as_health_judges_it() {
    let (s, clock) = sampler();
    assign(&s, &[0]);
    let lag = |s: &Sampler, high_watermark| {
        s.on_event(&Event::ConsumerLag {
            partition: p(0),
            lag: high_watermark - 100,
            high_watermark,
            next_offset: 100,
            position: 100,
            queried: true,
        })
    };
    lag(&s, 150);
    advance(&clock, STALL - Duration::from_secs(1));
    lag(&s, 160);
    assert!(!s.report(&identity(), None).partitions[0].stalled);
    advance(&clock, Duration::from_secs(2));
    lag(&s, 170);
    assert!(s.report(&identity(), None).partitions[0].stalled);
    // A deliberate pause is no stall.
    s.on_event(&Event::Paused {
        partition: p(0),
        reason: PauseReason::Consumer,
    });
    assert!(!s.report(&identity(), None).partitions[0].stalled);
}

#[test]
fn errors_are_kept_split_redacted_capped_and_queued_for_the_errors_topic() {
    let (s, _) = sampler();
    assign(&s, &[0]);
    s.on_event(&Event::BatchFailed {
        partition: p(0),
        offsets: (3, 7),
        attempt: 2,
        duration: Duration::ZERO,
        error: "cannot store order: connection refused sasl.password=hunter2",
        backtrace: None,
    });
    let queued = s.take_errors(usize::MAX);
    assert_eq!(queued.len(), 1);
    let e = &queued[0];
    assert_eq!(e.kind, "batch");
    assert_eq!(e.process_id, "host:1:abc");
    assert_eq!((e.topic.as_deref(), e.partition), (Some("t"), Some(0)));
    assert_eq!((e.offsets, e.attempt), (Some((3, 7)), Some(2)));
    assert_eq!(e.chain.len(), 2, "{:?}", e.chain);
    assert_eq!(e.chain[0], "cannot store order");
    assert!(!e.chain[1].contains("hunter2"), "{:?}", e.chain);
    assert_eq!(e.backtrace, None, "a returned error has none");
    s.on_event(&Event::BatchFailed {
        partition: p(0),
        offsets: (8, 8),
        attempt: 1,
        duration: Duration::ZERO,
        error: "consumer panicked: boom",
        backtrace: Some("0: shop::Payments::consume\n   at src/shop.rs:12"),
    });
    let panicked = s.take_errors(usize::MAX);
    assert_eq!(
        panicked[0].backtrace.as_deref(),
        Some("0: shop::Payments::consume\n   at src/shop.rs:12"),
        "a panic's backtrace is carried to the errors topic"
    );
    for n in 0..15 {
        let error = format!("error {n}");
        s.on_event(&Event::Error {
            kind: ErrorKind::Listener,
            partition: None,
            error: &error,
        });
    }
    // A reporting failure is shown but never queued: that would feed itself.
    s.on_event(&Event::Error {
        kind: ErrorKind::Reporting,
        partition: None,
        error: "errors topic unreachable",
    });
    let report = s.report(&identity(), None);
    assert_eq!(report.recent_errors.len(), sampler::RECENT_ERRORS);
    assert_eq!(report.recent_errors[9].kind, "reporting");
    assert_eq!(report.recent_errors[8].chain, ["error 14"]);
    assert_eq!((report.totals.batch_errors, report.totals.errors), (2, 16));
    assert_eq!(s.take_errors(usize::MAX).len(), 15);
}

#[test]
fn the_final_report_says_stopped_and_rates_need_two_reports() {
    let (s, _) = sampler();
    s.on_event(&Event::AppState(AppState::Stopping));
    assert_eq!(s.report(&identity(), None).state, "stopping");
    let last = s.report(&identity(), Some(AppState::Stopped));
    assert_eq!(last.state, "stopped");
}

#[test]
fn batch_events_of_partitions_not_assigned_here_change_no_partition() {
    let (s, _) = sampler();
    assign(&s, &[0]);
    s.on_event(&Event::OffsetStored {
        partition: p(5),
        next: 3,
    });
    let report = s.report(&identity(), None);
    assert_eq!(report.partitions.len(), 1);
    assert_eq!(report.partitions[0].partition, 0);
}

/// A partition handed over after it was consumed has nothing stored by its new owner: the
/// next offset of librdkafka's statistics is then the committed one, and the report says so
/// (it showed no position at all, and a Kafka test saw it after a late rebalance).
#[test]
fn before_anything_is_stored_the_committed_offset_comes_from_the_lag_figures() {
    let (s, _) = sampler();
    assign(&s, &[0]);
    let lag = |next_offset| Event::ConsumerLag {
        partition: p(0),
        lag: 100 - next_offset,
        high_watermark: 100,
        next_offset,
        position: -1,
        queried: false,
    };
    s.on_event(&lag(100));
    let report = s.report(&identity(), None);
    assert_eq!(report.partitions[0].stored_offset, None);
    assert_eq!(report.partitions[0].committed_offset, Some(100));
    assert_eq!(report.partitions[0].lag, Some(0));
    // Once the process stores, the next offset is its own, not a commit.
    s.on_event(&Event::OffsetStored {
        partition: p(0),
        next: 120,
    });
    s.on_event(&lag(120));
    let report = s.report(&identity(), None);
    assert_eq!(report.partitions[0].stored_offset, Some(120));
    assert_eq!(report.partitions[0].committed_offset, Some(100));
}

#[derive(Debug, Clone)]
enum Change {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
    Lost(Vec<i32>),
}

fn change() -> impl Strategy<Value = Change> {
    let set = proptest::collection::vec(0..8i32, 0..5);
    prop_oneof![
        set.clone().prop_map(Change::Assigned),
        set.clone().prop_map(Change::Revoked),
        set.prop_map(Change::Lost),
    ]
}

proptest! {
    /// Whatever the order of assignments, revocations and losses, the report lists exactly
    /// the partitions a set model holds.
    #[test]
    fn reported_partitions_follow_assignments_revocations_and_losses(
        changes in proptest::collection::vec(change(), 0..30)
    ) {
        let (s, _) = sampler();
        let mut model = BTreeSet::new();
        for change in &changes {
            let (list, assigned) = match change {
                Change::Assigned(l) => (l, true),
                Change::Revoked(l) | Change::Lost(l) => (l, false),
            };
            let partitions: Vec<(String, i32)> = list.iter().map(|n| ("t".into(), *n)).collect();
            let event = match change {
                Change::Assigned(_) => Event::PartitionsAssigned { subscription_group: SG, partitions: &partitions },
                Change::Revoked(_) => Event::PartitionsRevoked { subscription_group: SG, partitions: &partitions },
                Change::Lost(_) => Event::PartitionsLost { subscription_group: SG, partitions: &partitions },
            };
            s.on_event(&event);
            for n in list {
                if assigned { model.insert(*n); } else { model.remove(n); }
            }
            // Offsets of a partition are kept while it stays assigned.
            for n in list {
                s.on_event(&Event::OffsetStored { partition: p(*n), next: 1 });
            }
        }
        let report = s.report(&identity(), None);
        let reported: BTreeSet<i32> = report.partitions.iter().map(|p| p.partition).collect();
        prop_assert_eq!(reported, model);
    }
}

#[test]
fn a_newer_report_with_unknown_fields_decodes_flagged_and_a_tombstone_means_stopped() {
    let (s, _) = sampler();
    assign(&s, &[0]);
    let report = s.report(&identity(), None);
    let mut json = serde_json::to_value(&report).unwrap();
    json["schema"] = (crate::web::report::SCHEMA_VERSION + 1).into();
    json["gpu_temperature"] = 71.into();
    json["partitions"][0]["tier"] = "hot".into();
    let bytes = serde_json::to_vec(&json).unwrap();
    match decode(Some(&bytes)).expect("decodes") {
        Decoded::Report {
            report: decoded,
            newer_schema,
        } => {
            assert!(newer_schema);
            assert_eq!(decoded.id, report.id);
            assert_eq!(decoded.partitions, report.partitions);
        }
        Decoded::Stopped => panic!("not a tombstone"),
    }
    let current = serde_json::to_vec(&report).unwrap();
    assert!(matches!(
        decode(Some(&current)),
        Ok(Decoded::Report {
            newer_schema: false,
            ..
        })
    ));
    assert_eq!(decode(None).unwrap(), Decoded::Stopped);
}

#[test]
fn bad_reporting_settings_are_all_reported_at_once() {
    let mut config = Config::default();
    config
        .report_interval(Duration::from_millis(500))
        .reports_topic("reports topic".into())
        .errors_topic("reports topic".into());
    let mut problems = Vec::new();
    check_settings(&config, &mut problems);
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let all = text.join("\n");
    assert!(
        all.contains("report_interval") && all.contains("500ms"),
        "{all}"
    );
    assert!(all.contains("c.report_interval("), "{all}");
    assert!(all.contains("reports_topic"), "{all}");
    assert!(all.contains("errors_topic"), "{all}");
    assert_eq!(problems.len(), 4, "{all}");
    let mut fine = Vec::new();
    check_settings(&Config::default(), &mut fine);
    assert!(fine.is_empty(), "{fine:?}");
}

#[test]
fn reporting_declares_a_compacted_reports_topic_and_a_retained_errors_topic() {
    let app = |on: bool| {
        crate::App::builder_with_env([])
            .setup(move |c| {
                c.reporting(on);
            })
            .routes(|r| {
                r.topic("orders").consumer(|| crate::noop::Noop);
            })
            .build_with_env([])
    };
    let on = app(true);
    on.validate().expect("valid");
    let spec = |name: &str| {
        on.declared_topics()
            .iter()
            .find(|t| t.name == name)
            .cloned()
    };
    let reports = spec("ferrafka_reports").expect("reports topic declared");
    assert_eq!(reports.settings["cleanup.policy"], "compact");
    assert!(reports.settings.contains_key("segment.ms"));
    let errors = spec("ferrafka_errors").expect("errors topic declared");
    assert_eq!(errors.settings["cleanup.policy"], "delete");
    assert_eq!(errors.settings["retention.ms"], "259200000");
    assert!(app(false).declared_topics().is_empty());
}
