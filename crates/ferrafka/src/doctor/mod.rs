//! `doctor`: the development-versus-production checklist as code.
//!
//! [`App::doctor`](crate::App::doctor) examines an [`App`](crate::App) as built for its environment
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
mod checks;
mod clock;
mod live;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::declaratives::lock;
use crate::kafka::effective;
use crate::routing::SubscriptionGroup;

pub(crate) use app_view::AppView;
use checks::*;
pub use clock::ClockStatus;

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

/// The result of [`App::doctor`](crate::App::doctor).
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

/// What [`App::doctor`](crate::App::doctor) checks and how.
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

/// Runs every check that applies and returns the report (see [`App::doctor`](crate::App::doctor)).
pub(crate) fn run(app: &dyn AppView, opts: &DoctorOptions) -> Report {
    let mut report = static_report(app, opts);
    if opts.live {
        live::run(app, opts, &mut report);
    } else {
        report.skipped.push(
            "live checks (FD004, FD006, FD008-FD012, FD015 against the cluster): run with --live"
                .into(),
        );
    }
    report.finish()
}

/// The static checks only: what the server runs at boot.
pub(crate) fn run_static(app: &dyn AppView, opts: &DoctorOptions) -> Report {
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
        check_client_security(app, &mut report);
        check_delivery(app, &mut report);
    } else {
        report.skipped.push(format!(
            "production-only checks (FD001-FD012, FD016-FD021): the app runs as {}; use --env production",
            config.env()
        ));
    }
    check_timing(app, &mut report);
    check_virtual_partitions(app, &mut report);
    check_partitioner(app, &mut report);
    check_web_exposure(app, &mut report);
    check_web_writes(app, &mut report);
    report
}

// ---------------------------------------------------------------------------------------------
// Reasons, in one sentence each (docs/doctor.md explains them at length).

const WHY_INVALID: &str = "the server refuses to start with an invalid configuration";
const WHY_PERSISTENCE: &str = "without persistence every batch builds a new consumer instance, which costs time per batch and loses whatever the consumer keeps between batches";
pub(crate) const WHY_WEB_WRITES: &str = "a web UI that writes can stop processes, pause partitions and republish dead letters; without authentication anyone who reaches it can, and the audit records them as anonymous";
pub(crate) const WHY_WEB_EXPOSED: &str = "the web UI shows the fleet's processes and lets anyone who reaches it browse topic payloads; on a non-loopback address without authentication that is the whole network";
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
const WHY_PERMISSIONS: &str = "with ACLs on, a consumer without Read on its group never joins it, one without Read on a topic never gets its messages, and a dead-letter queue without Write cannot take a failing message, so its partition stops on it";
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
const WHY_KIP848_BROKER: &str = "under group.protocol=consumer the broker assigns partitions and times members out; a broker that does not enable the protocol refuses the consumer, which then never joins its group";
const WHY_BROKER_AUTO_CREATE: &str = "brokers that create topics on first use turn a typo in any client (or a client with allow.auto.create.topics) into a topic with broker defaults instead of an error";
const WHY_OFFSETS_TOPIC_RF: &str = "every group's committed offsets live in __consumer_offsets: with fewer than three replicas one broker failure can lose them, and every group restarts from initial_offset";
const WHY_UNCLEAN: &str = "an unclean leader election makes an out-of-sync replica the leader: acknowledged messages are lost and their offsets re-used by new messages";
const WHY_TLS_VERIFY: &str = "without certificate or host name verification anyone between the app and the brokers can pose as a broker, read every message and collect the credentials";
const WHY_CLEARTEXT: &str = "without TLS every message, and every credential a SASL mechanism sends, crosses the network readable by anyone on the path";
const WHY_CLEARTEXT_PASSWORD: &str = "SASL/PLAIN sends the password itself; over a connection without TLS anyone on the path can read it and connect as the app";
const WHY_UNSECURED_JWT: &str = "librdkafka then makes its own unsigned token from sasl.oauthbearer.config, which a broker accepts only with an unsecured validator: there is no authentication at all";
const WHY_DELIVERY_RETRIES: &str = "a producer that does not retry fails a delivery on the first transient error, such as the NOT_LEADER answers of every leader election";
const WHY_DELIVERY_TIMEOUT: &str = "a delivery that times out before a failed leader is replaced is reported as failed although the cluster recovers a few seconds later";
const WHY_READ_UNCOMMITTED: &str = "a read_uncommitted consumer processes messages of transactions that were later aborted, and those of transactions still open";
const WHY_API_VERSIONS: &str = "without ApiVersions negotiation librdkafka assumes broker.version.fallback and turns off features newer brokers have, such as idempotence, headers or zstd";
const WHY_PARTITIONER: &str = "producers that hash keys differently put the same key on different partitions, so the key's messages lose their order, a compacted topic keeps one latest value per partition it landed on, and readers that rely on co-partitioning (Kafka Streams joins, a consumer that owns a key's partition) miss messages";
const WHY_PARTITIONER_KEYLESS: &str = "keyed messages land alike, but one partitioner spreads keyless messages over the partitions while the other sends them all to one partition, which then carries more than its share";
const WHY_SESSION_BOUNDS: &str = "brokers reject session timeouts outside group.min.session.timeout.ms (6 s) to group.max.session.timeout.ms (30 min) by default, so the consumer cannot join";

fn sg_subject(sg: &SubscriptionGroup) -> String {
    format!("subscription group {}/{}", sg.consumer_group, sg.name)
}

fn truthy(value: &str) -> bool {
    matches!(value.trim(), "true" | "1" | "yes" | "on")
}

#[cfg(test)]
mod tests;
