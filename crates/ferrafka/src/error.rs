//! The crate's error types.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::error::KafkaError;

pub use crate::kafka::{ConnectionFailure, FailureKind};
use crate::secrets::redact_kafka_error;

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
    #[error("cannot create the {client} client")]
    CreateClient {
        /// Which client: "consumer of subscription group X", "producer", "admin".
        client: String,
        /// librdkafka's verdict, secrets hidden.
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A client cannot connect because of its security settings: credentials the broker
    /// rejects, a certificate one side does not trust, a protocol the listener does not speak.
    /// Retrying never helps; the text names the broker, the protocol and the settings to fix,
    /// never a secret.
    #[error("the {client} client cannot connect: {failure}")]
    Connection {
        /// Which client: "admin", "producer", "consumer of subscription group X".
        client: String,
        /// What was refused, and how to fix it.
        failure: ConnectionFailure,
    },
    /// The broker's ACLs deny the client's principal an operation it needs.
    #[error(
        "the broker denied the {client}'s principal {operation} on {kind} {name}; grant it \
         (kafka-acls --add --allow-principal User:<the app's principal> --operation {operation} \
         --{kind} {name}); `doctor --live` lists every permission the app lacks"
    )]
    NotAuthorized {
        /// Which client: "producer", "consumer of subscription group X".
        client: String,
        /// The operation as Kafka's ACLs name it: `Read`, `Write`, `Describe`.
        operation: &'static str,
        /// The kind of resource: `topic`, `group`, `transactional-id`.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// Subscribing a consumer to its topics failed.
    #[error("cannot subscribe subscription group {group} to {topics:?}")]
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
    #[error("cannot produce to topic {topic}")]
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
    #[error("admin {operation} on {resource} failed{}", reason_suffix(reason))]
    Admin {
        /// The operation, e.g. "create topic".
        operation: &'static str,
        /// The resource: topic or group name.
        resource: String,
        /// What went wrong in ferrafka's or the broker's words; empty when `source` says it
        /// all.
        reason: String,
        /// The client's error, when the failure came from librdkafka.
        #[source]
        source: Option<Box<rdkafka::error::KafkaError>>,
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
    /// A [`TopicReader`](crate::reader::TopicReader) could not read the topic: it does not
    /// exist, a partition asked for does not, or the broker stopped answering.
    #[error("cannot read topic {topic}{}", reason_suffix(reason))]
    Read {
        /// The topic.
        topic: String,
        /// What went wrong, and what to do about it.
        reason: String,
        /// The client's error, when the failure came from librdkafka (secrets hidden).
        #[source]
        source: Option<Box<rdkafka::error::KafkaError>>,
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
    /// A transaction of a transactional route did not commit (see `docs/transactions.md`):
    /// nothing it produced or marked is visible, and the batch is retried.
    #[error("transaction of {topic} [{partition}] (transactional.id {transactional_id}) {what}")]
    Transaction {
        /// The consumed topic.
        topic: String,
        /// The consumed partition.
        partition: i32,
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// What happened, e.g. "aborted: a delivery failed".
        what: String,
        /// librdkafka's error, when one caused it.
        #[source]
        source: Option<Box<rdkafka::error::KafkaError>>,
    },
    /// The server could not start or run.
    #[error("server: {reason}")]
    Server {
        /// What could not be done.
        reason: String,
        /// The operating system's error, when one caused it.
        #[source]
        source: Option<std::io::Error>,
    },
}

/// `": reason"`, or nothing for an empty reason.
fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

/// `error` followed by each of its sources, `": "`-separated: how ferrafka prints an error, so
/// every cause shows once. ferrafka's own errors never repeat their source in `Display`, but
/// rdkafka's do (`MessageProduction` prints its code, then returns it as its source), so a
/// source whose text the previous link already printed is skipped.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut previous = text.clone();
    let mut source = error.source();
    while let Some(e) = source {
        let shown = e.to_string();
        if !previous.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        previous = shown;
        source = e.source();
    }
    text
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

/// Runs user code other than `consume` and the hooks (an error's `Display` and `Drop`, an
/// instance's `Drop`), turning a panic into an error text.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, PanicError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(PanicError::from_payload)
}

/// A consumer's error as text. Its `Display` (and its `Drop`, which runs here too) are user
/// code: a panic in them describes the error instead of ending the executor.
pub(crate) fn describe(error: BoxError) -> String {
    guarded(move || error_chain(&*error))
        .unwrap_or_else(|panic| format!("the error's Display or Drop panicked: {}", panic.0))
}

/// [`describe`] of an error that stays with its owner.
pub(crate) fn describe_ref(error: &(dyn std::error::Error + Send + Sync + 'static)) -> String {
    guarded(|| error_chain(error))
        .unwrap_or_else(|panic| format!("the error's Display panicked: {}", panic.0))
}

#[cfg(test)]
mod tests {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};

    use super::*;

    /// How many times `needle` occurs in `error`'s printed chain.
    fn times_in_chain(error: &Error, needle: &str) -> usize {
        error_chain(error).matches(needle).count()
    }

    #[test]
    fn a_client_error_prints_librdkafkas_text_once() {
        let error = Error::create_client(
            "producer",
            &KafkaError::ClientCreation("no bootstrap servers".into()),
            &BTreeMap::new(),
        );
        assert_eq!(times_in_chain(&error, "no bootstrap servers"), 1);
        assert_eq!(
            error_chain(&error),
            "cannot create the producer client: Client creation error: no bootstrap servers"
        );
    }

    #[test]
    fn subscribe_and_produce_errors_print_their_cause_once() {
        let cause = KafkaError::Subscription("bad topic".into());
        let subscribe = Error::Subscribe {
            group: "shop/default".into(),
            topics: vec!["orders".into()],
            source: Box::new(cause.clone()),
        };
        assert_eq!(times_in_chain(&subscribe, "bad topic"), 1);
        let produce = Error::Produce {
            topic: "orders".into(),
            source: Box::new(KafkaError::MessageProduction(
                RDKafkaErrorCode::MessageSizeTooLarge,
            )),
        };
        let shown = error_chain(&produce);
        let code = RDKafkaErrorCode::MessageSizeTooLarge.to_string();
        assert_eq!(shown.matches(&code).count(), 1, "{shown}");
        assert!(
            shown.starts_with("cannot produce to topic orders: "),
            "{shown}"
        );
    }

    #[test]
    fn an_admin_error_keeps_its_kafka_cause_typed_and_prints_it_once() {
        let error = crate::admin::code_error(
            "create topic",
            "orders",
            Some(RDKafkaErrorCode::TopicAlreadyExists),
            RDKafkaErrorCode::TopicAlreadyExists.to_string(),
        );
        assert_eq!(
            crate::admin::error_code(&error),
            Some(RDKafkaErrorCode::TopicAlreadyExists)
        );
        let code = RDKafkaErrorCode::TopicAlreadyExists.to_string();
        assert_eq!(times_in_chain(&error, &code), 1, "{}", error_chain(&error));
        assert!(
            error_chain(&error).starts_with("admin create topic on orders failed: "),
            "{}",
            error_chain(&error)
        );
    }

    #[test]
    fn an_admin_error_keeps_a_broker_message_that_says_more_than_its_code() {
        let error = crate::admin::code_error(
            "alter topic config",
            "orders",
            Some(RDKafkaErrorCode::InvalidConfig),
            "retention.ms must be a number".into(),
        );
        let shown = error_chain(&error);
        assert_eq!(shown.matches("retention.ms must be a number").count(), 1);
        let code = RDKafkaErrorCode::InvalidConfig.to_string();
        assert_eq!(shown.matches(&code).count(), 1, "{shown}");
    }

    #[test]
    fn a_server_error_keeps_the_io_error_as_its_cause() {
        let error = Error::Server {
            reason: "cannot start the worker runtime".into(),
            source: Some(std::io::Error::other("too many open files")),
        };
        let source = std::error::Error::source(&error).expect("a cause");
        assert!(source.is::<std::io::Error>());
        assert_eq!(
            error_chain(&error),
            "server: cannot start the worker runtime: too many open files"
        );
    }
}
