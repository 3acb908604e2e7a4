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
//! sees the assignment in its rebalance callback; ferrafka reports it as an instrumentation
//! event: [`EventWatch`], the bench's subscriber, takes the snapshot at the first
//! `PartitionsAssigned` with partitions (and counts `Paused` events, printed as *pauses*).
//!
//! Why not from the first message: tansu answers a fetch with everything up to the end of the
//! log, so the first message only surfaces once the whole topic was fetched and parsed.
//!
//! # What events cost
//!
//! The same ferrafka phase runs twice more per round ([`Listening::Nobody`] and
//! [`Listening::Counter`]) to show what events cost: with nobody subscribed, and with one
//! subscriber, a closure counting every event. Neither may use [`EventWatch`] for the
//! assignment, since a watch is a subscriber (and with one subscriber every event is built and
//! handed over): both find it the way the bench did before ferrafka had events, through the
//! driver's INFO log line "partitions assigned", which the [`AssignLog`] `tracing` layer
//! catches. That layer is installed for the whole run and enables only INFO events of the
//! driver's module (a handful per rebalance, none per message or batch), so it costs both
//! variants the same; the two differ in the subscriber alone. Both also count the process's
//! user-space instructions over the measured span (every thread; [`crate::instructions`]),
//! where the machine has a hardware counter.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ferrafka::instrumentation::Event;
use ferrafka::rdkafka::ClientContext;
use ferrafka::rdkafka::config::ClientConfig;
use ferrafka::rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance};
use ferrafka::rdkafka::message::Message as _;
use ferrafka::{App, AppBuilder, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit};
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
    /// How often ferrafka paused a partition (backpressure: `Paused` events); `None` for the
    /// raw loop and the phases without [`EventWatch`].
    pub pauses: Option<u64>,
    /// Events the counting subscriber saw ([`Listening::Counter`] only).
    pub events: Option<u64>,
}

/// Who subscribes to a ferrafka consume phase's events, and so how the phase finds the
/// assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listening {
    /// [`EventWatch`] only: the ferrafka row.
    Watch,
    /// Nobody: events are never built. The assignment comes from [`AssignLog`].
    Nobody,
    /// One closure counting every event; the assignment comes from [`AssignLog`].
    Counter,
    /// [`EventWatch`], with `reporting` on (`report_interval` 1 s) to the topics of
    /// [`reporting_topics`]: what reporting for `web` costs, against [`Listening::Watch`].
    Reporting,
}

/// `report_interval` of the reporting phase: the shortest allowed, the costliest.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The reports and errors topics of the reporting phase, as ferrafka declares them (the
/// bench creates them before the rounds).
pub fn reporting_topics(setup: &Setup) -> Vec<ferrafka::admin::TopicSpec> {
    let progress = Arc::new(Progress::new(setup.messages));
    let builder = reporting(builder(setup, "ferrafka-bench-probe", progress), setup);
    builder.build_with_env([]).declared_topics().to_vec()
}

/// `builder` with reporting on, to topics named after the consume topic.
fn reporting(builder: AppBuilder, setup: &Setup) -> AppBuilder {
    let (reports, errors) = (
        format!("{}-reports", setup.topic),
        format!("{}-errors", setup.topic),
    );
    builder.setup(move |c| {
        c.reporting(true)
            .report_interval(REPORT_INTERVAL)
            .commands_topic(format!("{reports}-commands"))
            .audit_topic(format!("{reports}-audit"))
            .reports_topic(reports)
            .errors_topic(errors);
    })
}

/// The bench's subscriber: notes the first assignment of partitions and counts pauses.
#[derive(Debug, Default)]
pub struct EventWatch {
    assigned: Mutex<Option<Snapshot>>,
    pauses: AtomicU64,
}

