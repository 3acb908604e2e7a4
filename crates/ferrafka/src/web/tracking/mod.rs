//! What every server process with `reporting` on publishes for `web`: a
//! [`ProcessReport`](super::report::ProcessReport) every `report_interval` to `reports_topic`,
//! each error as an [`ErrorReport`](super::report::ErrorReport) to `errors_topic`, and at a
//! clean stop a final report (state `stopped`) followed by a tombstone. See
//! `docs/web.md`.
//!
//! The reports are built from the instrumentation events only (a subscriber, the sampler),
//! never from log text; a reporter task publishes them. Reporting failures never stop
//! consumption: they are logged and emitted as an
//! [`Event::Error`](crate::instrumentation::Event::Error) of kind
//! [`ErrorKind::Reporting`](crate::instrumentation::ErrorKind::Reporting).

mod build;
mod reporter;
mod sampler;

use std::time::Duration;

pub(crate) use build::Identity;
pub(crate) use reporter::Reporter;
pub(crate) use sampler::Sampler;

use crate::config::{Config, Problem};
use crate::declaratives::{Declarations, TopicConfig};
use crate::instrumentation::AppState;
use crate::messages::now_ms;
use crate::web::report::ProcessReport;

/// Shortest `report_interval`: reports more often cost more than they tell.
pub(crate) const MIN_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Retention of the errors topic: three days, so a weekend's errors are still there.
pub(crate) const ERRORS_RETENTION: Duration = Duration::from_secs(3 * 24 * 60 * 60);

/// Retention of the audit topic: 90 days, long enough to answer "who did this last month".
pub(crate) const AUDIT_RETENTION: Duration = Duration::from_secs(90 * 24 * 60 * 60);

impl Sampler {
    /// The report now; `state` overrides the app state (the final report says `stopped`).
    /// The rates of the next report count from this one.
    pub(crate) fn report(&self, identity: &Identity, state: Option<AppState>) -> ProcessReport {
        let stalled = self.stalled();
        let now = self.now();
        let mut kept = self.state();
        let mut report = build::build(&kept, &stalled, identity, now, now_ms());
        if let Some(state) = state {
            report.state = build::state_name(Some(state)).to_string();
        }
        kept.previous = Some((kept.totals.clone(), now));
        report
    }
}

/// The identity of a server starting now with `config`.
pub(crate) fn identity(config: &Config) -> Identity {
    let host = host_name();
    let pid = std::process::id();
    Identity {
        process_id: format!("{host}:{pid}:{:08x}", uuid::Uuid::new_v4().as_u128() as u32),
        host,
        pid,
        environment: config.env().name().to_string(),
        client_id: config.client_id.clone(),
        started_at_ms: now_ms(),
        stale_after_ms: build::stale_after(config.report_interval),
    }
}

/// The host's name: the kernel's, then `$HOSTNAME`, then `unknown`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// An event's error chain (`": "`-separated, as ferrafka prints errors) split into its
/// links, each with the secrets that can be recognised hidden.
pub(crate) fn error_chain_links(error: &str) -> Vec<String> {
    crate::secrets::redact_text_alone(error)
        .split(": ")
        .filter(|link| !link.is_empty())
        .map(str::to_string)
        .collect()
}

/// Checks the reporting settings; every problem is collected.
pub(crate) fn check_settings(config: &Config, problems: &mut Vec<Problem>) {
    let interval = config.report_interval;
    if interval < MIN_REPORT_INTERVAL || interval > crate::config::MAX_DURATION {
        problems.push(Problem::new(
            "report_interval",
            &format!("{interval:?}"),
            "needs to be between 1 s and 24 hours: reports more often cost more than they tell",
            "set `c.report_interval(Duration::from_secs(5))`",
        ));
    }
    crate::declaratives::check_topic_name(&config.reports_topic, "reports_topic", problems);
    crate::declaratives::check_topic_name(&config.errors_topic, "errors_topic", problems);
    crate::declaratives::check_topic_name(&config.commands_topic, "commands_topic", problems);
    if config.commands_topic == config.reports_topic || config.commands_topic == config.errors_topic
    {
        problems.push(Problem::new(
            "commands_topic",
            &config.commands_topic,
            "needs to differ from reports_topic and errors_topic: commands have records of \
             their own",
            "set `c.commands_topic(\"ferrafka_commands\".into())`",
        ));
    }
    crate::declaratives::check_topic_name(&config.audit_topic, "audit_topic", problems);
    let others = [
        &config.reports_topic,
        &config.errors_topic,
        &config.commands_topic,
    ];
    if others.contains(&&config.audit_topic) {
        problems.push(Problem::new(
            "audit_topic",
            &config.audit_topic,
            "needs to differ from reports_topic, errors_topic and commands_topic: audit records \
             are kept 90 days and read on their own",
            "set `c.audit_topic(\"ferrafka_audit\".into())`",
        ));
    }
    if config.reports_topic == config.errors_topic {
        problems.push(Problem::new(
            "errors_topic",
            &config.errors_topic,
            "needs to differ from reports_topic: reports are compacted, errors are not",
            "set `c.errors_topic(\"ferrafka_errors\".into())`",
        ));
    }
}

/// Declares the reports topic (compacted, small segments so compaction runs), the errors
/// topic and the commands topic (deleted after [`ERRORS_RETENTION`]) and the audit topic
/// (after [`AUDIT_RETENTION`]) when `reporting` is on, unless the app declares them itself. Partitions and replication come from the declaration defaults.
pub(crate) fn declare_topics(config: &Config, declarations: &mut Declarations) {
    if !config.reporting {
        return;
    }
    if !declarations.declares(&config.reports_topic) {
        declarations.topic(config.reports_topic.clone(), reports_topic_config);
    }
    if !declarations.declares(&config.errors_topic) {
        declarations.topic(config.errors_topic.clone(), errors_topic_config);
    }
    // Commands and acknowledgements are kept as long as errors.
    if !declarations.declares(&config.commands_topic) {
        declarations.topic(config.commands_topic.clone(), errors_topic_config);
    }
    if !declarations.declares(&config.audit_topic) {
        declarations.topic(config.audit_topic.clone(), audit_topic_config);
    }
}

/// The reports topic's settings: compacted, with hourly 16 MiB segments so the cleaner
/// reaches old reports soon, and tombstones kept a day so readers see a stop.
fn reports_topic_config(t: TopicConfig) -> TopicConfig {
    t.setting("cleanup.policy", "compact")
        .setting("segment.ms", "3600000")
        .setting("segment.bytes", "16777216")
        .setting("min.cleanable.dirty.ratio", "0.1")
        .setting("delete.retention.ms", "86400000")
}

/// The audit topic's settings: deleted after [`AUDIT_RETENTION`].
fn audit_topic_config(t: TopicConfig) -> TopicConfig {
    t.setting("cleanup.policy", "delete")
        .setting("retention.ms", AUDIT_RETENTION.as_millis().to_string())
}

fn errors_topic_config(t: TopicConfig) -> TopicConfig {
    t.setting("cleanup.policy", "delete")
        .setting("retention.ms", ERRORS_RETENTION.as_millis().to_string())
}

#[cfg(test)]
mod tests;
