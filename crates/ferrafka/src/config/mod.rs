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
//!    change without recompiling; `FERRAFKA_LOG_FORMAT` sets `log_format`.

mod environment;
mod log_format;
mod problem;
mod settings;

use std::time::{Duration, Instant};

pub use self::environment::{Environment, InitialOffset, Source};
pub use self::log_format::{LOG_FORMAT_VAR, LogFormat};
pub use self::problem::{ConfigError, Problem};
pub use self::settings::Config;
pub use crate::secrets::{is_sensitive, redact};

/// Prefix of environment variables that set librdkafka properties.
pub const KAFKA_ENV_PREFIX: &str = "FERRAFKA_KAFKA_";

/// Environment variable that names the environment.
pub const ENV_VAR: &str = "FERRAFKA_ENV";

/// How long a partition pauses after consecutive failures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backoff {
    pub(crate) first: Duration,
    pub(crate) max: Duration,
    pub(crate) exponential: bool,
}

/// The longest a duration setting may be. Longer is a mistake (a unit mix-up, `Duration::MAX`
/// for "never"), and deadlines computed from it must not overflow the clock.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);
/// `at + wait`, or a moment far beyond any deadline of a running process when that does not
/// fit in an `Instant` (boot validation bounds the duration settings; this keeps any other
/// duration from panicking the clock arithmetic).
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    at.checked_add(wait)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}

