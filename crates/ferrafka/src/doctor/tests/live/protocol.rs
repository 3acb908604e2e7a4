//! FD015 and the static checks under KIP-848 (`group.protocol=consumer`): the session timeout
//! and the assignor are the broker's, so the doctor reads the broker, not the client.

use super::*;

/// The ready app on KIP-848: no classic session settings, a static member.
fn kip848_app(shutdown: Duration) -> App {
    let vars = [
        ("FERRAFKA_ENV", "production"),
        ("FERRAFKA_KAFKA_GROUP_INSTANCE_ID", "shop-1"),
    ];
    App::builder_with_env(vars.map(|(k, v)| (k.to_string(), v.to_string())))
        .setup(|c| {
            c.client_id("shop")
                .kafka("bootstrap.servers", "broker:9092")
                .kafka("group.protocol", "consumer")
                .producer_kafka("compression.codec", "zstd")
                .producer_kafka("enable.idempotence", "true")
                .max_expected_downtime(3 * DAY);
            c.shutdown_timeout(shutdown);
        })
        .routes(ready_routes)
        .declarations(ready_declarations)
        .build()
}

/// The ready cluster whose brokers report `settings` besides the offsets retention.
fn brokers(settings: &[(&str, &str)]) -> Fake {
    let mut cluster = Fake::ready().group("shop", "", 0);
    cluster.broker = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    cluster
}

const SUBJECT: &str = "subscription group shop/default";
const KAFKA_4: [(&str, &str); 2] = [
    (
        "group.coordinator.rebalance.protocols",
        "classic,consumer,streams",
    ),
    ("group.consumer.session.timeout.ms", "45000"),
];

#[test]
fn fd015_kafka_4_with_a_session_longer_than_a_restart_passes() {
    let app = kip848_app(Duration::from_secs(10));
    assert!(app.validate().is_ok(), "{:?}", app.validate());
    let report = live(&app, &brokers(&KAFKA_4));
    none(&report, "FD015");
    none(&report, "FD013");
}

#[test]
fn fd015_brokers_without_the_consumer_protocol_are_an_error() {
    let cluster = brokers(&[("group.coordinator.rebalance.protocols", "classic")]);
    let report = live(&kip848_app(Duration::from_secs(10)), &cluster);
    let f = one(&report, "FD015", SUBJECT);
    assert_eq!(f.severity, Severity::Error, "{f:?}");
    assert!(
        f.found
            .contains("group.coordinator.rebalance.protocols=classic"),
        "{f:?}"
    );
    assert!(f.fix.contains("group.protocol=classic"), "{f:?}");
}

#[test]
fn fd015_a_static_member_whose_broker_session_is_shorter_than_a_restart_warns() {
    let report = live(&kip848_app(Duration::from_secs(60)), &brokers(&KAFKA_4));
    let f = one(&report, "FD015", SUBJECT);
    assert_eq!(f.severity, Severity::Warning, "{f:?}");
    assert!(
        f.found.contains("group.consumer.session.timeout.ms=45000"),
        "{f:?}"
    );
    // The static check does not compare the unused client session.timeout.ms.
    let fd005: Vec<_> = report.findings.iter().filter(|f| f.id == "FD005").collect();
    assert!(
        fd005
            .iter()
            .all(|f| !f.found.contains("session.timeout.ms")),
        "{fd005:?}"
    );
}

#[test]
fn fd015_brokers_that_do_not_report_their_protocols_are_unknown() {
    let report = live(&kip848_app(Duration::from_secs(10)), &brokers(&[]));
    let f = one(&report, "FD015", SUBJECT);
    assert!(f.unknown, "{f:?}");
    assert!(
        f.found.contains("group.coordinator.rebalance.protocols"),
        "{f:?}"
    );
}

#[test]
fn fd015_classic_groups_are_not_checked() {
    let report = live(
        &ready_app(),
        &brokers(&[("group.coordinator.rebalance.protocols", "classic")]),
    );
    none(&report, "FD015");
}
