//! The consume phases: ferrafka with a no-op consumer, and a hand-written `BaseConsumer` loop.
//!
//! Both read the same pre-filled topic from offset 0 with a fresh consumer group and the same
//! librdkafka properties (the raw loop gets exactly the properties ferrafka resolved for its
//! subscription group). Both read every payload's length, and both store an offset once per
//! `max_messages` messages: ferrafka marks each successful batch, the raw loop stores the offset
//! of every `max_messages`-th message, so both commit the same way (librdkafka's periodic
//! auto-commit of stored offsets).
//!
//! Measured: from the moment the partitions are assigned (fetching starts) to the moment the
//! last message is seen (the snapshot is taken right there, before any shutdown work). Client
//! creation and the group join before it are reported separately as start-up. The raw loop
//! sees the assignment in its rebalance callback; ferrafka has no hook for it, so
//! [`ListenerWatch`] catches the listener's "partitions assigned" log event (and counts its
//! pauses).
//!
//! Why not from the first message: tansu answers a fetch with everything up to the end of the
//! log, so the first message only surfaces once the whole topic was fetched and parsed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ferrafka::rdkafka::ClientContext;
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use ferrafka::rdkafka::message::Message as _;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};
use tracing::field::{Field, Visit};

use crate::cpu::{Snapshot, Span};

/// What one consume phase needs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `bootstrap.servers`.
    pub bootstrap: String,
    /// The pre-filled topic.
    pub topic: String,
    /// How many messages the topic holds; the phase ends when all were seen.
    pub messages: u64,
    /// ferrafka's batch size, and how often the raw loop stores an offset.
    pub max_messages: usize,
    /// ferrafka's `max_wait_time`.
    pub max_wait: Duration,
    /// Longest wait for the last message before the phase counts as stalled.
    pub timeout: Duration,
    /// Extra librdkafka properties (given to ferrafka, and so to the raw loop too).
    pub kafka: Vec<(String, String)>,
}

/// The result of one consume phase.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// From the assignment to the last message.
    pub steady: Span,
    /// From creating the client to the assignment (group join).
    pub startup: Span,
    /// Messages seen.
    pub messages: u64,
    /// Payload bytes seen.
    pub bytes: u64,
    /// From the assignment to the first message seen (ferrafka: the first batch).
    pub first_message: Duration,
    /// True when the phase hit its timeout before seeing every message: the figures then cover
    /// the messages seen until the timeout.
    pub stalled: bool,
    /// How often ferrafka paused a partition (backpressure); `None` for the raw loop.
    pub pauses: Option<u64>,
}

/// The snapshot taken when ferrafka's listener logged its assignment, for the running phase.
static FERRAFKA_ASSIGNED: Mutex<Option<Snapshot>> = Mutex::new(None);
/// How often ferrafka's listener paused a partition during the running phase.
static FERRAFKA_PAUSES: AtomicU64 = AtomicU64::new(0);

/// A `tracing` layer that watches ferrafka's listener: it notes when the listener logs
/// "partitions assigned" (INFO) and counts "pause state changed" with `paused=true` (DEBUG).
/// Install it with a DEBUG filter on [`ListenerWatch::TARGET`] only: the listener's per-message
/// and per-batch events are TRACE and stay disabled.
#[derive(Debug, Default)]
pub struct ListenerWatch;

