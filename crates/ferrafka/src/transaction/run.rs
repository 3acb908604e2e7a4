//! One transaction, from checkout to commit or abort. The blocking librdkafka calls run on
//! tokio's blocking threads, never on a runtime worker.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::{Offset, TopicPartitionList};

use super::pool::{CheckedOut, Slot, is_fenced, is_retriable};
use super::{GroupMetadata, Transaction, TransactionalProducers};
use crate::consumer::handle::PartitionHandle;
use crate::error::{BoxError, Error};
use crate::instrumentation::Event;

/// How long one transactional call (send offsets, commit, abort) may block.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a commit failing with a retriable error is tried again before the producer is
/// replaced (which settles the transaction either way).
const COMMIT_TRIES: u32 = 5;

/// What a transactional route's executor gives its contexts.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) pool: Arc<TransactionalProducers>,
    /// The listener's view of the group, for `send_offsets_to_transaction`.
    pub(crate) group: Arc<GroupMetadata>,
}

/// Runs `body` in a transaction of `handle`'s partition and commits it with the offset `body`
/// marked; aborts when `body` fails, a delivery failed or the partition was revoked. Returns
/// `body`'s value and the next offset committed, if any. Emits how it ended.
pub(crate) async fn run<T, F>(
    access: &Access,
    handle: &PartitionHandle,
    body: F,
) -> Result<(T, Option<i64>), BoxError>
where
    F: AsyncFnOnce(&mut Transaction) -> Result<T, BoxError>,
{
    let result = transact(access, handle, body).await;
    let partition = handle.partition_ref();
    match &result {
        Ok((_, next)) => access.pool.monitor().emit(|| Event::TransactionEnded {
            partition,
            committed: true,
            next: *next,
            error: None,
        }),
        Err(e) => {
            let error = crate::error::describe_ref(&**e);
            tracing::warn!(
                consumer_group = %handle.consumer_group, topic = %handle.topic,
                partition = handle.partition, %error, "transaction aborted"
            );
            access.pool.monitor().emit(|| Event::TransactionEnded {
                partition,
                committed: false,
                next: None,
                error: Some(&error),
            });
        }
    }
    result
}

async fn transact<T, F>(
    access: &Access,
    handle: &PartitionHandle,
    body: F,
) -> Result<(T, Option<i64>), BoxError>
where
    F: AsyncFnOnce(&mut Transaction) -> Result<T, BoxError>,
{
    let failure = |what: String, source: Option<KafkaError>, id: &str| Error::Transaction {
        topic: handle.topic.to_string(),
        partition: handle.partition,
        transactional_id: id.to_string(),
        what,
        source: source.map(Box::new),
    };
    let mut open = Open {
        out: Some(access.pool.checkout().await),
        open: false,
    };
    let slot = open.slot();
    let id = slot.transactional_id.clone();
    if let Err(e) = blocking(slot, |s| {
        s.init(super::INIT_TIMEOUT)?;
        s.producer.base_kafka()?.begin_transaction()
    })
    .await
    {
        open.settle_failed(&e);
        return Err(failure(explain("could not begin", &e), Some(e), &id).into());
    }
    open.open = true;
    let slot = open.slot();
    let mut tx = Transaction::new(
        slot.producer.clone(),
        handle.topic.clone(),
        handle.partition,
    );
    let value = match body(&mut tx).await {
        Ok(value) => value,
        Err(e) => {
            open.abort().await;
            return Err(e);
        }
    };
    if tx.failed {
        open.abort().await;
        return Err(failure("aborted: a delivery failed".into(), None, &id).into());
    }
    // Read before the revocation flag: a partition revoked after this read is committed with
    // a generation the coordinator refuses once the partition has moved (KIP-447).
    let Some(metadata) = access.group.get() else {
        open.abort().await;
        return Err(failure(
            "aborted: the consumer group's metadata is unknown".into(),
            None,
            &id,
        )
        .into());
    };
    if handle.is_revoked() {
        open.abort().await;
        let what = "aborted: the partition was revoked; its new owner processes the batch";
        return Err(failure(what.into(), None, &id).into());
    }
    let offsets = tx.mark.map(|next| {
        let mut tpl = TopicPartitionList::new();
        let _ = tpl.add_partition_offset(&handle.topic, handle.partition, Offset::Offset(next));
        tpl
    });
    let mut tries = 0;
    loop {
        tries += 1;
        let (offsets, metadata) = (offsets.clone(), metadata.clone());
        let result = blocking(open.slot(), move |s| {
            let client = s.producer.base_kafka()?;
            if let Some(offsets) = &offsets {
                client.send_offsets_to_transaction(offsets, &metadata, CALL_TIMEOUT)?;
            }
            client.commit_transaction(CALL_TIMEOUT)
        })
        .await;
        match result {
            Ok(()) => {
                open.open = false;
                return Ok((value, tx.mark));
            }
            Err(e) if is_retriable(&e) && tries < COMMIT_TRIES => continue,
            Err(e) if requires_abort(&e) => {
                open.abort().await;
                return Err(failure(explain("aborted at commit", &e), Some(e), &id).into());
            }
            Err(e) => {
                // Fatal, or still failing: a fresh producer with the same id settles it (its
                // initialisation aborts or completes what this one left).
                open.open = false;
                open.out.as_mut().expect("checked out").replace();
                return Err(failure(explain("could not commit", &e), Some(e), &id).into());
            }
        }
    }
}

