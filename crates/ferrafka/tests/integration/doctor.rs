//! `doctor` against the embedded broker: live checks, the production boot gate, and
//! `doctor --env production` re-running the binary.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrafka::doctor::{ClockStatus, DoctorOptions, HostClock, Severity};
use ferrafka::{App, Error, Filters, Record, ServerExit};

use crate::support::*;

fn production_app(bootstrap: &str, routed: &str, declared_partitions: i32) -> App {
    let (bootstrap, routed) = (bootstrap.to_string(), routed.to_string());
    App::builder_with_env([
        ("FERRAFKA_ENV".to_string(), "production".to_string()),
        (
            "FERRAFKA_KAFKA_GROUP_INSTANCE_ID".to_string(),
            "doctor-1".to_string(),
        ),
    ])
    .setup(move |c| {
        c.client_id("doctor")
            .group_id(unique("doctor-group"))
            .kafka("bootstrap.servers", bootstrap)
            .kafka("session.timeout.ms", "90000")
            .producer_kafka("compression.codec", "zstd")
            .producer_kafka("enable.idempotence", "true")
            .max_expected_downtime(Duration::from_secs(3 * 86_400));
    })
    .routes(move |r| {
        r.topic(routed)
            .consumer(|| Recording {
                instance: 1,
                tracker: Tracker::default(),
                batch_sleep: Duration::ZERO,
            })
            .config(move |t| {
                t.partitions(declared_partitions)
                    .replication_factor(3)
                    .setting("min.insync.replicas", "2")
                    .setting("compression.type", "zstd")
            });
    })
    .build()
}

fn options(live: bool) -> DoctorOptions {
    DoctorOptions {
        live,
        clock: HostClock::Assume(ClockStatus::Synchronised { max_error_us: 100 }),
        lock_file: "/nonexistent/topics.lock".into(),
        program: "app".into(),
        timeout: Duration::from_secs(5),
        ..DoctorOptions::default()
    }
}

#[test]
fn live_checks_report_missing_topics_partitions_future_messages_and_unknown_retention() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("doctor-live");
    let app = production_app(&cluster.bootstrap(), &topic, 6);
    assert!(app.validate().is_ok(), "{:?}", app.validate());

    // The routed topic does not exist yet.
    let report = app.doctor(&options(true));
    let missing: Vec<_> = report.by_id("FD006").collect();
    assert_eq!(missing.len(), 1, "{}", report.to_text());
    assert_eq!(missing[0].severity, Severity::Error);
    assert_eq!(missing[0].subject, format!("topic {topic}"));
    assert_eq!(
        missing[0].fix,
        "run `app topics migrate` before starting the consumers"
    );
    assert_eq!(report.exit_code(false), 1);

    // Created with one partition (tansu cannot grow it), holding a message from the future.
    cluster.create_topic(&rt, &topic, 1);
    let in_an_hour = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 3_600_000;
    rt.block_on(
        cluster
            .producer
            .produce(Record::to(&topic).payload("1").timestamp(in_an_hour)),
    )
    .expect("produced");
    let report = app.doctor(&options(true));
    let text = report.to_text();
    assert!(report.by_id("FD006").next().is_none(), "{text}");
    let partitions = report.by_id("FD004").next().expect("FD004");
    assert!(
        partitions
            .found
            .contains("1 partition on the cluster (declared 6"),
        "{text}"
    );
    let future = report.by_id("FD010").next().expect("FD010");
    assert_eq!(future.severity, Severity::Warning, "{text}");
    assert!(future.found.contains("in this host's future"), "{text}");
    let replication_1 = report
        .by_id("FD012")
        .any(|f| f.found == "replication factor 1 (on the cluster)");
    if cluster.broker.is_kafka() {
        // Kafka answers DescribeConfigs for brokers; its offset retention (7 days) covers the
        // declared downtime, so FD011 passes and reports nothing. The suite's brokers do not
        // auto-create topics nor elect unclean leaders.
        assert!(report.by_id("FD011").all(|f| !f.unknown), "{text}");
        assert!(report.by_id("FD003").next().is_none(), "{text}");
        assert!(
            !text.contains("unclean.leader.election.enable=true"),
            "{text}"
        );
    } else {
        // tansu does not answer DescribeConfigs for brokers: unknown, with a note, not a pass.
        let retention = report.by_id("FD011").next().expect("FD011");
        assert!(retention.unknown, "{text}");
        assert_eq!(retention.subject, "broker offsets.retention.minutes");
        assert!(retention.fix.contains("at least 4320"), "{text}");
    }
    // The topic was created with one replica (on Kafka too, which has three nodes).
    assert!(replication_1, "{text}");
}

