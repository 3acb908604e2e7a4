//! App-wide settings, their defaults and their validation.
//!
//! Settings come in layers, each overriding the one before, and every effective value remembers
//! the layer it came from ([`Source`], shown by `info`):
//!
//! 1. framework defaults ([`Config::default`]);
//! 2. the environment's profile (`FERRAFKA_ENV`, see [`Environment`] and `docs/environments.md`);
//! 3. the app's `setup` closure;
//! 4. per-topic overrides in the routes;
//! 5. environment variables: `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS` sets `bootstrap.servers` (the
//!    part after `FERRAFKA_KAFKA_`, lowercased, `_` read as `.`), so brokers and credentials
//!    change without recompiling.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use crate::secrets::{is_sensitive, redact};

/// Prefix of environment variables that set librdkafka properties.
pub const KAFKA_ENV_PREFIX: &str = "FERRAFKA_KAFKA_";

/// Environment variable that names the environment.
pub const ENV_VAR: &str = "FERRAFKA_ENV";

/// The environment the app runs in; it decides defaults that must differ between a laptop and
/// production. Any name other than the three known ones is accepted and treated as
/// non-production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// Local development (the default).
    Development,
    /// Automated tests.
    Test,
    /// Production.
    Production,
    /// Any other name, e.g. `staging`; treated as non-production.
    Other(String),
}

impl Environment {
    /// Parses a name as found in `FERRAFKA_ENV`; empty means development.
    pub fn from_name(name: &str) -> Self {
        match name.trim() {
            "" | "development" => Environment::Development,
            "test" => Environment::Test,
            "production" => Environment::Production,
            other => Environment::Other(other.to_string()),
        }
    }

    /// The environment's name.
    pub fn name(&self) -> &str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
            Environment::Other(name) => name,
        }
    }

    /// True only for production.
    pub fn is_production(&self) -> bool {
        matches!(self, Environment::Production)
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a consumer starts on a partition that has no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialOffset {
    /// From the oldest retained message (`auto.offset.reset=earliest`).
    Earliest,
    /// Only messages produced after the group first joined (`auto.offset.reset=latest`).
    Latest,
}

impl InitialOffset {
    pub(crate) fn as_kafka(self) -> &'static str {
        match self {
            InitialOffset::Earliest => "earliest",
            InitialOffset::Latest => "latest",
        }
    }
}

/// The layer an effective setting came from, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// ferrafka's default, the same in every environment.
    Default,
    /// The profile of the named environment (e.g. production turns topic auto-creation off).
    Profile(String),
    /// The app's `setup` closure.
    Setup,
    /// An override on the named topic in the routes.
    Topic(String),
    /// The named environment variable.
    EnvVar(String),
    /// Owned by ferrafka and not changeable (e.g. `group.id`, `enable.auto.offset.store`).
    Framework,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => f.write_str("default"),
            Source::Profile(env) => write!(f, "profile:{env}"),
            Source::Setup => f.write_str("setup"),
            Source::Topic(topic) => write!(f, "topic:{topic}"),
            Source::EnvVar(var) => write!(f, "env:{var}"),
            Source::Framework => f.write_str("framework"),
        }
    }
}

