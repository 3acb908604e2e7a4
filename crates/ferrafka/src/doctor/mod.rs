//! `doctor`: the development-versus-production checklist as code.
//!
//! [`run`] examines an [`App`](crate::App) (through [`AppView`]) as built for its environment
//! (`FERRAFKA_ENV`) and, with [`DoctorOptions::live`], the cluster it will run against, and returns a [`Report`] of
//! [`Finding`]s. Each finding has a stable id (`FD001`…, listed in `docs/doctor.md`), a
//! severity, the subject it is about, what was found, why it matters and how to fix it.
//!
//! Most checks only apply to production; for another environment they are listed in
//! [`Report::skipped`] instead of silently passing. A fact the checks cannot establish (the
//! broker does not report it, the kernel cannot be asked) is reported as an `info` finding
//! marked [`Finding::unknown`], never as a pass.
//!
//! The server runs the static checks (everything but the live ones) at boot in production;
//! errors stop it unless [`Config::doctor_errors_block_boot`](crate::Config::doctor_errors_block_boot)
//! is off or `server --allow-doctor-errors` is given.

mod app_view;
pub mod clock;
pub mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::Problem;
use crate::declaratives::lock;
use crate::kafka::{effective, is_set, millis};
use crate::routing::SubscriptionGroup;

pub use app_view::AppView;
pub use clock::ClockStatus;
pub use live::{AdminLive, LiveCluster};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Will hurt: `doctor` exits non-zero and the server refuses to boot in production.
    Error,
    /// Likely to hurt: `doctor --strict` exits non-zero.
    Warning,
    /// Advice, or a fact that could not be established.
    Info,
}

impl Severity {
    fn label(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// One thing `doctor` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The check's stable id, e.g. `FD003`.
    pub id: &'static str,
    /// How bad it is.
    pub severity: Severity,
    /// What it is about: a setting, a subscription group, a topic, the producer, the cluster.
    pub subject: String,
    /// What was found.
    pub found: String,
    /// Why it matters, in one sentence.
    pub why: String,
    /// How to fix it.
    pub fix: String,
    /// True when the fact could not be established (the finding says why), rather than found
    /// wrong.
    pub unknown: bool,
}

/// The result of [`run`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The environment the app was evaluated for.
    pub env: String,
    /// Whether the live checks ran.
    pub live: bool,
    /// What was found, errors first, then warnings, then infos; in check order within each.
    pub findings: Vec<Finding>,
    /// Checks that did not apply, with the reason (e.g. production-only checks in
    /// development).
    pub skipped: Vec<String>,
}

impl Report {
    /// The findings of one severity.
    pub fn with_severity(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == severity)
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.with_severity(Severity::Error).next().is_some()
    }

    /// Whether any finding is a warning.
    pub fn has_warnings(&self) -> bool {
        self.with_severity(Severity::Warning).next().is_some()
    }

    /// The findings with this id.
    pub fn by_id<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a Finding> {
        self.findings.iter().filter(move |f| f.id == id)
    }

    /// The process exit code for a deploy pipeline: 1 on errors, and with `strict` also on
    /// warnings; 0 otherwise.
    pub fn exit_code(&self, strict: bool) -> u8 {
        if self.has_errors() || (strict && self.has_warnings()) {
            1
        } else {
            0
        }
    }

    /// The report as pretty-printed JSON (for CI tools).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report always serializes")
    }

    /// The report as readable text, grouped by severity.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let count = |s| self.with_severity(s).count();
        let _ = writeln!(
            out,
            "doctor: environment {}{}: {} error(s), {} warning(s), {} info",
            self.env,
            if self.live { ", live cluster" } else { "" },
            count(Severity::Error),
            count(Severity::Warning),
            count(Severity::Info)
        );
        for severity in [Severity::Error, Severity::Warning, Severity::Info] {
            let mut findings = self.with_severity(severity).peekable();
            if findings.peek().is_none() {
                continue;
            }
            let _ = writeln!(out, "\n{}s:", severity.label());
            for f in findings {
                let _ = writeln!(
                    out,
                    "  {} {}{}\n    found: {}\n    why:   {}\n    fix:   {}",
                    f.id,
                    f.subject,
                    if f.unknown { " (unknown)" } else { "" },
                    f.found,
                    f.why,
                    f.fix
                );
            }
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "\nnot checked:");
            for s in &self.skipped {
                let _ = writeln!(out, "  - {s}");
            }
        }
        if self.findings.is_empty() {
            let _ = writeln!(out, "\nno findings");
        }
        out
    }

    fn push(
        &mut self,
        id: &'static str,
        severity: Severity,
        subject: impl Into<String>,
        found: impl Into<String>,
        why: &str,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            id,
            severity,
            subject: subject.into(),
            found: found.into(),
            why: why.to_string(),
            fix: fix.into(),
            unknown: false,
        });
    }

    fn push_unknown(
        &mut self,
        id: &'static str,
        subject: impl Into<String>,
        found: impl Into<String>,
        why: &str,
        fix: impl Into<String>,
    ) {
        self.findings.push(Finding {
            id,
            severity: Severity::Info,
            subject: subject.into(),
            found: found.into(),
            why: why.to_string(),
            fix: fix.into(),
            unknown: true,
        });
    }

    fn finish(mut self) -> Self {
        // Stable: check order is kept within a severity.
        self.findings.sort_by_key(|f| f.severity);
        self
    }
}