#[test]
fn a_production_boot_stops_on_doctor_errors_unless_overridden() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("doctor-boot");
    cluster.create_topic(&rt, &topic, 6);
    let build = |block: bool| {
        let bootstrap = cluster.bootstrap();
        App::builder_with_env([("FERRAFKA_ENV".to_string(), "production".to_string())])
            .setup(move |c| {
                c.client_id("doctor-boot")
                    .kafka("bootstrap.servers", bootstrap)
                    .producer_kafka("acks", "1")
                    .doctor_errors_block_boot(block);
            })
            .routes(|r| {
                r.topic(topic.clone())
                    .consumer(|| Recording {
                        instance: 1,
                        tracker: Tracker::default(),
                        batch_sleep: Duration::ZERO,
                    })
                    .config(|t| t.partitions(6));
            })
            .build()
    };
    let err = build(true).start(&Filters::default()).unwrap_err();
    let Error::Doctor { findings } = &err else {
        panic!("expected a doctor error, got {err:?}")
    };
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].contains("FD012 producer: acks=1"), "{err}");
    assert!(err.to_string().contains("--allow-doctor-errors"), "{err}");

    let server = build(false)
        .start(&Filters::default())
        .expect("starts when the override is set");
    assert_eq!(server.shutdown(), ServerExit::Clean);
}

const FIXTURE: &str = env!("CARGO_BIN_EXE_ferrafka-reload-fixture");

fn fixture_doctor(args: &[&str]) -> (i32, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(FIXTURE)
        .arg("doctor")
        .args(args)
        .args(["--format", "json", "--lock-file"])
        .arg(dir.path().join("topics.lock"))
        .env("FERRAFKA_ENV", "development")
        .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .env("RELOAD_FIXTURE_TOPIC", "orders")
        .env("RELOAD_FIXTURE_GROUP", "g")
        .env("RELOAD_FIXTURE_OUT", dir.path().join("out"))
        .env("RUST_LOG", "error")
        .output()
        .expect("fixture runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code().unwrap_or(-1), json)
}

#[test]
fn doctor_env_production_re_runs_the_binary_as_production() {
    let (code, report) = fixture_doctor(&[]);
    assert_eq!(report["env"], "development");
    assert_eq!(code, 0, "{report}");

    let (code, report) = fixture_doctor(&["--env", "production"]);
    assert_eq!(report["env"], "production", "{report}");
    // The fixture routes an undeclared topic: strict mode's problem, reported by FD002.
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f["id"] == "FD002" && f["subject"] == "topic orders"),
        "{report}"
    );
    assert_eq!(code, 1, "errors give exit code 1");
}

/// A production app on KIP-848 (`group.protocol=consumer`) with static membership, running
/// on Apache Kafka: `doctor --live` reads the broker's group settings instead of the client
/// properties KIP-848 does not use.
#[test]
fn doctor_reads_the_brokers_group_settings_under_kip848() {
    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("doctor-kip848");
    cluster.create_topic(&rt, &topic, 3);
    let group = unique("doctor-kip848-group");
    let build = |shutdown: Duration| {
        let (bootstrap, topic, group) = (cluster.bootstrap(), topic.clone(), group.clone());
        App::builder_with_env([
            ("FERRAFKA_ENV".to_string(), "production".to_string()),
            (
                "FERRAFKA_KAFKA_GROUP_INSTANCE_ID".to_string(),
                "doctor-kip848-1".to_string(),
            ),
        ])
        .setup(move |c| {
            c.client_id("doctor-kip848")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .kafka("group.protocol", "consumer")
                .doctor_errors_block_boot(false);
            c.shutdown_timeout(shutdown);
        })
        .routes(move |r| {
            r.topic(topic)
                .consumer(|| Recording {
                    instance: 1,
                    tracker: Tracker::default(),
                    batch_sleep: Duration::ZERO,
                })
                .config(|t| t.partitions(3));
        })
        .build()
    };
    let app = build(Duration::from_secs(10));
    let server = app.start(&Filters::default()).expect("starts");
    let report = app.doctor(&options(true));
    let text = report.to_text();
    println!("{text}");
    // Kafka 4 enables KIP-848, and its 45 s member session outlasts a 10 s shutdown.
    assert!(report.by_id("FD015").next().is_none(), "{text}");
    // No advice about the client session or heartbeat, which KIP-848 does not use.
    assert!(report.by_id("FD013").next().is_none(), "{text}");
    assert!(!text.contains("session.timeout.ms="), "{text}");
    // The admin client that reads the group's offsets does not inherit group.protocol.
    assert!(!text.contains("cannot create the admin consumer"), "{text}");
    assert_eq!(server.shutdown(), ServerExit::Clean);

    // A shutdown longer than the broker's member session: a restart loses the partitions.
    let report = build(Duration::from_secs(60)).doctor(&options(true));
    let text = report.to_text();
    let session = report.by_id("FD015").next().expect("FD015");
    assert_eq!(session.severity, Severity::Warning, "{text}");
    assert!(
        session
            .found
            .contains("group.consumer.session.timeout.ms=45000"),
        "{text}"
    );
}

