use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::messages::Message;

fn transaction() -> Transaction {
    Transaction::new(Producer::lazy(&BTreeMap::new()), "in".into(), 2)
}

#[test]
fn marks_only_move_forward_and_start_unset() {
    let mut tx = transaction();
    assert_eq!(tx.marked(), None);
    tx.mark_as_consumed(&Message::builder("in", 2, 7).build());
    tx.mark_as_consumed(&Message::builder("in", 2, 3).build());
    assert_eq!(tx.marked(), Some(8));
    tx.mark_next(12);
    assert_eq!(tx.marked(), Some(12));
}

#[test]
#[should_panic(expected = "marks messages of its own partition")]
fn marking_another_partitions_message_is_a_bug() {
    transaction().mark_as_consumed(&Message::builder("in", 3, 7).build());
}

#[test]
fn group_metadata_is_unknown_until_the_listener_sets_it() {
    let metadata = GroupMetadata::default();
    assert!(metadata.get().is_none());
    metadata.set(None);
    assert!(metadata.get().is_none());
    assert_eq!(format!("{metadata:?}"), "GroupMetadata { known: false }");
}

/// A context of a batch on a route that is not transactional, or in a final hook.
fn context(batch: Option<u64>) -> crate::Context {
    let handle = Arc::new(crate::consumer::PartitionHandle::new(
        ("g".into(), "in".into()),
        2,
        1,
        Box::new(|_, _| {}),
    ));
    crate::Context {
        handle,
        producer: Producer::lazy(&BTreeMap::new()),
        consumer_group: "g".into(),
        config: Default::default(),
        attempt: 1,
        batch,
        mark: None,
        requests: Vec::new(),
        virtual_group: None,
        transactions: None,
    }
}

#[tokio::test]
async fn a_transaction_outside_a_transactional_route_is_refused_by_name() {
    let mut ctx = context(Some(1));
    let ran = std::sync::atomic::AtomicBool::new(false);
    let result = ctx
        .transaction(async |_tx| {
            ran.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
        .await;
    let error = result.unwrap_err().to_string();
    assert!(error.contains("topic in is not transactional"), "{error}");
    assert!(error.contains(".transactional(true)"), "{error}");
    assert!(!ran.into_inner(), "the body never runs");
    assert_eq!(ctx.mark, None);
    let error = context(None)
        .transaction(async |_tx| Ok(()))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("only inside `consume`"), "{error}");
}
