//! Static checks of the framework settings: validation, consumer persistence, reload mode,
//! the declared downtime and the timing between batches, polls and sessions.

use crate::config::Problem;
use crate::doctor::{
    AppView, DoctorOptions, Report, Severity, WHY_DOWNTIME, WHY_INVALID, WHY_PERSISTENCE,
    WHY_RELOAD, WHY_SESSION, WHY_SESSION_BOUNDS, WHY_SHUTDOWN_WAIT, sg_subject,
};
use crate::kafka::{is_set, millis};

/// FD000: the configuration does not validate.
pub(crate) fn check_configuration(app: &dyn AppView, report: &mut Report) {
    if let Err(e) = app.validate() {
        for p in e.problems.iter().filter(|p| !owned_by_a_check(p)) {
            report.push(
                "FD000",
                Severity::Error,
                &p.setting,
                format!("{:?}: {}", p.value, p.problem),
                WHY_INVALID,
                &p.fix,
            );
        }
    }
}

/// Validation problems that a dedicated check reports with more context.
fn owned_by_a_check(p: &Problem) -> bool {
    p.problem == crate::declaratives::NEEDS_DECLARATION
        || ((p.setting == "kafka.compression.codec" || p.setting == "kafka.compression.type")
            && p.problem.contains("builtin.features"))
        || p.setting == "max_wait_time"
        || (p.setting.starts_with("routes.") && p.setting.ends_with(".max_wait_time"))
}

/// FD001: consumer persistence off, reload mode on.
pub(crate) fn check_persistence(app: &dyn AppView, opts: &DoctorOptions, report: &mut Report) {
    let config = app.config();
    if !config.is_consumer_persistent() {
        report.push(
            "FD001",
            Severity::Error,
            "consumer_persistence",
            format!("false (set in {})", config.source("consumer_persistence")),
            WHY_PERSISTENCE,
            "remove `c.consumer_persistence(false)`, or apply it only outside production \
             (`if !c.env().is_production()`); the production profile turns it on",
        );
    } else {
        for sg in app.subscription_groups() {
            for t in sg.topics.iter().filter(|t| !t.consumer_persistence) {
                report.push(
                    "FD001",
                    Severity::Error,
                    format!("topic {} (consumer group {})", t.name, t.consumer_group),
                    "consumer_persistence false (set on the route)",
                    WHY_PERSISTENCE,
                    format!(
                        "remove `.consumer_persistence(false)` from the route of `{}`, or apply \
                         it only outside production",
                        t.name
                    ),
                );
            }
        }
    }
    if opts.reload {
        report.push(
            "FD001",
            if opts.reload_allowed {
                Severity::Warning
            } else {
                Severity::Error
            },
            "server --reload",
            if opts.reload_allowed {
                "reload mode on, allowed by --allow-reload-in-production"
            } else {
                "reload mode on"
            },
            WHY_RELOAD,
            "run `server` without --reload in production; deploy new binaries through the \
             process manager",
        );
    }
}

/// FD011 (static): the longest expected downtime is declared.
pub(crate) fn check_downtime_declared(app: &dyn AppView, report: &mut Report) {
    if app.config().max_expected_downtime.is_none() {
        report.push(
            "FD011",
            Severity::Info,
            "max_expected_downtime",
            "not declared",
            WHY_DOWNTIME,
            "declare it, e.g. `c.max_expected_downtime(Duration::from_secs(3 * 24 * 3600))`, \
             and run `doctor --live` to compare it with offsets.retention.minutes",
        );
    }
}

/// FD013: shutdown and poll timing, in every environment.
pub(crate) fn check_timing(app: &dyn AppView, report: &mut Report) {
    let config = app.config();
    let shutdown = config.shutdown_timeout;
    let longest_wait = app
        .subscription_groups()
        .iter()
        .flat_map(|sg| sg.topics.iter())
        .map(|t| (t.max_wait_time, t.name.to_string()))
        .chain(std::iter::once((
            config.max_wait_time,
            "(app default)".to_string(),
        )))
        .max_by_key(|(w, _)| *w);
    if let Some((wait, topic)) = longest_wait
        && wait >= shutdown
    {
        report.push(
            "FD013",
            Severity::Error,
            "shutdown_timeout",
            format!(
                "{shutdown:?}, not longer than the longest max_wait_time {wait:?} (topic {topic})"
            ),
            WHY_SHUTDOWN_WAIT,
            "raise `shutdown_timeout` well above every max_wait_time plus a batch's processing \
             time, or lower the max_wait_time",
        );
    }
    // Under KIP-848 (`group.protocol=consumer`) the broker sets the session and heartbeat
    // intervals; librdkafka refuses the client properties (a boot error says so).
    let classic = app
        .subscription_groups()
        .iter()
        .filter(|sg| !crate::kafka::uses_consumer_protocol(&sg.kafka));
    for sg in classic {
        check_group_timing(sg, report);
    }
}

