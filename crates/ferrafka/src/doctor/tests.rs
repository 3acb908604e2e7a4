//! Unit tests: every static check triggered and passed on built apps, and the live checks'
//! judgement against a fake cluster.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::admin::memory::{Memory, Read};
use crate::admin::{GroupDescription, GroupMember, PartitionInfo, TopicInfo};
use crate::app::App;
use crate::config::Config;
use crate::declaratives::Declarations;
use crate::noop::Noop;
use crate::routing::{DeadLetterQueue, Router};

const DAY: Duration = Duration::from_secs(86_400);

fn ready_setup(c: &mut Config) {
    c.client_id("shop")
        .kafka("bootstrap.servers", "broker:9092")
        .kafka("session.timeout.ms", "90000")
        .kafka("security.protocol", "ssl")
        .producer_kafka("compression.codec", "zstd")
        .producer_kafka("enable.idempotence", "true")
        .max_expected_downtime(3 * DAY)
        .expected_partitioner("murmur2_random");
}

fn ready_routes(r: &mut Router) {
    r.topic("orders")
        .consumer(|| Noop)
        .config(|t| t.partitions(6))
        .dead_letter_queue(DeadLetterQueue::to("orders-dlq"));
}

fn ready_declarations(d: &mut Declarations) {
    d.defaults(|t| {
        t.replication_factor(3)
            .setting("min.insync.replicas", "2")
            .setting("compression.type", "zstd")
    });
    d.topic("orders-dlq", |t| t.partitions(3));
}

/// A production app: the ready one, changed by `setup`, `routes` and `declare`.
fn app_with(
    env: &[(&str, &str)],
    setup: impl FnOnce(&mut Config),
    routes: impl FnOnce(&mut Router),
    declare: impl FnOnce(&mut Declarations),
) -> App {
    let mut vars = vec![
        ("FERRAFKA_ENV".to_string(), "production".to_string()),
        (
            "FERRAFKA_KAFKA_GROUP_INSTANCE_ID".to_string(),
            "shop-1".to_string(),
        ),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    App::builder_with_env(vars)
        .setup(|c| {
            ready_setup(c);
            setup(c);
        })
        .routes(|r| {
            ready_routes(r);
            routes(r);
        })
        .declarations(|d| {
            ready_declarations(d);
            declare(d);
        })
        .build()
}

fn ready_app() -> App {
    app_with(&[], |_| {}, |_| {}, |_| {})
}

/// Options with a lock file matching `app`'s declarations and a synchronised clock.
fn options(app: &App) -> (DoctorOptions, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let lock_file = dir.path().join("topics.lock");
    std::fs::write(&lock_file, lock::render(app.declared_topics())).unwrap();
    let opts = DoctorOptions {
        lock_file,
        clock: HostClock::Assume(ClockStatus::Synchronised { max_error_us: 100 }),
        program: "shop".into(),
        ..DoctorOptions::default()
    };
    (opts, dir)
}

fn doctor(app: &App) -> Report {
    let (opts, _dir) = options(app);
    run_static(app, &opts)
}

/// The findings of `id`, asserting there is at least one.
fn found<'a>(report: &'a Report, id: &str) -> Vec<&'a Finding> {
    let found: Vec<&Finding> = report.findings.iter().filter(|f| f.id == id).collect();
    assert!(!found.is_empty(), "no {id} in:\n{}", report.to_text());
    found
}

fn none(report: &Report, id: &str) {
    assert!(
        report.by_id(id).next().is_none(),
        "unexpected {id}:\n{}",
        report.to_text()
    );
}

fn one<'a>(report: &'a Report, id: &str, subject: &str) -> &'a Finding {
    let matching: Vec<&Finding> = found(report, id)
        .into_iter()
        .filter(|f| f.subject == subject)
        .collect();
    assert_eq!(matching.len(), 1, "{id} {subject}:\n{}", report.to_text());
    matching[0]
}

#[test]
fn a_production_ready_app_gets_a_clean_report() {
    let app = ready_app();
    assert!(app.validate().is_ok(), "{:?}", app.validate());
    let report = doctor(&app);
    assert!(report.findings.is_empty(), "{}", report.to_text());
    assert_eq!(report.env, "production");
    assert_eq!(report.exit_code(true), 0);
    assert!(report.to_text().contains("no findings"));
}

#[test]
fn fd000_invalid_configuration() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.concurrency(0);
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD000", "concurrency");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.fix.contains("c.concurrency(n)"), "{}", f.fix);
    assert_eq!(report.exit_code(false), 1);
    none(&doctor(&ready_app()), "FD000");
}

