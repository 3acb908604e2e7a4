//! W3C trace context through Kafka, with OpenTelemetry (the `opentelemetry` feature).
//!
//! - ferrafka's [`Producer`](crate::Producer) writes the context of its `produce` span into
//!   each record's `traceparent` and `tracestate` headers (a header the record already carries
//!   wins), so the work a consumer does for the message joins the producer's trace;
//! - a consumed batch's `batch` span *links* to each of its messages' contexts: a batch has
//!   many parents, a span one;
//! - [`context_of`] gives a consumer a message's context, to parent its own work:
//!
//! ```
//! use ferrafka::{ConsumeResult, Consumer, Context, Messages};
//! use tracing_opentelemetry::OpenTelemetrySpanExt;
//!
//! struct Orders;
//!
//! impl Consumer for Orders {
//!     async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
//!         for message in messages {
//!             let span = tracing::info_span!("handle order", offset = message.offset());
//!             let _ = span.set_parent(ferrafka::otel::context_of(message));
//!             let _entered = span.enter();
//!             // … this work is a child of the span that produced the message
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! The spans reach OpenTelemetry through `tracing-opentelemetry`'s layer, installed by the
//! app (see `docs/tracing.md`); without it nothing is written or linked.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::Message;

/// The W3C header names.
const TRACEPARENT: &str = "traceparent";

/// At most this many links per batch span (OpenTelemetry SDKs keep 128 by default).
const MAX_LINKS: usize = 128;

/// The trace context a message carries in its `traceparent`/`tracestate` headers; an empty
/// context when it carries none.
pub fn context_of(message: &Message) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&MessageHeaders(message))
}

/// Links `span` to the contexts of the first messages of its batch; nothing when `span` is
/// not traced by OpenTelemetry.
pub(crate) fn link_messages<'a>(span: &tracing::Span, messages: impl Iterator<Item = &'a Message>) {
    if !span.context().span().span_context().is_valid() {
        return;
    }
    for message in messages.take(MAX_LINKS) {
        let cx = context_of(message);
        let linked = cx.span().span_context().clone();
        if linked.is_valid() {
            span.add_link(linked);
        }
    }
}

/// `headers` with the trace context of `span` added, unless they carry one already or `span`
/// is not traced.
pub(crate) fn inject(headers: Option<OwnedHeaders>, span: &tracing::Span) -> Option<OwnedHeaders> {
    let cx = span.context();
    let carries = |h: &OwnedHeaders| h.iter().any(|h| h.key == TRACEPARENT);
    if !cx.span().span_context().is_valid() || headers.as_ref().is_some_and(carries) {
        return headers;
    }
    let mut out = HeaderInjector(headers.unwrap_or_default());
    TraceContextPropagator::new().inject_context(&cx, &mut out);
    Some(out.0)
}

struct MessageHeaders<'a>(&'a Message);

impl Extractor for MessageHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.header(key).and_then(|v| std::str::from_utf8(v).ok())
    }

    fn keys(&self) -> Vec<&str> {
        // A name that is not UTF-8 on the wire is no trace-context header.
        self.0
            .headers()
            .filter_map(|h| match h.key {
                std::borrow::Cow::Borrowed(key) => Some(key),
                std::borrow::Cow::Owned(_) => None,
            })
            .collect()
    }
}

struct HeaderInjector(OwnedHeaders);

impl Injector for HeaderInjector {
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            // An empty `tracestate` says nothing.
            return;
        }
        let headers = std::mem::take(&mut self.0);
        self.0 = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
}
