//! Kafka transactions: a batch's output and its consumed offset committed together, so a
//! consume-transform-produce pipeline is exactly-once for `read_committed` readers (see
//! [`guide::transactions`](crate::guide::transactions)).
//!
//! A route opts in with [`TopicRoute::transactional`](crate::routing::TopicRoute::transactional);
//! inside `consume`, [`Context::transaction`](crate::Context::transaction) runs a closure with a
//! [`Transaction`], which produces and marks. The transaction commits when the closure returns
//! `Ok` and every delivery succeeded, and aborts otherwise.

mod boot;
mod pool;
mod run;

use std::sync::{Arc, Mutex};

use rdkafka::consumer::ConsumerGroupMetadata;

use crate::error::Result;
use crate::messages::Message;
use crate::producer::{Delivery, Producer, Record};

pub(crate) use boot::boot;
pub(crate) use pool::{INIT_TIMEOUT, TransactionalProducers};
pub(crate) use run::{Access, run};

/// The consumer group's metadata (member id, generation), as the listener last saw it: what
/// `send_offsets_to_transaction` presents, so the group coordinator refuses a commit of a
/// member that lost its partitions in a rebalance (KIP-447).
#[derive(Default)]
pub(crate) struct GroupMetadata(Mutex<Option<Arc<ConsumerGroupMetadata>>>);

impl GroupMetadata {
    /// Called by the listener at every rebalance, before revoked partitions are flagged.
    pub(crate) fn set(&self, metadata: Option<ConsumerGroupMetadata>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = metadata.map(Arc::new);
    }

    pub(crate) fn get(&self) -> Option<Arc<ConsumerGroupMetadata>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for GroupMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMetadata")
            .field("known", &self.get().is_some())
            .finish()
    }
}

/// An open transaction of one partition's batch: produce into it and mark what it consumed.
/// Nothing it produces is visible to `read_committed` readers, and nothing it marks is
/// committed, unless the transaction commits.
#[derive(Debug)]
pub struct Transaction {
    producer: Producer,
    topic: Arc<str>,
    partition: i32,
    /// The next offset to commit with the transaction.
    mark: Option<i64>,
    /// A delivery failed: the transaction can only abort.
    failed: bool,
}

impl Transaction {
    pub(crate) fn new(producer: Producer, topic: Arc<str>, partition: i32) -> Self {
        Transaction {
            producer,
            topic,
            partition,
            mark: None,
            failed: false,
        }
    }

    /// Produces `record` in this transaction and waits for the broker's acknowledgement.
    /// The record becomes visible to `read_committed` readers only when the transaction
    /// commits; a failed delivery makes the transaction abort, even if the closure returns
    /// `Ok`.
    pub async fn produce(&mut self, record: Record<'_>) -> Result<Delivery> {
        let result = self.producer.produce(record).await;
        self.failed |= result.is_err();
        result
    }

    /// Produces many records in this transaction and waits for all acknowledgements.
    pub async fn produce_many<'a, I>(&mut self, records: I) -> Result<usize>
    where
        I: IntoIterator<Item = Record<'a>>,
    {
        let result = self.producer.produce_many(records).await;
        self.failed |= result.is_err();
        result
    }

    /// Marks `message` and every earlier one of this partition as consumed by this
    /// transaction: the offset after it is committed with the transaction, and only then.
    ///
    /// # Panics
    ///
    /// When `message` is of another partition than the batch's.
    pub fn mark_as_consumed(&mut self, message: &Message) {
        assert!(
            message.topic() == &*self.topic && message.partition() == self.partition,
            "a transaction marks messages of its own partition ({} [{}]), not {} [{}]",
            self.topic,
            self.partition,
            message.topic(),
            message.partition()
        );
        self.mark_next(message.offset() + 1);
    }

    pub(crate) fn mark_next(&mut self, next: i64) {
        self.mark = self.mark.max(Some(next));
    }

    /// The next offset this transaction commits, if it marked anything.
    pub fn marked(&self) -> Option<i64> {
        self.mark
    }
}

#[cfg(test)]
mod tests;