/// The shortest `commit_interval`.
const MIN_COMMIT_INTERVAL: Duration = Duration::from_millis(10);

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

    // The setters of the plain settings (concurrency, max_messages, …) are generated from the
    // table in `settings.rs`; the ones below have special behaviour, listed there.

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

    /// Declares the partitioner the organisation's producers use, by librdkafka's name for it
    /// (`murmur2_random` for Java's, the one ferrafka's producer uses by default;
    /// `consistent_random` for librdkafka's own default, which the confluent-kafka clients and
    /// Karafka's WaterDrop use). `doctor` reports a producer whose `partitioner` differs (FD023):
    /// producers that hash keys differently put the same key on different partitions. See
    /// [`guide::partitioning`](crate::guide::partitioning).
    pub fn expected_partitioner(&mut self, name: impl Into<String>) -> &mut Self {
        self.expected_partitioner = Some(name.into());
        self.record("expected_partitioner");
        self
    }

    /// Sets the base of the transactional producers' `transactional.id`s: the process runs
    /// one producer per `concurrency` slot, `<base>-0`, `<base>-1`, …. It must stay the same
    /// across restarts of a process (a restarted process then fences its killed predecessor
    /// and aborts its open transactions at once) and differ between the processes of a fleet
    /// (otherwise they fence each other). Needed by transactional routes; see
    /// [`guide::transactions`](crate::guide::transactions).
    pub fn transactional_id(&mut self, base: impl Into<String>) -> &mut Self {
        self.transactional_id = Some(base.into());
        self.record("transactional_id");
        self
    }

    /// The id of the default consumer group.
    pub fn default_group_id(&self) -> &str {
        self.group_id.as_deref().unwrap_or(&self.client_id)
    }

    /// Applies `FERRAFKA_KAFKA_*` variables from `vars` over the kafka properties; they win
    /// over every other layer, per-topic overrides included. `FERRAFKA_LOG_FORMAT` sets
    /// `log_format` (a value that names no format is reported by `check`; an empty one is
    /// ignored). (`FERRAFKA_ENV` is read earlier, before `setup`.)
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
            } else if name == LOG_FORMAT_VAR && !value.trim().is_empty() {
                match LogFormat::from_name(&value) {
                    Some(format) => {
                        self.layer = Source::EnvVar(name);
                        self.log_format(format);
                    }
                    None => self.unknown_log_format = Some(value),
                }
            }
        }
        self.layer = previous;
    }

    /// Duration settings above [`MAX_DURATION`].
    /// The HTTP endpoint's settings: a bind address without a port serves nothing, and a
    /// stall must take longer than a batch may legitimately wait to fill.
    fn check_http(&self, problems: &mut Vec<Problem>) {
        if self.http_port == 0 && !self.http_bind.is_loopback() {
            problems.push(Problem::new(
                "http_bind",
                &self.http_bind.to_string(),
                "is set, but http_port is 0, which serves nothing",
                "set `c.http_port(9394)` too, or leave http_bind at its default",
            ));
        }
        if self.stall_timeout <= self.max_wait_time {
            problems.push(Problem::new(
                "stall_timeout",
                &format!("{:?}", self.stall_timeout),
                &format!(
                    "needs to be longer than max_wait_time ({:?}): messages wait that long for \
                     their batch to fill, which is not a stall",
                    self.max_wait_time
                ),
                "set `c.stall_timeout(Duration::from_secs(120))`",
            ));
        }
    }

    fn check_durations(&self, problems: &mut Vec<Problem>) {
        let settings = [
            ("max_wait_time", self.max_wait_time),
            ("shutdown_timeout", self.shutdown_timeout),
            ("revocation_timeout", self.revocation_timeout),
            ("pause_timeout", self.pause_timeout),
            ("pause_max_timeout", self.pause_max_timeout),
            ("commit_interval", self.commit_interval),
            ("stall_timeout", self.stall_timeout),
        ];
        for (name, value) in settings {
            if value > MAX_DURATION {
                problems.push(Problem::new(
                    name,
                    &format!("{value:?}"),
                    &format!(
                        "needs to be at most 24 hours ({} s)",
                        MAX_DURATION.as_secs()
                    ),
                    &format!("set `c.{name}(Duration::from_secs(n))` with n <= 86400"),
                ));
            }
        }
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
        self.check_durations(problems);
        self.check_http(problems);
        if let Some(value) = &self.unknown_log_format {
            problems.push(Problem::new(
                "log_format",
                value,
                &format!("needs to be `text` or `json` (the value of {LOG_FORMAT_VAR})"),
                &format!(
                    "set {LOG_FORMAT_VAR}=json for one JSON object per line, or \
                     {LOG_FORMAT_VAR}=text, or unset it to use the app's setting"
                ),
            ));
        }
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
        if self.commit_interval < MIN_COMMIT_INTERVAL {
            problems.push(Problem::new(
                "commit_interval",
                &format!("{:?}", self.commit_interval),
                "needs to be at least 10 ms: every commit is a request to the group coordinator",
                "set `c.commit_interval(Duration::from_millis(n))` with n >= 10, e.g. 1000",
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
        if let Some(name) = &self.expected_partitioner
            && crate::kafka::partitioners::find(name).is_none()
        {
            problems.push(Problem::new(
                "expected_partitioner",
                name,
                &format!(
                    "needs to name one of librdkafka's partitioners: {}",
                    crate::kafka::partitioners::names()
                ),
                "set `c.expected_partitioner(\"murmur2_random\")` (Java's, the default of \
                 ferrafka's producer) or the name your other producers are configured with",
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
    fn an_http_bind_without_a_port_and_a_stall_shorter_than_a_batch_wait_are_refused() {
        let mut c = Config::default();
        c.http_bind([0, 0, 0, 0].into())
            .stall_timeout(Duration::from_millis(500));
        let mut problems = Vec::new();
        c.check(&mut problems);
        let text = ConfigError { problems }.to_string();
        assert!(text.contains("http_bind"), "{text}");
        assert!(text.contains("0.0.0.0"), "{text}");
        assert!(text.contains("c.http_port("), "{text}");
        assert!(text.contains("stall_timeout"), "{text}");
        assert!(text.contains("longer than max_wait_time (1s)"), "{text}");
        c.http_port(9394).stall_timeout(Duration::from_secs(2));
        let mut problems = Vec::new();
        c.check(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn durations_past_a_day_are_refused_by_name_with_the_limit() {
        let mut c = Config::default();
        c.shutdown_timeout(Duration::MAX)
            .revocation_timeout(Duration::from_secs(86_401))
            .pause_timeout(Duration::MAX)
            .pause_max_timeout(Duration::MAX)
            .stall_timeout(Duration::MAX)
            .max_wait_time(Duration::from_secs(86_400));
        let mut problems = Vec::new();
        c.check(&mut problems);
        let settings: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                "shutdown_timeout",
                "revocation_timeout",
                "pause_timeout",
                "pause_max_timeout",
                "stall_timeout"
            ]
        );
        let text = ConfigError { problems }.to_string();
        assert!(
            text.contains("needs to be at most 24 hours (86400 s)"),
            "{text}"
        );
        assert!(
            text.contains("c.revocation_timeout(Duration::from_secs(n))"),
            "{text}"
        );
    }

    #[test]
    fn an_expected_partitioner_librdkafka_does_not_know_is_refused() {
        let mut c = Config::default();
        c.expected_partitioner("murmur2-random");
        let mut problems = Vec::new();
        c.check(&mut problems);
        let text = ConfigError { problems }.to_string();
        assert!(
            text.contains("expected_partitioner = \"murmur2-random\": needs to name one of"),
            "{text}"
        );
        assert!(
            text.contains("consistent_random, murmur2, murmur2_random"),
            "{text}"
        );
        assert!(
            text.contains("c.expected_partitioner(\"murmur2_random\")"),
            "{text}"
        );
        for name in ["murmur2_random", "consistent_random", "random"] {
            c.expected_partitioner(name);
            let mut problems = Vec::new();
            c.check(&mut problems);
            assert!(problems.is_empty(), "{name}: {problems:?}");
        }
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
    fn the_log_format_variable_overrides_the_setting_and_a_wrong_value_is_refused() {
        let mut c = Config::default();
        c.log_format(LogFormat::Text);
        c.apply_env([(LOG_FORMAT_VAR.to_string(), "JSON".to_string())]);
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(
            c.source("log_format"),
            Source::EnvVar(LOG_FORMAT_VAR.into())
        );
        let mut problems = Vec::new();
        c.check(&mut problems);
        assert!(problems.is_empty(), "{problems:?}");

        let mut c = Config::default();
        c.log_format(LogFormat::Json);
        c.apply_env([(LOG_FORMAT_VAR.to_string(), "logfmt".to_string())]);
        assert_eq!(c.log_format, LogFormat::Json, "the setting stays");
        c.check(&mut problems);
        let text = ConfigError { problems }.to_string();
        assert!(
            text.contains(
                "log_format = \"logfmt\": needs to be `text` or `json` (the value of \
                 FERRAFKA_LOG_FORMAT) (fix: set FERRAFKA_LOG_FORMAT=json"
            ),
            "{text}"
        );

        let mut c = Config::default();
        c.apply_env([(LOG_FORMAT_VAR.to_string(), " ".to_string())]);
        let mut problems = Vec::new();
        c.check(&mut problems);
        assert!(problems.is_empty(), "an empty value is unset: {problems:?}");
        assert_eq!(c.log_format, LogFormat::Text);
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