#[test]
fn fd001_persistence_off_and_reload_mode() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.consumer_persistence(false);
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD001", "consumer_persistence");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.found.contains("setup"), "{}", f.found);
    assert!(f.fix.contains("consumer_persistence(false)"), "{}", f.fix);

    let report = doctor(&app_with(
        &[],
        |_| {},
        |r| {
            r.topic("refunds")
                .consumer(|| Noop)
                .config(|t| t.partitions(6))
                .consumer_persistence(false);
        },
        |_| {},
    ));
    let f = one(&report, "FD001", "topic refunds (consumer group shop)");
    assert!(f.fix.contains("route of `refunds`"), "{}", f.fix);

    let app = ready_app();
    let (mut opts, _dir) = options(&app);
    opts.reload = true;
    let f = run_static(&app, &opts).findings[0].clone();
    assert_eq!((f.id, f.severity), ("FD001", Severity::Error));
    assert!(f.fix.contains("without --reload"), "{}", f.fix);
    opts.reload_allowed = true;
    assert_eq!(
        one(&run_static(&app, &opts), "FD001", "server --reload").severity,
        Severity::Warning
    );
    none(&doctor(&app), "FD001");
}

#[test]
fn fd002_undeclared_topics_and_lock_drift() {
    let report = doctor(&app_with(
        &[],
        |_| {},
        |r| {
            r.topic("payments").consumer(|| Noop);
        },
        |_| {},
    ));
    let f = one(&report, "FD002", "topic payments");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.fix.contains("topics lock"), "{}", f.fix);
    // The strict-mode validation problem is reported once, by FD002, not again as FD000.
    none(&report, "FD000");
    // With strict mode turned off explicitly, it is still said, as a warning.
    let report = doctor(&app_with(
        &[],
        |c| {
            c.strict_declarative_topics(false);
        },
        |r| {
            r.topic("payments").consumer(|| Noop);
        },
        |_| {},
    ));
    let f = one(&report, "FD002", "topic payments");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.found.contains("strict_declarative_topics is off"),
        "{}",
        f.found
    );

    let app = ready_app();
    let (opts, _dir) = options(&app);
    let mut drifted = app.declared_topics().to_vec();
    drifted[0].partitions = 2;
    std::fs::write(&opts.lock_file, lock::render(&drifted)).unwrap();
    let report = run_static(&app, &opts);
    let f = &found(&report, "FD002")[0];
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.found.contains("~ orders: partitions 2 -> 6"),
        "{}",
        f.found
    );
    assert!(f.fix.contains("shop topics lock"), "{}", f.fix);

    std::fs::remove_file(&opts.lock_file).unwrap();
    let report = run_static(&app, &opts);
    let f = &found(&report, "FD002")[0];
    assert_eq!(
        (f.severity, f.found.as_str()),
        (Severity::Warning, "missing")
    );
    none(&doctor(&app), "FD002");
}

#[test]
fn fd003_auto_creation_for_consumers_and_the_producer() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.kafka("allow.auto.create.topics", "true")
                .producer_kafka("allow.auto.create.topics", "true");
        },
        |_| {},
        |_| {},
    ));
    let consumer = one(&report, "FD003", "subscription group shop/default");
    assert_eq!(consumer.severity, Severity::Error);
    assert!(consumer.found.contains("setup"), "{}", consumer.found);
    let producer = one(&report, "FD003", "producer");
    assert!(
        producer
            .fix
            .contains("producer_kafka(\"allow.auto.create.topics\", \"false\")"),
        "{}",
        producer.fix
    );
    // The production profile turns it off for both.
    let app = ready_app();
    assert_eq!(
        app.producer_kafka()
            .get("allow.auto.create.topics")
            .map(String::as_str),
        Some("false")
    );
    none(&doctor(&app), "FD003");
}

#[test]
fn fd004_single_partition_declarations() {
    let report = doctor(&app_with(
        &[],
        |_| {},
        |_| {},
        |d| {
            d.topic("audit", |t| t.partitions(1));
        },
    ));
    let f = one(&report, "FD004", "topic audit");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.fix.contains("topics repartition"), "{}", f.fix);
    assert_eq!(report.exit_code(false), 0);
    assert_eq!(report.exit_code(true), 1);
    none(&doctor(&ready_app()), "FD004");
}

#[test]
fn fd005_assignor_and_static_membership() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.kafka("partition.assignment.strategy", "range");
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD005", "subscription group shop/default");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.fix.contains("cooperative-sticky"), "{}", f.fix);

    // Static membership whose session is shorter than a restart.
    let report = doctor(&app_with(
        &[],
        |c| {
            c.kafka("session.timeout.ms", "30000");
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD005", "subscription group shop/default");
    assert!(f.found.contains("session.timeout.ms=30000"), "{}", f.found);

    // Two subscription groups of one consumer group: routing gives each its own instance id,
    // so static members of one process never fence each other (no FD005 error).
    let report = doctor(&app_with(
        &[],
        |_| {},
        |r| {
            r.topic("refunds")
                .consumer(|| Noop)
                .config(|t| t.partitions(6))
                .kafka("fetch.max.bytes", "100000");
        },
        |_| {},
    ));
    assert!(
        report
            .findings
            .iter()
            .all(|f| !(f.id == "FD005" && f.severity == Severity::Error)),
        "{}",
        report.to_text()
    );

    // No static membership: advice.
    let app = App::builder_with_env([("FERRAFKA_ENV".to_string(), "production".to_string())])
        .setup(ready_setup)
        .routes(ready_routes)
        .declarations(ready_declarations)
        .build();
    let report = doctor(&app);
    let f = one(&report, "FD005", "subscription group shop/default");
    assert_eq!(f.severity, Severity::Info);
    assert!(
        f.fix.contains("FERRAFKA_KAFKA_GROUP_INSTANCE_ID"),
        "{}",
        f.fix
    );
    none(&doctor(&ready_app()), "FD005");
}

#[test]
fn fd007_metadata_refresh_below_a_minute() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.kafka("topic.metadata.refresh.interval.ms", "5000");
        },
        |_| {},
        |_| {},
    ));
    for subject in ["subscription group shop/default", "producer"] {
        let f = one(&report, "FD007", subject);
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.fix.contains("300000"), "{}", f.fix);
    }
    none(&doctor(&ready_app()), "FD007");
}

