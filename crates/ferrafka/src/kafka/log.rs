//! librdkafka's reports in ferrafka's log: one line per event, a few per outage.
//!
//! librdkafka tells of one event up to three times: a connection failure is a log line (facility
//! `FAIL`) and, word for word, an error callback, and a consumer's error callback is followed by
//! the same error returned from its poll. The error callback is the copy that is written (the
//! `FAIL` line goes to debug, the poll loop drops its copy, see `ListenerContext::poll_error`).
//! What is written is summarised when it repeats ([`Repeats`]): once, then at most once per
//! [`REPEAT_INTERVAL`] with its count. "All brokers are down" becomes one plain line saying the
//! cluster is unreachable and that ferrafka keeps retrying, repeated per interval while it
//! lasts, and a listener says when the cluster is reachable again.
//!
//! Levels of librdkafka's own lines follow syslog's: emerg, alert, crit and err are errors,
//! warning warns, notice is info, info and debug are debug (librdkafka's info is chatty).
//! Every text is redacted with the client's properties before it is written.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tracing::Level;

use super::ConnectionFailure;
use super::repeats::{Occurrences, REPEAT_INTERVAL, Repeats, normalise};
use crate::secrets::redact_text;

/// Which client a line is about, under the field its other lines use.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who<'a> {
    /// A listener's consumer: `subscription_group = "consumer_group/name"`.
    SubscriptionGroup(&'a str),
    /// Another client (the producer, the admin client): `client = "name"`.
    Client(&'a str),
}

/// `tracing::$level!` with `who`'s field first (and a target, when given).
macro_rules! say {
    ($level:ident, target: $target:expr, $who:expr, $($rest:tt)+) => {
        match $who {
            Who::SubscriptionGroup(group) => {
                tracing::$level!(target: $target, subscription_group = %group, $($rest)+)
            }
            Who::Client(client) => tracing::$level!(target: $target, client = %client, $($rest)+),
        }
    };
    ($level:ident, $who:expr, $($rest:tt)+) => {
        match $who {
            Who::SubscriptionGroup(group) => tracing::$level!(subscription_group = %group, $($rest)+),
            Who::Client(client) => tracing::$level!(client = %client, $($rest)+),
        }
    };
}

/// The `tracing` level of a librdkafka log line of syslog level `level`.
pub(crate) fn level(level: RDKafkaLogLevel) -> Level {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => Level::ERROR,
        RDKafkaLogLevel::Warning => Level::WARN,
        RDKafkaLogLevel::Notice => Level::INFO,
        RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug => Level::DEBUG,
    }
}

/// Errors that say a broker cannot be reached; counted for the "unreachable" line.
fn is_connection_error(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
        )
    )
}

/// What one client's log remembers: recent errors, and whether its cluster is down.
#[derive(Debug, Default)]
pub(crate) struct ClientLog {
    /// The client's properties, to redact texts with.
    kafka: BTreeMap<String, String>,
    /// Whether an outage was reported and not yet seen to end; read without the lock.
    down: AtomicBool,
    state: Mutex<LogState>,
}

#[derive(Debug, Default)]
struct LogState {
    repeats: Repeats,
    /// Connection errors since the last "unreachable" line.
    connection_errors: u64,
    outage: Option<Outage>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    reported_at: Instant,
    /// The last connection error: a client that heard none for an interval got through (the
    /// producer and the admin client have no other sign of it).
    last_error_at: Instant,
}

