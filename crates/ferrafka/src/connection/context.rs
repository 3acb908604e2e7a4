//! The librdkafka callbacks of a listener's consumer: logs, errors, statistics, rebalances and
//! commit results.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};

use super::diagnostics;
use super::state::State;
use crate::processing::doorbell::Doorbell;

/// The consumer type of a listener.
pub(crate) type ListenerConsumer = BaseConsumer<ListenerContext>;

/// What the listener and the rebalance callback share; only the listener thread touches it.
pub(crate) struct ListenerContext {
    pub(super) group: String,
    /// Set by the error callback; the poll loop then asks librdkafka whether it was fatal.
    pub(super) fatal_seen: std::sync::atomic::AtomicBool,
    /// Assignments and seeks so far; the poll loop tags each message with it, so a message
    /// polled before its partition's current assignment or last seek is recognised (see
    /// `State::on_burst`). Shared with the state, which counts the seeks.
    pub(super) epoch: Arc<std::sync::atomic::AtomicU64>,
    pub(super) state: Mutex<State>,
    /// Wakes the sleeping listener: rung by executors' reports, by librdkafka when its queue
    /// stops being empty, and by every callback below, since an event served inside a poll
    /// may leave more queued behind it.
    pub(super) wake: Arc<Doorbell>,
    /// A static member (`group.instance.id`) of the classic protocol: it never leaves its group
    /// on shutdown, so a restart within `session.timeout.ms` takes its partitions back without
    /// a rebalance (KIP-345). librdkafka skips the LeaveGroup only when the client closes, not
    /// on an unsubscribe.
    pub(super) static_member: bool,
    /// Offset resets librdkafka logged, (topic, partition, offset it reset at): the poll loop
    /// hands them to the partitions before the messages fetched after them.
    pub(super) offset_resets: Mutex<Vec<(String, i32, i64)>>,
    /// Recognises rejected credentials and certificates, to log them explained.
    pub(super) failures: crate::kafka::FailureWatch,
}

impl ClientContext for ListenerContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.wake.ring();
        if fac == "OFFSET"
            && let Some(reset) = parse_offset_reset(log_message)
        {
            self.offset_resets().push(reset);
        }
        if let Some(failure) = self.failures.on_log(log_message) {
            tracing::error!(subscription_group = %self.group, "{failure}");
        }
        crate::kafka::forward_log(&self.group, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.fatal_seen.store(true, Ordering::Release);
        self.wake.ring();
        if let Some(failure) = self.failures.on_error(&error, reason) {
            tracing::error!(subscription_group = %self.group, %error, "{failure}");
            return;
        }
        match diagnostics::explanation(&error) {
            Some(explanation) => {
                tracing::error!(subscription_group = %self.group, %error, reason, "{explanation}")
            }
            None => {
                tracing::error!(subscription_group = %self.group, %error, reason, "librdkafka error")
            }
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.wake.ring();
        // `statistics.interval.ms` is on by default so metrics have data; rdkafka's default
        // would log every report at info level, so they go to a trace target instead.
        tracing::trace!(
            target: "ferrafka::statistics",
            subscription_group = %self.group,
            statistics = %String::from_utf8_lossy(statistics),
        );
    }
}

/// (topic, partition, offset) of librdkafka's warning that it reset a partition's position
/// because the offset it fetched no longer exists, e.g. `orders [3]: offset reset (at offset 100
/// (leader epoch 0), broker 1) to offset BEGINNING ...: Broker: Offset out of range`, after a
/// thread prefix like `[thrd:main]: `. librdkafka
/// reports the reset only in this log line (unless `auto.offset.reset=error`).
pub(crate) fn parse_offset_reset(message: &str) -> Option<(String, i32, i64)> {
    let (partition, rest) = message.split_once("]: offset reset (at offset ")?;
    let (topic, partition) = partition.rsplit_once(" [")?;
    // After librdkafka's thread prefix (`[thrd:main]: `); topic names have no spaces.
    let topic = topic.rsplit(' ').next()?;
    let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    Some((
        topic.to_string(),
        partition.parse().ok()?,
        digits.parse().ok()?,
    ))
}

impl ConsumerContext for ListenerContext {
    fn pre_rebalance(&self, consumer: &ListenerConsumer, rebalance: &Rebalance<'_>) {
        self.wake.ring();
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: Vec<_> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                self.lock().revoke(consumer, &self.group, &revoked);
            }
            Rebalance::Assign(_) => {}
            Rebalance::Error(e) => {
                tracing::error!(subscription_group = %self.group, error = %e, "rebalance failed")
            }
        }
    }

    fn post_rebalance(&self, consumer: &ListenerConsumer, rebalance: &Rebalance<'_>) {
        self.wake.ring();
        if let Rebalance::Assign(tpl) = rebalance {
            let assigned: Vec<_> = tpl
                .elements()
                .iter()
                .map(|e| (e.topic().to_string(), e.partition()))
                .collect();
            let mut state = self.lock();
            let epoch = state.driver.next_epoch();
            let now = std::time::Instant::now();
            state
                .driver
                .assign(consumer, &self.group, &assigned, (epoch, now));
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        self.wake.ring();
        match result {
            Ok(()) => {
                tracing::trace!(subscription_group = %self.group, ?offsets, "offsets committed")
            }
            // Nothing was stored since the last commit: not an error.
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                tracing::warn!(subscription_group = %self.group, error = %e, "offset commit failed; it will be retried with the next commit")
            }
        }
    }
}

impl ListenerContext {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held by framework code; recover anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Offset resets logged since the poll loop last took them.
    pub(super) fn offset_resets(&self) -> MutexGuard<'_, Vec<(String, i32, i64)>> {
        self.offset_resets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::parse_offset_reset;

    #[test]
    fn offset_resets_are_read_from_librdkafkas_warning() {
        let line = "[thrd:main]: orders.v2 [3]: offset reset (at offset 100 (leader epoch 0), broker 1) to \
                    offset BEGINNING (leader epoch -1): fetch failed due to requested offset not \
                    available on the broker: Broker: Offset out of range";
        assert_eq!(
            parse_offset_reset(line),
            Some(("orders.v2".to_string(), 3, 100))
        );
        let logical = "t [0]: offset reset (at offset END, broker 1) to offset 5: no offset";
        assert_eq!(parse_offset_reset(logical), None);
        assert_eq!(parse_offset_reset("Fetch backoff for 500ms"), None);
    }
}