/// The app-wide settings. Defaults (before the environment's profile):
///
/// | setting | default | what it does |
/// |---|---|---|
/// | `client_id` | `"ferrafka"` | `client.id` of every client, and the default group id |
/// | `group_id` | the client id | id of the default consumer group |
/// | `concurrency` | 5 | batches processed in parallel, across all partitions |
/// | `max_messages` | 100 | most messages in one batch |
/// | `max_wait_time` | 1 s | longest a buffered message waits for its batch to fill |
/// | `shutdown_timeout` | 60 s | how long in-flight batches may finish after a stop signal |
/// | `revocation_timeout` | 5 s | how long a rebalance waits for running batches of revoked partitions before giving them up; polling stops meanwhile, so it stays below `max.poll.interval.ms` |
/// | `partition_buffer_bytes` | 16 MiB | fetching of a partition pauses once the messages waiting for its next batch hold this many bytes |
/// | `initial_offset` | earliest | where a group without committed offsets starts |
/// | `pause_timeout` | 1 s | first pause of a partition after a failed batch |
/// | `pause_max_timeout` | 30 s | the longest pause after repeated failures |
/// | `pause_with_exponential_backoff` | true | double the pause after each failure |
/// | `consumer_persistence` | true (false in development) | keep a partition's consumer instance across batches |
/// | `kafka` | `bootstrap.servers=127.0.0.1:9092` | librdkafka properties of every client |
/// | `strict_declarative_topics` | on in production | every routed topic needs a declaration |
/// | `max_expected_downtime` | unset | the longest the app's consumers may be stopped; `doctor` compares it with the broker's offset retention |
/// | `doctor_errors_block_boot` | true | in production, errors found by `doctor`'s static checks stop `server` |
///
/// Its `Debug` output redacts secrets.
#[derive(Clone)]
pub struct Config {
    pub(crate) env: Environment,
    pub(crate) client_id: String,
    pub(crate) group_id: Option<String>,
    pub(crate) kafka: BTreeMap<String, String>,
    pub(crate) producer_kafka: BTreeMap<String, String>,
    pub(crate) concurrency: usize,
    pub(crate) max_messages: usize,
    pub(crate) max_wait_time: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) revocation_timeout: Duration,
    pub(crate) partition_buffer_bytes: usize,
    pub(crate) initial_offset: InitialOffset,
    pub(crate) pause_timeout: Duration,
    pub(crate) pause_max_timeout: Duration,
    pub(crate) pause_with_exponential_backoff: bool,
    pub(crate) consumer_persistence: bool,
    /// `FERRAFKA_KAFKA_*` values: property → (value, variable); they win over topic overrides.
    pub(crate) env_kafka: BTreeMap<String, (String, String)>,
    /// Where each setting not at its framework default came from (`kafka.<property>` for kafka
    /// properties, `producer_kafka.<property>` for the producer's own).
    pub(crate) sources: BTreeMap<String, Source>,
    /// The layer setters currently record.
    pub(crate) layer: Source,
    pub(crate) strict_declarative_topics: Option<bool>,
    pub(crate) max_expected_downtime: Option<Duration>,
    pub(crate) doctor_errors_block_boot: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            map.iter().map(|(k, v)| (k.clone(), redact(k, v))).collect()
        };
        f.debug_struct("Config")
            .field("env", &self.env)
            .field("client_id", &self.client_id)
            .field("group_id", &self.group_id)
            .field("kafka", &redacted(&self.kafka))
            .field("producer_kafka", &redacted(&self.producer_kafka))
            .field("concurrency", &self.concurrency)
            .field("max_messages", &self.max_messages)
            .field("max_wait_time", &self.max_wait_time)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("revocation_timeout", &self.revocation_timeout)
            .field("partition_buffer_bytes", &self.partition_buffer_bytes)
            .field("initial_offset", &self.initial_offset)
            .field("pause_timeout", &self.pause_timeout)
            .field("pause_max_timeout", &self.pause_max_timeout)
            .field(
                "pause_with_exponential_backoff",
                &self.pause_with_exponential_backoff,
            )
            .field("consumer_persistence", &self.consumer_persistence)
            .field("strict_declarative_topics", &self.strict_declarative_topics)
            .field("max_expected_downtime", &self.max_expected_downtime)
            .field("doctor_errors_block_boot", &self.doctor_errors_block_boot)
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            env: Environment::Development,
            client_id: "ferrafka".into(),
            group_id: None,
            kafka: BTreeMap::from([("bootstrap.servers".to_string(), "127.0.0.1:9092".into())]),
            producer_kafka: BTreeMap::new(),
            concurrency: 5,
            max_messages: 100,
            max_wait_time: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(60),
            revocation_timeout: Duration::from_secs(5),
            partition_buffer_bytes: 16 * 1024 * 1024,
            initial_offset: InitialOffset::Earliest,
            pause_timeout: Duration::from_secs(1),
            pause_max_timeout: Duration::from_secs(30),
            pause_with_exponential_backoff: true,
            consumer_persistence: true,
            env_kafka: BTreeMap::new(),
            sources: BTreeMap::new(),
            layer: Source::Default,
            strict_declarative_topics: None,
            max_expected_downtime: None,
            doctor_errors_block_boot: true,
        }
    }
}

/// How long a partition pauses after consecutive failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) first: Duration,
    pub(crate) max: Duration,
    pub(crate) exponential: bool,
}