impl ListenerWatch {
    /// The module (and its submodules) whose events the layer watches.
    pub const TARGET: &'static str = "ferrafka::connection";
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ListenerWatch {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Seen {
            assigned: bool,
            pause_change: bool,
            paused: bool,
        }
        impl Visit for Seen {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    let text = format!("{value:?}");
                    self.assigned |= text == "partitions assigned";
                    self.pause_change |= text == "fetch pause changed";
                }
            }
            fn record_bool(&mut self, field: &Field, value: bool) {
                if field.name() == "paused" {
                    self.paused = value;
                }
            }
        }
        if !event.metadata().target().starts_with(Self::TARGET) {
            return;
        }
        let mut seen = Seen::default();
        event.record(&mut seen);
        if seen.assigned {
            let now = Snapshot::now();
            FERRAFKA_ASSIGNED
                .lock()
                .expect("not poisoned")
                .get_or_insert(now);
        }
        if seen.pause_change && seen.paused {
            FERRAFKA_PAUSES.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Forgets the assignment and pauses [`ListenerWatch`] saw, before a new ferrafka server starts.
pub fn reset_ferrafka_watch() {
    *FERRAFKA_ASSIGNED.lock().expect("not poisoned") = None;
    FERRAFKA_PAUSES.store(0, Ordering::Relaxed);
}

/// Whether a ferrafka listener logged an assignment since [`reset_ferrafka_watch`].
pub fn ferrafka_assigned() -> bool {
    FERRAFKA_ASSIGNED.lock().expect("not poisoned").is_some()
}

/// The consumer group and librdkafka properties ferrafka resolves for `setup`; the raw loop is
/// given the same ones (with its own group id).
pub fn ferrafka_properties(setup: &Setup, group: &str) -> Result<BTreeMap<String, String>> {
    let app = app(setup, group, Arc::new(Progress::new(setup.messages)));
    app.validate()?;
    let groups = app.subscription_groups();
    let [group] = groups else {
        bail!("expected one subscription group, got {}", groups.len());
    };
    Ok(group.kafka().values())
}

fn app(setup: &Setup, group: &str, progress: Arc<Progress>) -> App {
    let (bootstrap, topic, group) = (
        setup.bootstrap.clone(),
        setup.topic.clone(),
        group.to_string(),
    );
    let (max_messages, max_wait) = (setup.max_messages, setup.max_wait);
    let kafka = setup.kafka.clone();
    App::builder()
        .setup(move |c| {
            c.client_id("ferrafka-bench")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_messages(max_messages)
                .max_wait_time(max_wait);
            for (k, v) in kafka {
                c.kafka(k, v);
            }
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || NoOp {
                progress: progress.clone(),
            });
        })
        .build_with_env([])
}

/// Progress shared by the no-op consumer instances and the phase.
struct Progress {
    target: u64,
    count: AtomicU64,
    bytes: AtomicU64,
    first: Mutex<Option<Instant>>,
    done: Mutex<Option<mpsc::Sender<Snapshot>>>,
}

impl Progress {
    fn new(target: u64) -> Self {
        Progress {
            target,
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            first: Mutex::new(None),
            done: Mutex::new(None),
        }
    }
}

/// The benchmark's consumer: reads every payload's length and counts.
struct NoOp {
    progress: Arc<Progress>,
}

impl Consumer for NoOp {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let progress = &*self.progress;
        let bytes: usize = messages.iter().map(|m| m.payload_or_empty().len()).sum();
        progress.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let n = messages.len() as u64;
        let before = progress.count.fetch_add(n, Ordering::AcqRel);
        if before == 0 {
            *progress.first.lock().expect("not poisoned") = Some(Instant::now());
        }
        if before < progress.target && before + n >= progress.target {
            let end = Snapshot::now();
            if let Some(tx) = progress.done.lock().expect("not poisoned").take() {
                let _ = tx.send(end);
            }
        }
        Ok(())
    }
}

