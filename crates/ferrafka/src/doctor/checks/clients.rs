//! Static checks of the clients' librdkafka properties: rebalancing, metadata refresh,
//! compression, the producer's partitioner, and the host clock producers stamp messages with.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::Source;
use crate::doctor::{
    AppView, ClockStatus, HostClock, Report, Severity, WHY_ASSIGNOR, WHY_CLOCK, WHY_CODEC_MISMATCH,
    WHY_CODEC_MISSING, WHY_NO_CODEC, WHY_PARTITIONER, WHY_PARTITIONER_KEYLESS, WHY_REFRESH,
    WHY_STATIC_MEMBERSHIP, WHY_STATIC_SESSION, clock, sg_subject,
};
use crate::kafka::partitioners;
use crate::kafka::{effective, is_set, millis};

/// FD005: assignment strategy and static membership.
pub(crate) fn check_rebalancing(app: &dyn AppView, report: &mut Report) {
    let shutdown = app.config().shutdown_timeout;
    for sg in app.subscription_groups() {
        let protocol = effective(&sg.kafka, "group.protocol", false).unwrap_or_default();
        let strategy =
            effective(&sg.kafka, "partition.assignment.strategy", false).unwrap_or_default();
        if protocol != "consumer" && strategy.trim() != "cooperative-sticky" {
            report.push(
                "FD005",
                Severity::Warning,
                sg_subject(sg),
                format!("partition.assignment.strategy={strategy}"),
                WHY_ASSIGNOR,
                "use `cooperative-sticky` (the production profile's default) or \
                 `group.protocol=consumer` on brokers that support it; if the group runs \
                 already, switch with a full stop (see FD009)",
            );
        }
        // Under KIP-848 the session timeout is the broker's (FD015 reads it live).
        let session_setting = match protocol == "consumer" {
            true => "the brokers' group.consumer.session.timeout.ms",
            false => "session.timeout.ms",
        };
        match sg.kafka.get("group.instance.id") {
            None => report.push(
                "FD005",
                Severity::Info,
                sg_subject(sg),
                "no static membership (group.instance.id unset)",
                WHY_STATIC_MEMBERSHIP,
                format!(
                    "give every process a stable, unique id, e.g. \
                     `FERRAFKA_KAFKA_GROUP_INSTANCE_ID=$HOSTNAME`, with {session_setting} longer \
                     than a restart"
                ),
            ),
            Some(_) if protocol == "consumer" => {}
            Some(_) => {
                let session = millis(&sg.kafka, "session.timeout.ms").unwrap_or(45_000);
                if Duration::from_millis(session) <= shutdown {
                    report.push(
                        "FD005",
                        Severity::Warning,
                        sg_subject(sg),
                        format!(
                            "static membership with session.timeout.ms={session} not longer \
                             than shutdown_timeout ({shutdown:?})"
                        ),
                        WHY_STATIC_SESSION,
                        "raise session.timeout.ms above shutdown_timeout plus the boot time \
                         (and max.poll.interval.ms with it), or lower shutdown_timeout",
                    );
                }
            }
        }
    }
    // No check for two subscription groups sharing an id: routing suffixes
    // `group.instance.id` per subscription group, so one process never fences itself.
}

/// FD007: metadata refresh interval below one minute.
pub(crate) fn check_metadata_refresh(app: &dyn AppView, report: &mut Report) {
    let mut clients: Vec<(String, BTreeMap<String, String>)> = app
        .subscription_groups()
        .iter()
        .map(|sg| (sg_subject(sg), sg.kafka.clone()))
        .collect();
    clients.push(("producer".into(), app.producer_kafka()));
    for (subject, kafka) in clients {
        if let Some(ms) = millis(&kafka, "topic.metadata.refresh.interval.ms")
            && ms < 60_000
        {
            report.push(
                "FD007",
                Severity::Warning,
                subject,
                format!("topic.metadata.refresh.interval.ms={ms}"),
                WHY_REFRESH,
                "remove the override (the production profile uses 300000), or set at least \
                 60000",
            );
        }
    }
}

/// The `builtin.features` name a codec needs, `None` for no compression.
fn codec_feature(codec: &str) -> Option<String> {
    match codec.trim().to_ascii_lowercase().as_str() {
        "" | "none" | "uncompressed" | "producer" | "inherit" => None,
        other => Some(other.to_string()),
    }
}

/// The producer's codec, `None` when it sends uncompressed.
pub(crate) fn producer_codec(app: &dyn AppView) -> Option<String> {
    effective(&app.producer_kafka(), "compression.codec", true)
        .filter(|c| codec_feature(c).is_some())
}

/// Compares one topic's `compression.type` with the producer's codec and the build.
pub(crate) fn compare_topic_codec(
    topic: &str,
    topic_codec: &str,
    producer: Option<&str>,
    features: &[String],
    origin: &str,
    report: &mut Report,
) {
    let Some(needed) = codec_feature(topic_codec) else {
        return;
    };
    if !features.contains(&needed) {
        report.push(
            "FD008",
            Severity::Error,
            format!("topic {topic}"),
            format!(
                "compression.type={topic_codec} ({origin}), but this librdkafka lacks it \
                 (builtin.features: {})",
                features.join(",")
            ),
            WHY_CODEC_MISSING,
            "build rdkafka with the codec (e.g. its `zstd` feature) or choose a codec the build \
             has",
        );
    }
    if let Some(producer) = producer
        && !producer.eq_ignore_ascii_case(topic_codec.trim())
    {
        report.push(
            "FD008",
            Severity::Warning,
            format!("topic {topic}"),
            format!(
                "compression.type={topic_codec} ({origin}), producer compresses with {producer}"
            ),
            WHY_CODEC_MISMATCH,
            format!(
                "use one codec: set the topic's compression.type to `{producer}` (or to \
                 `producer`), or the producer's compression.codec to `{topic_codec}`"
            ),
        );
    }
}

