//! Reporting for `web` on a real broker: three server processes of one group publish reports
//! that together cover every partition once, reach the end offsets with no lag and add up to
//! what was produced; a failed batch lands on the errors topic with its coordinates; a clean
//! stop leaves a final `stopped` report and then a tombstone as each process's newest record.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ferrafka::instrumentation::Event;
use ferrafka::reader::TopicReader;
use ferrafka::web::report::{Decoded, ErrorReport, ProcessReport, decode};
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, RunningServer};

use crate::support::*;

const PARTITIONS: i32 = 6;

/// Every record of `topic` as (key, payload), oldest first per partition.
pub(crate) fn records(bootstrap: &str, topic: &str) -> Vec<(String, Option<Vec<u8>>)> {
    let reader = TopicReader::builder(topic)
        .timeout(Duration::from_secs(20))
        .connect(bootstrap)
        .expect("reader opens");
    reader
        .map(|m| {
            let m = m.expect("reads");
            let key = m.key_str().unwrap_or_default().to_string();
            (key, m.payload().map(<[u8]>::to_vec))
        })
        .collect()
}

/// The newest record of each process on the reports topic: `None` for a tombstone.
fn newest_reports(bootstrap: &str, topic: &str) -> BTreeMap<String, Option<ProcessReport>> {
    let mut newest = BTreeMap::new();
    for (key, payload) in records(bootstrap, topic) {
        let report = match decode(payload.as_deref()).expect("a report") {
            Decoded::Report { report, .. } => Some(*report),
            Decoded::Stopped => None,
        };
        newest.insert(key, report);
    }
    newest
}

/// Waits until `check` returns no complaint, at most `timeout`; then asserts with the last
/// complaint.
fn await_check(timeout: Duration, mut check: impl FnMut() -> Option<String>) {
    let deadline = Instant::now() + timeout;
    loop {
        let complaint = check();
        let Some(complaint) = complaint else { return };
        assert!(Instant::now() < deadline, "{complaint}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A reporting app of one group; `fail_once` makes the batch holding that number fail once.
fn app(
    bootstrap: &str,
    topic: &str,
    group: &str,
    topics: (&str, &str),
    tracker: &Tracker,
    fail_once: Option<u64>,
    published: Arc<AtomicUsize>,
) -> App {
    let (bootstrap, group) = (bootstrap.to_string(), group.to_string());
    let (reports, errors) = (topics.0.to_string(), topics.1.to_string());
    let (tracker, topic) = (tracker.clone(), topic.to_string());
    let failed = Arc::new(AtomicBool::new(false));
    App::builder_with_env([])
        .setup(move |c| {
            c.client_id("reporting")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .kafka("statistics.interval.ms", "500")
                .max_wait_time(Duration::from_millis(100))
                .reporting(true)
                .report_interval(Duration::from_secs(1))
                .commands_topic(format!("{reports}-commands"))
                .audit_topic(format!("{reports}-audit"))
                .reports_topic(reports)
                .errors_topic(errors);
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Failing {
                tracker: tracker.clone(),
                fail_once,
                failed: failed.clone(),
            });
        })
        .subscribe(move |event: &Event<'_>| {
            if let Event::ReportPublished { .. } = event {
                published.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build_with_env([])
}

struct Failing {
    tracker: Tracker,
    fail_once: Option<u64>,
    failed: Arc<AtomicBool>,
}

impl Consumer for Failing {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let holds = |n: u64| {
            messages
                .iter()
                .any(|m| m.payload() == Some(n.to_string().as_bytes()))
        };
        if let Some(n) = self.fail_once.filter(|n| holds(*n))
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            return Err(format!("order {n} rejected: warehouse unreachable").into());
        }
        self.tracker.record(0, messages)
    }
}

/// Creates the reporting topics as the app declares them (what `topics migrate` creates).
fn create_declared(rt: &tokio::runtime::Runtime, cluster: &Cluster, app: &App) {
    for spec in app.declared_topics() {
        rt.block_on(cluster.admin.create_topic(spec))
            .unwrap_or_else(|e| panic!("creating {}: {e}", spec.name));
    }
}

/// The newest reports of `ids`, or a complaint when one has none yet.
fn reports_of<'a>(
    newest: &'a BTreeMap<String, Option<ProcessReport>>,
    ids: &[String],
) -> Result<Vec<&'a ProcessReport>, String> {
    ids.iter()
        .map(|id| match newest.get(id) {
            Some(Some(report)) => Ok(report),
            _ => Err(format!("no report of {id} yet: {:?}", newest.keys())),
        })
        .collect()
}

/// A complaint unless the reports cover every partition of `topic` exactly once.
fn owners_complaint(reports: &[&ProcessReport], topic: &str) -> Option<String> {
    let mut owners: BTreeMap<i32, Vec<&str>> = BTreeMap::new();
    for report in reports {
        for p in report.partitions.iter().filter(|p| p.topic == topic) {
            owners.entry(p.partition).or_default().push(&report.id);
        }
    }
    let every: BTreeSet<i32> = (0..PARTITIONS).collect();
    let complete = owners.keys().copied().collect::<BTreeSet<_>>() == every;
    (!complete || owners.values().any(|o| o.len() != 1))
        .then(|| format!("partition owners: {owners:?}"))
}