impl Backoff {
    /// The pause after failure number `failures` (1 for the first).
    pub(crate) fn after(&self, failures: u32) -> Duration {
        if !self.exponential {
            return self.first;
        }
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        self.first.saturating_mul(factor).min(self.max)
    }
}

impl Config {
    /// The framework defaults with `env`'s profile applied on top; what `setup` starts from.
    pub fn for_env(env: Environment) -> Self {
        let mut config = Config {
            env,
            ..Config::default()
        };
        config.apply_profile();
        config.layer = Source::Setup;
        config
    }

    /// Applies the defaults that differ per environment (see `docs/environments.md`).
    fn apply_profile(&mut self) {
        self.layer = Source::Profile(self.env.name().to_string());
        if self.env.is_production() {
            // Topics are created deliberately (declarative topics), never by a typo.
            self.kafka("allow.auto.create.topics", "false");
            // librdkafka's producer default is the opposite of its consumer's (true): a producer
            // writing to a mistyped topic would create it on brokers that allow it.
            self.producer_kafka("allow.auto.create.topics", "false");
            // Refreshing metadata every few seconds costs the brokers; 5 minutes suffices.
            self.kafka("topic.metadata.refresh.interval.ms", "300000");
            // Rolling deploys rebalance once per process; cooperative rebalances stop only
            // the partitions that move.
            self.kafka("partition.assignment.strategy", "cooperative-sticky");
            self.consumer_persistence(true);
        } else {
            // New topics appear without ceremony and are noticed within seconds.
            self.kafka("allow.auto.create.topics", "true");
            self.kafka("topic.metadata.refresh.interval.ms", "5000");
            if self.env == Environment::Development {
                // A fresh instance per batch: no state silently carried between batches.
                self.consumer_persistence(false);
            }
        }
    }

    fn record(&mut self, setting: impl Into<String>) {
        self.sources.insert(setting.into(), self.layer.clone());
    }

    /// The layer the effective value of `setting` came from: `concurrency`, `kafka.<property>`,
    /// `producer_kafka.<property>`, …
    pub fn source(&self, setting: &str) -> Source {
        self.sources
            .get(setting)
            .cloned()
            .unwrap_or(Source::Default)
    }

