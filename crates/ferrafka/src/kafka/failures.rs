//! Connection failures that are the client's configuration, not the network: credentials the
//! broker rejects, a broker certificate the client does not trust, a client certificate the
//! broker refuses, a `security.protocol` the listener does not speak. They never heal by
//! retrying, and librdkafka's words for them (`SASL authentication error ...`, `SSL handshake
//! failed: ... certificate verify failed`, `ssl/tls alert bad certificate`) do not say which
//! setting to change, so they are recognised here and explained with the broker, the
//! protocol, the mechanism and the settings to fix. Nothing here shows a secret's value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::log::{ClientLog, Who};
use crate::config::KAFKA_ENV_PREFIX;

/// A connection refused because of the client's security settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFailure {
    /// The broker as librdkafka names it: `host:port`.
    pub broker: String,
    /// The client's `security.protocol`, upper case (`SASL_SSL`, `SSL`, ...).
    pub protocol: String,
    /// What was refused.
    pub kind: FailureKind,
}

/// What a broker or the client refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The broker rejected the SASL credentials for this mechanism.
    Credentials {
        /// The SASL mechanism, e.g. `SCRAM-SHA-512`.
        mechanism: String,
    },
    /// The client does not trust the broker's TLS certificate.
    UntrustedBroker {
        /// The client's `ssl.ca.location`, when set.
        ca_location: Option<String>,
    },
    /// The broker requires a client certificate (mutual TLS) and refused this client's, or got
    /// none.
    ClientCertificateRefused,
    /// The listener seems to speak another security protocol than the client's: it closed the
    /// connection while the client asked for its API versions, which is what a TLS or SASL
    /// listener does to a plaintext client (and, once, a broker that restarts).
    ProtocolMismatch,
}

/// `FERRAFKA_KAFKA_X_Y` for the property `x.y`: where a deployment sets it.
fn env_var(property: &str) -> String {
    format!(
        "{KAFKA_ENV_PREFIX}{}",
        property.replace('.', "_").to_ascii_uppercase()
    )
}

impl fmt::Display for ConnectionFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (broker, protocol) = (&self.broker, &self.protocol);
        match &self.kind {
            FailureKind::Credentials { mechanism } => write!(
                f,
                "the broker at {broker} (listener with security.protocol {protocol}) rejected \
                 this client's SASL {mechanism} credentials; check sasl.username and \
                 sasl.password ({}, {}) and that the user exists for {mechanism} on the cluster",
                env_var("sasl.username"),
                env_var("sasl.password"),
            ),
            FailureKind::UntrustedBroker { ca_location } => write!(
                f,
                "the TLS certificate of the broker at {broker} (security.protocol {protocol}) is \
                 not trusted: ssl.ca.location is {}; point ssl.ca.location ({}) at the CA \
                 certificate that signed the broker's certificate",
                ca_location
                    .as_deref()
                    .map_or("not set (the system's CA store)".to_string(), |l| format!(
                        "{l:?}"
                    )),
                env_var("ssl.ca.location"),
            ),
            FailureKind::ClientCertificateRefused => write!(
                f,
                "the broker at {broker} (security.protocol {protocol}) requires a client \
                 certificate (mutual TLS) and refused this client's: set \
                 ssl.certificate.location and ssl.key.location ({}, {}) to a certificate signed \
                 by a CA the broker trusts",
                env_var("ssl.certificate.location"),
                env_var("ssl.key.location"),
            ),
            FailureKind::ProtocolMismatch => write!(
                f,
                "the listener at {broker} does not speak security.protocol {protocol}: it closes \
                 the connection while the client asks for its API versions, as a TLS or SASL \
                 listener does to a plaintext client; set security.protocol ({}) to the \
                 protocol of the listener bootstrap.servers names",
                env_var("security.protocol"),
            ),
        }
    }
}