/// FD008 (static): producer codec unset, declared codecs that differ or the build lacks.
pub(crate) fn check_compression(app: &dyn AppView, features: &[String], report: &mut Report) {
    let producer_kafka = app.producer_kafka();
    let codec = producer_codec(app);
    match &codec {
        None => report.push(
            "FD008",
            Severity::Warning,
            "producer",
            if is_set(&producer_kafka, "compression.codec") {
                "compression.codec=none".to_string()
            } else {
                "compression.codec unset (librdkafka sends uncompressed)".to_string()
            },
            WHY_NO_CODEC,
            "set `c.producer_kafka(\"compression.codec\", \"zstd\")` (or lz4, gzip, snappy) and \
             the same compression.type on the topics",
        ),
        Some(c) => {
            let needed = codec_feature(c).unwrap_or_default();
            if !features.contains(&needed) {
                report.push(
                    "FD008",
                    Severity::Error,
                    "producer",
                    format!(
                        "compression.codec={c}, but this librdkafka lacks it (builtin.features: \
                         {})",
                        features.join(",")
                    ),
                    WHY_CODEC_MISSING,
                    "build rdkafka with the codec (the `zstd` feature bundles libzstd; a system \
                     librdkafka needs libzstd and pkg-config at build time) or pick another \
                     codec",
                );
            }
        }
    }
    for t in app.declared_topics() {
        if let Some(topic_codec) = t.settings.get("compression.type") {
            compare_topic_codec(
                &t.name,
                topic_codec,
                codec.as_deref(),
                features,
                "declared",
                report,
            );
        }
    }
}

/// FD010 (static): the host clock.
pub(crate) fn check_host_clock(clock: &HostClock, report: &mut Report) {
    let status = match clock {
        HostClock::Kernel => clock::kernel_status(),
        HostClock::Assume(s) => s.clone(),
    };
    match status {
        ClockStatus::Synchronised { .. } => {}
        ClockStatus::Unsynchronised { max_error_us } => report.push(
            "FD010",
            Severity::Warning,
            "host clock",
            format!(
                "not synchronised (kernel: STA_UNSYNC; estimated max error {} ms)",
                max_error_us / 1000
            ),
            WHY_CLOCK,
            "run a time daemon (chrony, systemd-timesyncd or ntpd) on this host and the brokers, \
             check it is synchronised (`timedatectl` or `chronyc tracking`), and alert on drift",
        ),
        ClockStatus::Unknown { reason } => report.push_unknown(
            "FD010",
            "host clock",
            format!("unknown: {reason}"),
            WHY_CLOCK,
            "check synchronisation on the host itself (`timedatectl`, `chronyc tracking`)",
        ),
    }
}

/// FD023: the producer's partitioner differs from the one the organisation declares
/// (`expected_partitioner`), in every environment. Nothing to compare without a declaration;
/// an undeclared name is FD000's (boot refuses it).
pub(crate) fn check_partitioner(app: &dyn AppView, report: &mut Report) {
    let Some(expected) = app.config().expected_partitioner.as_deref() else {
        return;
    };
    let Some(wanted) = partitioners::find(expected) else {
        return;
    };
    let (actual, source) = match app.producer_kafka_sources().remove("partitioner") {
        Some((value, source)) => (value, Some(source)),
        None => (
            effective(&app.producer_kafka(), "partitioner", true).unwrap_or_default(),
            None,
        ),
    };
    if actual == expected {
        return;
    }
    let from = match &source {
        Some(Source::Default) => "ferrafka's default".to_string(),
        Some(source) => format!("set in {source}"),
        None => "librdkafka's default".to_string(),
    };
    let change = match &source {
        Some(Source::EnvVar(var)) => format!("set `{var}={expected}`"),
        _ => format!("set `c.producer_kafka(\"partitioner\", \"{expected}\")`"),
    };
    let fix = format!(
        "{change}, or declare the partitioner the other producers really use; switching a topic \
         that already holds keyed messages moves keys to other partitions: switch every producer \
         of it at once (docs/partitioning.md)"
    );
    match partitioners::find(&actual) {
        Some(p) if p.hash == wanted.hash => report.push(
            "FD023",
            Severity::Warning,
            "producer",
            format!(
                "partitioner={actual} ({from}), expected_partitioner={expected}: both hash keys \
                 with {}, but keyless messages go to {} instead of {}",
                p.hash, p.keyless, wanted.keyless
            ),
            WHY_PARTITIONER_KEYLESS,
            fix,
        ),
        found => report.push(
            "FD023",
            Severity::Error,
            "producer",
            format!(
                "partitioner={actual} ({from}) hashes keys with {}, expected_partitioner={expected} \
                 with {}",
                found.map_or("an unknown hash", |p| p.hash),
                wanted.hash
            ),
            WHY_PARTITIONER,
            fix,
        ),
    }
}