    /// The environment the app runs in (from `FERRAFKA_ENV`); known before `setup` runs.
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Sets `client.id` of every client (and the default consumer group id).
    pub fn client_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.client_id = id.into();
        self.record("client_id");
        self
    }

    /// Sets the id of the default consumer group (routes outside `consumer_group` blocks).
    pub fn group_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.group_id = Some(id.into());
        self.record("group_id");
        self
    }

    /// Sets a librdkafka property for every client (consumers, producer, admin).
    pub fn kafka(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.record(format!("kafka.{name}"));
        self.kafka.insert(name, value.into());
        self
    }

    /// Sets a librdkafka property for the producer only (e.g. `compression.codec`, `linger.ms`).
    pub fn producer_kafka(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        let name = name.into();
        self.record(format!("producer_kafka.{name}"));
        self.producer_kafka.insert(name, value.into());
        self
    }

    /// Sets how many batches run at once across all partitions of the process.
    pub fn concurrency(&mut self, workers: usize) -> &mut Self {
        self.concurrency = workers;
        self.record("concurrency");
        self
    }

    /// Sets the default most messages per batch.
    pub fn max_messages(&mut self, n: usize) -> &mut Self {
        self.max_messages = n;
        self.record("max_messages");
        self
    }

    /// Sets the default longest wait for a batch to fill.
    pub fn max_wait_time(&mut self, wait: Duration) -> &mut Self {
        self.max_wait_time = wait;
        self.record("max_wait_time");
        self
    }

    /// Sets how long in-flight batches may take to finish once shutdown starts.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self.record("shutdown_timeout");
        self
    }

    /// How long a rebalance waits for running batches of revoked partitions, so their marks
    /// are committed before the partitions move. The poll thread waits with it, so it must stay
    /// below `max.poll.interval.ms`. A batch still running afterwards keeps running but can no
    /// longer mark; the new owner processes it again.
    pub fn revocation_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.revocation_timeout = timeout;
        self.record("revocation_timeout");
        self
    }

    /// Bounds the memory of a partition's waiting messages: fetching pauses once they hold this
    /// many bytes (payload, key and headers) and resumes as batches drain them.
    pub fn partition_buffer_bytes(&mut self, bytes: usize) -> &mut Self {
        self.partition_buffer_bytes = bytes;
        self.record("partition_buffer_bytes");
        self
    }

    /// Sets where groups without committed offsets start.
    pub fn initial_offset(&mut self, offset: InitialOffset) -> &mut Self {
        self.initial_offset = offset;
        self.record("initial_offset");
        self
    }

    /// Sets the first pause after a failed batch.
    pub fn pause_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pause_timeout = timeout;
        self.record("pause_timeout");
        self
    }

    /// Sets the longest pause after repeated failures.
    pub fn pause_max_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pause_max_timeout = timeout;
        self.record("pause_max_timeout");
        self
    }

    /// Turns doubling of the pause after each failure on or off.
    pub fn pause_with_exponential_backoff(&mut self, on: bool) -> &mut Self {
        self.pause_with_exponential_backoff = on;
        self.record("pause_with_exponential_backoff");
        self
    }

    /// Keeps a partition's consumer instance across batches (true), or builds a fresh one for
    /// every batch (false). Topics may override it.
    pub fn consumer_persistence(&mut self, on: bool) -> &mut Self {
        self.consumer_persistence = on;
        self.record("consumer_persistence");
        self
    }

    /// Whether consumer instances are kept across batches (see
    /// [`Config::consumer_persistence`]).
    pub fn is_consumer_persistent(&self) -> bool {
        self.consumer_persistence
    }

    /// Requires a declaration for every routed topic (see [`crate::declaratives`]); on by
    /// default in production only.
    pub fn strict_declarative_topics(&mut self, on: bool) -> &mut Self {
        self.strict_declarative_topics = Some(on);
        self
    }

    /// Whether routed topics need declarations: the explicit setting, else on in production.
    pub fn strict_declarative_topics_enabled(&self) -> bool {
        self.strict_declarative_topics
            .unwrap_or_else(|| self.env.is_production())
    }

    /// Declares the longest time the app's consumers may be stopped (a maintenance window, an
    /// outage you plan for). `doctor --live` fails when the broker forgets committed offsets
    /// sooner (`offsets.retention.minutes`): a group that comes back after its offsets expired
    /// restarts from `initial_offset`, reprocessing or skipping messages.
    pub fn max_expected_downtime(&mut self, downtime: Duration) -> &mut Self {
        self.max_expected_downtime = Some(downtime);
        self.record("max_expected_downtime");
        self
    }

    /// The declared longest expected downtime, if any (see [`Config::max_expected_downtime`]).
    pub fn expected_downtime(&self) -> Option<Duration> {
        self.max_expected_downtime
    }

    /// Whether errors found by `doctor`'s static checks stop `server` from starting in
    /// production (true by default). Turning it off logs them instead; `server
    /// --allow-doctor-errors` does the same for one run.
    pub fn doctor_errors_block_boot(&mut self, on: bool) -> &mut Self {
        self.doctor_errors_block_boot = on;
        self.record("doctor_errors_block_boot");
        self
    }

    /// The id of the default consumer group.
    pub fn default_group_id(&self) -> &str {
        self.group_id.as_deref().unwrap_or(&self.client_id)
    }

    /// Applies `FERRAFKA_KAFKA_*` variables from `vars` over the kafka properties; they win
    /// over every other layer, per-topic overrides included. (`FERRAFKA_ENV` is read earlier,
    /// before `setup`.)
    pub(crate) fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) {
        let previous = std::mem::replace(&mut self.layer, Source::Default);
        for (name, value) in vars {
            if let Some(property) = name.strip_prefix(KAFKA_ENV_PREFIX) {
                let property = property.to_ascii_lowercase().replace('_', ".");
                if !property.is_empty() {
                    self.layer = Source::EnvVar(name.clone());
                    self.kafka(property.clone(), value.clone());
                    self.env_kafka.insert(property, (value, name));
                }
            }
        }
        self.layer = previous;
    }

    /// The pauses before retries after failed batches.
    pub(crate) fn backoff(&self) -> Backoff {
        Backoff {
            first: self.pause_timeout,
            max: self.pause_max_timeout,
            exponential: self.pause_with_exponential_backoff,
        }
    }

    /// Checks the framework settings; every problem is collected.
    pub(crate) fn check(&self, problems: &mut Vec<Problem>) {
        if self.concurrency == 0 {
            problems.push(Problem::new(
                "concurrency",
                "0",
                "needs to be at least 1",
                "set `c.concurrency(n)` with n >= 1",
            ));
        }
        if self.client_id.trim().is_empty() {
            problems.push(Problem::new(
                "client_id",
                &self.client_id,
                "needs to be a non-empty string",
                "set `c.client_id(\"my-app\")`",
            ));
        }
        if self.default_group_id().trim().is_empty() {
            problems.push(Problem::new(
                "group_id",
                self.default_group_id(),
                "needs to be a non-empty string",
                "set `c.group_id(\"my-group\")`",
            ));
        }
        if self.max_messages == 0 {
            problems.push(Problem::new(
                "max_messages",
                "0",
                "needs to be at least 1",
                "set `c.max_messages(n)` with n >= 1",
            ));
        }
        if self.max_wait_time >= self.shutdown_timeout {
            problems.push(Problem::new(
                "max_wait_time",
                &format!("{:?}", self.max_wait_time),
                &format!(
                    "needs to be shorter than shutdown_timeout ({:?}), or a batch still filling \
                     could outlive the shutdown",
                    self.shutdown_timeout
                ),
                "lower `max_wait_time` or raise `shutdown_timeout`",
            ));
        }
        if self.revocation_timeout.is_zero() {
            problems.push(Problem::new(
                "revocation_timeout",
                "0s",
                "needs to be positive, or every rebalance gives up running batches at once",
                "set `c.revocation_timeout(Duration::from_secs(5))`",
            ));
        }
        if self.partition_buffer_bytes == 0 {
            problems.push(Problem::new(
                "partition_buffer_bytes",
                "0",
                "needs to be at least 1",
                "set `c.partition_buffer_bytes(n)` with n >= 1, e.g. 16 MiB",
            ));
        }
        if self.pause_timeout > self.pause_max_timeout {
            problems.push(Problem::new(
                "pause_timeout",
                &format!("{:?}", self.pause_timeout),
                &format!(
                    "needs to be at most pause_max_timeout ({:?})",
                    self.pause_max_timeout
                ),
                "lower `pause_timeout` or raise `pause_max_timeout`",
            ));
        }
    }
}