/// A checked-out producer whose transaction, while `open`, is aborted if the run ends early
/// (a panic in `body`, or the batch's future dropped).
struct Open {
    out: Option<CheckedOut>,
    open: bool,
}

impl Open {
    fn slot(&mut self) -> Slot {
        self.out.as_mut().expect("checked out").slot().clone()
    }

    /// Aborts the open transaction; a producer that cannot abort is replaced.
    async fn abort(&mut self) {
        self.open = false;
        let slot = self.slot();
        let result = blocking(slot, |s| {
            s.producer.base_kafka()?.abort_transaction(CALL_TIMEOUT)
        })
        .await;
        if let Err(e) = result {
            tracing::error!(transactional_id = %self.slot().transactional_id, error = %e, "cannot abort the transaction: replacing the producer, whose successor aborts it");
            self.settle_failed(&e);
        }
    }

    /// After a failed begin or abort: the producer's transaction state is unknown, so it is
    /// replaced; the fresh one's initialisation aborts whatever the old one left open.
    fn settle_failed(&mut self, error: &KafkaError) {
        if is_fenced(error) {
            tracing::error!(transactional_id = %self.slot().transactional_id, "transactional producer fenced: another producer with the same transactional.id took over (another process started with the same `transactional_id`, or this one was presumed dead); every process needs its own `transactional_id`");
        }
        self.out.as_mut().expect("checked out").replace();
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // The run ended with its transaction open: abort it on a thread of its own (no
        // runtime may be left), and give the producer back only then.
        let Some(out) = self.out.take() else { return };
        let _ = std::thread::Builder::new()
            .name("ferrafka-tx-abort".into())
            .spawn(move || {
                let mut out = out;
                let failed = out
                    .slot()
                    .producer
                    .base_kafka()
                    .and_then(|p| p.abort_transaction(CALL_TIMEOUT))
                    .is_err();
                if failed {
                    out.replace();
                }
            });
    }
}

/// Runs a blocking call on `slot` on tokio's blocking threads.
async fn blocking<T: Send + 'static>(
    slot: Slot,
    call: impl FnOnce(&Slot) -> Result<T, KafkaError> + Send + 'static,
) -> Result<T, KafkaError> {
    tokio::task::spawn_blocking(move || call(&slot))
        .await
        .unwrap_or_else(|_| Err(KafkaError::Canceled))
}

fn requires_abort(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if e.txn_requires_abort())
}

/// `stage` and the error, fencing explained.
fn explain(stage: &str, error: &KafkaError) -> String {
    if is_fenced(error) {
        format!(
            "{stage}: fenced, another producer with the same transactional.id took over (another \
             process runs with the same `transactional_id`, or this one was presumed dead); give \
             every process its own `transactional_id`"
        )
    } else {
        format!("{stage}: {error}")
    }
}
