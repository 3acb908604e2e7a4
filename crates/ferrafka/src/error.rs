//! The crate's error types.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::error::KafkaError;

use crate::secrets::{redact_kafka_error, redact_kafka_error_alone};

/// A boxed error, what a consumer returns when a batch fails.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with ferrafka's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ferrafka outside of user code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration or the routes are invalid; lists every problem found.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A librdkafka client (consumer, producer or admin) could not be created. ferrafka hides
    /// the client's secrets in librdkafka's verdict before returning it.
    #[error(
        "cannot create the {client} client: {}",
        redact_kafka_error_alone(source)
    )]
    CreateClient {
        /// Which client: "consumer of subscription group X", "producer", "admin".
        client: String,
        /// librdkafka's verdict.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Subscribing a consumer to its topics failed.
    #[error(
        "cannot subscribe subscription group {group} to {topics:?}: {}",
        redact_kafka_error_alone(source)
    )]
    Subscribe {
        /// The subscription group.
        group: String,
        /// Its topics.
        topics: Vec<String>,
        /// librdkafka's verdict.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Producing a message failed (enqueueing it or its delivery).
    #[error("cannot produce to topic {topic}: {source}")]
    Produce {
        /// Target topic.
        topic: String,
        /// librdkafka's verdict.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Some messages of a `produce_many` call were not delivered.
    #[error("{} of {total} messages were not delivered; first failure: topic {}: {}", failures.len(), failures[0].topic, failures[0].error)]
    ProduceMany {
        /// How many messages the call produced.
        total: usize,
        /// The messages that failed, in delivery-report order.
        failures: Vec<DeliveryFailure>,
    },
    /// An admin operation failed.
    #[error("admin {operation} on {resource} failed: {reason}")]
    Admin {
        /// The operation, e.g. "create topic".
        operation: &'static str,
        /// The resource: topic or group name.
        resource: String,
        /// The broker's or client's reason.
        reason: String,
    },
    /// The broker does not implement the API an admin operation needs (tansu 0.6.0, for
    /// example, lacks CreatePartitions and the legacy AlterConfigs).
    #[error("admin {operation} on {resource} is not supported by this broker: {reason}")]
    NotSupported {
        /// The operation, e.g. "grow partitions".
        operation: &'static str,
        /// The resource: topic or group name.
        resource: String,
        /// What the client reported.
        reason: String,
    },
    /// Routed topics do not exist in the cluster (the production boot check).
    #[error(
        "routed topic{} missing from the cluster: {}; create {} with `topics migrate` before starting the server",
        if topics.len() == 1 { "" } else { "s" },
        topics.join(", "),
        if topics.len() == 1 { "it" } else { "them" }
    )]
    MissingTopics {
        /// The missing topics, sorted.
        topics: Vec<String>,
    },
    /// `doctor`'s static checks found errors at a production boot (see `docs/doctor.md`).
    #[error(
        "doctor found {} error(s) in the production configuration; the server will not start:\n{}\n\
         fix them, or override with `server --allow-doctor-errors` or \
         `c.doctor_errors_block_boot(false)`",
        findings.len(),
        findings.join("\n")
    )]
    Doctor {
        /// One line per error finding: id, subject, what was found and the fix.
        findings: Vec<String>,
    },
    /// The server could not start or run.
    #[error("server: {0}")]
    Server(String),
}

impl Error {
    /// [`Error::CreateClient`] with every secret of `kafka` (the client's properties) hidden
    /// in librdkafka's verdict.
    pub(crate) fn create_client(
        client: impl Into<String>,
        source: &KafkaError,
        kafka: &BTreeMap<String, String>,
    ) -> Self {
        Error::CreateClient {
            client: client.into(),
            source: Box::new(redact_kafka_error(source, kafka)),
        }
    }

    /// This error with every secret of `kafka` hidden in the librdkafka errors it carries: for
    /// errors built where the properties were not at hand.
    pub(crate) fn redacted(self, kafka: &BTreeMap<String, String>) -> Self {
        match self {
            Error::CreateClient { client, source } => Error::create_client(client, &source, kafka),
            Error::Subscribe {
                group,
                topics,
                source,
            } => Error::Subscribe {
                group,
                topics,
                source: Box::new(redact_kafka_error(&source, kafka)),
            },
            other => other,
        }
    }
}

/// One message of a `produce_many` call that was not delivered.
#[derive(Debug, Clone)]
pub struct DeliveryFailure {
    /// Target topic.
    pub topic: String,
    /// The message key, if any.
    pub key: Option<Vec<u8>>,
    /// Why it failed.
    pub error: rdkafka::error::KafkaError,
}

/// An error raised from a panic inside user code, so that a panicking consumer is treated like
/// one that returned an error (and never takes the process down).
#[derive(Debug)]
pub struct PanicError(pub String);

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consumer panicked: {}", self.0)
    }
}

impl std::error::Error for PanicError {}

impl PanicError {
    /// Builds the error from a payload caught by `catch_unwind`.
    pub(crate) fn from_payload(payload: Box<dyn std::any::Any + Send>) -> Self {
        let text = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_string());
        PanicError(text)
    }
}