#[test]
fn fd008_compression() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.producer_kafka("compression.codec", "none");
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD008", "producer");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.fix.contains("compression.codec"), "{}", f.fix);

    let report = doctor(&app_with(
        &[],
        |_| {},
        |_| {},
        |d| {
            d.topic("clicks", |t| {
                t.partitions(6).setting("compression.type", "gzip")
            });
        },
    ));
    let f = one(&report, "FD008", "topic clicks");
    assert!(
        f.found.contains("producer compresses with zstd"),
        "{}",
        f.found
    );

    // A build without zstd: the producer cannot start and consumers cannot decompress.
    let app = ready_app();
    let mut report = Report {
        env: "production".into(),
        live: false,
        findings: vec![],
        skipped: vec![],
    };
    let without_zstd: Vec<String> = ["gzip", "snappy", "lz4", "ssl"].map(String::from).to_vec();
    check_compression(&app, &without_zstd, &mut report);
    let producer = one(&report, "FD008", "producer");
    assert_eq!(producer.severity, Severity::Error);
    assert!(producer.fix.contains("zstd"), "{}", producer.fix);
    assert_eq!(
        one(&report, "FD008", "topic orders").severity,
        Severity::Error
    );
    none(&doctor(&app), "FD008");
}

#[test]
fn fd010_host_clock() {
    let app = ready_app();
    let (mut opts, _dir) = options(&app);
    opts.clock = HostClock::Assume(ClockStatus::Unsynchronised {
        max_error_us: 16_000_000,
    });
    let report = run_static(&app, &opts);
    let f = one(&report, "FD010", "host clock");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.found.contains("16000 ms"), "{}", f.found);
    assert!(f.fix.contains("chrony"), "{}", f.fix);
    opts.clock = HostClock::Assume(ClockStatus::Unknown {
        reason: "adjtimex failed: EPERM".into(),
    });
    let report = run_static(&app, &opts);
    let f = one(&report, "FD010", "host clock");
    assert!(f.unknown && f.severity == Severity::Info, "{f:?}");
    none(&doctor(&app), "FD010");
}

#[test]
fn fd011_downtime_must_be_declared() {
    let app = App::builder_with_env([
        ("FERRAFKA_ENV".to_string(), "production".to_string()),
        (
            "FERRAFKA_KAFKA_GROUP_INSTANCE_ID".to_string(),
            "a".to_string(),
        ),
    ])
    .setup(|c| {
        ready_setup(c);
        c.max_expected_downtime = None;
    })
    .routes(ready_routes)
    .declarations(ready_declarations)
    .build();
    let f = one(&doctor(&app), "FD011", "max_expected_downtime").clone();
    assert_eq!(f.severity, Severity::Info);
    assert!(f.fix.contains("max_expected_downtime("), "{}", f.fix);
    none(&doctor(&ready_app()), "FD011");
}

#[test]
fn outside_production_the_production_checks_are_listed_as_skipped() {
    let app = App::builder_with_env([("FERRAFKA_ENV".to_string(), "development".to_string())])
        .setup(|c| {
            c.client_id("shop");
        })
        .routes(|r| {
            r.topic("orders").consumer(|| Noop);
        })
        .build();
    let report = doctor(&app);
    assert!(report.findings.is_empty(), "{}", report.to_text());
    assert!(
        report.skipped[0].contains("production-only checks (FD001-FD012, FD016-FD021)"),
        "{:?}",
        report.skipped
    );
    assert!(report.to_text().contains("use --env production"));
}

#[test]
fn text_groups_by_severity_and_json_carries_every_field() {
    let report = doctor(&app_with(
        &[("FERRAFKA_KAFKA_ACKS", "0")],
        |c| {
            c.kafka("topic.metadata.refresh.interval.ms", "1000");
        },
        |_| {},
        |d| {
            d.topic("audit", |t| t.partitions(1));
        },
    ));
    let text = report.to_text();
    let errors = text.find("\nerrors:").expect("errors section");
    let warnings = text.find("\nwarnings:").expect("warnings section");
    assert!(errors < warnings, "{text}");
    assert!(
        text.contains("  FD012 producer\n    found: acks=0\n    why:   "),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["env"], "production");
    let first = &json["findings"][0];
    assert_eq!(first["severity"], "error");
    for field in ["id", "subject", "found", "why", "fix", "unknown"] {
        assert!(!first[field].is_null(), "{field} missing in {first}");
    }
}

mod live;
mod production;
mod security;
mod virtual_partitions;
