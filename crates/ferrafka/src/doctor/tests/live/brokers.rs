//! Live checks of broker-wide facts: auto-creation, `__consumer_offsets` replication, unclean
//! leader election.

use super::*;

fn ready_with(f: impl FnOnce(Fake) -> Fake) -> Report {
    live(
        &ready_app(),
        &f(Fake::ready().group("shop", "cooperative-sticky", 2)),
    )
}

#[test]
fn fd003_brokers_that_auto_create_topics_warn() {
    let report = ready_with(|mut c| {
        c.broker
            .insert("auto.create.topics.enable".into(), "true".into());
        c
    });
    let f = one(&report, "FD003", "broker auto.create.topics.enable");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.found, "true (on the cluster)");
}

#[test]
fn fd003_an_unreported_auto_create_setting_is_unknown() {
    let report = ready_with(|mut c| {
        c.broker.clear();
        c
    });
    let f = one(&report, "FD003", "broker auto.create.topics.enable");
    assert!(f.unknown, "{f:?}");
}

#[test]
fn fd012_a_consumer_offsets_topic_with_one_replica_is_an_error() {
    let report = ready_with(|c| c.topic("__consumer_offsets", 50, 1, &[]));
    let f = one(&report, "FD012", "topic __consumer_offsets");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.found, "replication factor 1 (on the cluster)");
    let fine = ready_with(|c| c.topic("__consumer_offsets", 50, 3, &[]));
    assert!(fine.findings.is_empty(), "{}", fine.to_text());
}

#[test]
fn fd012_a_topic_with_unclean_leader_election_warns() {
    let s = [
        ("min.insync.replicas", "2"),
        ("compression.type", "zstd"),
        ("unclean.leader.election.enable", "true"),
    ];
    let report = ready_with(|mut c| {
        c.topics.retain(|t| t.name != "orders");
        c.topic("orders", 6, 3, &s)
    });
    let f = one(&report, "FD012", "topic orders");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(
        f.found,
        "unclean.leader.election.enable=true (on the cluster)"
    );
}
