//! The live checks: what the cluster says, read through [`Live`] so the judgement can be
//! tested against facts the embedded broker cannot produce (a reported assignor, a broker's
//! `offsets.retention.minutes`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::AppView;
use super::{
    DoctorOptions, Report, Severity, WHY_ASSIGNOR_CHANGE, WHY_CLUSTER, WHY_FUTURE,
    WHY_MISSING_TOPIC, WHY_RETENTION, WHY_RETENTION_UNKNOWN, WHY_SINGLE_PARTITION,
    compare_topic_codec, effective, judge_durability, producer_codec, routed_topics,
};
use crate::admin::{Cluster, TopicInfo};

mod admin_live;
mod brokers;
mod permissions;
mod protocol;
mod view;

pub use admin_live::AdminLive;
pub use view::Live;

/// A duration as a person reads it: `90s`, `45m`, `36h`, `7d`.
pub(crate) fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        format!("{s}s")
    } else if s < 2 * 3600 {
        format!("{}m", s / 60)
    } else if s < 2 * 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

fn millis_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// The live part of `doctor --live`: connects with the app's kafka properties and runs
/// [`check`]. Nothing connects when the configuration does not validate: the cluster is then
/// reported unknown, naming the invalid settings (the static checks report them in full).
pub(super) fn run(app: &dyn AppView, opts: &DoctorOptions, report: &mut Report) {
    if let Err(invalid) = app.validate() {
        let settings: BTreeSet<&str> = invalid
            .problems
            .iter()
            .map(|p| p.setting.as_str())
            .collect();
        report.push_unknown(
            "FD006",
            "cluster",
            format!(
                "unknown: not connected, because the configuration does not validate ({})",
                settings.into_iter().collect::<Vec<_>>().join(", ")
            ),
            WHY_CLUSTER,
            "fix the configuration errors this report lists, then run `doctor --live` again",
        );
        return;
    }
    match AdminLive::connect(app, opts.timeout).and_then(|admins| {
        let live = admins.live()?;
        check(app, opts, &live, SystemTime::now(), report);
        Ok(())
    }) {
        Ok(()) => {}
        Err(e) => report.push(
            "FD006",
            Severity::Error,
            "cluster",
            format!("cannot connect: {}", crate::error::error_chain(&e)),
            WHY_CLUSTER,
            "check bootstrap.servers and credentials (FERRAFKA_KAFKA_*), then run again",
        ),
    }
}

/// Runs the live checks against `cluster` as of `now`.
pub fn check(
    app: &dyn AppView,
    opts: &DoctorOptions,
    cluster: &Live<'_, impl Cluster>,
    now: SystemTime,
    report: &mut Report,
) {
    let production = app.config().env().is_production();
    let existing: BTreeMap<String, TopicInfo> = match cluster.topics() {
        Ok(topics) => topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
        Err(e) => {
            report.push(
                "FD006",
                Severity::Error,
                "cluster",
                format!("cannot read the cluster's metadata: {e}"),
                WHY_CLUSTER,
                "check bootstrap.servers and credentials (FERRAFKA_KAFKA_*), then run again",
            );
            return;
        }
    };
    let routed = routed_topics(app);
    let declared: BTreeMap<&str, &crate::admin::TopicSpec> = app
        .declared_topics()
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    missing_topics(app, opts, &routed, &declared, &existing, report);
    if production {
        let names: BTreeSet<&str> = routed
            .keys()
            .map(String::as_str)
            .chain(declared.keys().copied())
            .collect();
        let codec = producer_codec(app);
        let features = crate::librdkafka::builtin_features();
        for name in names {
            let Some(info) = existing.get(name) else {
                continue;
            };
            topic_facts(
                cluster,
                info,
                declared.get(name).copied(),
                codec.as_deref(),
                &features,
                report,
            );
        }
    }
    assignor_changes(app, cluster, report);
    protocol::group_protocol(app, cluster, report);
    permissions::permissions(app, cluster, &opts.program, report);
    if production {
        brokers::broker_facts(cluster, &existing, report);
        future_messages(app, opts, cluster, &existing, now, report);
        offsets_retention(app, cluster, &existing, now, report);
    }
}

/// FD006: routed or dead-letter topics the cluster does not have.
fn missing_topics(
    app: &dyn AppView,
    opts: &DoctorOptions,
    routed: &BTreeMap<String, String>,
    declared: &BTreeMap<&str, &crate::admin::TopicSpec>,
    existing: &BTreeMap<String, TopicInfo>,
    report: &mut Report,
) {
    let production = app.config().env().is_production();
    for (name, role) in routed {
        if existing.contains_key(name) {
            continue;
        }
        let fix = if declared.contains_key(name.as_str()) {
            format!(
                "run `{} topics migrate` before starting the consumers",
                opts.program
            )
        } else {
            format!(
                "declare `{name}` (`.config(|t| t.partitions(n))` or `declarations`), then run \
                 `{} topics migrate`",
                opts.program
            )
        };
        report.push(
            "FD006",
            if production {
                Severity::Error
            } else {
                Severity::Warning
            },
            format!("topic {name}"),
            format!("{role}, missing on the cluster"),
            WHY_MISSING_TOPIC,
            fix,
        );
    }
}

