//! The app's real routes, run by the Tester: no broker, no sleeping.

use example_testing::app;
use ferrafka::testing::Tester;

#[tokio::test]
async fn every_order_gets_a_receipt_keyed_by_its_id() {
    let mut tester = Tester::new(&app());
    tester.produce("orders", r#"{"id":1,"cents":250}"#);
    tester.produce("orders", r#"{"id":2,"cents":1200}"#);
    tester.consume().await;

    let receipts = tester.produced_to("receipts");
    assert_eq!(receipts.len(), 2);
    assert_eq!(receipts[0].key.as_deref(), Some(&b"1"[..]));
    assert_eq!(
        receipts[1].payload.as_deref(),
        Some(&br#"{"order":2,"total":1200}"#[..])
    );
    // Both marked: the next offset to read is 2.
    assert_eq!(tester.marked("orders", 0), Some(2));
}

#[tokio::test]
async fn a_malformed_order_is_retried_then_dead_lettered_and_the_rest_go_on() {
    let mut tester = Tester::new(&app());
    tester.produce("orders", r#"{"id":1,"cents":250}"#);
    tester.produce("orders", r#"{"id":2}"#); // no amount
    tester.produce("orders", r#"{"id":3,"cents":99}"#);
    tester.consume().await;

    let dead = tester.dead_lettered("orders");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload.as_deref(), Some(&br#"{"id":2}"#[..]));
    // Orders 1 and 3 got receipts; order 1's may be written again by the batch's retry
    // (at-least-once), never order 2's.
    let receipts: Vec<String> = tester
        .produced_to("receipts")
        .iter()
        .map(|r| String::from_utf8_lossy(r.key.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert!(receipts.contains(&"1".to_string()) && receipts.contains(&"3".to_string()));
    assert!(!receipts.contains(&"2".to_string()), "{receipts:?}");
    assert_eq!(tester.marked("orders", 0), Some(3));
}
