//! The live state: the newest report of every process, read from the reports topic by a
//! background thread, and the trends sampled from them.
//!
//! Memory stays bounded whatever the fleet: one report per process (a tombstone removes it, and
//! a process stale for longer than [`FORGET_AFTER_MS`] is dropped), [`MAX_POINTS`] samples, lag
//! per group for at most [`MAX_TRACKED_GROUPS`] groups, and [`LAG_HISTORY`] lags per partition.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::reader::client::Step;
use crate::reader::{StartAt, StopAt, TopicReader};
use crate::web::report::{Decoded, ProcessReport, decode};

use super::snapshot::{FleetSnapshot, LaggingPartition, Point, ProcessView, sample};

/// Samples kept: one hour at the default 5 s sampling.
pub const MAX_POINTS: usize = 720;
/// Consumer groups whose lag is kept per sample (the ones with most lag).
pub const MAX_TRACKED_GROUPS: usize = 50;
/// Lags kept per partition to tell growing lag.
pub const LAG_HISTORY: usize = 4;
/// A stale process is dropped this long after it went stale.
pub const FORGET_AFTER_MS: i64 = 3_600_000;

/// (consumer group, topic, partition).
type PartitionKey = (String, String, i32);

/// What the reports topic said so far.
#[derive(Debug, Default)]
pub struct Fleet {
    processes: BTreeMap<String, (ProcessReport, bool)>,
    series: VecDeque<Point>,
    lags: HashMap<PartitionKey, VecDeque<i64>>,
    problem: Option<String>,
}

fn is_stale(report: &ProcessReport, now_ms: i64) -> bool {
    now_ms
        > report
            .reported_at_ms
            .saturating_add(report.stale_after_ms as i64)
}

impl Fleet {
    /// Applies one record of the reports topic (key = process id). Records that are not
    /// reports are skipped: the topic is the fleet's, not this reader's to judge.
    pub fn apply(&mut self, key: Option<&[u8]>, payload: Option<&[u8]>) {
        let Some(id) = key.map(String::from_utf8_lossy) else {
            return;
        };
        match decode(payload) {
            Ok(Decoded::Stopped) => {
                self.processes.remove(id.as_ref());
            }
            Ok(Decoded::Report {
                report,
                newer_schema,
            }) => {
                // A late record of an older report never replaces a newer one.
                let older = self
                    .processes
                    .get(id.as_ref())
                    .is_some_and(|(r, _)| r.reported_at_ms > report.reported_at_ms);
                if !older {
                    self.processes
                        .insert(id.into_owned(), (*report, newer_schema));
                }
            }
            Err(e) => {
                tracing::debug!(process = %id, error = %e, "skipped a record of the reports topic")
            }
        }
    }

    /// Records why the reports cannot be read (`None`: they can).
    pub fn set_problem(&mut self, problem: Option<String>) {
        self.problem = problem;
    }

    /// Takes a sample of the live processes and drops long-stale ones.
    pub fn sample(&mut self, now_ms: i64) {
        self.processes.retain(|_, (r, _)| {
            now_ms <= r.reported_at_ms + r.stale_after_ms as i64 + FORGET_AFTER_MS
        });
        let live = self
            .processes
            .values()
            .map(|(r, _)| r)
            .filter(|r| !is_stale(r, now_ms));
        let mut point = sample(now_ms, live.clone());
        if point.group_lag.len() > MAX_TRACKED_GROUPS {
            let mut by_lag: Vec<(String, i64)> =
                std::mem::take(&mut point.group_lag).into_iter().collect();
            by_lag.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            point.group_lag = by_lag.into_iter().take(MAX_TRACKED_GROUPS).collect();
        }
        if self.series.len() == MAX_POINTS {
            self.series.pop_front();
        }
        self.series.push_back(point);
        let mut seen = HashMap::with_capacity(self.lags.len());
        for p in live.flat_map(|r| &r.partitions) {
            let key = (p.consumer_group.clone(), p.topic.clone(), p.partition);
            let mut history = self.lags.remove(&key).unwrap_or_default();
            if let Some(lag) = p.lag {
                if history.len() == LAG_HISTORY {
                    history.pop_front();
                }
                history.push_back(lag);
            }
            seen.insert(key, history);
        }
        // Partitions no live process holds any more are forgotten.
        self.lags = seen;
    }