/// The failure an error callback (`code`, librdkafka's `reason`) or log line reports, if it
/// is one of the configuration failures above. `kafka` is the client's properties.
pub(crate) fn classify(
    code: Option<RDKafkaErrorCode>,
    reason: &str,
    kafka: &BTreeMap<String, String>,
) -> Option<ConnectionFailure> {
    let protocol = kafka
        .get("security.protocol")
        .map_or("PLAINTEXT".into(), |p| p.to_ascii_uppercase());
    let kind = if code == Some(RDKafkaErrorCode::Authentication)
        && reason.contains("SASL authentication error")
    {
        FailureKind::Credentials {
            mechanism: mechanism(reason, kafka),
        }
    } else if reason.contains("certificate verify failed") {
        FailureKind::UntrustedBroker {
            ca_location: kafka.get("ssl.ca.location").cloned(),
        }
    } else if reason.contains("alert bad certificate")
        || reason.contains("alert certificate required")
    {
        FailureKind::ClientCertificateRefused
    } else if speaks_another_protocol(reason, &protocol) {
        FailureKind::ProtocolMismatch
    } else {
        return None;
    };
    Some(ConnectionFailure {
        broker: broker(reason),
        protocol,
        kind,
    })
}

/// librdkafka's signs of a client whose `protocol` the listener does not speak: its own hints,
/// and a plaintext client disconnected while it asks the broker's API versions (what a TLS
/// listener does to it; librdkafka 2.12 logs only `Disconnected: connection closed by peer ...
/// in state APIVERSION_QUERY` then, and its source names this the typical cause).
fn speaks_another_protocol(reason: &str, protocol: &str) -> bool {
    reason.contains("incorrect security.protocol configuration")
        || reason.contains("verify that security.protocol is correctly configured")
        || (reason.contains("Disconnected")
            && reason.contains("in state APIVERSION_QUERY")
            && matches!(protocol, "PLAINTEXT" | "SASL_PLAINTEXT"))
}

/// `host:port` from librdkafka's `sasl_ssl://host:port/bootstrap: ...` prefix (or, in log
/// lines, `[thrd:...]: host:port/bootstrap: ...`); `?` when there is none.
fn broker(reason: &str) -> String {
    let rest = match reason.split_once("://") {
        Some((_, rest)) => rest,
        None => reason.split_once("]: ").map_or(reason, |(_, rest)| rest),
    };
    rest.split(['/', ' '])
        .next()
        .filter(|address| address.contains(':'))
        .unwrap_or("?")
        .to_string()
}

