//! Static checks of the topics: declarations, the lock file, auto-creation, partition counts
//! and durability.

use std::collections::{BTreeMap, BTreeSet};

use crate::declaratives::lock;
use crate::doctor::{
    AppView, DoctorOptions, Report, Severity, WHY_ACKS, WHY_AUTO_CREATE, WHY_IDEMPOTENCE, WHY_LOCK,
    WHY_MIN_ISR, WHY_NO_LOCK, WHY_RF, WHY_SINGLE_PARTITION, WHY_UNDECLARED, sg_subject, truthy,
};
use crate::kafka::{effective, is_set};

/// Routed and dead-letter topic names with where they are routed.
pub(crate) fn routed_topics(app: &dyn AppView) -> BTreeMap<String, String> {
    let mut routed = BTreeMap::new();
    for sg in app.subscription_groups() {
        for t in &sg.topics {
            // A pattern names no single topic (FD024 checks it against the cluster).
            if !t.is_pattern() {
                routed
                    .entry(t.name.to_string())
                    .or_insert_with(|| format!("routed in consumer group {}", t.consumer_group));
            }
            if let Some(dlq) = &t.dead_letter_queue {
                routed
                    .entry(dlq.topic.clone())
                    .or_insert_with(|| format!("dead-letter topic of {}", t.name));
            }
        }
    }
    routed
}