    /// Partitions stalled (as their process says) or whose lag grew at every one of the last
    /// [`LAG_HISTORY`] samples.
    pub fn lagging(&self, now_ms: i64) -> Vec<LaggingPartition> {
        let mut out = Vec::new();
        for (r, _) in self
            .processes
            .values()
            .filter(|(r, _)| !is_stale(r, now_ms))
        {
            for p in &r.partitions {
                let key = (p.consumer_group.clone(), p.topic.clone(), p.partition);
                let growing = self.lags.get(&key).is_some_and(|h| {
                    h.len() == LAG_HISTORY && h.iter().zip(h.iter().skip(1)).all(|(a, b)| b > a)
                });
                let why = match (p.stalled, growing) {
                    (true, _) => "stalled",
                    (false, true) => "lag growing",
                    _ => continue,
                };
                out.push(LaggingPartition {
                    consumer_group: p.consumer_group.clone(),
                    topic: p.topic.clone(),
                    partition: p.partition,
                    lag: p.lag.unwrap_or(0),
                    why: why.into(),
                });
            }
        }
        out
    }

    /// The fleet as the pages show it at `now_ms`.
    pub fn snapshot(&self, now_ms: i64) -> FleetSnapshot {
        FleetSnapshot {
            now_ms,
            processes: self
                .processes
                .values()
                .map(|(r, newer)| ProcessView {
                    stale: is_stale(r, now_ms),
                    newer_schema: *newer,
                    report: r.clone(),
                })
                .collect(),
            series: self.series.iter().cloned().collect(),
            reports_problem: self.problem.clone(),
        }
    }

    /// How many processes are held.
    pub fn len(&self) -> usize {
        self.processes.len()
    }

    /// Whether no process is held.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
    }
}

/// The fleet shared between the reading thread, the sampler and the pages.
pub type SharedFleet = Arc<Mutex<Fleet>>;

/// Reads the reports topic from the beginning, then tails it, on a thread of its own; retries
/// (and shows why on the pages) while the topic cannot be read. Stops when `stop` is dropped.
pub(crate) fn spawn_reader(
    fleet: SharedFleet,
    topic: String,
    kafka: BTreeMap<String, String>,
    stop: std::sync::Weak<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ferrafka-web-reports".into())
        .spawn(move || {
            while stop.upgrade().is_some() {
                let opened = TopicReader::builder(topic.clone())
                    .start(StartAt::Beginning)
                    .stop(StopAt::Never)
                    .timeout(Duration::from_secs(10))
                    .open_with(&kafka);
                let reader = match opened {
                    Ok(reader) => reader,
                    Err(e) => {
                        let text = format!("cannot read the reports topic `{topic}`: {e}");
                        lock(&fleet).set_problem(Some(text));
                        std::thread::sleep(Duration::from_secs(2));
                        continue;
                    }
                };
                lock(&fleet).set_problem(None);
                let mut reader = reader;
                // Step by step rather than iterating: an idle topic must not keep the thread
                // (and its consumer) alive after the router is dropped.
                while stop.upgrade().is_some() {
                    match reader.step() {
                        Step::Item(Ok(m)) => lock(&fleet).apply(m.key(), m.payload()),
                        Step::Item(Err(e)) => {
                            let text = format!("reading the reports topic `{topic}` failed: {e}");
                            lock(&fleet).set_problem(Some(text));
                            break;
                        }
                        Step::Idle => {}
                        Step::Done => break,
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
}

/// The fleet's lock; a panic elsewhere does not take the pages down with it.
pub(crate) fn lock(fleet: &SharedFleet) -> std::sync::MutexGuard<'_, Fleet> {
    fleet
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
