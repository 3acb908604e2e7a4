//! Live facts about each routed or declared topic: one partition (FD004), replication and
//! `min.insync.replicas` (FD012), unclean leader election (FD012) and the codec against the
//! producer's (FD008).

use std::collections::BTreeMap;

use super::Live;
use crate::admin::{Cluster, TopicInfo, TopicSpec};
use crate::doctor::{
    Report, Severity, WHY_CODEC_MISMATCH, WHY_MIN_ISR, WHY_SINGLE_PARTITION, WHY_UNCLEAN,
    compare_topic_codec, judge_durability,
};

/// FD004, FD008 and FD012 for one existing topic, skipping what the static checks already said
/// about the same value.
pub(super) fn topic_facts(
    cluster: &Live<'_, impl Cluster>,
    info: &TopicInfo,
    declared: Option<&TopicSpec>,
    producer_codec: Option<&str>,
    features: &[String],
    report: &mut Report,
) {
    single_partition(info, declared, report);
    let settings = cluster.topic_settings(&info.name);
    durability(info, settings.as_ref().ok(), declared, report);
    settings_facts(&info.name, &settings, report);
    if let Ok(settings) = &settings {
        codec(
            &info.name,
            settings,
            declared,
            producer_codec,
            features,
            report,
        );
    }
}

/// FD004: one partition on the cluster (unless declared so).
fn single_partition(info: &TopicInfo, declared: Option<&TopicSpec>, report: &mut Report) {
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
}

/// FD012: replication and `min.insync.replicas` on the cluster, where they differ from what
/// the static checks said about the declaration.
fn durability(
    info: &TopicInfo,
    settings: Option<&BTreeMap<String, String>>,
    declared: Option<&TopicSpec>,
    report: &mut Report,
) {
    let name = &info.name;
    let rf = info.replication_factor();
    let min_isr = settings.and_then(|s| s.get("min.insync.replicas"));
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
}

/// FD012: unclean leader election on, and settings the broker did not report.
fn settings_facts(
    name: &str,
    settings: &Result<BTreeMap<String, String>, String>,
    report: &mut Report,
) {
    let unclean = "unclean.leader.election.enable";
    if let Ok(s) = &settings
        && s.get(unclean).is_some_and(|v| v.trim() == "true")
    {
        report.push(
            "FD012",
            Severity::Warning,
            format!("topic {name}"),
            format!("{unclean}=true (on the cluster)"),
            WHY_UNCLEAN,
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
            WHY_MIN_ISR,
            "check the brokers' default min.insync.replicas, or declare it on the topic and run \
             `topics align`",
        ),
        Ok(_) => {}
        Err(e) => report.push_unknown(
            "FD012",
            format!("topic {name}"),
            format!("unknown: cannot describe the topic's settings: {e}"),
            WHY_MIN_ISR,
            "check min.insync.replicas and compression.type of the topic by hand",
        ),
    }
}

/// FD008: the topic's codec against the producer's.
fn codec(
    name: &str,
    settings: &BTreeMap<String, String>,
    declared: Option<&TopicSpec>,
    producer_codec: Option<&str>,
    features: &[String],
    report: &mut Report,
) {
    match settings.get("compression.type") {
        None => report.push_unknown(
            "FD008",
            format!("topic {name}"),
            "unknown: the broker did not report compression.type (it lists only explicitly set \
             values, or hides defaults)",
            WHY_CODEC_MISMATCH,
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
