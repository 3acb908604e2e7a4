//! `ferrafka-bench web-pages`: how long each web UI page takes to render for a large fleet
//! (issue 24: under 200 ms with 50 processes and 1,000 partitions). Rendering only: the
//! cluster's answers are synthetic too, so the figure is the UI's own cost.

use std::time::{Duration, Instant};

use anyhow::Result;
use ferrafka::web::ui::data;
use ferrafka::web::ui::live::Fleet;
use ferrafka::web::ui::pages;
use ferrafka::web::ui::snapshot::{
    GroupPartition, GroupRow, GroupView, GroupsView, MessageRow, PartitionBrowse, PayloadFormat,
};

/// A CSRF token, so the timed pages render their write buttons as a writing UI does.
const CSRF: &str = "0123456789abcdef0123456789abcdef";

/// Arguments of `web-pages`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reporting processes.
    #[arg(long, default_value_t = 50)]
    processes: usize,
    /// Partitions across the fleet (spread evenly over the processes).
    #[arg(long, default_value_t = 1000)]
    partitions: usize,
    /// Renders per page; the mean is printed.
    #[arg(long, default_value_t = 20)]
    rounds: u32,
}

fn report(id: usize, partitions: std::ops::Range<usize>, at_ms: i64) -> serde_json::Value {
    let parts: Vec<_> = partitions
        .map(|p| serde_json::json!({
            "consumer_group": format!("group-{}", p % 10), "subscription_group": "g/default",
            "topic": format!("topic-{}", p / 100), "partition": p % 100, "stored_offset": 1000,
            "committed_offset": 990, "high_watermark": 1200, "lag": 200 + (p % 7) as i64,
            "paused": if p % 13 == 0 { Some("retry") } else { None }, "stalled": false,
            "running_batch": if p % 5 == 0 { Some(serde_json::json!({"offsets": [1000, 1099], "messages": 100, "attempt": 1, "age_ms": 250})) } else { None }
        }))
        .collect();
    let errors: Vec<_> = (0..10)
        .map(|i| serde_json::json!({"schema": 1, "process_id": format!("p{id}"), "at_ms": at_ms - i,
            "kind": "batch", "consumer_group": "group-1", "topic": "topic-1", "partition": 1,
            "offsets": [1, 2], "attempt": 1, "chain": ["boom", "because <reasons>"], "backtrace": null}))
        .collect();
    serde_json::json!({
        "schema": 1, "id": format!("host-{id}:{id}:abc"), "host": format!("host-{id}"), "pid": id,
        "ferrafka_version": "0.1.0", "environment": "production", "client_id": "bench",
        "state": "running", "started_at_ms": at_ms - 3_600_000, "reported_at_ms": at_ms,
        "stale_after_ms": 20_000,
        "listeners": [{"subscription_group": "g/default", "consumer_group": "group-1", "last_poll_age_ms": 3}],
        "partitions": parts,
        "totals": {"messages": 1, "batches": 1, "batch_errors": 1, "errors": 1, "dead_lettered": 0},
        "rates": {"messages": 1000.0, "batches": 10.0, "errors": 0.1}, "recent_errors": errors
    })
}

fn mean(rounds: u32, mut render: impl FnMut() -> usize) -> (Duration, usize) {
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        bytes = render();
    }
    (start.elapsed() / rounds, bytes)
}

