//! The connection to Kafka: one listener thread per subscription group that owns its librdkafka
//! consumer, and that client's lifecycle (connect, rebuild after a fatal error, leave the group).
//!
//! It polls without pause and feeds each assigned partition's state machine
//! ([`crate::processing::partition`]) with what happens: fetched messages, executor reports,
//! the clock, rebalances, quiet mode and shutdown. It carries out what the machines answer
//! (start a batch on the partition's executor, pause or resume fetching, seek, store an
//! offset) and decides nothing itself. Because polling never waits on user code, a slow batch
//! cannot exceed `max.poll.interval.ms`; a rebalance waits at most `revocation_timeout` for
//! running batches of revoked partitions.
//!
//! Offsets: machines store offsets (`enable.auto.offset.store=false`) once a batch reported
//! its mark; librdkafka commits stored offsets periodically and asynchronously; the listener
//! commits synchronously before it releases revoked partitions and at shutdown.

mod client;
mod context;
pub(crate) mod diagnostics;
mod state;

use crate::instrumentation::statistics::StatisticsSource;
use crate::instrumentation::{Event, Monitor};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::Consumer as _;
use tokio::sync::Semaphore;

pub(crate) use context::{ListenerConsumer, ListenerContext};
use state::State;

use crate::config::Config;
use crate::error::{Error, Result, error_chain};
use crate::messages::KafkaMessage;
use crate::processing::doorbell::Doorbell;
use crate::processing::driver::PartitionClient;
use crate::processing::stop::StopSignal;
use crate::producer::Producer;
use crate::routing::SubscriptionGroup;

/// First wait before rebuilding a client after a fatal error; doubles up to the max.
const REBUILD_BACKOFF: Duration = Duration::from_secs(1);
const REBUILD_BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Messages taken from librdkafka between two looks at timers and reports.
const BURST: usize = 64;
/// How a listener ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenerExit {
    /// True when batches were still running at the shutdown deadline and were abandoned.
    pub(crate) forced: bool,
}

/// Everything needed to start a listener (again, after a fatal error).
#[derive(Clone)]
pub(crate) struct ListenerSetup {
    pub(crate) config: Arc<Config>,
    pub(crate) group: SubscriptionGroup,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) producer: Producer,
    pub(crate) workers: Arc<Semaphore>,
    pub(crate) monitor: Monitor,
    /// The transactional producers, when a route is transactional.
    pub(crate) transactions: Option<Arc<crate::transaction::TransactionalProducers>>,
}

/// Creates the consumer and subscribes it; errors surface before any thread starts.
pub(crate) fn connect(setup: ListenerSetup) -> Result<Arc<ListenerConsumer>> {
    let label = format!("{}/{}", setup.group.consumer_group, setup.group.name);
    let mut client = ClientConfig::new();
    for (k, v) in &setup.group.kafka {
        client.set(k, v);
    }
    let topics = setup
        .group
        .topics
        .iter()
        .filter(|t| t.active)
        .cloned()
        .collect();
    let wake = Arc::new(Doorbell::default());
    let epoch = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let group_metadata = Arc::new(crate::transaction::GroupMetadata::default());
    let transactions = setup
        .transactions
        .clone()
        .map(|pool| crate::transaction::Access {
            pool,
            group: group_metadata.clone(),
        });
    let context = ListenerContext {
        group_metadata,
        wake: wake.clone(),
        fatal_seen: std::sync::atomic::AtomicBool::new(false),
        epoch: epoch.clone(),
        group: label.clone(),
        static_member: setup.group.kafka.contains_key("group.instance.id")
            && !crate::kafka::uses_consumer_protocol(&setup.group.kafka),
        offset_resets: Mutex::new(Vec::new()),
        failures: crate::kafka::FailureWatch::new(&setup.group.kafka),
        reported: Mutex::new(None),
        monitor: setup.monitor.clone(),
        statistics: Arc::new(StatisticsSource {
            client: label.clone(),
            consumer_group: Some(setup.group.consumer_group.clone()),
            kafka: setup.group.kafka.clone(),
        }),
        state: Mutex::new(State::new(
            setup.config,
            topics,
            (setup.runtime, setup.producer, setup.workers),
            transactions,
            setup.monitor.clone(),
            wake.clone(),
            epoch.clone(),
        )),
    };
    let mut consumer: ListenerConsumer = client.create_with_context(context).map_err(|source| {
        Error::create_client(
            format!("consumer of subscription group {label}"),
            &source,
            &setup.group.kafka,
        )
    })?;
    consumer.set_nonempty_callback(move || wake.ring());
    let consumer = Arc::new(consumer);
    let names = setup.group.subscription();
    consumer
        .subscribe(&names)
        .map_err(|source| Error::Subscribe {
            group: label,
            topics: names.iter().map(|s| s.to_string()).collect(),
            source: Box::new(source),
        })?;
    Ok(consumer)
}

