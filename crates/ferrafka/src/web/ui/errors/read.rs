//! Reading the errors topic for the pages. Blocking (librdkafka): the handlers run it on tokio's
//! blocking pool.
//!
//! **Bounded.** The list reads at most [`SCAN_PER_PARTITION`] records of each partition of the
//! errors topic, the newest ones before `until` (and after `since`), and keeps at most
//! [`PAGE_SIZE`] × 2 matches in memory while it reads: whatever the topic holds, a page costs
//! that much. Older errors are reached by narrowing the time (the page's "Older" link sets
//! `until` to its oldest error).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use super::Filter;
use crate::admin::Admin;
use crate::reader::{StartAt, TopicReader};
use crate::web::report::ErrorReport;

/// Errors shown per page.
pub(crate) const PAGE_SIZE: usize = 50;
/// Records read per partition of the errors topic for one page, at most.
pub(crate) const SCAN_PER_PARTITION: i64 = 2_000;
/// The window's ends are widened by this much: a record's timestamp is taken when it is
/// produced, a little after the error it reports (`at_ms`), which is what the filter compares.
const TIME_SLACK_MS: i64 = 60_000;
/// How long a read waits for the cluster.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An error as listed: the coordinates of its record on the errors topic, and the report.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Listed {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) report: ErrorReport,
}

/// The list page's data.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorList {
    /// The errors topic.
    pub(crate) topic: String,
    pub(crate) filter: Filter,
    /// The newest matches, newest first, at most [`PAGE_SIZE`].
    pub(crate) entries: Vec<Listed>,
    /// How many matched among the records read.
    pub(crate) matched: u64,
    /// How many records were read.
    pub(crate) scanned: u64,
    /// Records that are not error reports (skipped).
    pub(crate) undecodable: u64,
    /// Older records of the time range were left unread (the scan's bound).
    pub(crate) older_unread: bool,
    pub(crate) problems: Vec<String>,
}

/// One error record: what the detail page shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct ErrorDetail {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) report: Option<ErrorReport>,
    pub(crate) problems: Vec<String>,
}

/// The newest [`PAGE_SIZE`] matches seen so far, holding at most twice that many.
#[derive(Debug, Default)]
pub(crate) struct Newest(Vec<Listed>);

impl Newest {
    pub(crate) fn push(&mut self, listed: Listed) {
        self.0.push(listed);
        if self.0.len() >= 2 * PAGE_SIZE {
            self.settle();
        }
    }