impl ClientLog {
    /// The log of a client with the properties `kafka`.
    pub(crate) fn new(kafka: &BTreeMap<String, String>) -> Self {
        ClientLog {
            kafka: kafka.clone(),
            ..ClientLog::default()
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this occurrence of `kind` is written, and with what count.
    fn note(&self, kind: &str) -> Option<Occurrences> {
        self.lock().repeats.note(kind, Instant::now())
    }

    /// The brokers the client starts from, as the "unreachable" line names the cluster.
    fn bootstrap(&self) -> &str {
        self.kafka
            .get("bootstrap.servers")
            .or_else(|| self.kafka.get("metadata.broker.list"))
            .map_or("(bootstrap.servers not set)", String::as_str)
    }

    /// Writes one of librdkafka's log lines at the level it maps to ([`level`]); lines at warn
    /// and above are summarised when they repeat.
    pub(crate) fn forward(&self, who: Who<'_>, level: RDKafkaLogLevel, fac: &str, message: &str) {
        let mut level = self::level(level);
        // librdkafka sends each connection failure it logs at error level to the error callback
        // too, with the same text (`rd_kafka_broker_set_error`): that copy is the one written.
        if fac == "FAIL" && level == Level::ERROR {
            level = Level::DEBUG;
        }
        if level == Level::DEBUG && !tracing::enabled!(target: "librdkafka", Level::DEBUG) {
            return;
        }
        let message = redact_text(message, &self.kafka);
        let mut times = None;
        if level <= Level::WARN {
            match self.note(&format!("log|{fac}|{}", normalise(&message))) {
                Some(t) => times = Some(t),
                None => return,
            }
        }
        let repeated = times.and_then(|t| t.repeated());
        let times = times.map(|t| t.to_string()).unwrap_or_default();
        match level {
            Level::ERROR => {
                say!(error, target: "librdkafka", who, fac, repeated, "{message}{times}")
            }
            Level::WARN => say!(warn, target: "librdkafka", who, fac, repeated, "{message}{times}"),
            Level::INFO => say!(info, target: "librdkafka", who, fac, "{message}"),
            _ => say!(debug, target: "librdkafka", who, fac, "{message}"),
        }
    }

    /// Writes a configuration failure (rejected credentials, an untrusted certificate, ...),
    /// explained; `error` is the error that reported it, if one did.
    pub(crate) fn failure(
        &self,
        who: Who<'_>,
        error: Option<&KafkaError>,
        failure: &ConnectionFailure,
    ) {
        let text = failure.to_string();
        let Some(times) = self.note(&format!("failure|{text}")) else {
            return;
        };
        let error = error.map(ToString::to_string);
        let (error, repeated) = (error.as_deref(), times.repeated());
        say!(error, who, error, repeated, "{text}{times}");
    }

    /// Writes an error the error callback reported: "all brokers are down" as the cluster being
    /// unreachable, the rest with `explanation` (ferrafka's words, when librdkafka's do not say
    /// what to do) or as a "librdkafka error".
    pub(crate) fn error(
        &self,
        who: Who<'_>,
        error: &KafkaError,
        reason: &str,
        explanation: Option<&str>,
    ) {
        let code = error.rdkafka_error_code();
        let now = Instant::now();
        let mut state = self.lock();
        if is_connection_error(code) {
            state.connection_errors += 1;
            if let Some(outage) = &mut state.outage {
                if now.saturating_duration_since(outage.last_error_at) > REPEAT_INTERVAL {
                    // Quiet for an interval: that outage ended, unseen; this is another one.
                    state.outage = None;
                    self.down.store(false, Ordering::Release);
                } else {
                    outage.last_error_at = now;
                }
            }
        }
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.all_brokers_down(who, state, now);
            return;
        }
        let reason = redact_text(reason, &self.kafka);
        let kind = format!("error|{code:?}|{}", normalise(&reason));
        let Some(times) = state.repeats.note(&kind, now) else {
            return;
        };
        drop(state);
        let repeated = times.repeated();
        match explanation {
            Some(explanation) => {
                say!(error, who, %error, reason, repeated, "{explanation}{times}")
            }
            None => say!(error, who, %error, reason, repeated, "librdkafka error{times}"),
        }
    }

    /// Writes an error a consumer's poll returned that no error callback reported (a fetch
    /// error of a partition, a subscribed topic that does not exist).
    pub(crate) fn poll_error(&self, who: Who<'_>, error: &KafkaError, explanation: Option<&str>) {
        let text = redact_text(&error.to_string(), &self.kafka);
        let Some(times) = self.note(&format!("poll|{text}")) else {
            return;
        };
        let repeated = times.repeated();
        match explanation {
            Some(explanation) => say!(error, who, error = %text, repeated, "{explanation}{times}"),
            None => say!(warn, who, error = %text, repeated, "consumer error{times}"),
        }
    }

    /// Says the cluster is unreachable: at the first "all brokers are down", then once per
    /// interval while it lasts, with the connection errors since the line before.
    fn all_brokers_down(
        &self,
        who: Who<'_>,
        mut state: std::sync::MutexGuard<'_, LogState>,
        now: Instant,
    ) {
        let (since, over) = match &mut state.outage {
            None => {
                state.outage = Some(Outage {
                    since: now,
                    reported_at: now,
                    last_error_at: now,
                });
                self.down.store(true, Ordering::Release);
                (None, Duration::ZERO)
            }
            Some(outage)
                if now.saturating_duration_since(outage.reported_at) >= REPEAT_INTERVAL =>
            {
                let over = now.saturating_duration_since(outage.reported_at);
                outage.reported_at = now;
                (Some(now.saturating_duration_since(outage.since)), over)
            }
            Some(_) => return,
        };
        let connection_errors = std::mem::take(&mut state.connection_errors);
        drop(state);
        let bootstrap = redact_text(self.bootstrap(), &self.kafka);
        match since {
            None => say!(
                error, who, bootstrap_servers = %bootstrap, connection_errors,
                "the Kafka cluster at {bootstrap} is unreachable (all brokers are down); ferrafka \
                 keeps retrying and says so again every {} s while it lasts",
                REPEAT_INTERVAL.as_secs()
            ),
            Some(down_for) => say!(
                error, who, bootstrap_servers = %bootstrap, connection_errors,
                down_for_s = down_for.as_secs(),
                "the Kafka cluster at {bootstrap} is still unreachable after {} s; ferrafka keeps \
                 retrying ({connection_errors} connection errors in the last {} s)",
                down_for.as_secs(),
                over.as_secs()
            ),
        }
    }

    /// Whether an outage was reported and not yet seen to end.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The client reached its cluster again (a broker is up, partitions were assigned): ends a
    /// reported outage with a line saying so, and the next error is news again.
    pub(crate) fn reachable(&self, who: Who<'_>) {
        if !self.is_down() {
            return;
        }
        let mut state = self.lock();
        let Some(outage) = state.outage.take() else {
            return;
        };
        self.down.store(false, Ordering::Release);
        state.repeats.clear();
        state.connection_errors = 0;
        drop(state);
        let down_for = outage.since.elapsed().as_secs();
        let bootstrap = redact_text(self.bootstrap(), &self.kafka);
        say!(
            info, who, bootstrap_servers = %bootstrap, down_for_s = down_for,
            "the Kafka cluster at {bootstrap} is reachable again after {down_for} s"
        );
    }
}

/// Whether librdkafka's statistics report (JSON) shows a broker connection that is up;
/// librdkafka's internal broker does not count.
pub(crate) fn any_broker_up(statistics: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Statistics {
        #[serde(default)]
        brokers: BTreeMap<String, Broker>,
    }
    #[derive(serde::Deserialize)]
    struct Broker {
        #[serde(default)]
        source: String,
        #[serde(default)]
        state: String,
    }
    serde_json::from_slice::<Statistics>(statistics).is_ok_and(|s| {
        s.brokers
            .values()
            .any(|b| b.source != "internal" && b.state == "UP")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syslog_levels_map_to_tracing_levels() {
        use RDKafkaLogLevel::*;
        let mapped: Vec<_> = [Emerg, Alert, Critical, Error, Warning, Notice, Info, Debug]
            .into_iter()
            .map(level)
            .collect();
        assert_eq!(
            mapped,
            [
                Level::ERROR,
                Level::ERROR,
                Level::ERROR,
                Level::ERROR,
                Level::WARN,
                Level::INFO,
                Level::DEBUG,
                Level::DEBUG
            ]
        );
    }

    #[test]
    fn statistics_tell_whether_a_real_broker_is_up() {
        let down = br#"{"name":"c#consumer-1","brokers":{
            "127.0.0.1:1/bootstrap":{"name":"127.0.0.1:1/bootstrap","source":"configured","state":"TRY_CONNECT"},
            ":0/internal":{"name":":0/internal","source":"internal","state":"UP"}}}"#;
        assert!(!any_broker_up(down));
        let up = br#"{"brokers":{"127.0.0.1:9092/1":{"source":"learned","state":"UP"}}}"#;
        assert!(any_broker_up(up));
        assert!(!any_broker_up(b"not json"));
    }

    /// What `f` logs, as text lines without colours.
    fn captured(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        #[derive(Clone)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture(Arc::default());
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    fn down_cluster() -> ClientLog {
        ClientLog::new(&BTreeMap::from([
            ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
            ("sasl.password".to_string(), "hunter2".to_string()),
        ]))
    }

    const REFUSED: &str = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: \
                           Connection refused (after 0ms in state CONNECT)";

    /// A broker that is down, as librdkafka 2.12 reports it many times a second: its `FAIL`
    /// log line, the same text through the error callback, and "all brokers are down". Two
    /// lines are written: the failure once, and that the cluster is unreachable; the rest is
    /// counted for the next line, an interval later. Reaching the cluster ends the outage with
    /// a line, and the next error is news again.
    #[test]
    fn a_down_cluster_is_said_to_be_unreachable_once_not_with_every_report() {
        let log = down_cluster();
        let who = Who::SubscriptionGroup("g/default");
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        let refused = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        let lines = captured(|| {
            for _ in 0..100 {
                let log_line = format!("[thrd:127.0.0.1:1/bootstrap]: {REFUSED}");
                log.forward(who, RDKafkaLogLevel::Error, "FAIL", &log_line);
                log.error(who, &refused, REFUSED, None);
                log.error(who, &down, "1/1 brokers are down", None);
            }
        });
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("librdkafka error"), "{}", lines[0]);
        assert!(lines[0].contains("Connection refused"), "{}", lines[0]);
        assert!(
            lines[1].contains(
                "the Kafka cluster at 127.0.0.1:1 is unreachable (all brokers are down); \
                 ferrafka keeps retrying"
            ),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].contains("subscription_group=g/default"),
            "{}",
            lines[1]
        );
        {
            let state = log.lock();
            // 99 of each kind after the report.
            assert_eq!(state.connection_errors, 198);
            assert_eq!(state.repeats.held(), 99);
        }
        assert!(log.is_down());
        let lines = captured(|| log.reachable(who));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("the Kafka cluster at 127.0.0.1:1 is reachable again after 0 s"),
            "{}",
            lines[0]
        );
        assert!(!log.is_down());
        let lines = captured(|| log.error(who, &refused, REFUSED, None));
        assert_eq!(
            lines.len(),
            1,
            "after the outage an error is news: {lines:#?}"
        );
        assert!(captured(|| log.reachable(who)).is_empty());
    }

    /// The "still unreachable" line, an interval after the first, counts the connection
    /// errors in between.
    #[test]
    fn a_lasting_outage_is_repeated_once_per_interval_with_the_count() {
        let log = down_cluster();
        let who = Who::Client("admin");
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        captured(|| log.error(who, &down, "1/1 brokers are down", None));
        for _ in 0..41 {
            log.error(who, &down, "1/1 brokers are down", None);
        }
        // As if the first report was an interval ago.
        let past = Instant::now() - REPEAT_INTERVAL - Duration::from_secs(5);
        if let Some(outage) = log.lock().outage.as_mut() {
            outage.since = past;
            outage.reported_at = past;
        }
        let lines = captured(|| log.error(who, &down, "1/1 brokers are down", None));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains(
                "the Kafka cluster at 127.0.0.1:1 is still unreachable after 35 s; ferrafka \
                 keeps retrying (42 connection errors in the last 35 s)"
            ),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("client=admin"), "{}", lines[0]);

        // No connection error for an interval: the client got through unseen, and the next
        // "all brokers are down" is a new outage.
        if let Some(outage) = log.lock().outage.as_mut() {
            outage.last_error_at = past;
        }
        let lines = captured(|| log.error(who, &down, "1/1 brokers are down", None));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("is unreachable (all brokers are down)"),
            "{}",
            lines[0]
        );
    }

    /// Repeated errors other than an outage carry their count once an interval passed; texts
    /// are redacted with the client's properties, and librdkafka's warnings are summarised too.
    #[test]
    fn repeated_errors_and_warnings_are_summarised_and_redacted() {
        let log = down_cluster();
        let who = Who::Client("producer");
        let error = KafkaError::Global(RDKafkaErrorCode::Authentication);
        let lines = captured(|| {
            for _ in 0..10 {
                log.error(who, &error, "login with hunter2 failed", None);
                log.forward(
                    who,
                    RDKafkaLogLevel::Warning,
                    "CONFWARN",
                    "[thrd:app]: odd config",
                );
                log.forward(who, RDKafkaLogLevel::Notice, "GROUP", "joined");
            }
        });
        let errors = lines
            .iter()
            .filter(|l| l.contains("librdkafka error"))
            .count();
        let warnings = lines.iter().filter(|l| l.contains("odd config")).count();
        let notices = lines.iter().filter(|l| l.contains("joined")).count();
        assert_eq!((errors, warnings, notices), (1, 1, 10), "{lines:#?}");
        assert!(lines.iter().all(|l| !l.contains("hunter2")), "{lines:#?}");
        let past = Instant::now() - REPEAT_INTERVAL;
        log.lock().repeats.age_all(past);
        let lines = captured(|| log.error(who, &error, "login with hunter2 failed", None));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("librdkafka error (repeated 10 times in the last 30 s)"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("repeated=10"), "{}", lines[0]);
    }
}
