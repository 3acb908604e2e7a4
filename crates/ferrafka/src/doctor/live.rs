//! The live checks: what the cluster says, read through [`Live`] so the judgement can be
//! tested against facts the embedded broker cannot produce (a reported assignor, a broker's
//! `offsets.retention.minutes`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::AppView;
use super::{
    DoctorOptions, Report, Severity, WHY_ASSIGNOR_CHANGE, WHY_CLUSTER, WHY_FUTURE,
    WHY_MISSING_TOPIC, effective, producer_codec, routed_topics,
};
use crate::admin::{Cluster, TopicInfo};
use crate::messages::millis_since_epoch;

mod admin_live;
mod brokers;
mod patterns;
mod permissions;
mod protocol;
mod retention;
mod topics;
mod view;

pub(crate) use admin_live::AdminLive;
pub(crate) use view::Live;

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
pub(crate) fn check(
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
            topics::topic_facts(
                cluster,
                info,
                declared.get(name).copied(),
                codec.as_deref(),
                &features,
                report,
            );
        }
    }
    patterns::patterns(app, &existing, report);
    assignor_changes(app, cluster, report);
    protocol::group_protocol(app, cluster, report);
    permissions::permissions(app, cluster, &opts.program, report);
    if production {
        brokers::broker_facts(cluster, &existing, report);
        future_messages(app, opts, cluster, &existing, now, report);
        retention::offsets_retention(app, cluster, &existing, now, report);
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
