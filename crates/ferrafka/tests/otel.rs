//! W3C trace context through Kafka (the `opentelemetry` feature), exported by OpenTelemetry's
//! in-memory exporter: a request produces a message, app A consumes it and produces another,
//! app B consumes that one. The request, both produces and both consumers' work are one
//! connected trace; each batch span links to the context of the message it consumed.
//!
//! Its own test binary: the OpenTelemetry layer is the process's global `tracing` subscriber,
//! since executors run on the server's threads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{
    App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record, ServerExit,
};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

/// Consumes `in`: each message's work is a span parented to the message's context, and
/// produces to `out` inside it.
struct Transform;

impl Consumer for Transform {
    async fn consume(&mut self, ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        for message in messages {
            let span = tracing::info_span!("transform");
            let _ = span.set_parent(ferrafka::otel::context_of(message));
            let record = Record::to("out").payload(message.payload_or_empty());
            ctx.producer().produce(record).instrument(span).await?;
        }
        Ok(())
    }
}

/// Consumes `out`: each message's work is a span parented to the message's context.
struct Load(Arc<Mutex<usize>>);

impl Consumer for Load {
    async fn consume(&mut self, _: &mut Context, messages: &Messages) -> ConsumeResult {
        for message in messages {
            let span = tracing::info_span!("load");
            let _ = span.set_parent(ferrafka::otel::context_of(message));
            span.in_scope(|| *self.0.lock().unwrap() += 1);
        }
        Ok(())
    }
}

/// The in-memory exporter behind the process's global subscriber (installed once).
fn exporter() -> InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER
        .get_or_init(|| {
            let exporter = InMemorySpanExporter::default();
            // A simple exporter: each span is exported as it ends.
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .build();
            let layer =
                tracing_opentelemetry::layer().with_tracer(provider.tracer("ferrafka-test"));
            // ferrafka's spans and this test's; the embedded broker runs in this process and
            // traces its own work too.
            let only = tracing_subscriber::filter::Targets::new()
                .with_target("ferrafka", tracing::Level::INFO)
                .with_target("otel", tracing::Level::INFO);
            let layer = tracing_subscriber::Layer::with_filter(layer, only);
            tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                .expect("the only subscriber of this binary");
            exporter
        })
        .clone()
}

fn app(bootstrap: &str, name: &str, routes: impl FnOnce(&mut ferrafka::routing::Router)) -> App {
    let (bootstrap, name) = (bootstrap.to_string(), name.to_string());
    App::builder()
        .setup(move |c| {
            c.client_id(name.as_str())
                .group_id(ferrafka_testing::unique(&name))
                .kafka("bootstrap.servers", bootstrap)
                .max_wait_time(Duration::from_millis(50));
        })
        .routes(routes)
        .build_with_env([])
}

#[test]
fn a_consume_produce_hop_through_two_apps_is_one_connected_trace() {
    let exporter = exporter();
    let broker = ferrafka_testing::broker();
    let bootstrap = broker.bootstrap_servers();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = Admin::connect(&bootstrap).unwrap();
    for topic in ["in", "out"] {
        rt.block_on(admin.create_topic(&TopicSpec::new(topic, 1)))
            .unwrap();
    }
    let loaded = Arc::new(Mutex::new(0));
    let a = app(&bootstrap, "transform", |r| {
        r.topic("in").consumer(|| Transform);
    });
    let b = {
        let loaded = loaded.clone();
        app(&bootstrap, "load", move |r| {
            r.topic("out").consumer(move || Load(loaded.clone()));
        })
    };
    let (a, b) = (
        a.start(&Filters::default()).expect("A starts"),
        b.start(&Filters::default()).expect("B starts"),
    );
    let kafka = BTreeMap::from([("bootstrap.servers".to_string(), bootstrap.clone())]);
    let producer = Producer::new(&kafka).unwrap();
    let request = tracing::info_span!("request");
    rt.block_on(
        producer
            .produce(Record::to("in").payload("order 1"))
            .instrument(request),
    )
    .expect("produced");
    assert!(ferrafka_testing::wait_until(
        Duration::from_secs(60),
        || { *loaded.lock().unwrap() == 1 }
    ));
    assert_eq!(a.shutdown(), ServerExit::Clean);
    assert_eq!(b.shutdown(), ServerExit::Clean);
    let spans = exporter.get_finished_spans().unwrap();
    check_trace(&spans);
}