impl EventWatch {
    /// Called for every event of the server: anything but an assignment or a pause returns at
    /// once.
    pub fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::PartitionsAssigned { partitions, .. } if !partitions.is_empty() => {
                let now = Snapshot::now();
                self.assigned
                    .lock()
                    .expect("not poisoned")
                    .get_or_insert(now);
            }
            Event::Paused { .. } => {
                self.pauses.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// The snapshot taken at the first assignment of partitions, if there was one.
    pub fn assigned(&self) -> Option<Snapshot> {
        *self.assigned.lock().expect("not poisoned")
    }

    /// How often fetching a partition paused.
    pub fn pauses(&self) -> u64 {
        self.pauses.load(Ordering::Relaxed)
    }
}

/// Subscribes `watch` to the app's events.
pub fn watched(builder: AppBuilder, watch: &Arc<EventWatch>) -> AppBuilder {
    let watch = watch.clone();
    builder.subscribe(move |event: &Event<'_>| watch.on_event(event))
}

/// The snapshot [`AssignLog`] took, for the phases without a watch.
static LOGGED_ASSIGNMENT: Mutex<Option<Snapshot>> = Mutex::new(None);

/// A `tracing` layer that notes when ferrafka's driver logs "partitions assigned" (INFO) with
/// partitions: how the phases that measure the cost of events find the assignment without
/// subscribing. Install it with an INFO filter on [`AssignLog::TARGET`] only.
#[derive(Debug, Default)]
pub struct AssignLog;

impl AssignLog {
    /// The module (and its submodules) whose events the layer watches.
    pub const TARGET: &'static str = "ferrafka::processing::driver";
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AssignLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Seen {
            assigned: bool,
            none: bool,
        }
        impl Visit for Seen {
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.assigned = format!("{value:?}") == "partitions assigned",
                    "partitions" => self.none = format!("{value:?}") == "[]",
                    _ => {}
                }
            }
        }
        if !event.metadata().target().starts_with(Self::TARGET) {
            return;
        }
        let mut seen = Seen::default();
        event.record(&mut seen);
        if seen.assigned && !seen.none {
            let now = Snapshot::now();
            LOGGED_ASSIGNMENT
                .lock()
                .expect("not poisoned")
                .get_or_insert(now);
        }
    }
}

/// The consumer group and librdkafka properties ferrafka resolves for `setup`; the raw loop is
/// given the same ones (with its own group id).
pub fn ferrafka_properties(setup: &Setup, group: &str) -> Result<BTreeMap<String, String>> {
    let app = builder(setup, group, Arc::new(Progress::new(setup.messages))).build_with_env([]);
    app.validate()?;
    let groups = app.subscription_groups();
    let [group] = groups else {
        bail!("expected one subscription group, got {}", groups.len());
    };
    Ok(group.kafka().values())
}

fn builder(setup: &Setup, group: &str, progress: Arc<Progress>) -> AppBuilder {
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

/// Consumes the topic with a ferrafka server (defaults except `max_messages`), with the
/// subscribers of `listening`.
pub fn ferrafka(setup: &Setup, group: &str, listening: Listening) -> Result<Outcome> {
    let progress = Arc::new(Progress::new(setup.messages));
    let (tx, rx) = mpsc::channel();
    *progress.done.lock().expect("not poisoned") = Some(tx);
    let watch = Arc::new(EventWatch::default());
    let seen = Arc::new(AtomicU64::new(0));
    *LOGGED_ASSIGNMENT.lock().expect("not poisoned") = None;
    // Before the server starts its threads: the counter follows the threads started after it.
    let counting = match listening {
        Listening::Watch | Listening::Reporting => None,
        Listening::Nobody | Listening::Counter => crate::instructions::count().ok(),
    };
    let start = Snapshot::now();
    let mut builder = builder(setup, group, progress.clone());
    builder = match listening {
        Listening::Watch => watched(builder, &watch),
        Listening::Reporting => watched(reporting(builder, setup), &watch),
        Listening::Nobody => builder,
        Listening::Counter => {
            let seen = seen.clone();
            builder.subscribe(move |_: &Event<'_>| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
        }
    };
    let app = builder.build_with_env([]);
    let server = app.start(&Filters::default())?;
    // Blocks in the kernel: the waiting costs no CPU.
    let (end, stalled) = match rx.recv_timeout(setup.timeout) {
        Ok(end) => (end, false),
        Err(_) => (Snapshot::now(), true),
    };
    // The end snapshot read the counter: close it before the shutdown work.
    drop(counting);
    let count = progress.count.load(Ordering::Acquire);
    let exit = server.shutdown();
    if count == 0 {
        bail!("ferrafka consumed nothing within {:?}", setup.timeout);
    }
    if exit != ServerExit::Clean {
        tracing::warn!(?exit, "ferrafka server did not stop cleanly");
    }
    let assigned = match listening {
        Listening::Watch | Listening::Reporting => watch.assigned(),
        Listening::Nobody | Listening::Counter => {
            LOGGED_ASSIGNMENT.lock().expect("not poisoned").take()
        }
    };
    let assigned = assigned.unwrap_or_else(|| {
        tracing::warn!("ferrafka's assignment was not seen: measuring from start");
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
        pauses: matches!(listening, Listening::Watch | Listening::Reporting)
            .then(|| watch.pauses()),
        events: (listening == Listening::Counter).then(|| seen.load(Ordering::Relaxed)),
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
        events: None,
    })
}
