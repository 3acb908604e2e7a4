//! FD012, FD013 and FD023: durability of declared topics, shutdown and poll timing, and a
//! producer that partitions unlike the organisation's other producers.

use super::*;

#[test]
fn fd012_durability() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.producer_kafka("acks", "1")
                .producer_kafka("enable.idempotence", "false");
        },
        |_| {},
        |d| {
            d.topic("one-replica", |t| t.partitions(3).replication_factor(1));
            d.topic("isr-one", |t| {
                t.partitions(3).setting("min.insync.replicas", "1")
            });
            d.topic("isr-all", |t| {
                t.partitions(3).setting("min.insync.replicas", "3")
            });
        },
    ));
    let rf = &found(&report, "FD012")
        .into_iter()
        .filter(|f| f.subject == "topic one-replica")
        .collect::<Vec<_>>();
    assert!(
        rf.iter()
            .any(|f| f.found == "replication factor 1 (declared)"),
        "{rf:?}"
    );
    assert_eq!(
        one(&report, "FD012", "topic isr-one").severity,
        Severity::Warning
    );
    let all = one(&report, "FD012", "topic isr-all");
    assert_eq!(all.severity, Severity::Error);
    assert!(all.fix.contains("minus one"), "{}", all.fix);
    let producer: Vec<_> = found(&report, "FD012")
        .into_iter()
        .filter(|f| f.subject == "producer")
        .collect();
    assert_eq!(producer.len(), 2, "{producer:?}");
    assert_eq!(producer[0].found, "acks=1");
    assert_eq!(producer[0].severity, Severity::Error);
    assert!(producer[1].fix.contains("enable.idempotence"));
    none(&doctor(&ready_app()), "FD012");
}

#[test]
fn fd013_shutdown_and_poll_timing() {
    let report = doctor(&app_with(
        &[],
        |c| {
            c.shutdown_timeout(Duration::from_secs(2))
                .kafka("session.timeout.ms", "10000")
                .kafka("heartbeat.interval.ms", "4000");
        },
        |r| {
            r.topic("slow")
                .consumer(|| Noop)
                .config(|t| t.partitions(6))
                .max_wait_time(Duration::from_secs(5));
        },
        |_| {},
    ));
    let f = one(&report, "FD013", "shutdown_timeout");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.found.contains("topic slow"), "{}", f.found);
    // Owned by FD013: not repeated as an invalid configuration.
    none(&report, "FD000");
    let hb = found(&report, "FD013")
        .into_iter()
        .find(|f| f.found.contains("heartbeat.interval.ms=4000"))
        .expect("heartbeat finding");
    assert_eq!(hb.severity, Severity::Warning);

    let report = doctor(&app_with(
        &[],
        |c| {
            c.kafka("max.poll.interval.ms", "30000");
        },
        |_| {},
        |_| {},
    ));
    let fs = found(&report, "FD013");
    // A rebalance waits `revocation_timeout` (checked below max.poll.interval.ms at boot), not
    // shutdown_timeout: a poll interval shorter than shutdown_timeout is fine.
    assert!(
        !fs.iter().any(|f| f.found.contains("shutdown_timeout")),
        "{fs:?}"
    );
    assert!(
        fs.iter()
            .any(|f| f.severity == Severity::Error
                && f.found.contains("exceeds max.poll.interval.ms")),
        "{fs:?}"
    );
    none(&doctor(&ready_app()), "FD013");
}

#[test]
fn fd023_a_producer_partitioning_unlike_the_organisation_s_producers() {
    // librdkafka's default: every key hashed with CRC32 instead of Java's murmur2.
    let report = doctor(&app_with(
        &[],
        |c| {
            c.producer_kafka("partitioner", "consistent_random");
        },
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD023", "producer");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        f.found,
        "partitioner=consistent_random (set in setup) hashes keys with CRC32, \
         expected_partitioner=murmur2_random with murmur2 (the Java client's)"
    );
    assert!(
        f.why.contains("same key on different partitions"),
        "{}",
        f.why
    );
    assert!(
        f.fix
            .starts_with("set `c.producer_kafka(\"partitioner\", \"murmur2_random\")`"),
        "{}",
        f.fix
    );
    assert!(f.fix.contains("docs/partitioning.md"), "{}", f.fix);
    assert_eq!(report.exit_code(false), 1);

    // The same hash for keys: only keyless messages land elsewhere.
    let report = doctor(&app_with(
        &[("FERRAFKA_KAFKA_PARTITIONER", "murmur2")],
        |_| {},
        |_| {},
        |_| {},
    ));
    let f = one(&report, "FD023", "producer");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.found.starts_with(
            "partitioner=murmur2 (set in env:FERRAFKA_KAFKA_PARTITIONER), \
             expected_partitioner=murmur2_random: both hash keys with murmur2"
        ),
        "{}",
        f.found
    );
    assert!(
        f.found
            .ends_with("keyless messages go to one partition instead of a random partition"),
        "{}",
        f.found
    );
    assert!(
        f.fix
            .starts_with("set `FERRAFKA_KAFKA_PARTITIONER=murmur2_random`"),
        "{}",
        f.fix
    );

    // An organisation still on librdkafka's default, in development: checked in every
    // environment, against ferrafka's own default.
    let app = App::builder_with_env([("FERRAFKA_ENV".to_string(), "development".to_string())])
        .setup(|c| {
            c.client_id("shop")
                .expected_partitioner("consistent_random");
        })
        .routes(|r| {
            r.topic("orders").consumer(|| Noop);
        })
        .build();
    let f = one(&doctor(&app), "FD023", "producer").clone();
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.found.starts_with(
            "partitioner=murmur2_random (ferrafka's default) hashes keys with murmur2"
        ),
        "{}",
        f.found
    );
    assert!(
        f.fix
            .starts_with("set `c.producer_kafka(\"partitioner\", \"consistent_random\")`"),
        "{}",
        f.fix
    );

    // Matching, or nothing declared: nothing to report.
    none(&doctor(&ready_app()), "FD023");
    let undeclared = app_with(
        &[],
        |c| {
            c.expected_partitioner = None;
            c.producer_kafka("partitioner", "random");
        },
        |_| {},
        |_| {},
    );
    none(&doctor(&undeclared), "FD023");
}
