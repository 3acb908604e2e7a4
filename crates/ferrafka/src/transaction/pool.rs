//! The pool of transactional producers: one per executor slot (`concurrency`), each with a
//! stable `transactional.id` (`<transactional_id>-<slot>`), so a restarted process fences its
//! killed predecessor's producers and aborts their open transactions at once.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::Producer as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::instrumentation::Monitor;
use crate::producer::Producer;

/// How long `init_transactions` may take at boot (it waits for the coordinator, and for a
/// predecessor's open transaction to be aborted).
pub(crate) const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One transactional producer and its stable id; a clone shares the producer.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) transactional_id: String,
    pub(crate) producer: Producer,
    /// `init_transactions` succeeded on this producer.
    initialized: Arc<AtomicBool>,
}

/// The transactional producers of a process; cheap to share.
#[derive(Debug)]
pub(crate) struct TransactionalProducers {
    kafka: BTreeMap<String, String>,
    monitor: Monitor,
    free: Mutex<Vec<Slot>>,
    available: Arc<Semaphore>,
}

impl TransactionalProducers {
    /// `slots` producers with `transactional.id` `<base>-0` … `<base>-<slots-1>`, created on
    /// first use from the producer's properties `kafka`.
    pub(crate) fn new(
        base: &str,
        slots: usize,
        kafka: &BTreeMap<String, String>,
        monitor: Monitor,
    ) -> Self {
        let kafka = kafka.clone();
        let free = (0..slots)
            .rev()
            .map(|i| Slot::new(format!("{base}-{i}"), &kafka, &monitor))
            .collect();
        TransactionalProducers {
            kafka,
            monitor,
            free: Mutex::new(free),
            available: Arc::new(Semaphore::new(slots)),
        }
    }

    /// The cluster id the brokers report (blocking, at most `timeout`).
    pub(crate) fn cluster_id(&self, timeout: Duration) -> Option<String> {
        let slot = self.free().first().cloned()?;
        slot.producer
            .base_kafka()
            .ok()?
            .client()
            .fetch_cluster_id(timeout)
    }

    /// Where transaction events go.
    pub(crate) fn monitor(&self) -> &Monitor {
        &self.monitor
    }

