//! The librdkafka callbacks of a listener's consumer: logs, errors, statistics, rebalances and
//! commit results.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, TopicPartitionList};

use super::diagnostics;
use super::state::State;
use crate::instrumentation::statistics::StatisticsSource;
use crate::instrumentation::{ErrorKind, Event, Monitor};
use crate::kafka::Who;
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
    /// Recognises rejected credentials and certificates, to log them explained; its log writes
    /// librdkafka's lines and errors (levels mapped, repeats summarised).
    pub(super) failures: crate::kafka::FailureWatch,
    /// The code of the last error the error callback reported, which the poll returns next.
    pub(super) reported: Mutex<Option<RDKafkaErrorCode>>,
    pub(super) monitor: Monitor,
    /// Who this consumer is, for its statistics reports.
    pub(super) statistics: Arc<StatisticsSource>,
    /// The group's member id and generation as of the last rebalance, for transactions.
    pub(super) group_metadata: Arc<crate::transaction::GroupMetadata>,
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
            self.failures.log.failure(self.who(), None, &failure);
        }
        self.failures
            .log
            .forward(self.who(), level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.fatal_seen.store(true, Ordering::Release);
        self.wake.ring();
        self.emit_error(&format_args!("{error}: {reason}"));
        // The poll that serves this callback returns the same error next (rdkafka's
        // `BaseConsumer::poll`): `poll_error` knows it by this.
        *self.reported() = error.rdkafka_error_code();
        match self.failures.on_error(&error, reason) {
            Some(failure) => self
                .failures
                .log
                .failure(self.who(), Some(&error), &failure),
            None => {
                let explanation = diagnostics::explanation(&error);
                self.failures
                    .log
                    .error(self.who(), &error, reason, explanation)
            }
        }
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.wake.ring();
        self.monitor.statistics(&self.statistics, statistics);
        if self.failures.log.is_down() && crate::kafka::any_broker_up(statistics) {
            self.failures.log.reachable(self.who());
        }
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
        // Before revoked partitions are flagged: a transaction that read the older metadata
        // and then saw its partition still assigned commits with a generation the
        // coordinator refuses once the partition has moved on (KIP-447).
        self.group_metadata.set(consumer.group_metadata());
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let revoked: Vec<_> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                if consumer.assignment_lost() {
                    self.monitor.emit(|| Event::PartitionsLost {
                        subscription_group: &self.group,
                        partitions: &revoked,
                    });
                }
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
        self.group_metadata.set(consumer.group_metadata());
        if let Rebalance::Assign(tpl) = rebalance {
            // The group coordinator answered: the cluster is reachable.
            self.failures.log.reachable(self.who());
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
        self.emit_commit(&result, offsets);
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
    /// This listener in log lines.
    fn who(&self) -> Who<'_> {
        Who::SubscriptionGroup(&self.group)
    }

    /// Logs an error the poll loop got, and emits its error event. One the error callback reported just before (the same
    /// code) was logged there and goes to debug; the others (a partition's fetch error, a
    /// subscribed topic that does not exist) are logged here, summarised when they repeat.
    pub(super) fn poll_error(&self, error: &KafkaError) {
        let reported = self.reported().take();
        if reported.is_some() && reported == error.rdkafka_error_code() {
            tracing::debug!(subscription_group = %self.group, %error, "consumer error (logged by the error callback)");
            return;
        }
        // Only errors no callback reported: one event per error.
        self.emit_error(error);
        let explanation = diagnostics::explanation(error);
        self.failures.log.poll_error(self.who(), error, explanation);
    }

    /// The code of the error the error callback reported last, until the poll loop takes it.
    fn reported(&self) -> MutexGuard<'_, Option<RDKafkaErrorCode>> {
        self.reported.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An [`ErrorKind::Listener`] event, with the client's secrets hidden.
    pub(super) fn emit_error(&self, error: &dyn std::fmt::Display) {
        if self.monitor.is_active() {
            let text = crate::secrets::redact_text(&error.to_string(), &self.statistics.kafka);
            self.monitor.error(ErrorKind::Listener, None, &text);
        }
    }

    /// [`Event::OffsetsCommitted`] of a commit's result; "nothing to commit" is no commit.
    fn emit_commit(&self, result: &rdkafka::error::KafkaResult<()>, offsets: &TopicPartitionList) {
        if matches!(
            result,
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))
        ) || !self.monitor.is_active()
        {
            return;
        }
        let committed: Vec<_> = offsets
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => Some((e.topic().to_string(), e.partition(), o)),
                _ => None,
            })
            .collect();
        let error = result.as_ref().err().map(|e| e.to_string());
        self.monitor.emit(|| Event::OffsetsCommitted {
            subscription_group: &self.group,
            offsets: &committed,
            error: error.as_deref(),
        });
    }

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