/// How the host clock's synchronisation is learnt (check FD010).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostClock {
    /// Ask the kernel (`adjtimex`): what `doctor` and the server do.
    Kernel,
    /// Use this answer instead (for tests).
    Assume(ClockStatus),
}

/// What [`run`] checks and how.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Also check the cluster (the app's `bootstrap.servers`).
    pub live: bool,
    /// The server will run with `--reload` (check FD001).
    pub reload: bool,
    /// `--reload` in production was allowed explicitly (`--allow-reload-in-production`): the
    /// reload finding is a warning instead of an error.
    pub reload_allowed: bool,
    /// The topics lock file (check FD002); `topics.lock` by default.
    pub lock_file: PathBuf,
    /// How the host clock is checked (FD010).
    pub clock: HostClock,
    /// How far in this host's future a message timestamp may be before it counts as drift
    /// (FD010, live); 5 s by default.
    pub clock_tolerance: Duration,
    /// How long each cluster request may take (live checks); 10 s by default.
    pub timeout: Duration,
    /// The name the fixes use for the app's binary, e.g. `myapp` in `myapp topics migrate`.
    pub program: String,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            live: false,
            reload: false,
            reload_allowed: false,
            lock_file: PathBuf::from(lock::DEFAULT_PATH),
            clock: HostClock::Kernel,
            clock_tolerance: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            program: program_name(),
        }
    }
}

/// The running binary's file name, for the commands the fixes print.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "<app>".to_string())
}

/// Runs every check that applies and returns the report. With [`DoctorOptions::live`] it
/// talks to the cluster and blocks; call it from synchronous code (or `spawn_blocking`).
pub fn run(app: &dyn AppView, opts: &DoctorOptions) -> Report {
    let mut report = static_report(app, opts);
    if opts.live {
        live::run(app, opts, &mut report);
    } else {
        report.skipped.push(
            "live checks (FD004, FD006, FD008-FD012 against the cluster): run with --live".into(),
        );
    }
    report.finish()
}

/// The static checks only: what the server runs at boot.
pub fn run_static(app: &dyn AppView, opts: &DoctorOptions) -> Report {
    static_report(app, opts).finish()
}

fn static_report(app: &dyn AppView, opts: &DoctorOptions) -> Report {
    let config = app.config();
    let production = config.env().is_production();
    let mut report = Report {
        env: config.env().to_string(),
        live: opts.live,
        findings: Vec::new(),
        skipped: Vec::new(),
    };
    check_configuration(app, &mut report);
    if production {
        check_persistence(app, opts, &mut report);
        check_declarations(app, &mut report);
    }
    check_lock_file(app, opts, &mut report);
    if production {
        check_auto_create(app, &mut report);
        check_single_partition(app, &mut report);
        check_rebalancing(app, &mut report);
        check_metadata_refresh(app, &mut report);
        check_compression(app, &crate::librdkafka::builtin_features(), &mut report);
        check_host_clock(&opts.clock, &mut report);
        check_downtime_declared(app, &mut report);
        check_durability(app, &mut report);
    } else {
        report.skipped.push(format!(
            "production-only checks (FD001-FD012): the app runs as {}; use --env production",
            config.env()
        ));
    }
    check_timing(app, &mut report);
    report
}