/// FD002 (part one): routed or dead-letter topics without declarations.
pub(crate) fn check_declarations(app: &dyn AppView, report: &mut Report) {
    let declared: BTreeSet<&str> = app
        .declared_topics()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    // Turning strict mode off is an explicit choice: still reported, as a warning.
    let strict = app.config().strict_declarative_topics_enabled();
    for (name, role) in routed_topics(app) {
        if !declared.contains(name.as_str()) {
            report.push(
                "FD002",
                if strict {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                format!("topic {name}"),
                if strict {
                    format!("{role}, but not declared")
                } else {
                    format!("{role}, but not declared (strict_declarative_topics is off)")
                },
                WHY_UNDECLARED,
                format!(
                    "declare it: `.config(|t| t.partitions(n).replication_factor(3))` on the \
                     route, or `d.topic(\"{name}\", |t| …)` in `declarations`; then run \
                     `topics lock`"
                ),
            );
        }
    }
}

/// FD002 (part two): declarations drifting from the lock file.
pub(crate) fn check_lock_file(app: &dyn AppView, opts: &DoctorOptions, report: &mut Report) {
    let production = app.config().env().is_production();
    let path = opts.lock_file.display();
    let program = &opts.program;
    match std::fs::read_to_string(&opts.lock_file) {
        Ok(text) => match lock::parse(&text) {
            Ok(locked) => {
                let lines = lock::diff(&locked, app.declared_topics());
                if !lines.is_empty() {
                    report.push(
                        "FD002",
                        if production {
                            Severity::Error
                        } else {
                            Severity::Warning
                        },
                        format!("lock file {path}"),
                        format!("declarations drifted: {}", lines.join("; ")),
                        WHY_LOCK,
                        format!(
                            "review the change, then run `{program} topics lock` (or undo the \
                             declaration change)"
                        ),
                    );
                }
            }
            Err(reason) => report.push(
                "FD002",
                Severity::Error,
                format!("lock file {path}"),
                format!("not a valid lock file: {reason}"),
                WHY_LOCK,
                format!("regenerate it with `{program} topics lock` and review the diff"),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if production && !app.declared_topics().is_empty() {
                report.push(
                    "FD002",
                    Severity::Warning,
                    format!("lock file {path}"),
                    "missing",
                    WHY_NO_LOCK,
                    format!(
                        "run `{program} topics lock`, commit the file, and run `doctor` from \
                         the directory that holds it (or pass --lock-file)"
                    ),
                );
            }
        }
        Err(e) => report.push(
            "FD002",
            Severity::Error,
            format!("lock file {path}"),
            format!("cannot be read: {e}"),
            WHY_LOCK,
            "fix the file's permissions or pass the right --lock-file",
        ),
    }
}

/// FD003: topic auto-creation on, for consumers and the producer.
pub(crate) fn check_auto_create(app: &dyn AppView, report: &mut Report) {
    for sg in app.subscription_groups() {
        let value = effective(&sg.kafka, "allow.auto.create.topics", false).unwrap_or_default();
        if truthy(&value) {
            let source = sg
                .kafka_sources
                .get("allow.auto.create.topics")
                .map(ToString::to_string)
                .unwrap_or_else(|| "librdkafka default".into());
            report.push(
                "FD003",
                Severity::Error,
                sg_subject(sg),
                format!("allow.auto.create.topics={value} (set in {source})"),
                WHY_AUTO_CREATE,
                "remove the `allow.auto.create.topics` override for production (the production \
                 profile sets false), and create topics with `topics migrate`",
            );
        }
    }
    let producer = app.producer_kafka_sources();
    let plain: BTreeMap<String, String> = producer
        .iter()
        .map(|(k, (v, _))| (k.clone(), v.clone()))
        .collect();
    let value = effective(&plain, "allow.auto.create.topics", true).unwrap_or_default();
    if truthy(&value) {
        let source = producer
            .get("allow.auto.create.topics")
            .map(|(_, s)| s.to_string())
            .unwrap_or_else(|| "librdkafka's producer default".into());
        report.push(
            "FD003",
            Severity::Error,
            "producer",
            format!("allow.auto.create.topics={value} ({source})"),
            WHY_AUTO_CREATE,
            "set `c.producer_kafka(\"allow.auto.create.topics\", \"false\")` (the production \
             profile does) and declare every topic the app produces to",
        );
    }
}

/// FD004 (static): declared topics with one partition.
pub(crate) fn check_single_partition(app: &dyn AppView, report: &mut Report) {
    for t in app.declared_topics().iter().filter(|t| t.partitions == 1) {
        report.push(
            "FD004",
            Severity::Warning,
            format!("topic {}", t.name),
            "declared with 1 partition",
            WHY_SINGLE_PARTITION,
            format!(
                "declare more partitions (`.partitions(n)`) for `{}` and run `topics \
                 repartition`; keep 1 only if strict total order matters more than throughput",
                t.name
            ),
        );
    }
}

/// What FD012 says about one topic's replication factor and `min.insync.replicas`.
pub(crate) fn judge_durability(
    topic: &str,
    replication_factor: i32,
    min_isr: Option<&str>,
    origin: &str,
    report: &mut Report,
) {
    if replication_factor < 3 {
        report.push(
            "FD012",
            Severity::Warning,
            format!("topic {topic}"),
            format!("replication factor {replication_factor} ({origin})"),
            WHY_RF,
            "use replication factor 3 (declare `.replication_factor(3)`; an existing topic needs \
             a partition reassignment to change it)",
        );
    }
    let Some(min_isr) = min_isr else {
        return;
    };
    match min_isr.trim().parse::<i32>() {
        Ok(1) => report.push(
            "FD012",
            Severity::Warning,
            format!("topic {topic}"),
            format!("min.insync.replicas=1 ({origin})"),
            WHY_MIN_ISR,
            "set min.insync.replicas to 2 with replication factor 3",
        ),
        Ok(n) if n >= replication_factor => report.push(
            "FD012",
            Severity::Error,
            format!("topic {topic}"),
            format!(
                "min.insync.replicas={n} is not below the replication factor \
                 {replication_factor} ({origin})"
            ),
            WHY_MIN_ISR,
            "set min.insync.replicas to the replication factor minus one (2 with 3 replicas)",
        ),
        Ok(_) => {}
        Err(_) => report.push(
            "FD012",
            Severity::Error,
            format!("topic {topic}"),
            format!("min.insync.replicas={min_isr:?} is not a number ({origin})"),
            WHY_MIN_ISR,
            "set min.insync.replicas to a number, 2 with 3 replicas",
        ),
    }
}

/// FD012 (static): declared durability and the producer's acks and idempotence.
pub(crate) fn check_durability(app: &dyn AppView, report: &mut Report) {
    for t in app.declared_topics() {
        judge_durability(
            &t.name,
            t.replication_factor,
            t.settings.get("min.insync.replicas").map(String::as_str),
            "declared",
            report,
        );
    }
    let producer = app.producer_kafka();
    let acks = effective(&producer, "request.required.acks", true).unwrap_or_default();
    if !matches!(acks.trim(), "all" | "-1") {
        report.push(
            "FD012",
            Severity::Error,
            "producer",
            format!("acks={acks}"),
            WHY_ACKS,
            "remove the acks override (librdkafka's default is all) or set `acks=all`",
        );
    }
    let idempotence = effective(&producer, "enable.idempotence", true).unwrap_or_default();
    if !truthy(&idempotence) {
        report.push(
            "FD012",
            Severity::Warning,
            "producer",
            format!(
                "enable.idempotence={idempotence}{}",
                if is_set(&producer, "enable.idempotence") {
                    ""
                } else {
                    " (librdkafka default)"
                }
            ),
            WHY_IDEMPOTENCE,
            "set `c.producer_kafka(\"enable.idempotence\", \"true\")`",
        );
    }
}