    fn settle(&mut self) {
        // Newest first; ties in a stable order (the record's coordinates).
        self.0.sort_by(|a, b| {
            (b.report.at_ms, b.partition, b.offset).cmp(&(a.report.at_ms, a.partition, a.offset))
        });
        self.0.truncate(PAGE_SIZE);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn into_page(mut self) -> Vec<Listed> {
        self.settle();
        self.0
    }
}

fn at(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Per partition, the first offset whose record is at or after `ms` (`None`: none is).
fn offsets_at(admin: &Admin, topic: &str, ms: i64) -> crate::Result<BTreeMap<i32, Option<i64>>> {
    Ok(admin.offsets_for_time(topic, at(ms))?.into_iter().collect())
}

/// The list: the newest errors matching `filter`, reading a bounded window of each partition.
pub(crate) fn list(
    admin: &Admin,
    kafka: &BTreeMap<String, String>,
    topic: &str,
    filter: Filter,
) -> ErrorList {
    let mut view = ErrorList {
        topic: topic.to_string(),
        ..ErrorList::default()
    };
    let partitions = match admin.topic_info(topic) {
        Ok(Some(info)) => info.partitions.iter().map(|p| p.id).collect::<Vec<_>>(),
        Ok(None) => {
            view.problems.push(format!(
                "the errors topic `{topic}` does not exist yet: it is created by `topics migrate` \
                 when `reporting` is on"
            ));
            view.filter = filter;
            return view;
        }
        Err(e) => {
            view.problems
                .push(format!("cannot read the errors topic's metadata: {e}"));
            view.filter = filter;
            return view;
        }
    };
    let bound = |ms: Option<i64>, slack: i64, problems: &mut Vec<String>| {
        let ms = ms?;
        offsets_at(admin, topic, ms.saturating_add(slack))
            .map_err(|e| problems.push(format!("cannot find the offsets of a time: {e}")))
            .ok()
    };
    let ends = bound(filter.until_ms, TIME_SLACK_MS, &mut view.problems);
    let starts = bound(filter.since_ms, -TIME_SLACK_MS, &mut view.problems);
    let mut newest = Newest::default();
    for partition in partitions {
        let (low, high) = match admin.watermarks(topic, partition) {
            Ok(marks) => marks,
            Err(e) => {
                view.problems.push(format!("partition {partition}: {e}"));
                continue;
            }
        };
        // No record at or after the time: the window ends (or starts) at the end.
        let end = ends.as_ref().map_or(high, |e| {
            e.get(&partition).copied().flatten().unwrap_or(high)
        });
        let since = starts.as_ref().map_or(low, |s| {
            s.get(&partition).copied().flatten().unwrap_or(high)
        });
        let start = since.max(low).max(end - SCAN_PER_PARTITION);
        view.older_unread |= start > since.max(low);
        let window = Window {
            start,
            end,
            // A broker may answer a time with the start of the batch that holds it (the
            // embedded one does): the read goes on past `end` to the first record after the
            // time, at most one more scan's worth.
            last: high.min(end.saturating_add(SCAN_PER_PARTITION)),
            stop_at_ms: filter.until_ms.map(|u| u.saturating_add(TIME_SLACK_MS)),
        };
        if window.start < window.last {
            scan(
                kafka,
                topic,
                partition,
                window,
                &filter,
                &mut view,
                &mut newest,
            );
        }
    }
    view.entries = newest.into_page();
    view.filter = filter;
    view
}

/// The offsets of one partition a page reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub(crate) start: i64,
    /// Where the read stops without `stop_at_ms`.
    pub(crate) end: i64,
    /// Where it stops at the latest.
    pub(crate) last: i64,
    /// Past `end`, the read stops at the first record stamped at or after this.
    pub(crate) stop_at_ms: Option<i64>,
}

impl Window {
    /// Whether the record at `offset` stamped `timestamp_ms` is past the window.
    pub(crate) fn past(&self, offset: i64, timestamp_ms: Option<i64>) -> bool {
        offset >= self.last
            || offset >= self.end
                && self
                    .stop_at_ms
                    .is_none_or(|stop| timestamp_ms.is_none_or(|t| t >= stop))
    }
}

/// Reads one partition's `window` into `newest`.
fn scan(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    window: Window,
    filter: &Filter,
    view: &mut ErrorList,
    newest: &mut Newest,
) {
    let reader = TopicReader::builder(topic)
        .partitions([partition])
        .start(StartAt::Offset(window.start))
        .max_messages((window.last - window.start) as u64)
        .timeout(READ_TIMEOUT)
        .open_with(kafka);
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            view.problems
                .push(format!("cannot read partition {partition}: {e}"));
            return;
        }
    };
    for m in reader {
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                view.problems
                    .push(format!("reading partition {partition} stopped: {e}"));
                return;
            }
        };
        if window.past(m.offset(), m.timestamp().millis()) {
            break;
        }
        view.scanned += 1;
        let Some(report) = m.payload().and_then(|p| serde_json::from_slice(p).ok()) else {
            view.undecodable += 1;
            continue;
        };
        if filter.matches(&report) {
            view.matched += 1;
            newest.push(Listed {
                partition,
                offset: m.offset(),
                report,
            });
        }
    }
}

/// The record at `partition`/`offset` of the errors topic.
pub(crate) fn detail(
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> ErrorDetail {
    let mut view = ErrorDetail {
        topic: topic.to_string(),
        partition,
        offset,
        ..ErrorDetail::default()
    };
    let reader = TopicReader::builder(topic)
        .partitions([partition])
        .start(StartAt::Offset(offset))
        .max_messages(1)
        .timeout(READ_TIMEOUT)
        .open_with(kafka);
    let message = match reader {
        Ok(mut r) => r.next(),
        Err(e) => {
            view.problems.push(format!("cannot read the record: {e}"));
            return view;
        }
    };
    match message {
        Some(Ok(m)) if m.offset() == offset => match m.payload().map(serde_json::from_slice) {
            Some(Ok(report)) => view.report = Some(report),
            Some(Err(e)) => view
                .problems
                .push(format!("the record is not an error report: {e}")),
            None => view
                .problems
                .push("the record is empty: not an error report".into()),
        },
        Some(Ok(_)) | None => view.problems.push(format!(
            "the errors topic holds no record at partition {partition}, offset {offset} (it \
             may have been deleted: errors are kept 3 days)"
        )),
        Some(Err(e)) => view.problems.push(format!("cannot read the record: {e}")),
    }
    view
}