/// The mechanism librdkafka names (`... with SASL mechanism SCRAM-SHA-512 ...`), else the
/// client's `sasl.mechanisms`.
fn mechanism(reason: &str, kafka: &BTreeMap<String, String>) -> String {
    reason
        .split("SASL mechanism ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .or_else(|| kafka.get("sasl.mechanisms").cloned())
        .or_else(|| kafka.get("sasl.mechanism").cloned())
        .unwrap_or_else(|| "GSSAPI".into())
}

/// The last configuration failure a client reported, kept for the code that waits on it (a
/// metadata request that timed out says only "transport failure"); it carries the client's
/// [`ClientLog`], which every context that watches failures writes through.
#[derive(Debug, Default)]
pub(crate) struct FailureWatch {
    kafka: BTreeMap<String, String>,
    last: Mutex<Option<ConnectionFailure>>,
    /// How the client's reports are written.
    pub(crate) log: ClientLog,
}

impl FailureWatch {
    /// Watches a client with the properties `kafka`.
    pub(crate) fn new(kafka: &BTreeMap<String, String>) -> Self {
        FailureWatch {
            kafka: kafka.clone(),
            last: Mutex::new(None),
            log: ClientLog::new(kafka),
        }
    }

    /// Records what an error callback reported, when it is a configuration failure; returns
    /// it.
    pub(crate) fn on_error(&self, error: &KafkaError, reason: &str) -> Option<ConnectionFailure> {
        self.record(classify(error.rdkafka_error_code(), reason, &self.kafka))
    }

    /// Records what a log line reported (librdkafka logs a protocol mismatch without an error).
    pub(crate) fn on_log(&self, message: &str) -> Option<ConnectionFailure> {
        self.record(classify(None, message, &self.kafka))
    }

    fn record(&self, failure: Option<ConnectionFailure>) -> Option<ConnectionFailure> {
        if let Some(f) = &failure {
            *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(f.clone());
        }
        failure
    }

    /// The last failure recorded, if any.
    pub(crate) fn last(&self) -> Option<ConnectionFailure> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The context of a client whose configuration failures someone waits on: records them in its
/// watch, logs them explained, and writes librdkafka's log lines and errors through the
/// watch's [`ClientLog`] (levels mapped, repeats summarised).
pub(crate) struct WatchedContext {
    /// The client's name in logs.
    pub(crate) client: String,
    /// Where its failures are kept.
    pub(crate) watch: std::sync::Arc<FailureWatch>,
}

impl rdkafka::ClientContext for WatchedContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.watch.on_log(log_message);
        let who = Who::Client(&self.client);
        self.watch.log.forward(who, level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let who = Who::Client(&self.client);
        match self.watch.on_error(&error, reason) {
            Some(failure) => self.watch.log.failure(who, Some(&error), &failure),
            None => self.watch.log.error(who, &error, reason, None),
        }
    }
}

impl rdkafka::consumer::ConsumerContext for WatchedContext {}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The reasons below are librdkafka 2.12's, as seen against Kafka 4.4.0.
    #[test]
    fn rejected_credentials_name_the_broker_protocol_mechanism_and_settings() {
        let reason = "sasl_ssl://127.0.0.1:35015/bootstrap: SASL authentication error: \
                      Authentication failed during authentication due to invalid credentials \
                      with SASL mechanism SCRAM-SHA-512 (after 321ms in state AUTH_REQ)";
        let props = kafka(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.password", "hunter2"),
        ]);
        let failure =
            classify(Some(RDKafkaErrorCode::Authentication), reason, &props).expect("recognised");
        let text = failure.to_string();
        for part in [
            "127.0.0.1:35015",
            "SASL_SSL",
            "SCRAM-SHA-512",
            "FERRAFKA_KAFKA_SASL_PASSWORD",
        ] {
            assert!(text.contains(part), "{part} missing from {text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn tls_failures_say_which_side_refused() {
        let untrusted = "sasl_ssl://127.0.0.1:35015/bootstrap: SSL handshake failed: \
             error:0A000086:SSL routines::certificate verify failed: broker certificate could \
             not be verified (after 10ms in state SSL_HANDSHAKE)";
        let props = kafka(&[("security.protocol", "SASL_SSL")]);
        let f = classify(Some(RDKafkaErrorCode::SSL), untrusted, &props).unwrap();
        assert_eq!(f.kind, FailureKind::UntrustedBroker { ca_location: None });
        assert!(f.to_string().contains("FERRAFKA_KAFKA_SSL_CA_LOCATION"));
        let refused = "ssl://127.0.0.1:37623/bootstrap: Receive failed: error:0A000412:SSL \
             routines::ssl/tls alert bad certificate: SSL alert number 42 (after 0ms in state \
             APIVERSION_QUERY)";
        let f = classify(
            Some(RDKafkaErrorCode::BrokerTransportFailure),
            refused,
            &props,
        )
        .unwrap();
        assert_eq!(f.kind, FailureKind::ClientCertificateRefused);
        assert_eq!(f.broker, "127.0.0.1:37623");
    }

    #[test]
    fn a_protocol_mismatch_is_read_from_the_log_and_other_errors_are_not_claimed() {
        let log = "[thrd:127.0.0.1:35015/bootstrap]: 127.0.0.1:35015/bootstrap: Disconnected \
                   while requesting ApiVersion: might be caused by incorrect security.protocol \
                   configuration (connecting to a SSL listener?) or broker version is < 0.10";
        let watch = FailureWatch::new(&BTreeMap::new());
        let failure = watch.on_log(log).expect("recognised");
        assert_eq!(failure.kind, FailureKind::ProtocolMismatch);
        assert_eq!(failure.broker, "127.0.0.1:35015");
        assert!(watch.last().is_some());
        // What librdkafka 2.12 logs for a plaintext client on a TLS listener of Kafka 4.4.
        let seen = "[thrd:127.0.0.1:51145/bootstrap]: 127.0.0.1:51145/bootstrap: Disconnected: \
                    connection closed by peer: receive 0 after POLLIN (after 1ms in state \
                    APIVERSION_QUERY)";
        assert!(classify(None, seen, &BTreeMap::new()).is_some());
        let tls = kafka(&[("security.protocol", "ssl")]);
        assert!(
            classify(None, seen, &tls).is_none(),
            "a TLS client is not told to use TLS"
        );
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert!(
            FailureWatch::new(&BTreeMap::new())
                .on_error(&down, "1/1 brokers are down")
                .is_none()
        );
    }
}
