//! librdkafka's statistics, decoded on a thread of their own (a report is tens of kilobytes of
//! JSON: not work for a poll thread), and the consumer lag read from them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};

use rdkafka::Statistics;

use super::{ErrorKind, Event, Monitor, PartitionRef};
use crate::admin::Admin;

/// A client whose statistics are reported.
#[derive(Debug)]
pub(crate) struct StatisticsSource {
    /// `consumer_group/subscription_group` for a listener's consumer, `producer` for the
    /// producer.
    pub(crate) client: String,
    /// The consumer group of a listener's consumer: its partitions' lag is reported.
    pub(crate) consumer_group: Option<Arc<str>>,
    /// The client's librdkafka properties: end offsets are asked with them.
    pub(crate) kafka: BTreeMap<String, String>,
}

/// One report as librdkafka wrote it.
pub(crate) struct Raw {
    pub(crate) source: Arc<StatisticsSource>,
    pub(crate) json: Vec<u8>,
}

/// Starts the thread that decodes reports and emits their events to `monitor`'s
/// subscribers; it ends when every sender is gone.
pub(crate) fn spawn(monitor: Monitor) -> Sender<Raw> {
    let (tx, rx) = std::sync::mpsc::channel();
    let started = std::thread::Builder::new()
        .name("ferrafka-statistics".into())
        .spawn(move || run(&monitor, rx));
    if let Err(error) = started {
        tracing::error!(%error, "cannot start the statistics thread; no statistics events");
    }
    tx
}

fn run(monitor: &Monitor, reports: Receiver<Raw>) {
    let mut lag = Lag::default();
    for raw in reports {
        let statistics: Statistics = match serde_json::from_slice(&raw.json) {
            Ok(s) => s,
            Err(e) => {
                let error = format!(
                    "librdkafka's statistics of {} are unreadable: {e}",
                    raw.source.client
                );
                monitor.emit(|| Event::Error {
                    kind: ErrorKind::Statistics,
                    partition: None,
                    error: &error,
                });
                continue;
            }
        };
        monitor.emit(|| Event::Statistics {
            client: &raw.source.client,
            statistics: &statistics,
        });
        if let Some(group) = &raw.source.consumer_group {
            lag.report(monitor, &raw.source, group, &statistics);
        }
    }
}

/// One partition's lag figure before it becomes an event.
struct Figure {
    topic: String,
    partition: i32,
    next: i64,
    end: i64,
    position: i64,
    queried: bool,
}

/// What lag reporting remembers between reports.
#[derive(Default)]
struct Lag {
    /// The end offset each partition's previous report gave, per client.
    ends: HashMap<(String, String, i32), i64>,
    /// An admin client per consumer, created when first needed.
    admins: HashMap<String, Admin>,
}

impl Lag {
    /// Emits a [`Event::ConsumerLag`] per assigned partition. The end offset of a partition
    /// whose figure did not move since the previous report is asked of the broker: librdkafka
    /// refreshes it only from fetch responses, which a paused or stalled partition does not
    /// get.
    fn report(
        &mut self,
        monitor: &Monitor,
        source: &StatisticsSource,
        group: &str,
        statistics: &Statistics,
    ) {
        let mut figures = Vec::new();
        let mut quiet = Vec::new();
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                let assigned = !matches!(p.fetch_state.as_str(), "none" | "stopping" | "stopped");
                let next = [p.stored_offset, p.committed_offset]
                    .into_iter()
                    .find(|o| *o >= 0);
                let (true, Some(next)) = (partition >= 0 && assigned, next) else {
                    continue;
                };
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                let key = (source.client.clone(), topic.clone(), partition);
                let before = self.ends.insert(key, end);
                let figure = Figure {
                    topic: topic.clone(),
                    partition,
                    next,
                    end,
                    position: p.app_offset,
                    queried: false,
                };
                if end < 0 || before == Some(end) {
                    quiet.push(figure);
                } else {
                    figures.push(figure);
                }
            }
        }
        if !quiet.is_empty() {
            // A quiet figure the broker did not confirm is not reported: librdkafka's may be
            // long frozen, and a lag that looks steady is worse than none.
            self.query(monitor, source, &mut quiet);
            figures.extend(quiet.into_iter().filter(|f| f.queried));
        }
        for f in &figures {
            monitor.emit(|| Event::ConsumerLag {
                partition: PartitionRef {
                    consumer_group: group,
                    topic: &f.topic,
                    partition: f.partition,
                },
                lag: (f.end - f.next).max(0),
                high_watermark: f.end,
                next_offset: f.next,
                position: f.position,
                queried: f.queried,
            });
        }
    }

    /// Replaces the end offsets of `quiet` by the broker's and marks them queried; on
    /// failure an error event says why.
    fn query(&mut self, monitor: &Monitor, source: &StatisticsSource, quiet: &mut [Figure]) {
        let partitions: Vec<_> = quiet
            .iter()
            .map(|f| (f.topic.clone(), f.partition))
            .collect();
        let admin = match self.admins.get(&source.client) {
            Some(admin) => Ok(admin),
            None => Admin::new(&source.kafka)
                .map(|admin| &*self.admins.entry(source.client.clone()).or_insert(admin)),
        };
        match admin.and_then(|admin| admin.end_offsets(&partitions)) {
            Ok(found) => {
                let found: HashMap<_, _> = found.into_iter().collect();
                for f in quiet.iter_mut() {
                    if let Some(&end) = found.get(&(f.topic.clone(), f.partition)) {
                        f.end = end;
                        f.queried = true;
                    }
                }
            }
            Err(e) => {
                let error = format!(
                    "cannot ask the end offsets of {} quiet partitions of {}: {e}",
                    partitions.len(),
                    source.client
                );
                monitor.emit(|| Event::Error {
                    kind: ErrorKind::Statistics,
                    partition: None,
                    error: &error,
                });
            }
        }
    }
}