fn check_trace(spans: &[SpanData]) {
    let named =
        |name: &str| -> Vec<&SpanData> { spans.iter().filter(|s| s.name == name).collect() };
    let one = |name: &str| -> &SpanData {
        let found = named(name);
        assert_eq!(found.len(), 1, "one {name} span: {:#?}", names(spans));
        found[0]
    };
    let (request, transform, load) = (one("request"), one("transform"), one("load"));
    let produces = named("produce");
    assert_eq!(produces.len(), 2, "two produce spans: {:#?}", names(spans));
    let child_of = |parent: &SpanData| {
        *produces
            .iter()
            .find(|p| p.parent_span_id == parent.span_context.span_id())
            .unwrap_or_else(|| panic!("a produce span under {}", parent.name))
    };
    let (first, second) = (child_of(request), child_of(transform));
    let trace = request.span_context.trace_id();
    for span in [first, transform, second, load] {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "{} in the request's trace",
            span.name
        );
    }
    assert_eq!(transform.parent_span_id, first.span_context.span_id());
    assert_eq!(load.parent_span_id, second.span_context.span_id());
    // Each app's batch span links to the context of the message it consumed.
    let batches = named("batch");
    for produce in [first, second] {
        let linked = batches.iter().any(|b| {
            b.links
                .iter()
                .any(|l| l.span_context.span_id() == produce.span_context.span_id())
        });
        assert!(linked, "a batch links to {produce:#?}");
    }
    let loaded = batches
        .iter()
        .find(|b| attribute_of(b, "topic").as_deref() == Some("out"))
        .expect("B's batch");
    for (key, value) in [
        ("partition", "0"),
        ("first_offset", "0"),
        ("last_offset", "0"),
        ("messages", "1"),
        ("attempt", "1"),
        ("outcome", "consumed"),
    ] {
        assert_eq!(
            attribute_of(loaded, key).as_deref(),
            Some(value),
            "{key} of {loaded:#?}"
        );
    }
    assert!(attribute_of(loaded, "consumer_group").is_some_and(|g| g.starts_with("load")));
}

/// Fails the first attempt of every batch.
struct FailsFirst;

impl Consumer for FailsFirst {
    async fn consume(&mut self, ctx: &mut Context, _: &Messages) -> ConsumeResult {
        if ctx.attempt() == 1 {
            return Err("the first attempt fails".into());
        }
        Ok(())
    }
}

/// Through the testing harness (the server's driver and executors): each attempt is a batch
/// span of its own, a failed one with an error status, and virtual-partition groups are
/// children of their batch's span.
#[tokio::test]
async fn retries_are_batch_spans_of_their_own_and_virtual_partitions_their_children() {
    let exporter = exporter();
    let app = App::builder()
        .routes(|r| {
            r.topic("vp").consumer(|| FailsFirst).virtual_partitions(
                ferrafka::VirtualPartitions::new(2)
                    .partitioner(|m| u64::from(m.payload_or_empty()[0] % 2)),
            );
        })
        .build_with_env([]);
    let mut tester = ferrafka::testing::Tester::new(&app);
    for payload in ["a", "b"] {
        tester.produce("vp", payload);
    }
    tester.consume().await;
    let spans = exporter.get_finished_spans().unwrap();
    let batches: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "batch" && s.attributes.iter().any(|kv| kv.value.as_str() == "vp"))
        .collect();
    let attempts: Vec<_> = batches
        .iter()
        .map(|b| {
            let attribute = |key| attribute_of(b, key).unwrap_or_default();
            (attribute("attempt"), attribute("outcome"), b.status.clone())
        })
        .collect();
    assert_eq!(
        attempts,
        [
            (
                "1".into(),
                "failed".into(),
                opentelemetry::trace::Status::error("")
            ),
            (
                "2".into(),
                "consumed".into(),
                opentelemetry::trace::Status::Unset
            ),
        ],
        "{batches:#?}"
    );
    for batch in &batches {
        let groups = spans
            .iter()
            .filter(|s| {
                s.name == "virtual_partition" && s.parent_span_id == batch.span_context.span_id()
            })
            .count();
        assert_eq!(groups, 2, "two groups under {batch:#?}");
    }
}

fn attribute_of(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}
