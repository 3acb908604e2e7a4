//! Executors as tokio tasks: the [`Workers`] of `server` and of the testing harness.

use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio_util::task::TaskTracker;

use super::Workers;
use crate::config::Config;
use crate::consumer::{MarkSink, PartitionHandle};
use crate::instrumentation::Monitor;
use crate::processing::executor::{Executor, ExecutorReport, Job, ReportKind, ReportSink};
use crate::producer::Producer;
use crate::routing::Topic;

/// Starts each partition's [`Executor`] as a task on `runtime`; the executors report to
/// `reports`.
pub(crate) struct Spawned {
    pub(crate) config: Arc<Config>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) producer: Producer,
    pub(crate) workers: Arc<Semaphore>,
    pub(crate) reports: ReportSink,
    /// Every task that may hold the client's messages, until its future is dropped.
    pub(crate) tasks: TaskTracker,
    /// Where executors' events go.
    pub(crate) monitor: Monitor,
    /// The transactional producers and the listener's group view, when a route is
    /// transactional.
    pub(crate) transactions: Option<crate::transaction::Access>,
}

/// One executor task and its job queue.
pub(crate) struct SpawnedWorker {
    jobs: UnboundedSender<Job>,
    task: tokio::task::JoinHandle<()>,
}

impl Workers for Spawned {
    type Worker = SpawnedWorker;

    /// Forwards a running batch's marks to the driver as progress reports.
    fn mark_sink(&self, topic: &Arc<str>, partition: i32, generation: u64) -> MarkSink {
        let reports = self.reports.clone();
        let topic = topic.clone();
        Box::new(move |batch, mark| {
            reports.send(ExecutorReport {
                topic: topic.clone(),
                partition,
                generation,
                kind: ReportKind::Progress { batch, mark },
            });
        })
    }

    fn start(&mut self, topic: &Arc<Topic>, handle: &Arc<PartitionHandle>) -> SpawnedWorker {
        let (jobs, rx) = unbounded_channel();
        let executor = Executor {
            config: self.config.clone(),
            topic: topic.clone(),
            handle: handle.clone(),
            producer: self.producer.clone(),
            workers: self.workers.clone(),
            reports: self.reports.clone(),
            tasks: self.tasks.clone(),
            monitor: self.monitor.clone(),
            transactions: self.transactions.clone().filter(|_| topic.transactional),
        };
        let task = self
            .runtime
            .spawn(self.tasks.track_future(executor.run(rx)));
        SpawnedWorker { jobs, task }
    }

    fn send(&mut self, worker: &SpawnedWorker, job: Job) -> bool {
        worker.jobs.send(job).is_ok()
    }

    fn has_ended(&self, worker: &SpawnedWorker) -> bool {
        worker.task.is_finished()
    }

    fn abort(&mut self, worker: &SpawnedWorker) {
        worker.task.abort();
    }
}