/// Runs the poll loop until `stop` is raised, then shuts down gracefully. A fatal librdkafka
/// error (the client can no longer be used, e.g. a fenced static member) abandons the running
/// batches unmarked, and the client is rebuilt from `setup` after a backoff.
pub(crate) fn run(
    mut consumer: Arc<ListenerConsumer>,
    setup: ListenerSetup,
    stop: Arc<StopSignal>,
) -> ListenerExit {
    // Operators' orders taken so far: a rebuilt client does not take them again.
    let mut orders_seen = 0;
    loop {
        match poll_loop(&consumer, &stop, &mut orders_seen) {
            LoopEnd::Stop => {
                let group = consumer.context().group.clone();
                let exit = shutdown(&consumer, &stop, &group);
                release(consumer, &group);
                return exit;
            }
            LoopEnd::Fatal(reason) => match rebuild(consumer, &setup, &stop, &reason) {
                Some(fresh) => consumer = fresh,
                None => return ListenerExit { forced: false },
            },
        }
    }
}

/// How long the executors of a stopped listener get to drop the batches they hold.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Destroys the consumer once no message it polled is held any more. A batch that still runs
/// (a consumer that ignores the shutdown deadline and never yields) holds librdkafka's
/// messages, and destroying the client would wait for it forever; the client is leaked instead,
/// since the process is about to exit anyway.
fn release(consumer: Arc<ListenerConsumer>, group: &str) {
    let released = consumer
        .context()
        .lock()
        .release_messages(Instant::now() + RELEASE_TIMEOUT);
    if released {
        drop(consumer);
    } else {
        tracing::error!(subscription_group = %group, "a batch still runs after shutdown and holds messages of the client; the client is not destroyed (its resources are freed when the process exits)");
        std::mem::forget(consumer);
    }
}

/// Why the poll loop returned.
enum LoopEnd {
    Stop,
    Fatal(String),
}

