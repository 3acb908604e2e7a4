//! The listener's partitions: the [`Partitions`] driver over librdkafka and tokio executor
//! tasks, and the waiting only a thread that owns a librdkafka consumer does (for reports
//! during a revocation, at shutdown, before the client is destroyed).

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::ListenerConsumer;
use crate::config::Config;
use crate::instrumentation::Monitor;
use crate::processing::doorbell::Doorbell;
use crate::processing::driver::{PartitionClient, Partitions, Spawned};
use crate::processing::executor::{ExecutorReport, ReportSink};
use crate::producer::Producer;
use crate::routing::Topic;

/// The longest the listener sleeps while it has nothing to do: reports and librdkafka wake it
/// earlier (see `Doorbell`); this bounds how late it sees a stop request.
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// Everything the listener thread keeps between polls.
pub(crate) struct State {
    config: Arc<Config>,
    /// Every decision about the partitions is the driver's.
    pub(super) driver: Partitions<Spawned, ListenerConsumer>,
    reports: Receiver<ExecutorReport>,
}

impl State {
    pub(super) fn new(
        config: Arc<Config>,
        topics: Vec<Arc<Topic>>,
        (runtime, producer, workers): (tokio::runtime::Handle, Producer, Arc<Semaphore>),
        transactions: Option<crate::transaction::Access>,
        monitor: Monitor,
        wake: Arc<Doorbell>,
        epoch: Arc<AtomicU64>,
    ) -> Self {
        let (reports_tx, reports) = std::sync::mpsc::channel();
        let spawned = Spawned {
            config: config.clone(),
            runtime,
            producer,
            workers,
            reports: ReportSink::new(reports_tx, wake),
            tasks: TaskTracker::new(),
            monitor: monitor.clone(),
            transactions,
        };
        State {
            driver: Partitions::new(&config, topics, spawned, epoch, monitor),
            config,
            reports,
        }
    }

    /// Gives revoked partitions' running batches up to `revocation_timeout` to finish, commits
    /// their marks, and releases them.
    pub(super) fn revoke(
        &mut self,
        consumer: &ListenerConsumer,
        group: &str,
        revoked: &[(String, i32)],
    ) {
        self.driver.revoke_begin(revoked);
        let deadline = crate::config::later(Instant::now(), self.config.revocation_timeout);
        while Instant::now() < deadline && self.driver.any_running_of(revoked) {
            self.drain_reports(consumer, Some(deadline));
        }
        consumer.commit_sync(group);
        self.driver
            .revoke_end(group, revoked, self.config.revocation_timeout);
    }

    /// Applies executor reports; waits for the first one until `wait_until` when given.
    pub(super) fn drain_reports(
        &mut self,
        consumer: &ListenerConsumer,
        wait_until: Option<Instant>,
    ) {
        let first = match wait_until {
            Some(deadline) => match self
                .reports
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(r) => Some(r),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
            },
            None => None,
        };
        let mut next = first.or_else(|| self.reports.try_recv().ok());
        while let Some(report) = next {
            self.driver.on_report(consumer, report, Instant::now());
            next = self.reports.try_recv().ok();
        }
    }

    /// How long the listener may sleep before a machine's timer is due.
    pub(super) fn idle_wait(&self, now: Instant) -> Duration {
        match self.driver.next_wakeup(now) {
            Some(t) => IDLE_WAIT.min(t.saturating_duration_since(now)),
            None => IDLE_WAIT,
        }
    }

    /// Runs `shutdown` hooks of idle executors and aborts running ones, then waits until
    /// `deadline` for them to stop; true if any was aborted.
    pub(super) fn stop_executors(
        &mut self,
        consumer: &ListenerConsumer,
        deadline: Instant,
    ) -> bool {
        let forced = self.driver.stop_executors();
        while Instant::now() < deadline && !self.driver.all_stopped() {
            self.drain_reports(consumer, Some(deadline));
        }
        forced
    }

    /// Drops every polled message the listener still holds (machines, their batches, the
    /// executors' queues) and waits until `deadline` for every task that may hold one to end:
    /// executors and their virtual-partition groups, which an abort ends only once they yield.
    /// True when no message is left, so the consumer may be destroyed: librdkafka's
    /// `rd_kafka_destroy` waits for outstanding messages.
    pub(super) fn release_messages(&mut self, deadline: Instant) -> bool {
        self.driver.clear();
        while !self.driver.workers().tasks.is_empty() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }
}
