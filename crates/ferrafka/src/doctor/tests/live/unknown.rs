//! Live checks report "unknown" whenever the cluster told them nothing, never a pass.

use super::*;

/// The unknown finding `id` about `subject`, failing with the report when there is none.
fn unknown<'a>(report: &'a Report, id: &str, subject: &str) -> &'a Finding {
    let f = one(report, id, subject);
    assert!(f.unknown, "{f:?}");
    assert_eq!(f.severity, Severity::Info, "{f:?}");
    f
}

#[test]
fn fd011_a_stopped_group_whose_position_cannot_be_read_is_unknown() {
    let mut cluster = Fake::ready().group("shop", "", 0);
    // The group stopped at offset 17 of orders/2, but no message is there.
    cluster.gaps.push(("shop", "orders", 2, 17));
    let report = live(&ready_app(), &cluster);
    let f = unknown(&report, "FD011", "consumer group shop");
    assert!(
        f.found
            .contains("where it stopped cannot be read (orders: orders/2: no message"),
        "{}",
        f.found
    );
    let text = report.to_text();
    assert!(
        text.contains("FD011 consumer group shop (unknown)"),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let fd011 = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "FD011" && f["subject"] == "consumer group shop")
        .expect("FD011 in the JSON");
    assert_eq!(fd011["unknown"], true, "{fd011}");
}

#[test]
fn fd011_a_readable_old_partition_is_still_judged_next_to_an_unreadable_topic() {
    // Two routed topics: one unreadable, one 8 days behind with a 7-day retention.
    let app = app_with(
        &[],
        |_| {},
        |r| {
            r.topic("payments")
                .consumer(|| Noop)
                .config(|t| t.partitions(6));
        },
        |_| {},
    );
    let s = [("min.insync.replicas", "2"), ("compression.type", "zstd")];
    let mut cluster = Fake::ready()
        .topic("payments", 6, 3, &s)
        .group("shop", "", 0);
    cluster
        .unreadable
        .insert("shop/orders".into(), "timed out".into());
    cluster
        .unprocessed
        .insert("shop/payments".into(), vec![(1, now_ms() - 8 * 86_400_000)]);
    let report = live(&app, &cluster);
    let about_shop: Vec<_> = report
        .by_id("FD011")
        .filter(|f| f.subject == "consumer group shop")
        .collect();
    assert_eq!(about_shop.len(), 2, "{}", report.to_text());
    assert!(about_shop.iter().any(|f| f.unknown));
    assert!(
        about_shop
            .iter()
            .any(|f| f.severity == Severity::Error && f.found.contains("(payments/1) is 8d old")),
        "{}",
        report.to_text()
    );
}

#[test]
fn fd008_a_topic_whose_codec_the_broker_does_not_report_is_unknown() {
    let cluster = Fake::default()
        .topic("orders", 6, 3, &[("min.insync.replicas", "2")])
        .topic(
            "orders-dlq",
            3,
            3,
            &[("min.insync.replicas", "2"), ("compression.type", "zstd")],
        );
    let cluster = Fake {
        retention: Some(7 * DAY),
        ..cluster
    };
    let report = live(&ready_app(), &cluster);
    let f = unknown(&report, "FD008", "topic orders");
    assert!(
        f.found.contains("did not report compression.type"),
        "{}",
        f.found
    );
    none_about(&report, "FD008", "topic orders-dlq");
}

/// No finding `id` about `subject`.
fn none_about(report: &Report, id: &str, subject: &str) {
    assert!(
        report.by_id(id).all(|f| f.subject != subject),
        "{}",
        report.to_text()
    );
}