/// Drops a consumer that hit a fatal error and connects a new one, backing off between
/// attempts; `None` when the server stops meanwhile.
fn rebuild(
    consumer: Arc<ListenerConsumer>,
    setup: &ListenerSetup,
    stop: &StopSignal,
    reason: &str,
) -> Option<Arc<ListenerConsumer>> {
    let group = consumer.context().group.clone();
    tracing::error!(subscription_group = %group, reason, "fatal consumer error: abandoning running batches (they will be processed again) and rebuilding the client");
    setup.monitor.emit(|| Event::ClientRebuilding {
        subscription_group: &group,
        reason,
    });
    let (released, handed_over) = {
        let mut state = consumer.context().lock();
        state.driver.abandon_all();
        let released = state.release_messages(Instant::now() + RELEASE_TIMEOUT);
        (released, state.driver.hand_over())
    };
    if !released {
        // Destroying it would wait for the batch that holds its messages, maybe for ever.
        tracing::error!(subscription_group = %group, "a batch of the failed client still runs and holds its messages; the client leaves the group but is not destroyed (its resources are freed when the process exits)");
        leave_group(&consumer);
        std::mem::forget(consumer);
    } else {
        // Closing a client after a fatal error can block for good inside librdkafka (its group
        // never reaches the closed state), so the old client is closed on a thread of its own.
        let closer = std::thread::Builder::new()
            .name("ferrafka-close-fatal".into())
            .spawn(move || drop(consumer));
        if let Err(e) = closer {
            tracing::error!(subscription_group = %group, error = %e, "cannot start a thread to close the failed client; leaking it");
        }
    }
    let mut backoff = REBUILD_BACKOFF;
    loop {
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.is_raised() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        match connect(setup.clone()) {
            Ok(fresh) => {
                // Executors of the old client still stuck in user code: a new assignment of
                // their partitions waits for them, so a partition never runs twice at once.
                fresh.context().lock().driver.take_over(handed_over);
                tracing::info!(subscription_group = %group, "client rebuilt after a fatal error");
                return Some(fresh);
            }
            Err(e) => {
                tracing::error!(subscription_group = %group, error = %error_chain(&e.redacted(&setup.group.kafka)), retry_in = ?backoff * 2, "cannot rebuild the client");
                backoff = (backoff * 2).min(REBUILD_BACKOFF_MAX);
            }
        }
    }
}

fn poll_loop(consumer: &ListenerConsumer, stop: &StopSignal, orders_seen: &mut u64) -> LoopEnd {
    let group = consumer.context().group.clone();
    stop.wake_on_request(&consumer.context().wake);
    tracing::info!(subscription_group = %group, "listener started");
    let mut idle = false;
    let mut quieted = false;
    // A burst's messages, each with the rebalance count when it was polled; the state lock
    // is taken once per burst, not per message.
    let mut burst = Vec::with_capacity(BURST);
    // Partitions whose end librdkafka reported (`enable.partition.eof`, for `eofed`): after
    // the messages polled before, so the end comes after them.
    let mut ends = Vec::new();
    let mut hold = None;
    while !stop.is_raised() {
        if stop.is_quiet() && !quieted {
            quieted = true;
            tracing::info!(subscription_group = %group, "quiet: finishing running batches, starting no new ones, keeping the partitions");
            consumer
                .context()
                .lock()
                .driver
                .quiet(consumer, Instant::now());
        }
        for order in stop.orders.since(orders_seen) {
            let mut state = consumer.context().lock();
            let answer = state
                .driver
                .operator_order(consumer, &order, Instant::now());
            order.answer(answer);
        }
        if idle {
            // librdkafka's queue is empty: sleep until it fills, a report comes or a timer is
            // due. Polling on a timer instead costs CPU whenever a batch runs.
            let wait = consumer.context().lock().idle_wait(Instant::now());
            consumer.context().wake.wait(wait);
        } else if let Some(hold) = hold.take() {
            // A partition's backlog is long enough behind a young batch: its report (which
            // rings) or the end of the hold comes first, then polling goes on.
            consumer.context().wake.wait(hold);
        }
        match consumer.poll(Duration::ZERO) {
            Some(Ok(message)) => {
                idle = false;
                let epoch = consumer.context().epoch.load(Ordering::Acquire);
                burst.push((epoch, KafkaMessage::keep(message)));
                if burst.len() < BURST {
                    continue;
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(partition))) => {
                idle = false;
                ends.push(partition);
            }
            Some(Err(e)) => {
                idle = false;
                // Checked with the other fatal-error reports below, after this burst.
                consumer.context().fatal_seen.store(true, Ordering::Release);
                consumer.context().poll_error(&e);
            }
            None => idle = true,
        }
        let mut state = consumer.context().lock();
        // While librdkafka's queue still holds messages, full batches wait for whole runs.
        state.driver.set_gathering(consumer, !idle, Instant::now());
        let resets = std::mem::take(&mut *consumer.context().offset_resets());
        for (topic, partition, at) in resets {
            state.driver.on_offset_reset(&topic, partition, at);
        }
        let polled = burst.len();
        if !burst.is_empty() {
            // One clock read per burst: the receive time of a burst's messages is the same
            // for any practical purpose, and reading the clock per message shows in profiles.
            let received_at = (SystemTime::now(), Instant::now());
            state
                .driver
                .on_burst(consumer, burst.drain(..), received_at);
        }
        for partition in ends.drain(..) {
            state.driver.on_eof(consumer, partition, Instant::now());
        }
        state.drain_reports(consumer, None);
        #[cfg(feature = "testing")]
        if stop.take_executor_drill() {
            state.driver.abort_executors();
        }
        let now = Instant::now();
        state.driver.tick(consumer, now);
        hold = state.driver.hold_fetch(now);
        drop(state);
        consumer.context().monitor.emit(|| Event::Polled {
            subscription_group: &group,
            messages: polled,
        });
        if stop.take_fatal_drill() {
            crate::librdkafka::raise_fatal_error(consumer.client(), "fault drill");
        }
        if consumer.context().fatal_seen.swap(false, Ordering::AcqRel)
            && let Some((code, reason)) = consumer.client().fatal_error()
        {
            return LoopEnd::Fatal(format!("{code}: {reason}"));
        }
    }
    LoopEnd::Stop
}

