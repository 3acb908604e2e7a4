//! FD022: the app's principal lacks an ACL its routes need.

use std::collections::BTreeSet;

use super::*;

fn allowed(ops: &[&str]) -> Permissions {
    Permissions::Allowed(ops.iter().map(|o| o.to_string()).collect::<BTreeSet<_>>())
}

fn with_permissions(permissions: Vec<(ResourceKind, &'static str, Permissions)>) -> Report {
    let mut cluster = Fake::ready().group("shop", "cooperative-sticky", 2);
    cluster.permissions = permissions;
    live(&ready_app(), &cluster)
}

#[test]
fn fd022_every_missing_operation_is_an_error_naming_resource_operation_and_grant() {
    let report = with_permissions(vec![
        (ResourceKind::Group, "shop", allowed(&["DESCRIBE"])),
        (ResourceKind::Topic, "orders", Permissions::DescribeDenied),
        (
            ResourceKind::Topic,
            "orders-dlq",
            allowed(&["READ", "DESCRIBE"]),
        ),
    ]);
    let group = one(&report, "FD022", "group shop");
    assert_eq!(group.severity, Severity::Error);
    assert!(group.found.contains("may not READ"), "{}", group.found);
    assert!(group.found.contains("it may: DESCRIBE"), "{}", group.found);
    assert!(
        group.fix.contains("--operation Read --group shop"),
        "{}",
        group.fix
    );
    let topic = one(&report, "FD022", "topic orders");
    assert!(
        topic.found.contains("nothing, not even DESCRIBE"),
        "{}",
        topic.found
    );
    let dlq = one(&report, "FD022", "topic orders-dlq");
    assert!(
        dlq.found
            .contains("may not WRITE (the dead-letter queue of orders)"),
        "{}",
        dlq.found
    );
    assert!(
        dlq.fix.contains("--operation Write --topic orders-dlq"),
        "{}",
        dlq.fix
    );
    assert!(report.has_errors());
}

#[test]
fn fd022_granted_operations_raise_nothing() {
    let report = with_permissions(vec![
        (ResourceKind::Group, "shop", allowed(&["READ", "DESCRIBE"])),
        (
            ResourceKind::Topic,
            "orders",
            allowed(&["READ", "DESCRIBE"]),
        ),
        (
            ResourceKind::Topic,
            "orders-dlq",
            allowed(&["WRITE", "DESCRIBE"]),
        ),
    ]);
    assert!(
        !report.findings.iter().any(|f| f.id == "FD022"),
        "{}",
        report.to_text()
    );
}

#[test]
fn fd022_a_cluster_without_an_authorizer_is_unknown_not_passed() {
    let report = with_permissions(vec![
        (ResourceKind::Group, "shop", Permissions::NotReported),
        (ResourceKind::Topic, "orders", Permissions::NotReported),
    ]);
    let f = one(&report, "FD022", "permissions");
    assert!(f.unknown && f.severity == Severity::Info, "{f:?}");
    assert!(f.found.contains("no authorizer"), "{}", f.found);
}

#[test]
fn fd022_a_resource_that_cannot_be_described_is_unknown() {
    let report = with_permissions(vec![(
        ResourceKind::Topic,
        "orders",
        Permissions::Unknown("Broker: Request timed out".into()),
    )]);
    let f = one(&report, "FD022", "topic orders");
    assert!(f.unknown, "{f:?}");
    assert!(f.found.contains("Request timed out"), "{}", f.found);
}
