//! App-wide settings, their defaults and their validation.
//!
//! Settings are set in the app's `setup` closure and may be overridden per topic in the routes.
//! librdkafka properties can also come from the environment: `FERRAFKA_KAFKA_BOOTSTRAP_SERVERS`
//! sets `bootstrap.servers` (the part after `FERRAFKA_KAFKA_`, lowercased, `_` read as `.`), so
//! brokers and credentials change without recompiling. Environment values win over code.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

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

/// The app-wide settings. Defaults:
///
/// | setting | default | what it does |
/// |---|---|---|
/// | `client_id` | `"ferrafka"` | `client.id` of every client, and the default group id |
/// | `group_id` | the client id | id of the default consumer group |
/// | `concurrency` | 5 | batches processed in parallel, across all partitions |
/// | `max_messages` | 100 | most messages in one batch |
/// | `max_wait_time` | 1 s | longest a buffered message waits for its batch to fill |
/// | `shutdown_timeout` | 60 s | how long in-flight batches may finish after a stop signal |
/// | `initial_offset` | earliest | where a group without committed offsets starts |
/// | `pause_timeout` | 1 s | first pause of a partition after a failed batch |
/// | `pause_max_timeout` | 30 s | the longest pause after repeated failures |
/// | `pause_with_exponential_backoff` | true | double the pause after each failure |
/// | `kafka` | `bootstrap.servers=127.0.0.1:9092` | librdkafka properties of every client |
/// | `strict_declarative_topics` | on in production | every routed topic needs a declaration |
#[derive(Debug, Clone)]
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
    pub(crate) initial_offset: InitialOffset,
    pub(crate) pause_timeout: Duration,
    pub(crate) pause_max_timeout: Duration,
    pub(crate) pause_with_exponential_backoff: bool,
    pub(crate) strict_declarative_topics: Option<bool>,
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
            initial_offset: InitialOffset::Earliest,
            pause_timeout: Duration::from_secs(1),
            pause_max_timeout: Duration::from_secs(30),
            pause_with_exponential_backoff: true,
            strict_declarative_topics: None,
        }
    }
}

impl Config {
    /// The environment the app runs in (from `FERRAFKA_ENV`).
    pub fn env(&self) -> &Environment {
        &self.env
    }

    /// Sets `client.id` of every client (and the default consumer group id).
    pub fn client_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.client_id = id.into();
        self
    }

    /// Sets the id of the default consumer group (routes outside `consumer_group` blocks).
    pub fn group_id(&mut self, id: impl Into<String>) -> &mut Self {
        self.group_id = Some(id.into());
        self
    }

    /// Sets a librdkafka property for every client (consumers, producer, admin).
    pub fn kafka(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.kafka.insert(name.into(), value.into());
        self
    }

    /// Sets a librdkafka property for the producer only (e.g. `compression.codec`, `linger.ms`).
    pub fn producer_kafka(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> &mut Self {
        self.producer_kafka.insert(name.into(), value.into());
        self
    }

    /// Sets how many batches run at once across all partitions of the process.
    pub fn concurrency(&mut self, workers: usize) -> &mut Self {
        self.concurrency = workers;
        self
    }

    /// Sets the default most messages per batch.
    pub fn max_messages(&mut self, n: usize) -> &mut Self {
        self.max_messages = n;
        self
    }

    /// Sets the default longest wait for a batch to fill.
    pub fn max_wait_time(&mut self, wait: Duration) -> &mut Self {
        self.max_wait_time = wait;
        self
    }

    /// Sets how long in-flight batches may take to finish once shutdown starts.
    pub fn shutdown_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Sets where groups without committed offsets start.
    pub fn initial_offset(&mut self, offset: InitialOffset) -> &mut Self {
        self.initial_offset = offset;
        self
    }

    /// Sets the first pause after a failed batch.
    pub fn pause_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pause_timeout = timeout;
        self
    }

    /// Sets the longest pause after repeated failures.
    pub fn pause_max_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.pause_max_timeout = timeout;
        self
    }

    /// Turns doubling of the pause after each failure on or off.
    pub fn pause_with_exponential_backoff(&mut self, on: bool) -> &mut Self {
        self.pause_with_exponential_backoff = on;
        self
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

    /// The id of the default consumer group.
    pub fn default_group_id(&self) -> &str {
        self.group_id.as_deref().unwrap_or(&self.client_id)
    }

    /// Applies `FERRAFKA_KAFKA_*` variables from `vars` over the kafka properties.
    pub(crate) fn apply_env<I: IntoIterator<Item = (String, String)>>(&mut self, vars: I) {
        for (name, value) in vars {
            if name == ENV_VAR {
                self.env = Environment::from_name(&value);
                continue;
            }
            if let Some(property) = name.strip_prefix(KAFKA_ENV_PREFIX) {
                let property = property.to_ascii_lowercase().replace('_', ".");
                if !property.is_empty() {
                    self.kafka.insert(property, value);
                }
            }
        }
    }

    /// The pause before retry number `failures` (1 for the first failure).
    pub(crate) fn pause_for(&self, failures: u32) -> Duration {
        if !self.pause_with_exponential_backoff {
            return self.pause_timeout;
        }
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
        self.pause_timeout
            .saturating_mul(factor)
            .min(self.pause_max_timeout)
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
        for (name, value) in &self.kafka {
            if let Some((expected, why)) = FRAMEWORK_OWNED.iter().find_map(|(n, v, why)| {
                (*n == name.as_str() && *v != value.as_str()).then_some((*v, *why))
            }) {
                problems.push(Problem::new(
                    &format!("kafka.{name}"),
                    &redact(name, value),
                    &format!("needs to be {expected}: {why}"),
                    &format!("remove `{name}` from the kafka settings"),
                ));
            }
        }
    }
}