/// FD004, FD008 and FD012 for one existing topic, skipping what the static checks already said
/// about the same value.
fn topic_facts(
    cluster: &Live<'_, impl Cluster>,
    info: &TopicInfo,
    declared: Option<&crate::admin::TopicSpec>,
    producer_codec: Option<&str>,
    features: &[String],
    report: &mut Report,
) {
    let name = &info.name;
    let partitions = info.partitions.len();
    if partitions == 1 && declared.is_none_or(|d| d.partitions != 1) {
        report.push(
            "FD004",
            Severity::Warning,
            format!("topic {name}"),
            match declared {
                Some(d) => format!(
                    "1 partition on the cluster (declared {}; not migrated yet)",
                    d.partitions
                ),
                None => "1 partition on the cluster".to_string(),
            },
            WHY_SINGLE_PARTITION,
            if declared.is_some() {
                "run `topics repartition` (or `topics migrate`)".to_string()
            } else {
                format!("declare `{name}` with more partitions and run `topics repartition`")
            },
        );
    }
    let settings = cluster.topic_settings(name);
    let rf = info.replication_factor();
    let min_isr = settings
        .as_ref()
        .ok()
        .and_then(|s| s.get("min.insync.replicas"));
    let static_rf = declared.map(|d| d.replication_factor);
    let static_isr = declared.and_then(|d| d.settings.get("min.insync.replicas"));
    if static_rf != Some(rf) || static_isr != min_isr {
        let mut scratch = Report {
            env: String::new(),
            live: true,
            findings: Vec::new(),
            skipped: Vec::new(),
        };
        judge_durability(
            name,
            rf,
            min_isr.map(String::as_str),
            "on the cluster",
            &mut scratch,
        );
        // Only what differs from the static findings about the declaration.
        for f in scratch.findings {
            let restates_rf = f.found.starts_with("replication factor") && static_rf == Some(rf);
            let restates_isr = f.found.starts_with("min.insync") && static_isr == min_isr;
            if !restates_rf && !restates_isr {
                report.findings.push(f);
            }
        }
    }
    let unclean = "unclean.leader.election.enable";
    if let Ok(s) = &settings
        && s.get(unclean).is_some_and(|v| v.trim() == "true")
    {
        report.push(
            "FD012",
            Severity::Warning,
            format!("topic {name}"),
            format!("{unclean}=true (on the cluster)"),
            super::WHY_UNCLEAN,
            format!(
                "declare `.setting(\"{unclean}\", \"false\")` and run `topics align`; keep it \
                 false on the brokers (Kafka's default)"
            ),
        );
    }
    match &settings {
        Ok(s) if !s.contains_key("min.insync.replicas") => report.push_unknown(
            "FD012",
            format!("topic {name}"),
            "unknown: the broker did not report min.insync.replicas (it lists only explicitly \
             set values, or hides defaults)",
            super::WHY_MIN_ISR,
            "check the brokers' default min.insync.replicas, or declare it on the topic and run \
             `topics align`",
        ),
        Ok(_) => {}
        Err(e) => report.push_unknown(
            "FD012",
            format!("topic {name}"),
            format!("unknown: cannot describe the topic's settings: {e}"),
            super::WHY_MIN_ISR,
            "check min.insync.replicas and compression.type of the topic by hand",
        ),
    }
    let Ok(settings) = &settings else {
        return; // FD012 above already says the settings are unknown.
    };
    match settings.get("compression.type") {
        None => report.push_unknown(
            "FD008",
            format!("topic {name}"),
            "unknown: the broker did not report compression.type (it lists only explicitly set \
             values, or hides defaults)",
            super::WHY_CODEC_MISMATCH,
            "check the topic's compression.type against the producer's compression.codec by \
             hand, or declare it on the topic and run `topics align`",
        ),
        Some(codec)
            if declared
                .and_then(|d| d.settings.get("compression.type"))
                .is_none_or(|d| d != codec) =>
        {
            compare_topic_codec(
                name,
                codec,
                producer_codec,
                features,
                "on the cluster",
                report,
            );
        }
        Some(_) => {}
    }
}