// ---------------------------------------------------------------------------------------------
// Reasons, in one sentence each (docs/doctor.md explains them at length).

const WHY_INVALID: &str = "the server refuses to start with an invalid configuration";
const WHY_PERSISTENCE: &str = "without persistence every batch builds a new consumer instance, which costs time per batch and loses whatever the consumer keeps between batches";
const WHY_RELOAD: &str = "reload mode restarts the process whenever its binary changes on disk, so a half-copied deploy or a stray file restarts consumers and rebalances the group behind the process manager's back";
const WHY_UNDECLARED: &str = "a topic without a declaration gets whatever the broker defaults to (often one partition) instead of the partitions and settings it needs, and nothing checks it before deploy";
const WHY_LOCK: &str = "the lock file is the reviewed list of topics; declarations that drifted from it carry unreviewed changes (or typos) into production";
const WHY_NO_LOCK: &str = "without a lock file, a changed or mistyped declaration reaches production without anyone reviewing the topic list";
const WHY_AUTO_CREATE: &str = "with auto-creation a mistyped topic name silently creates a topic with broker defaults (one partition, default retention) instead of failing";
const WHY_SINGLE_PARTITION: &str = "one partition means one consumer at a time for the whole topic, so the group cannot scale out and one slow message stalls everything";
const WHY_ASSIGNOR: &str = "a rolling deploy of N processes causes N rebalances, and eager assignors stop the whole group on each one while cooperative-sticky only moves the partitions that change owner";
const WHY_STATIC_MEMBERSHIP: &str = "without static membership every restart in a rolling deploy causes two rebalances (leave and join); a static member that returns within session.timeout.ms keeps its partitions";
const WHY_STATIC_SESSION: &str = "a static member keeps its partitions only while it is gone less than session.timeout.ms, and a restart can take up to shutdown_timeout plus boot time";
const WHY_MISSING_TOPIC: &str = "a consumer subscribed to a missing topic only notices it after a metadata refresh, which can take minutes, and the boot check refuses to start in production";
const WHY_CLUSTER: &str = "the live checks need the cluster; nothing about it could be verified";
const WHY_REFRESH: &str = "every client re-reads the metadata of its topics at this interval, a load on the brokers for nothing once topics are created before consumers start";
const WHY_NO_CODEC: &str = "without producer compression messages cross the network uncompressed and only the broker compresses them, so no bandwidth is saved";
const WHY_CODEC_MISMATCH: &str = "when the topic's codec differs from the producer's the broker decompresses and recompresses every batch, costing broker CPU and the network savings of matching codecs";
const WHY_CODEC_MISSING: &str = "this librdkafka build cannot use the codec: a producer using it fails to start and a consumer cannot decompress messages stored with it";
const WHY_ASSIGNOR_CHANGE: &str = "members with different assignment strategies cannot share a group, so a rolling update fails with \"Inconsistent group protocol\" until every old member is gone";
const WHY_CLOCK: &str = "an undisciplined clock drifts, so message timestamps, time-based retention and anything computed from \"now\" go wrong (\"messages from the future\")";
const WHY_FUTURE: &str = "messages stamped later than this host's clock mean the producers', brokers' or this host's clocks drift, which breaks time-based logic and lag metrics";
const WHY_DOWNTIME: &str = "without a declared longest downtime nobody checks that the broker keeps committed offsets long enough to survive it";
const WHY_RETENTION: &str = "a group stopped longer than offsets.retention.minutes loses its committed offsets and restarts from initial_offset, reprocessing or skipping messages";
const WHY_RETENTION_UNKNOWN: &str = "offsets outlive a stopped group only as long as offsets.retention.minutes, so it must exceed the longest expected downtime";
const WHY_RF: &str = "with fewer than three replicas, losing one broker either loses data or leaves no room for a second failure";
const WHY_MIN_ISR: &str = "min.insync.replicas decides how many copies a write with acks=all waits for: 1 accepts writes a single broker failure can lose, and a value not below the replication factor stops writes whenever one replica is down";
const WHY_ACKS: &str = "a producer that does not wait for all in-sync replicas loses acknowledged messages when the leader fails";
const WHY_IDEMPOTENCE: &str =
    "without idempotence a retried send can write a message twice or out of order";
