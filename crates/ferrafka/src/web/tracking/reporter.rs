//! The reporter: a task of the server's runtime that publishes the report every
//! `report_interval` and the errors as they come, and at a clean stop the final report and the
//! tombstone. Publishing never holds up consumption: each record is awaited in a task of its
//! own, at most [`MAX_IN_FLIGHT`] at once; a failure is logged and emitted as an
//! [`Event::Error`] of kind [`ErrorKind::Reporting`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::Sampler;
use super::build::Identity;
use crate::config::Config;
use crate::instrumentation::{AppState, ErrorKind, Event, Monitor};
use crate::producer::{Producer, Record};

/// Records awaiting their acknowledgement at most; a report due while that many are in flight
/// is skipped (the next one says the same, newer).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// Where the records go and who hears of it.
struct Outlet {
    producer: Producer,
    monitor: Monitor,
    reports_topic: String,
    errors_topic: String,
    identity: Identity,
}

/// The running reporter of a server.
#[derive(Debug)]
pub(crate) struct Reporter {
    stop: Option<oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Reporter {
    /// Starts publishing on `runtime`.
    pub(crate) fn start(
        sampler: Sampler,
        identity: Identity,
        config: &Config,
        producer: Producer,
        monitor: Monitor,
        runtime: &tokio::runtime::Handle,
    ) -> Reporter {
        let outlet = Arc::new(Outlet {
            producer,
            monitor,
            reports_topic: config.reports_topic.clone(),
            errors_topic: config.errors_topic.clone(),
            identity,
        });
        let (stop, stopped) = oneshot::channel();
        let (finished, done) = std::sync::mpsc::channel();
        let interval = config.report_interval;
        runtime.spawn(async move {
            run(sampler, outlet, interval, stopped).await;
            let _ = finished.send(());
        });
        Reporter {
            stop: Some(stop),
            done,
        }
    }

    /// The clean stop: publishes what errors wait, the final report (state `stopped`) and the
    /// tombstone, waiting up to `timeout` for them. Called once the listeners stopped, before
    /// the producer's last flush.
    pub(crate) fn finish(mut self, timeout: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if self.done.recv_timeout(timeout).is_err() {
            tracing::warn!(
                ?timeout,
                "the final report and tombstone were not acknowledged in time"
            );
        }
    }
}

async fn run(
    sampler: Sampler,
    outlet: Arc<Outlet>,
    interval: Duration,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            // A dropped sender is no clean stop: no final report, no tombstone.
            stop = &mut stopped => match stop {
                Ok(()) => break,
                Err(_) => return,
            },
            _ = tick.tick() => {
                while in_flight.try_join_next().is_some() {}
                if in_flight.len() < MAX_IN_FLIGHT {
                    let report = sampler.report(&outlet.identity, None);
                    send_report(&outlet, &mut in_flight, &report);
                } else {
                    outlet.failed(&"the previous reports are still not acknowledged; skipped one");
                }
            }
            _ = sampler.errors_waiting() => {}
        }
        while in_flight.try_join_next().is_some() {}
        let room = MAX_IN_FLIGHT.saturating_sub(in_flight.len());
        for error in sampler.take_errors(room) {
            send_error(&outlet, &mut in_flight, &error);
        }
    }
    // The final records follow everything sent before, in order, so the tombstone is the
    // process's newest record.
    for error in sampler.take_errors(usize::MAX) {
        send_error(&outlet, &mut in_flight, &error);
    }
    while in_flight.join_next().await.is_some() {}
    let last = sampler.report(&outlet.identity, Some(AppState::Stopped));
    match serde_json::to_vec(&last) {
        Ok(payload) => outlet.publish(&outlet.reports_topic, Some(payload)).await,
        Err(e) => outlet.failed(&e),
    }
    outlet.publish(&outlet.reports_topic, None).await;
}

fn send_report(
    outlet: &Arc<Outlet>,
    in_flight: &mut JoinSet<()>,
    report: &crate::web::report::ProcessReport,
) {
    match serde_json::to_vec(report) {
        Ok(payload) => {
            let outlet = outlet.clone();
            in_flight.spawn(async move {
                outlet.publish(&outlet.reports_topic, Some(payload)).await;
            });
        }
        Err(e) => outlet.failed(&e),
    }
}

fn send_error(
    outlet: &Arc<Outlet>,
    in_flight: &mut JoinSet<()>,
    error: &crate::web::report::ErrorReport,
) {
    match serde_json::to_vec(error) {
        Ok(payload) => {
            let outlet = outlet.clone();
            in_flight.spawn(async move {
                outlet.publish(&outlet.errors_topic, Some(payload)).await;
            });
        }
        Err(e) => outlet.failed(&e),
    }
}

impl Outlet {
    /// Produces one record keyed by the process id (`None`: a tombstone) and waits for its
    /// acknowledgement.
    async fn publish(&self, topic: &str, payload: Option<Vec<u8>>) {
        let key = self.identity.process_id.as_str();
        let mut record = Record::to(topic).key(key);
        if let Some(payload) = &payload {
            record = record.payload(payload);
        }
        let started = Instant::now();
        match self.producer.produce(record).await {
            Ok(_) => self.monitor.emit(|| Event::ReportPublished { topic }),
            Err(e) => {
                let error = format!(
                    "publishing to {topic} failed after {:.1?}: {}",
                    started.elapsed(),
                    crate::error::error_chain(&e)
                );
                self.failed(&error);
            }
        }
    }

    /// Reporting failed: logged and emitted, never more.
    fn failed(&self, error: &dyn std::fmt::Display) {
        tracing::warn!(%error, "reporting for web failed; consumption goes on");
        self.monitor.error(ErrorKind::Reporting, None, error);
    }
}