/// FD009: a live group whose assignor the configured strategies do not include.
pub(crate) fn assignor_changes(
    app: &dyn AppView,
    cluster: &Live<'_, impl Cluster>,
    report: &mut Report,
) {
    let mut configured: BTreeMap<String, (String, String)> = BTreeMap::new();
    for sg in app.subscription_groups() {
        configured.entry(sg.consumer_group.to_string()).or_insert((
            effective(&sg.kafka, "partition.assignment.strategy", false).unwrap_or_default(),
            effective(&sg.kafka, "group.protocol", false).unwrap_or_default(),
        ));
    }
    for (group, (strategy, protocol)) in configured {
        let description = match cluster.group(&group) {
            Ok(Some(d)) if !d.members.is_empty() => d,
            Ok(_) => continue,
            Err(e) => {
                report.push_unknown(
                    "FD009",
                    format!("consumer group {group}"),
                    format!("unknown: cannot describe the group: {e}"),
                    WHY_ASSIGNOR_CHANGE,
                    "compare the running members' assignment strategy with the configured one \
                     before a rolling deploy",
                );
                continue;
            }
        };
        if description.assignor.trim().is_empty() {
            report.push_unknown(
                "FD009",
                format!("consumer group {group}"),
                format!(
                    "unknown: the group runs with {} member(s) but the broker did not report \
                     its assignor",
                    description.members.len()
                ),
                WHY_ASSIGNOR_CHANGE,
                format!(
                    "make sure the running members use partition.assignment.strategy={strategy} \
                     before a rolling deploy"
                ),
            );
            continue;
        }
        if protocol == "consumer" || description.group_protocol == "consumer" {
            // KIP-848 groups are assigned by the broker; librdkafka's strategy is unused (and
            // Kafka lets classic members join a KIP-848 group during a migration).
            continue;
        }
        let compatible = strategy
            .split(',')
            .any(|s| s.trim() == description.assignor.trim());
        if !compatible {
            report.push(
                "FD009",
                Severity::Error,
                format!("consumer group {group}"),
                format!(
                    "the running group uses {} ({} member(s)); this app is configured with \
                     partition.assignment.strategy={strategy}",
                    description.assignor,
                    description.members.len()
                ),
                WHY_ASSIGNOR_CHANGE,
                format!(
                    "do not deploy as a rolling update. Stop ALL members of {group}, deploy, \
                     then start them all again; or keep \
                     `partition.assignment.strategy={assignor}` for this deploy and switch \
                     later with that full stop",
                    assignor = description.assignor
                ),
            );
        }
    }
}

/// FD010 (live): newest messages stamped in this host's future.
fn future_messages(
    app: &dyn AppView,
    opts: &DoctorOptions,
    cluster: &Live<'_, impl Cluster>,
    existing: &BTreeMap<String, TopicInfo>,
    now: SystemTime,
    report: &mut Report,
) {
    let now_ms = millis_since_epoch(now);
    let tolerance = opts.clock_tolerance.as_millis() as i64;
    let active: BTreeSet<&str> = app
        .subscription_groups()
        .iter()
        .flat_map(|sg| sg.active_topics())
        .collect();
    for topic in active.into_iter().filter(|t| existing.contains_key(*t)) {
        match cluster.newest_timestamps(topic) {
            Ok(stamps) => {
                if let Some((partition, ts)) = stamps.into_iter().max_by_key(|(_, ts)| *ts)
                    && ts - now_ms > tolerance
                {
                    report.push(
                        "FD010",
                        Severity::Warning,
                        format!("topic {topic}"),
                        format!(
                            "newest message (partition {partition}) is {} ms in this host's \
                             future (tolerance {} ms)",
                            ts - now_ms,
                            tolerance
                        ),
                        WHY_FUTURE,
                        "synchronise the clocks of producers, brokers and this host (chrony, \
                         systemd-timesyncd or ntpd) and alert on drift",
                    );
                }
            }
            Err(e) => report.push_unknown(
                "FD010",
                format!("topic {topic}"),
                format!("unknown: cannot read its newest messages: {e}"),
                WHY_FUTURE,
                "compare the topic's newest timestamps with this host's clock by hand",
            ),
        }
    }
}

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
    match (&retention, downtime) {
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
    let now_ms = millis_since_epoch(now);
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
        let mut oldest: Option<(i64, String)> = None;
        let mut unread = Vec::new();
        for topic in topics.iter().filter(|t| existing.contains_key(*t)) {
            match cluster.first_unprocessed(&group, topic) {
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
        let Some((ts, at)) = oldest else {
            continue;
        };
        let stopped = Duration::from_millis((now_ms - ts).max(0) as u64);
        let found = format!(
            "no members, and its first unprocessed message ({at}) is {} old: stopped for at \
             least that long",
            human(stopped)
        );
        match (&retention, downtime) {
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
}