    /// The transactional ids, in slot order.
    pub(crate) fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .free()
            .iter()
            .map(|s| s.transactional_id.clone())
            .collect();
        ids.sort_by_key(|id| slot_number(id));
        ids
    }

    /// Initialises every producer's transactions (blocking): fences any earlier producer with
    /// the same id (a killed predecessor) and aborts its open transaction. The first refusal
    /// is returned with its id: a broker without transactions refuses the first.
    pub(crate) fn init_all(&self, timeout: Duration) -> Result<(), (String, KafkaError)> {
        let free = self.free();
        for slot in free.iter() {
            slot.init(timeout)
                .map_err(|e| (slot.transactional_id.clone(), e))?;
        }
        Ok(())
    }

    /// Waits for a free producer. At most `concurrency` batches run at once, so one is free
    /// whenever a batch asks, unless a transaction is still being aborted.
    pub(crate) async fn checkout(self: &Arc<Self>) -> CheckedOut {
        let permit = self
            .available
            .clone()
            .acquire_owned()
            .await
            .expect("the pool's semaphore is never closed");
        let slot = self.free().pop().expect("a permit means a free slot");
        CheckedOut {
            slot: Some(slot),
            pool: self.clone(),
            _permit: permit,
        }
    }

    fn free(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `n` of `base-n`, to sort ids by slot.
fn slot_number(id: &str) -> usize {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl Slot {
    fn new(transactional_id: String, kafka: &BTreeMap<String, String>, monitor: &Monitor) -> Self {
        let mut kafka = kafka.clone();
        kafka.insert("transactional.id".into(), transactional_id.clone());
        Slot {
            producer: Producer::monitored(&kafka, monitor.clone()),
            transactional_id,
            initialized: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs `init_transactions` once per producer (blocking).
    pub(crate) fn init(&self, timeout: Duration) -> Result<(), KafkaError> {
        if self.initialized.load(Ordering::Acquire) {
            return Ok(());
        }
        self.producer.base_kafka()?.init_transactions(timeout)?;
        self.initialized.store(true, Ordering::Release);
        Ok(())
    }
}

/// A producer taken from the pool for one transaction; back in the pool when dropped.
#[derive(Debug)]
pub(crate) struct CheckedOut {
    slot: Option<Slot>,
    pool: Arc<TransactionalProducers>,
    _permit: OwnedSemaphorePermit,
}

impl CheckedOut {
    pub(crate) fn slot(&mut self) -> &mut Slot {
        self.slot.as_mut().expect("present until dropped")
    }

    /// Replaces the producer by a fresh one with the same id, after a fatal error (fenced, or
    /// a transaction whose state is unknown): the next use initialises it, which aborts what
    /// the old one left open.
    pub(crate) fn replace(&mut self) {
        let id = self.slot().transactional_id.clone();
        let fresh = Slot::new(id, &self.pool.kafka, &self.pool.monitor);
        let old = std::mem::replace(self.slot(), fresh);
        // Destroying a librdkafka client blocks; never on a runtime thread.
        let _ = std::thread::Builder::new()
            .name("ferrafka-tx-close".into())
            .spawn(move || drop(old));
    }
}

impl Drop for CheckedOut {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            self.pool.free().push(slot);
        }
    }
}

/// Whether the failed call may be repeated as it is.
pub(crate) fn is_retriable(error: &KafkaError) -> bool {
    matches!(error, KafkaError::Transaction(e) if e.is_retriable())
}

/// Whether `error` says another producer with the same `transactional.id` took over.
pub(crate) fn is_fenced(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Fenced | RDKafkaErrorCode::ProducerFenced)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(slots: usize) -> Arc<TransactionalProducers> {
        let kafka = BTreeMap::from([("bootstrap.servers".into(), "127.0.0.1:1".into())]);
        Arc::new(TransactionalProducers::new(
            "shop-7",
            slots,
            &kafka,
            Monitor::default(),
        ))
    }

    #[test]
    fn ids_are_the_base_and_the_slot_so_a_restart_reuses_them() {
        assert_eq!(pool(3).ids(), ["shop-7-0", "shop-7-1", "shop-7-2"]);
        assert_eq!(pool(12).ids()[10..], ["shop-7-10", "shop-7-11"]);
    }

    #[tokio::test]
    async fn a_checked_out_producer_is_nobody_elses_until_it_comes_back() {
        let pool = pool(2);
        let mut a = pool.checkout().await;
        let b = pool.checkout().await;
        assert_ne!(
            a.slot().transactional_id,
            b.slot.as_ref().unwrap().transactional_id
        );
        let third = tokio::time::timeout(Duration::from_millis(50), pool.checkout()).await;
        assert!(third.is_err(), "a third transaction waits: two producers");
        let id = a.slot().transactional_id.clone();
        drop(a);
        let mut c = tokio::time::timeout(Duration::from_secs(1), pool.checkout())
            .await
            .expect("the returned producer is free again");
        assert_eq!(c.slot().transactional_id, id);
    }

    #[tokio::test]
    async fn a_replaced_producer_keeps_its_id_and_must_be_initialised_again() {
        let pool = pool(1);
        let mut out = pool.checkout().await;
        out.slot().initialized.store(true, Ordering::Release);
        out.replace();
        assert_eq!(out.slot().transactional_id, "shop-7-0");
        assert!(!out.slot().initialized.load(Ordering::Acquire));
        drop(out);
        assert_eq!(pool.ids(), ["shop-7-0"]);
    }

    #[test]
    fn fencing_is_recognised_by_either_code() {
        for code in [RDKafkaErrorCode::ProducerFenced, RDKafkaErrorCode::Fenced] {
            assert!(is_fenced(&KafkaError::MessageProduction(code)));
        }
        let full = KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull);
        assert!(!is_fenced(&full) && !is_retriable(&full));
    }
}
