//! The reader's librdkafka context: rdkafka hands every consumer error to the context before
//! `poll` returns it, and the default context logs each at ERROR. The end of a partition
//! (`enable.partition.eof`) is how the reader knows a range is read, not an error: logging it
//! filled the `web` process's log with a line per end reached.

use rdkafka::client::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Drops partition ends; logs every other error with its secrets hidden.
pub(crate) struct ReaderContext;

impl ClientContext for ReaderContext {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_end(&error) {
            return;
        }
        let reason = crate::secrets::redact_text_alone(reason);
        tracing::error!(%error, %reason, "the topic reader's client reported an error");
    }
}

impl ConsumerContext for ReaderContext {}

fn is_partition_end(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partition_ends_are_not_logged_and_other_errors_are_with_secrets_hidden() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let eof = KafkaError::Global(RDKafkaErrorCode::PartitionEOF);
            ReaderContext.error(
                eof,
                "Fetch from broker 1 reached end of partition at offset 5",
            );
            ReaderContext.error(
                KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down; sasl.password=hunter2",
            );
        });
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(!log.contains("end of partition"), "{log}");
        assert!(!log.contains("PartitionEOF"), "{log}");
        assert!(log.contains("brokers are down"), "{log}");
        assert!(!log.contains("hunter2"), "{log}");
    }
}