/// A complaint unless every partition is stored (or, when its owner got it after it was
/// consumed, committed: a late rebalance on Kafka does that) at `end` with no lag, and the
/// totals add up to `total`.
fn progress_complaint(reports: &[&ProcessReport], end: i64, total: u64) -> Option<String> {
    for report in reports {
        for p in &report.partitions {
            let at = p.stored_offset.or(p.committed_offset);
            if at != Some(end) || p.lag != Some(0) {
                return Some(format!(
                    "{} partition {}: stored {:?}, committed {:?}, lag {:?}, want {end} and 0",
                    report.id, p.partition, p.stored_offset, p.committed_offset, p.lag
                ));
            }
        }
    }
    let consumed: u64 = reports.iter().map(|r| r.totals.messages).sum();
    (consumed != total).then(|| format!("totals add up to {consumed}, want {total}"))
}

#[test]
fn three_processes_report_every_partition_once_at_its_end_and_leave_tombstones() {
    let (rt, cluster, topic) = with_topic("reporting", PARTITIONS);
    let (reports, errors) = (unique("reports"), unique("errors"));
    let group = unique("reporting-group");
    let tracker = Tracker::default();
    let bootstrap = cluster.bootstrap();
    let published = Arc::new(AtomicUsize::new(0));
    let apps: Vec<App> = (0..3)
        .map(|_| {
            let topics = (reports.as_str(), errors.as_str());
            app(
                &bootstrap,
                &topic,
                &group,
                topics,
                &tracker,
                None,
                published.clone(),
            )
        })
        .collect();
    create_declared(&rt, &cluster, &apps[0]);
    let servers: Vec<RunningServer> = apps
        .iter()
        .map(|a| a.start(&Filters::default()).expect("starts"))
        .collect();
    let ids: Vec<String> = servers.iter().map(|s| s.process_id().to_string()).collect();
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), 3, "{ids:?}");
    // The group settles before anything is produced: no rebalance re-processes a message,
    // so the totals add up exactly.
    await_check(Duration::from_secs(90), || {
        let newest = newest_reports(&bootstrap, &reports);
        match reports_of(&newest, &ids) {
            Ok(reports) => owners_complaint(&reports, &topic),
            Err(complaint) => Some(complaint),
        }
    });
    const N: u64 = 600;
    cluster.produce_spread(&rt, &topic, 0, N, PARTITIONS as u64);
    assert!(
        tracker.wait_for(N as usize, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );
    let end = (N / PARTITIONS as u64) as i64;
    await_check(Duration::from_secs(60), || {
        let newest = newest_reports(&bootstrap, &reports);
        match reports_of(&newest, &ids) {
            Ok(reports) => {
                owners_complaint(&reports, &topic).or_else(|| progress_complaint(&reports, end, N))
            }
            Err(complaint) => Some(complaint),
        }
    });
    assert_contiguous_per_partition(&tracker.all());
    for server in servers {
        assert_eq!(server.shutdown(), ferrafka::ServerExit::Clean);
    }
    let all = records(&bootstrap, &reports);
    for id in &ids {
        let mine: Vec<_> = all.iter().filter(|(k, _)| k == id).collect();
        let (last, before) = (mine[mine.len() - 1], mine[mine.len() - 2]);
        assert_eq!(last.1, None, "{id}'s newest record is a tombstone");
        match decode(before.1.as_deref()).expect("a report") {
            Decoded::Report { report, .. } => assert_eq!(report.state, "stopped"),
            Decoded::Stopped => panic!("{id}: one tombstone only"),
        }
    }
    assert!(published.load(Ordering::Relaxed) >= 3 * 3);
}

#[test]
fn a_failed_batch_lands_on_the_errors_topic_with_its_coordinates() {
    let (rt, cluster, topic) = with_topic("reporting-errors", 2);
    let (reports, errors) = (unique("reports"), unique("errors"));
    let tracker = Tracker::default();
    let bootstrap = cluster.bootstrap();
    let published = Arc::new(AtomicUsize::new(0));
    let topics = (reports.as_str(), errors.as_str());
    let group = unique("reporting-errors-group");
    let app = app(
        &bootstrap,
        &topic,
        &group,
        topics,
        &tracker,
        Some(13),
        published,
    );
    create_declared(&rt, &cluster, &app);
    cluster.produce_spread(&rt, &topic, 0, 40, 2);
    let server = app.start(&Filters::default()).expect("starts");
    let id = server.process_id().to_string();
    assert!(
        tracker.wait_for(40, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );
    let mut found: Option<ErrorReport> = None;
    await_check(Duration::from_secs(30), || {
        found = records(&bootstrap, &errors)
            .into_iter()
            .filter(|(k, _)| *k == id)
            .filter_map(|(_, p)| serde_json::from_slice::<ErrorReport>(&p?).ok())
            .find(|e| e.kind == "batch");
        found
            .is_none()
            .then(|| "no batch error on the errors topic yet".to_string())
    });
    let error = found.unwrap();
    assert_eq!(error.process_id, id);
    assert_eq!(error.topic.as_deref(), Some(topic.as_str()));
    // 13 went to partition 1 (13 % 2) at offset 6 (13 / 2).
    assert_eq!(error.partition, Some(1));
    let (first, last) = error.offsets.expect("offsets");
    assert!(first <= 6 && 6 <= last, "{first}..={last}");
    assert_eq!(error.attempt, Some(1));
    assert_eq!(error.chain, ["order 13 rejected", "warehouse unreachable"]);
    assert_eq!(server.shutdown(), ferrafka::ServerExit::Clean);
    let mine: Vec<_> = records(&bootstrap, &reports)
        .into_iter()
        .filter(|(k, _)| *k == id)
        .collect();
    assert_eq!(
        mine.last().map(|(_, p)| p.is_none()),
        Some(true),
        "a tombstone last"
    );
}