/// Builds the fleet (an hour of samples) and renders each page.
pub fn run(args: &Args) -> Result<()> {
    let now = 1_800_000_000_000_i64;
    let mut fleet = Fleet::default();
    let per = args.partitions.div_ceil(args.processes.max(1));
    let build = Instant::now();
    for i in 0..args.processes {
        let range = (i * per).min(args.partitions)..((i + 1) * per).min(args.partitions);
        let payload = serde_json::to_vec(&report(i, range, now))?;
        fleet.apply(Some(format!("host-{i}:{i}:abc").as_bytes()), Some(&payload));
    }
    for step in (0..720).rev() {
        fleet.sample(now - step * 5_000);
    }
    let applied = build.elapsed();
    let snapshot = fleet.snapshot(now);
    let first = snapshot.processes[0].report.id.clone();
    let groups = GroupsView {
        groups: (0..10)
            .map(|g| GroupRow {
                name: format!("group-{g}"),
                state: "Stable".into(),
                members: Some(5),
                lag: Some(20_000),
            })
            .collect(),
        problems: Vec::new(),
    };
    let group = GroupView {
        name: "group-1".into(),
        partitions: (0..args.partitions as i32 / 10)
            .map(|p| GroupPartition {
                topic: format!("topic-{}", p / 100),
                partition: p % 100,
                committed: Some(990),
                high_watermark: Some(1200),
                lag: Some(210),
                owner: Some(first.clone()),
            })
            .collect(),
        trend: snapshot
            .series
            .iter()
            .map(|p| (p.at_ms, p.total_lag))
            .collect(),
        ..GroupView::default()
    };
    let info = ferrafka::admin::ClusterInfo {
        brokers: (0..3)
            .map(|id| ferrafka::admin::BrokerInfo {
                id,
                host: format!("k{id}"),
                port: 9092,
            })
            .collect(),
        topics: (0..args.partitions / 100)
            .map(|t| ferrafka::admin::TopicInfo {
                name: format!("topic-{t}"),
                partitions: (0..100)
                    .map(|id| ferrafka::admin::PartitionInfo {
                        id,
                        leader: id % 3,
                        replicas: vec![0, 1, 2],
                        isr: vec![0, 1, 2],
                    })
                    .collect(),
            })
            .collect(),
    };
    let cluster = data::cluster_view(&info);
    let health = data::health(&snapshot, fleet.lagging(now), &cluster);
    let browse = PartitionBrowse {
        topic: "topic-1".into(),
        watermarks: Some((0, 1200)),
        format: PayloadFormat::Json,
        messages: (0..20)
            .map(|o| MessageRow {
                offset: o,
                timestamp_ms: Some(now),
                key: Some(b"key".to_vec()),
                payload: Some(br#"{"order":1,"items":[1,2,3],"note":"<b>"}"#.repeat(20)),
                headers: vec![("h".into(), Some(b"v".to_vec()))],
            })
            .collect(),
        ..PartitionBrowse::default()
    };
    println!(
        "web pages: {} processes, {} partitions, {} samples (fleet built in {:.1} ms)",
        args.processes,
        args.partitions,
        snapshot.series.len(),
        applied.as_secs_f64() * 1e3
    );
    let r = args.rounds;
    let rows: Vec<(&str, (Duration, usize))> = vec![
        (
            "dashboard",
            mean(r, || {
                pages::dashboard("", &fleet.snapshot(now))
                    .into_string()
                    .len()
            }),
        ),
        (
            "processes",
            mean(r, || {
                pages::processes("", &fleet.snapshot(now))
                    .into_string()
                    .len()
            }),
        ),
        (
            "process",
            mean(r, || {
                pages::process("", &fleet.snapshot(now), &first, Some(CSRF))
                    .into_string()
                    .len()
            }),
        ),
        (
            "groups",
            mean(r, || pages::groups("", &groups).into_string().len()),
        ),
        (
            "group",
            mean(r, || {
                pages::group("", &group, Some(CSRF)).into_string().len()
            }),
        ),
        (
            "topics",
            mean(r, || pages::topics("", &cluster).into_string().len()),
        ),
        (
            "cluster",
            mean(r, || pages::cluster("", &cluster).into_string().len()),
        ),
        (
            "health",
            mean(r, || {
                pages::health(
                    "",
                    &data::health(&fleet.snapshot(now), fleet.lagging(now), &cluster),
                )
                .into_string()
                .len()
            }),
        ),
        (
            "browse",
            mean(r, || pages::browse("", &browse).into_string().len()),
        ),
    ];
    let _ = health;
    for (page, (time, bytes)) in rows {
        println!(
            "  {page:<10} {:>8.2} ms  {:>8} bytes",
            time.as_secs_f64() * 1e3,
            bytes
        );
    }
    Ok(())
}