/// librdkafka properties whose value ferrafka depends on, with the reason.
const FRAMEWORK_OWNED: &[(&str, &str, &str)] = &[
    (
        "enable.auto.offset.store",
        "false",
        "ferrafka stores offsets only after a batch succeeded; automatic storing would commit \
         messages that were never processed",
    ),
    (
        "enable.auto.commit",
        "true",
        "ferrafka relies on librdkafka's periodic asynchronous commit of the offsets it stored",
    ),
];

/// librdkafka properties that only consumers understand, kept away from the producer.
pub(crate) const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "isolation.level",
    "check.crcs",
    "allow.auto.create.topics",
];

/// True for properties whose values must never be shown: passwords, keys, tokens.
pub fn is_sensitive(property: &str) -> bool {
    let p = property.to_ascii_lowercase();
    p.contains("password")
        || p.contains("secret")
        || p.contains("token")
        || p == "sasl.oauthbearer.config"
        || p == "ssl.key.pem"
        || p == "ssl_key"
        || p.ends_with(".key.pem")
}

/// The value as it may be displayed: `[redacted]` for sensitive properties.
pub fn redact(property: &str, value: &str) -> String {
    if is_sensitive(property) {
        "[redacted]".to_string()
    } else {
        value.to_string()
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
        c.concurrency(0)
            .max_messages(0)
            .kafka("enable.auto.offset.store", "true");
        c.max_wait_time(Duration::from_secs(90));
        let mut problems = Vec::new();
        c.check(&mut problems);
        let settings: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                "concurrency",
                "max_messages",
                "max_wait_time",
                "kafka.enable.auto.offset.store"
            ]
        );
        let text = ConfigError { problems }.to_string();
        assert!(
            text.starts_with("invalid configuration (4 problems):"),
            "{text}"
        );
        assert!(text.contains("needs to be false"), "{text}");
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
        let pauses: Vec<_> = (1..=5).map(|n| c.pause_for(n).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        c.pause_with_exponential_backoff(false);
        assert_eq!(c.pause_for(4).as_millis(), 100);
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(redact("sasl.password", "hunter2"), "[redacted]");
        assert_eq!(redact("ssl.key.password", "x"), "[redacted]");
        assert_eq!(redact("sasl.oauthbearer.client.secret", "x"), "[redacted]");
        assert_eq!(redact("bootstrap.servers", "b:9092"), "b:9092");
    }
}