/// One invalid setting: which, its value, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The setting's path, e.g. `concurrency` or `routes.analytics.visits.max_messages`.
    pub setting: String,
    /// The offending value (redacted when sensitive).
    pub value: String,
    /// What is wrong, phrased as what the value needs to be.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    pub(crate) fn new(setting: &str, value: &str, problem: &str, fix: &str) -> Self {
        Problem {
            setting: setting.into(),
            value: value.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} = {:?}: {} (fix: {})",
            self.setting, self.value, self.problem, self.fix
        )
    }
}

/// Every problem found in the configuration and routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in the order they were found.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "invalid configuration ({n} problem{}):",
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut c = Config::default();
        c.concurrency(0).max_messages(0);
        c.max_wait_time(Duration::from_secs(90));
        let mut problems = Vec::new();
        c.check(&mut problems);
        let settings: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
        assert_eq!(settings, ["concurrency", "max_messages", "max_wait_time"]);
        let text = ConfigError { problems }.to_string();
        assert!(
            text.starts_with("invalid configuration (3 problems):"),
            "{text}"
        );
        assert!(text.contains("needs to be at least 1"), "{text}");
    }

    #[test]
    fn env_variables_override_kafka_properties() {
        let mut c = Config::default();
        c.kafka("bootstrap.servers", "code:9092");
        c.apply_env([
            (
                "FERRAFKA_KAFKA_BOOTSTRAP_SERVERS".to_string(),
                "env:9092".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ]);
        assert_eq!(c.kafka["bootstrap.servers"], "env:9092");
        assert_eq!(c.kafka.len(), 1);
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let mut c = Config::default();
        c.pause_timeout(Duration::from_millis(100))
            .pause_max_timeout(Duration::from_millis(500));
        let pauses: Vec<_> = (1..=5).map(|n| c.backoff().after(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        c.pause_with_exponential_backoff(false);
        assert_eq!(c.backoff().after(4).as_millis(), 100);
    }
}
