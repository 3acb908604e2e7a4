//! The one table of settings: the [`Config`] struct, its `Default`, its redacting `Debug`, the
//! setters of the plain settings and the rows `info` prints all come from `config_table!`.
//!
//! A *plain* setting is a value with a setter that stores it and records the layer it came
//! from. Settings with special behaviour stay hand-written in `config/mod.rs` (only their field
//! and default are declared here):
//!
//! - `env`: chosen before `setup` (by `FERRAFKA_ENV`), read-only afterwards;
//! - `client_id`: its setter takes `impl Into<String>`;
//! - `group_id`: an `Option` that falls back to the client id, in value and in source;
//! - `kafka` / `producer_kafka`: maps, set one property at a time and recorded per property;
//! - `env_kafka`, `sources`, `layer`, `unknown_log_format`: bookkeeping of the layers, not
//!   settings;
//! - `strict_declarative_topics`: an `Option` whose unset value depends on the environment,
//!   and whose setter records no source;
//! - `max_expected_downtime`: an `Option` set by a plain `Duration`;
//! - `expected_partitioner`: an `Option` set by a librdkafka partitioner's name, shown by `info`
//!   after the plain settings.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::web::WebAuth;
use std::time::Duration;

use super::{Environment, InitialOffset, LogFormat, Source, redact};

/// How `info` shows a value: its `Display`.
#[cfg(any(feature = "cli", test))]
fn text<T: ToString>(value: &T) -> String {
    value.to_string()
}

/// How `info` shows a value: its `Debug` (durations, as in `1s`).
#[cfg(any(feature = "cli", test))]
fn debug<T: fmt::Debug>(value: &T) -> String {
    format!("{value:?}")
}