fn shutdown(consumer: &ListenerConsumer, stop: &StopSignal, group: &str) -> ListenerExit {
    let deadline = stop.deadline();
    tracing::info!(subscription_group = %group, "listener stopping: finishing in-flight batches");
    if let Ok(assignment) = consumer.assignment() {
        let _ = consumer.pause(&assignment);
    }
    consumer.context().lock().driver.drain_all();
    // Keep serving librdkafka (callbacks, rebalances) while batches finish.
    loop {
        let _ = consumer.poll(Duration::from_millis(10));
        let mut state = consumer.context().lock();
        state.drain_reports(consumer, None);
        if !state.driver.any_running() || Instant::now() >= deadline {
            break;
        }
    }
    let forced = consumer.context().lock().stop_executors(consumer, deadline);
    if forced {
        tracing::error!(subscription_group = %group, "shutdown timeout reached: unfinished batches were abandoned and will be processed again after a restart");
    }
    consumer.commit_sync(group);
    leave_group(consumer);
    tracing::info!(subscription_group = %group, "listener stopped, left the group");
    ListenerExit { forced }
}

/// How long leaving the group may take before the client is closed anyway.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Unsubscribes and serves the resulting revocation before the client is closed. Closing a
/// client while the group hands it a new assignment (a rebalance that was already under way)
/// trips an assertion inside librdkafka (`rd_kafka_cgrp_terminated`) and aborts the process;
/// after unsubscribing no new assignment comes.
///
/// A static member of the classic protocol does not unsubscribe: that would send LeaveGroup
/// and rebalance the group, which static membership exists to avoid. Closing the client
/// revokes its partitions locally and keeps its place in the group until `session.timeout.ms`.
/// (Under KIP-848 librdkafka leaves as a static member, epoch -2, which keeps the place too.)
fn leave_group(consumer: &ListenerConsumer) {
    consumer.context().lock().driver.close();
    if consumer.context().static_member {
        tracing::info!(subscription_group = %consumer.context().group, "static member: keeping its place in the group for a restart within session.timeout.ms");
        let _ = consumer.poll(Duration::from_millis(100));
        return;
    }
    consumer.unsubscribe();
    let until = Instant::now() + LEAVE_TIMEOUT;
    while Instant::now() < until && consumer.assignment().is_ok_and(|a| a.count() > 0) {
        let _ = consumer.poll(Duration::from_millis(50));
    }
    // Serve what the leave itself queued (the revocation's commit result, the leave answer).
    let _ = consumer.poll(Duration::from_millis(100));
}