const WHY_SHUTDOWN_WAIT: &str = "a batch may wait max_wait_time to fill, so a shorter shutdown_timeout abandons batches at every stop and they run again after the restart";
const WHY_SESSION: &str = "librdkafka refuses a consumer whose session.timeout.ms exceeds max.poll.interval.ms, and heartbeats must come several times per session or the broker drops live members";
const WHY_SESSION_BOUNDS: &str = "brokers reject session timeouts outside group.min.session.timeout.ms (6 s) to group.max.session.timeout.ms (30 min) by default, so the consumer cannot join";

fn sg_subject(sg: &SubscriptionGroup) -> String {
    format!("subscription group {}/{}", sg.consumer_group, sg.name)
}

fn truthy(value: &str) -> bool {
    matches!(value.trim(), "true" | "1" | "yes" | "on")
}

// ---------------------------------------------------------------------------------------------
// The static checks.

/// Validation problems that a dedicated check reports with more context.
fn owned_by_a_check(p: &Problem) -> bool {
    p.problem == crate::declaratives::NEEDS_DECLARATION
        || ((p.setting == "kafka.compression.codec" || p.setting == "kafka.compression.type")
            && p.problem.contains("builtin.features"))
        || p.setting == "max_wait_time"
        || (p.setting.starts_with("routes.") && p.setting.ends_with(".max_wait_time"))
}

/// FD000: the configuration does not validate.
fn check_configuration(app: &dyn AppView, report: &mut Report) {
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

/// FD001: consumer persistence off, reload mode on.
fn check_persistence(app: &dyn AppView, opts: &DoctorOptions, report: &mut Report) {
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

/// Routed and dead-letter topic names with where they are routed.
fn routed_topics(app: &dyn AppView) -> BTreeMap<String, String> {
    let mut routed = BTreeMap::new();
    for sg in app.subscription_groups() {
        for t in &sg.topics {
            routed
                .entry(t.name.to_string())
                .or_insert_with(|| format!("routed in consumer group {}", t.consumer_group));
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
fn check_declarations(app: &dyn AppView, report: &mut Report) {
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
fn check_lock_file(app: &dyn AppView, opts: &DoctorOptions, report: &mut Report) {
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
fn check_auto_create(app: &dyn AppView, report: &mut Report) {
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
fn check_single_partition(app: &dyn AppView, report: &mut Report) {
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

/// FD005: assignment strategy and static membership.
fn check_rebalancing(app: &dyn AppView, report: &mut Report) {
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
        match sg.kafka.get("group.instance.id") {
            None => report.push(
                "FD005",
                Severity::Info,
                sg_subject(sg),
                "no static membership (group.instance.id unset)",
                WHY_STATIC_MEMBERSHIP,
                "give every process a stable, unique id, e.g. \
                 `FERRAFKA_KAFKA_GROUP_INSTANCE_ID=$HOSTNAME`, with session.timeout.ms longer \
                 than a restart",
            ),
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
fn check_metadata_refresh(app: &dyn AppView, report: &mut Report) {
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
pub(crate) fn codec_feature(codec: &str) -> Option<String> {
    match codec.trim().to_ascii_lowercase().as_str() {
        "" | "none" | "uncompressed" | "producer" | "inherit" => None,
        other => Some(other.to_string()),
    }
}

/// The producer's codec, `None` when it sends uncompressed.
fn producer_codec(app: &dyn AppView) -> Option<String> {
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

/// FD011 (static): the longest expected downtime is declared.
fn check_downtime_declared(app: &dyn AppView, report: &mut Report) {
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
fn check_durability(app: &dyn AppView, report: &mut Report) {
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

/// FD013: shutdown and poll timing, in every environment.
fn check_timing(app: &dyn AppView, report: &mut Report) {
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
    for sg in app.subscription_groups() {
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
                format!(
                    "heartbeat.interval.ms={heartbeat} is not below session.timeout.ms={session}"
                ),
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
                format!(
                    "session.timeout.ms={session} is outside the broker defaults' 6000..1800000"
                ),
                WHY_SESSION_BOUNDS,
                "keep session.timeout.ms between 6000 and 1800000, or make sure the brokers' \
                 group.min/max.session.timeout.ms allow it",
            );
        }
    }
}

#[cfg(test)]
mod tests;
