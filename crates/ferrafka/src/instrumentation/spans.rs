//! The `tracing` spans of batches, virtual-partition groups and produces. With the
//! `opentelemetry` feature they carry W3C trace context through Kafka (`crate::otel`).

use tracing::Span;
use tracing::field::Empty;

use super::PartitionRef;
use crate::Messages;

/// The span of one batch: `consume` and everything it awaits run inside it. Its `outcome` is
/// recorded by [`batch_ended`]; each attempt of a failed batch is a span of its own, with
/// its `attempt`.
pub(crate) fn batch(partition: &PartitionRef<'_>, messages: &Messages, attempt: u32) -> Span {
    let span = tracing::info_span!(
        target: "ferrafka::batch",
        "batch",
        consumer_group = partition.consumer_group,
        topic = partition.topic,
        partition = partition.partition,
        first_offset = messages.first().offset(),
        last_offset = messages.last().offset(),
        messages = messages.len(),
        attempt,
        outcome = Empty,
        otel.kind = "consumer",
        otel.status_code = Empty,
    );
    #[cfg(feature = "opentelemetry")]
    crate::otel::link_messages(&span, messages.iter());
    span
}

/// Records how the batch ended: `consumed`, or `failed` (an error status for OpenTelemetry).
pub(crate) fn batch_ended(span: &Span, failed: bool) {
    span.record("outcome", if failed { "failed" } else { "consumed" });
    if failed {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span of one virtual-partition group of a batch: a child of the batch's span.
pub(crate) fn virtual_partition(group: usize, messages: usize) -> Span {
    tracing::info_span!(
        target: "ferrafka::batch",
        "virtual_partition",
        group,
        messages,
    )
}

/// The span of one produced record (or one `produce_many` call): its context travels in the
/// records' headers.
pub(crate) fn produce(topic: &str, records: usize) -> Span {
    tracing::info_span!(
        target: "ferrafka::producer",
        "produce",
        topic,
        records,
        partition = Empty,
        offset = Empty,
        otel.kind = "producer",
        otel.status_code = Empty,
    )
}