/// Consumes the topic with a ferrafka server (defaults except `max_messages`).
pub fn ferrafka(setup: &Setup, group: &str) -> Result<Outcome> {
    let progress = Arc::new(Progress::new(setup.messages));
    let (tx, rx) = mpsc::channel();
    *progress.done.lock().expect("not poisoned") = Some(tx);
    reset_ferrafka_watch();
    let start = Snapshot::now();
    let app = app(setup, group, progress.clone());
    let server = app.start(&Filters::default())?;
    // Blocks in the kernel: the waiting costs no CPU.
    let (end, stalled) = match rx.recv_timeout(setup.timeout) {
        Ok(end) => (end, false),
        Err(_) => (Snapshot::now(), true),
    };
    let count = progress.count.load(Ordering::Acquire);
    let exit = server.shutdown();
    if count == 0 {
        bail!("ferrafka consumed nothing within {:?}", setup.timeout);
    }
    if exit != ServerExit::Clean {
        tracing::warn!(?exit, "ferrafka server did not stop cleanly");
    }
    let assigned = FERRAFKA_ASSIGNED
        .lock()
        .expect("not poisoned")
        .take()
        .unwrap_or_else(|| {
            tracing::warn!("ferrafka's assignment was not seen in its logs: measuring from start");
            start
        });
    let first = progress
        .first
        .lock()
        .expect("not poisoned")
        .unwrap_or(end.at);
    Ok(Outcome {
        steady: Span::between(&assigned, &end),
        startup: Span::between(&start, &assigned),
        messages: count,
        bytes: progress.bytes.load(Ordering::Acquire),
        first_message: first.saturating_duration_since(assigned.at),
        stalled,
        pauses: Some(FERRAFKA_PAUSES.load(Ordering::Relaxed)),
    })
}

/// The raw consumer's context: notes when partitions are assigned, nothing else.
#[derive(Debug, Default)]
pub struct AssignClock {
    assigned: Mutex<Option<Snapshot>>,
}

impl AssignClock {
    /// When partitions were first assigned, if they were.
    pub fn assigned(&self) -> Option<Snapshot> {
        *self.assigned.lock().expect("not poisoned")
    }
}

impl ClientContext for AssignClock {}

impl ConsumerContext for AssignClock {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance
            && tpl.count() > 0
        {
            let now = Snapshot::now();
            self.assigned
                .lock()
                .expect("not poisoned")
                .get_or_insert(now);
        }
    }
}

/// Consumes the topic with a hand-written `BaseConsumer` poll loop.
pub fn raw(setup: &Setup, group: &str, properties: &BTreeMap<String, String>) -> Result<Outcome> {
    let mut config = ClientConfig::new();
    for (k, v) in properties {
        config.set(k, v);
    }
    config.set("group.id", group);
    let start = Snapshot::now();
    let consumer: BaseConsumer<AssignClock> = config
        .create_with_context(AssignClock::default())
        .context("creating the raw consumer")?;
    consumer
        .subscribe(&[setup.topic.as_str()])
        .context("subscribing the raw consumer")?;
    let deadline = Instant::now() + setup.timeout;
    let every = setup.max_messages as u64;
    let (mut count, mut bytes, mut first) = (0u64, 0u64, None);
    let mut stalled = false;
    while count < setup.messages {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some(Instant::now());
                }
                bytes += m.payload().map_or(0, <[u8]>::len) as u64;
                count += 1;
                if count % every == 0 || count == setup.messages {
                    consumer.store_offset_from_message(&m)?;
                }
            }
            Some(Err(e)) => tracing::warn!(error = %e, "raw consumer error"),
            None => {}
        }
        // Reading the clock per message would add to the raw loop's cost: look now and then.
        if count % 1024 == 0 && Instant::now() >= deadline {
            stalled = true;
            break;
        }
    }
    let end = Snapshot::now();
    let assigned = consumer.context().assigned().unwrap_or(start);
    drop(consumer); // closes: final commit, leaves the group (not measured)
    let Some(first) = first else {
        bail!(
            "the raw consumer consumed nothing within {:?}",
            setup.timeout
        );
    };
    Ok(Outcome {
        steady: Span::between(&assigned, &end),
        startup: Span::between(&start, &assigned),
        messages: count,
        bytes,
        first_message: first.saturating_duration_since(assigned.at),
        stalled,
        pauses: None,
    })
}