/// Declares `Config`: its hand-written fields (with their defaults), then the plain settings,
/// each as
///
/// ```text
/// /// setter docs
/// name(argument: Type) = default expression, shown by fn(&Type) -> String,
///     default "default in the docs' table", about "what it does, in the docs' table";
/// ```
///
/// and generates the struct (with one docs-table row per plain setting between `table_head`
/// and `table_tail`), `Default`, the setters, the `Debug` fields of the plain settings and
/// `setting_rows`.
macro_rules! config_table {
    (
        $(#[$head:meta])*
        table_tail { $(#[$tail:meta])* }
        pub struct $config:ident {
            $( $(#[$field_attr:meta])* $field:ident: $field_ty:ty = $field_default:expr, )*
        }
        plain settings {
            $(
                $(#[$doc:meta])*
                $name:ident($arg:ident: $ty:ty) = $default:expr, shown by $show:expr,
                    default $default_doc:literal, about $about:literal;
            )*
        }
    ) => {
        $(#[$head])*
        $( #[doc = concat!("| `", stringify!($name), "` | ", $default_doc, " | ", $about, " |")] )*
        $(#[$tail])*
        #[derive(Clone)]
        pub struct $config {
            $( $(#[$field_attr])* pub(crate) $field: $field_ty, )*
            $( pub(crate) $name: $ty, )*
        }

        impl Default for $config {
            fn default() -> Self {
                $config {
                    $( $field: $field_default, )*
                    $( $name: $default, )*
                }
            }
        }

        /// (setting, default as the docs say it) of every plain setting, in order: what the
        /// README's settings table must show.
        #[cfg(test)]
        pub(crate) const PLAIN_SETTINGS: &[(&str, &str)] =
            &[$( (stringify!($name), $default_doc), )*];

        impl $config {
            $(
                $(#[$doc])*
                pub fn $name(&mut self, $arg: $ty) -> &mut Self {
                    self.$name = $arg;
                    self.record(stringify!($name));
                    self
                }
            )*

            /// Adds the plain settings to a `Debug` of the config.
            fn debug_plain_settings(&self, d: &mut fmt::DebugStruct<'_, '_>) {
                $( d.field(stringify!($name), &self.$name); )*
            }

            /// The (setting, value) rows `info` prints, in order: the client and group ids, then
            /// the plain settings.
            #[cfg(any(feature = "cli", test))]
            pub(crate) fn setting_rows(&self) -> Vec<(&'static str, String)> {
                let mut rows = vec![
                    ("client_id", self.client_id.clone()),
                    ("group_id", self.default_group_id().to_string()),
                ];
                $( rows.push((stringify!($name), ($show)(&self.$name))); )*
                rows.push((
                    "expected_partitioner",
                    self.expected_partitioner.clone().unwrap_or_else(|| "unset".into()),
                ));
                rows.push((
                    "transactional_id",
                    self.transactional_id.clone().unwrap_or_else(|| "unset".into()),
                ));
                rows
            }
        }
    };
}

config_table! {
    /// The app-wide settings. Defaults (before the environment's profile):
    ///
    /// | setting | default | what it does |
    /// |---|---|---|
    /// | `client_id` | `"ferrafka"` | `client.id` of every client, and the default group id |
    /// | `group_id` | the client id | id of the default consumer group |
    table_tail {
        /// | `kafka` | `bootstrap.servers=127.0.0.1:9092` | librdkafka properties of every client |
        /// | `strict_declarative_topics` | on in production | every routed topic needs a declaration |
        /// | `max_expected_downtime` | unset | the longest the app's consumers may be stopped; `doctor` compares it with the broker's offset retention |
        /// | `expected_partitioner` | unset | the partitioner the organisation's producers use; `doctor` compares the producer's with it |
        /// | `transactional_id` | unset | base of the transactional producers' ids (`<base>-<slot>`); needed by transactional routes, one per process, stable across restarts |
        ///
        /// Its `Debug` output redacts secrets.
    }
    pub struct Config {
        env: Environment = Environment::Development,
        client_id: String = "ferrafka".into(),
        group_id: Option<String> = None,
        kafka: BTreeMap<String, String> =
            BTreeMap::from([("bootstrap.servers".to_string(), "127.0.0.1:9092".into())]),
        producer_kafka: BTreeMap<String, String> = BTreeMap::new(),
        /// `FERRAFKA_KAFKA_*` values: property → (value, variable); they win over topic
        /// overrides.
        env_kafka: BTreeMap<String, (String, String)> = BTreeMap::new(),
        /// Where each setting not at its framework default came from (`kafka.<property>` for
        /// kafka properties, `producer_kafka.<property>` for the producer's own).
        sources: BTreeMap<String, Source> = BTreeMap::new(),
        /// The layer setters currently record.
        layer: Source = Source::Default,
        strict_declarative_topics: Option<bool> = None,
        max_expected_downtime: Option<Duration> = None,
        /// The value of `FERRAFKA_LOG_FORMAT` when it names no format, for `check` to report.
        unknown_log_format: Option<String> = None,
        expected_partitioner: Option<String> = None,
        /// The base of the transactional producers' ids; see `Config::transactional_id`.
        transactional_id: Option<String> = None,
    }
    plain settings {
        /// Sets how many batches run at once across all partitions of the process.
        concurrency(workers: usize) = 5, shown by text,
            default "5", about "batches processed in parallel, across all partitions";

        /// Sets the default most messages per batch.
        max_messages(n: usize) = 100, shown by text,
            default "100", about "most messages in one batch";

        /// Sets the default longest wait for a batch to fill.
        max_wait_time(wait: Duration) = Duration::from_secs(1), shown by debug,
            default "1 s", about "longest a buffered message waits for its batch to fill";

        /// Sets how long in-flight batches may take to finish once shutdown starts.
        shutdown_timeout(timeout: Duration) = Duration::from_secs(60), shown by debug,
            default "60 s", about "how long in-flight batches may finish after a stop signal";

        /// How long a rebalance waits for running batches of revoked partitions, so their marks
        /// are committed before the partitions move. The poll thread waits with it, so it must
        /// stay below `max.poll.interval.ms`. A batch still running afterwards keeps running but
        /// can no longer mark; the new owner processes it again.
        revocation_timeout(timeout: Duration) = Duration::from_secs(5), shown by debug,
            default "5 s",
            about "how long a rebalance waits for running batches of revoked partitions before \
                   giving them up; polling stops meanwhile, so it stays below \
                   `max.poll.interval.ms`";

        /// How often the offsets ferrafka stored are committed (librdkafka's
        /// `auto.commit.interval.ms`; a `kafka` property of that name overrides it). A crash
        /// (kill -9) re-processes what was consumed since the last commit: about this much
        /// traffic. Each commit is a request to the group coordinator, per consumer.
        commit_interval(interval: Duration) = Duration::from_secs(1), shown by debug,
            default "1 s",
            about "how often stored offsets are committed; after a crash (kill -9) about this \
                   much traffic is processed again";

        /// Bounds the memory of a partition's waiting messages: fetching pauses once they hold
        /// this many bytes (payload, key and headers) and resumes as batches drain them.
        partition_buffer_bytes(bytes: usize) = 16 * 1024 * 1024, shown by text,
            default "16 MiB",
            about "fetching of a partition pauses once the messages waiting for its next batch \
                   hold this many bytes";

        /// Sets where groups without committed offsets start.
        initial_offset(offset: InitialOffset) = InitialOffset::Earliest,
            shown by |offset: &InitialOffset| offset.as_kafka().to_string(),
            default "earliest", about "where a group without committed offsets starts";

        /// Sets the first pause after a failed batch.
        pause_timeout(timeout: Duration) = Duration::from_secs(1), shown by debug,
            default "1 s", about "first pause of a partition after a failed batch";

        /// Sets the longest pause after repeated failures.
        pause_max_timeout(timeout: Duration) = Duration::from_secs(30), shown by debug,
            default "30 s", about "the longest pause after repeated failures";

        /// Turns doubling of the pause after each failure on or off.
        pause_with_exponential_backoff(on: bool) = true, shown by text,
            default "true", about "double the pause after each failure";

        /// Keeps a partition's consumer instance across batches (true), or builds a fresh one for
        /// every batch (false). Topics may override it.
        consumer_persistence(on: bool) = true, shown by text,
            default "true (false in development)",
            about "keep a partition's consumer instance across batches";

        /// The port of the server's HTTP endpoint: `/metrics` (Prometheus), `/healthz`
        /// (liveness) and `/readyz` (readiness). 0 (the default) serves nothing.
        http_port(port: u16) = 0, shown by |port: &u16| match port {
                0 => "0 (off)".to_string(),
                port => port.to_string(),
            },
            default "0 (off)",
            about "port of the HTTP endpoint serving `/metrics`, `/healthz` and `/readyz`";

        /// The address the HTTP endpoint listens on: loopback by default; a Kubernetes probe
        /// reaches the pod's address, so set `0.0.0.0` there.
        http_bind(address: IpAddr) = IpAddr::V4(Ipv4Addr::LOCALHOST), shown by text,
            default "127.0.0.1",
            about "address the HTTP endpoint listens on";

        /// How long a partition may have messages waiting with no batch running and no pause
        /// asked for before `/healthz` calls it stalled. Long batches and pauses never count.
        stall_timeout(timeout: Duration) = Duration::from_secs(120), shown by debug,
            default "120 s",
            about "how long messages may wait on an idle, unpaused partition before \
                   `/healthz` fails";

        /// Whether errors found by `doctor`'s static checks stop `server` from starting in
        /// production (true by default). Turning it off logs them instead; `server
        /// --allow-doctor-errors` does the same for one run.
        doctor_errors_block_boot(on: bool) = true, shown by text,
            default "true",
            about "in production, errors found by `doctor`'s static checks stop `server`";

        /// How the command line writes log lines to stderr: [`LogFormat::Text`] for people,
        /// [`LogFormat::Json`] (one JSON object per line) for log shippers. The
        /// `FERRAFKA_LOG_FORMAT` variable (`text` or `json`) overrides it.
        log_format(format: LogFormat) = LogFormat::Text, shown by text,
            default "text",
            about "how the command line writes log lines: `text`, or `json` (one object per \
                   line, for log shippers); `FERRAFKA_LOG_FORMAT` overrides it";

        /// Whether the server publishes its status for `web` (see `docs/web.md`):
        /// a report every `report_interval` to `reports_topic`, and its errors to
        /// `errors_topic`. Off by default.
        reporting(on: bool) = false, shown by text,
            default "false",
            about "publish a status report every `report_interval` and every error, for `web`";

        /// How often a reporting server publishes its report (at least 1 s). Readers flag a
        /// process stale after 3 × this + 5 s without a report.
        report_interval(interval: Duration) = Duration::from_secs(5), shown by debug,
            default "5 s",
            about "how often a reporting server publishes its report; stale after 3 × this + 5 s";

        /// The compacted topic reports go to, keyed by process id.
        reports_topic(topic: String) = "ferrafka_reports".into(), shown by text,
            default "ferrafka_reports",
            about "the compacted topic of process reports (declared when `reporting` is on)";

        /// The topic errors go to, keyed by process id.
        errors_topic(topic: String) = "ferrafka_errors".into(), shown by text,
            default "ferrafka_errors",
            about "the topic of error reports (declared when `reporting` is on)";

        /// The topic of commands to running processes and their acknowledgements (see
        /// `docs/web.md`); every reporting server reads it.
        commands_topic(topic: String) = "ferrafka_commands".into(), shown by text,
            default "ferrafka_commands",
            about "the topic of commands to processes and their acknowledgements (declared when \
                   `reporting` is on)";

        /// The topic where the web UI records every write it makes (who, when, what, from
        /// where): republished dead letters and commands sent. Kept 90 days.
        audit_topic(topic: String) = "ferrafka_audit".into(), shown by text,
            default "ferrafka_audit",
            about "the topic of the web UI's audit records (declared when `reporting` is on)";

        /// The address `web` serves the UI on. Any non-loopback address needs `web_auth`:
        /// `web` refuses to start without it.
        web_bind(address: SocketAddr) = SocketAddr::from(([127, 0, 0, 1], 3000)), shown by text,
            default "127.0.0.1:3000",
            about "address the web UI (`web`) listens on; a non-loopback one needs `web_auth`";

        /// How the web UI authenticates requests: [`WebAuth::token`] (`Authorization: Bearer`)
        /// or [`WebAuth::basic`]. A secret, never shown. `FERRAFKA_WEB_AUTH` (`token:<T>` or
        /// `basic:<user>:<password>`) overrides it.
        web_auth(auth: WebAuth) = WebAuth::None, shown by WebAuth::describe,
            default "unset",
            about "token or basic auth of the web UI (a secret); `FERRAFKA_WEB_AUTH` overrides \
                   it";

        /// Topics whose payloads the web UI's explorer never shows (keys and headers still
        /// show).
        web_masked_topics(topics: Vec<String>) = Vec::new(), shown by |t: &Vec<String>| match t.is_empty() {
                true => "none".to_string(),
                false => t.join(", "),
            },
            default "none",
            about "topics whose payloads the web UI hides";

        /// Whether the web UI refuses every write (republish, commands): a read-only UI shows
        /// no write buttons and answers 403 to a write. Off by default; writes need a CSRF
        /// token, and `doctor` flags a writing UI without `web_auth`.
        web_read_only(on: bool) = false, shown by text,
            default "false",
            about "the web UI refuses every write (republish, commands) when on";
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            map.iter().map(|(k, v)| (k.clone(), redact(k, v))).collect()
        };
        let mut d = f.debug_struct("Config");
        d.field("env", &self.env)
            .field("client_id", &self.client_id)
            .field("group_id", &self.group_id)
            .field("kafka", &redacted(&self.kafka))
            .field("producer_kafka", &redacted(&self.producer_kafka))
            .field("strict_declarative_topics", &self.strict_declarative_topics)
            .field("max_expected_downtime", &self.max_expected_downtime)
            .field("expected_partitioner", &self.expected_partitioner)
            .field("transactional_id", &self.transactional_id);
        self.debug_plain_settings(&mut d);
        d.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plain_setting_has_a_setter_a_debug_field_and_an_info_row() {
        let mut c = Config::default();
        c.concurrency(7)
            .initial_offset(InitialOffset::Latest)
            .max_wait_time(Duration::from_millis(250))
            .doctor_errors_block_boot(false);
        let rows = c.setting_rows();
        let names: Vec<_> = rows.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "client_id",
                "group_id",
                "concurrency",
                "max_messages",
                "max_wait_time",
                "shutdown_timeout",
                "revocation_timeout",
                "commit_interval",
                "partition_buffer_bytes",
                "initial_offset",
                "pause_timeout",
                "pause_max_timeout",
                "pause_with_exponential_backoff",
                "consumer_persistence",
                "http_port",
                "http_bind",
                "stall_timeout",
                "doctor_errors_block_boot",
                "log_format",
                "reporting",
                "report_interval",
                "reports_topic",
                "errors_topic",
                "commands_topic",
                "audit_topic",
                "web_bind",
                "web_auth",
                "web_masked_topics",
                "web_read_only",
                "expected_partitioner",
                "transactional_id",
            ]
        );
        let value = |name: &str| rows.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        assert_eq!(value("concurrency"), "7");
        assert_eq!(value("initial_offset"), "latest");
        assert_eq!(value("max_wait_time"), "250ms");
        assert_eq!(value("group_id"), "ferrafka");
        assert_eq!(value("expected_partitioner"), "unset");
        c.expected_partitioner("murmur2_random");
        assert_eq!(
            c.setting_rows()[c.setting_rows().len() - 2],
            ("expected_partitioner", "murmur2_random".to_string())
        );
        assert!(c.sources.contains_key("expected_partitioner"));
        assert!(c.sources.contains_key("concurrency"));
        assert!(!c.sources.contains_key("max_messages"));
        let debug = format!("{c:?}");
        for name in &names[2..names.len() - 1] {
            assert!(debug.contains(&format!("{name}: ")), "{name} in {debug}");
        }
    }

    /// The README's settings table lists every plain setting with the default the setting's
    /// docs give: it drifted before (five settings were missing).
    #[test]
    fn the_readme_settings_table_matches_the_settings() {
        let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
        let table = readme
            .split("\n## Settings\n")
            .nth(1)
            .expect("a Settings section")
            .split("\n## ")
            .next()
            .unwrap();
        let rows: Vec<Vec<&str>> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| l.split('|').map(str::trim).collect())
            .collect();
        let mut missing = Vec::new();
        for (name, default) in PLAIN_SETTINGS {
            let row = rows
                .iter()
                .find(|cells| cells[1].contains(&format!("`{name}`")));
            match row {
                Some(cells) if cells[2].contains(default) => {}
                Some(cells) => missing.push(format!(
                    "{name}: README says {:?}, the settings {default:?}",
                    cells[2]
                )),
                None => missing.push(format!("{name}: no row (default {default:?})")),
            }
        }
        assert!(
            missing.is_empty(),
            "README settings table:\n{}",
            missing.join("\n")
        );
    }
}
