//! FD011 (live): the brokers' offsets retention against the declared downtime, and consumer
//! groups stopped longer than it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::{Live, human, millis_since_epoch};
use crate::admin::{Cluster, TopicInfo};
use crate::doctor::{AppView, Report, Severity, WHY_RETENTION, WHY_RETENTION_UNKNOWN};

/// FD011 (live): offsets retention against the declared downtime, and stopped groups.
pub(crate) fn offsets_retention(
    app: &dyn AppView,
    cluster: &Live<'_, impl Cluster>,
    existing: &BTreeMap<String, TopicInfo>,
    now: SystemTime,
    report: &mut Report,
) {
    let downtime = app.config().max_expected_downtime;
    let retention = cluster.offsets_retention();
    retention_against_downtime(&retention, downtime, report);
    let mut groups: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for sg in app.subscription_groups() {
        for t in sg.active_topics() {
            groups
                .entry(sg.consumer_group.to_string())
                .or_default()
                .insert(t.to_string());
        }
    }
    for (group, topics) in groups {
        match cluster.group(&group) {
            Ok(Some(d)) if !d.members.is_empty() => continue,
            Ok(_) => {}
            Err(_) => continue, // FD009 already says the group cannot be described.
        }
        let Some((ts, at)) = oldest_unprocessed(cluster, &group, &topics, existing, report) else {
            continue;
        };
        let stopped = Duration::from_millis((millis_since_epoch(now) - ts).max(0) as u64);
        stopped_group(&group, stopped, &at, &retention, downtime, report);
    }
}

/// The brokers' `offsets.retention.minutes` shorter than `max_expected_downtime`, or unknown.
fn retention_against_downtime(
    retention: &Result<Duration, String>,
    downtime: Option<Duration>,
    report: &mut Report,
) {
    match (retention, downtime) {
        (Ok(r), Some(d)) if *r < d => report.push(
            "FD011",
            Severity::Error,
            "broker offsets.retention.minutes",
            format!(
                "{} ({}), shorter than max_expected_downtime ({})",
                r.as_secs() / 60,
                human(*r),
                human(d)
            ),
            WHY_RETENTION,
            format!(
                "raise offsets.retention.minutes on the brokers to at least {} (and restart \
                 them), or plan for shorter downtimes",
                d.as_secs().div_ceil(60)
            ),
        ),
        (Ok(_), _) => {}
        (Err(reason), _) => report.push_unknown(
            "FD011",
            "broker offsets.retention.minutes",
            format!("unknown: {reason}"),
            WHY_RETENTION_UNKNOWN,
            match downtime {
                Some(d) => format!(
                    "check offsets.retention.minutes in the brokers' configuration by hand: it \
                     must be at least {} (max_expected_downtime {}); Kafka's default is 10080 \
                     (7 days)",
                    d.as_secs().div_ceil(60),
                    human(d)
                ),
                None => "check offsets.retention.minutes in the brokers' configuration by hand \
                         against your longest expected downtime (Kafka's default is 7 days)"
                    .to_string(),
            },
        ),
    }
}

/// The oldest first-unprocessed message of a stopped `group` over its `topics`: its
/// timestamp and `topic/partition`; reports the topics where it cannot be read.
fn oldest_unprocessed(
    cluster: &Live<'_, impl Cluster>,
    group: &str,
    topics: &BTreeSet<String>,
    existing: &BTreeMap<String, TopicInfo>,
    report: &mut Report,
) -> Option<(i64, String)> {
    let mut oldest: Option<(i64, String)> = None;
    let mut unread = Vec::new();
    for topic in topics.iter().filter(|t| existing.contains_key(*t)) {
        match cluster.first_unprocessed(group, topic) {
            Ok(stamps) => {
                for (partition, ts) in stamps {
                    if oldest.as_ref().is_none_or(|(o, _)| ts < *o) {
                        oldest = Some((ts, format!("{topic}/{partition}")));
                    }
                }
            }
            Err(e) => unread.push(format!("{topic}: {e}")),
        }
    }
    if !unread.is_empty() {
        report.push_unknown(
            "FD011",
            format!("consumer group {group}"),
            format!(
                "unknown: the group has no members, and where it stopped cannot be read ({})",
                unread.join("; ")
            ),
            WHY_RETENTION,
            format!(
                "check how long `{group}` has been stopped (the age of the first message \
                 after its committed offsets) against offsets.retention.minutes by hand"
            ),
        );
    }
    oldest
}

/// A `group` with no members that has been `stopped` at least this long (its first
/// unprocessed message is at `at`): longer than the retention (error) or the declared downtime
/// (warning).
fn stopped_group(
    group: &str,
    stopped: Duration,
    at: &str,
    retention: &Result<Duration, String>,
    downtime: Option<Duration>,
    report: &mut Report,
) {
    let found = format!(
        "no members, and its first unprocessed message ({at}) is {} old: stopped for at \
         least that long",
        human(stopped)
    );
    match (retention, downtime) {
        (Ok(r), _) if stopped > *r => report.push(
            "FD011",
            Severity::Error,
            format!("consumer group {group}"),
            format!("{found}, longer than offsets retention ({})", human(*r)),
            WHY_RETENTION,
            format!(
                "its committed offsets may be gone: check `{group}`'s offsets before \
                 starting it and move them with the Admin API (move_offsets) if needed; \
                 raise offsets.retention.minutes"
            ),
        ),
        (_, Some(d)) if stopped > d => report.push(
            "FD011",
            Severity::Warning,
            format!("consumer group {group}"),
            format!("{found}, longer than max_expected_downtime ({})", human(d)),
            WHY_RETENTION,
            "start the group soon, and check offsets.retention.minutes covers how long it \
             has been stopped",
        ),
        _ => {}
    }
}