/// `doctor --live` against a Kafka whose brokers are configured to hurt: topics created on first
/// use, a short offsets retention, unclean leader election, and (one node) a one-replica
/// `__consumer_offsets`. Each is found, naming the broker setting.
#[test]
fn doctor_live_finds_what_a_misconfigured_kafka_breaks() {
    let rt = runtime();
    let kafka = ferrafka_testing::KafkaCluster::start_with(
        1,
        &[
            "--broker-config",
            "auto.create.topics.enable=true",
            "--broker-config",
            "unclean.leader.election.enable=true",
            "--broker-config",
            "offsets.retention.minutes=60",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let topic = unique("doctor-brokers");
    let admin = ferrafka::admin::Admin::connect(&kafka.bootstrap).expect("admin");
    rt.block_on(admin.create_topic(&ferrafka::admin::TopicSpec::new(&topic, 6)))
        .expect("topic");
    // A group commits once, which makes Kafka create __consumer_offsets.
    let group = unique("doctor-brokers-group");
    admin
        .move_offsets(&group, &topic, ferrafka::admin::OffsetSpec::Earliest)
        .expect("offsets committed");
    let app = production_app(&kafka.bootstrap, &topic, 6);
    let report = app.doctor(&options(true));
    let text = report.to_text();
    println!("{text}");
    let find = |id: &'static str, subject: &str| {
        report
            .by_id(id)
            .find(|f| f.subject == subject)
            .unwrap_or_else(|| panic!("no {id} {subject} in:\n{text}"))
    };
    let auto_create = find("FD003", "broker auto.create.topics.enable");
    assert_eq!(auto_create.severity, Severity::Warning);
    let offsets = find("FD012", "topic __consumer_offsets");
    assert_eq!(offsets.severity, Severity::Error);
    assert_eq!(offsets.found, "replication factor 1 (on the cluster)");
    let unclean = report.by_id("FD012").find(|f| {
        f.subject == format!("topic {topic}")
            && f.found == "unclean.leader.election.enable=true (on the cluster)"
    });
    assert_eq!(
        unclean.map(|f| f.severity),
        Some(Severity::Warning),
        "{text}"
    );
    let retention = find("FD011", "broker offsets.retention.minutes");
    assert_eq!(retention.severity, Severity::Error);
    assert!(retention.found.starts_with("60 (60m)"), "{text}");
}

/// FD009 on Kafka: a group running with the `range` assignor, and an app about to be deployed
/// with `cooperative-sticky` into it (a rolling update would fail with "Inconsistent group
/// protocol"); the same app keeping `range` gets no FD009.
#[test]
fn doctor_live_finds_an_assignor_change_against_a_running_kafka_group() {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};
    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("doctor-assignor");
    cluster.create_topic(&rt, &topic, 3);
    let group = unique("doctor-assignor-group");
    let member: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap())
        .set("group.id", &group)
        .set("partition.assignment.strategy", "range")
        .create()
        .expect("running member");
    member.subscribe(&[&topic]).expect("subscribes");
    let joined = wait_until(Duration::from_secs(30), || {
        let _ = member.poll(Duration::from_millis(50));
        member.assignment().is_ok_and(|a| a.count() > 0)
    });
    assert!(joined, "the running member joined");
    let app = |strategy: &str| {
        let (bootstrap, topic, group, strategy) = (
            cluster.bootstrap(),
            topic.clone(),
            group.clone(),
            strategy.to_string(),
        );
        App::builder_with_env([])
            .setup(move |c| {
                c.client_id("doctor-assignor")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("partition.assignment.strategy", strategy);
            })
            .routes(move |r| {
                r.topic(topic).consumer(|| Noop);
            })
            .build()
    };
    let report = app("cooperative-sticky").doctor(&options(true));
    let text = report.to_text();
    let change = report.by_id("FD009").next().expect("FD009");
    assert_eq!(change.severity, Severity::Error, "{text}");
    assert!(
        change
            .found
            .contains("the running group uses range (1 member(s))"),
        "{text}"
    );
    let report = app("range").doctor(&options(true));
    assert!(
        report.by_id("FD009").next().is_none(),
        "{}",
        report.to_text()
    );
    drop(member);
}