/// FD013 for one classic-protocol consumer: its session against its poll interval, its
/// heartbeats against its session, its session within the brokers' default bounds.
fn check_group_timing(sg: &crate::routing::SubscriptionGroup, report: &mut Report) {
    let poll = millis(&sg.kafka, "max.poll.interval.ms").unwrap_or(300_000);
    let session = millis(&sg.kafka, "session.timeout.ms").unwrap_or(45_000);
    let heartbeat = millis(&sg.kafka, "heartbeat.interval.ms").unwrap_or(3_000);
    if session > poll {
        report.push(
            "FD013",
            Severity::Error,
            sg_subject(sg),
            format!("session.timeout.ms={session} exceeds max.poll.interval.ms={poll}"),
            WHY_SESSION,
            "keep session.timeout.ms at most max.poll.interval.ms",
        );
    }
    if heartbeat >= session {
        report.push(
            "FD013",
            Severity::Error,
            sg_subject(sg),
            format!("heartbeat.interval.ms={heartbeat} is not below session.timeout.ms={session}"),
            WHY_SESSION,
            "set heartbeat.interval.ms to at most a third of session.timeout.ms",
        );
    } else if heartbeat.saturating_mul(3) > session {
        report.push(
            "FD013",
            Severity::Warning,
            sg_subject(sg),
            format!(
                "heartbeat.interval.ms={heartbeat} is more than a third of \
                 session.timeout.ms={session}"
            ),
            WHY_SESSION,
            "set heartbeat.interval.ms to at most a third of session.timeout.ms",
        );
    }
    if !(6_000..=1_800_000).contains(&session) && is_set(&sg.kafka, "session.timeout.ms") {
        report.push(
            "FD013",
            Severity::Warning,
            sg_subject(sg),
            format!("session.timeout.ms={session} is outside the broker defaults' 6000..1800000"),
            WHY_SESSION_BOUNDS,
            "keep session.timeout.ms between 6000 and 1800000, or make sure the brokers' \
             group.min/max.session.timeout.ms allow it",
        );
    }
}

/// FD014: a topic splits its batches into more virtual partitions than `concurrency` lets run
/// at once, so the extra groups wait for a worker and the batch for its slowest group.
pub(crate) fn check_virtual_partitions(app: &dyn AppView, report: &mut Report) {
    let concurrency = app.config().concurrency;
    for sg in app.subscription_groups() {
        for t in &sg.topics {
            let Some(vp) = &t.virtual_partitions else {
                continue;
            };
            if vp.max_partitions() > concurrency {
                report.push(
                    "FD014",
                    Severity::Warning,
                    format!("topic {} (consumer group {})", t.name, t.consumer_group),
                    format!(
                        "virtual_partitions.max_partitions {} above concurrency {concurrency}",
                        vp.max_partitions()
                    ),
                    "at most `concurrency` groups of a batch run at once (across all partitions); \
                     the other groups wait for a worker, and the partition waits for its slowest group",
                    format!(
                        "raise `c.concurrency({})` or lower `VirtualPartitions::new({concurrency})` \
                         on the route of `{}`",
                        vp.max_partitions(),
                        t.name
                    ),
                );
            }
        }
    }
}

/// FD025: the web UI bound to a non-loopback address without `web_auth` (nor
/// `FERRAFKA_WEB_AUTH`): `web` refuses to start, and a router mounted elsewhere would serve the
/// fleet's messages to anyone who reaches it.
pub(crate) fn check_web_exposure(app: &dyn AppView, report: &mut Report) {
    let config = app.config();
    let bind = config.web_bind;
    let auth_set =
        config.web_auth.is_set() || std::env::var_os(crate::web::ui::WEB_AUTH_VAR).is_some();
    if !bind.ip().is_loopback() && !auth_set {
        report.push(
            "FD025",
            Severity::Warning,
            "web_bind",
            format!("{bind} without web_auth"),
            crate::doctor::WHY_WEB_EXPOSED,
            "bind the UI to a loopback address (the default, 127.0.0.1:3000), or set \
             `web_auth` (`c.web_auth(WebAuth::token(..))`, or FERRAFKA_WEB_AUTH=token:<T>)",
        );
    }
}

/// FD026: an app that reports to a web UI that writes (republish, commands: `web_read_only`
/// off) without `web_auth`:
/// on loopback any local user or process can stop the fleet's processes or republish dead
/// letters, and the audit can only say `anonymous`.
pub(crate) fn check_web_writes(app: &dyn AppView, report: &mut Report) {
    let config = app.config();
    let auth_set =
        config.web_auth.is_set() || std::env::var_os(crate::web::ui::WEB_AUTH_VAR).is_some();
    if config.reporting && !config.web_read_only && !auth_set {
        report.push(
            "FD026",
            Severity::Warning,
            "web_read_only",
            "false without web_auth".to_string(),
            crate::doctor::WHY_WEB_WRITES,
            "set `web_auth` (`c.web_auth(WebAuth::basic(..))`, or \
             FERRAFKA_WEB_AUTH=basic:<user>:<password>) so writes are authenticated and audited \
             by name, or `c.web_read_only(true)`",
        );
    }
}
