//! The stop request the server shares with its listener threads: stop, quiet mode, operators'
//! orders for partitions, and (with the `testing` feature) a fault drill.

use crate::instrumentation::{AppState, Event, Monitor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::doorbell::Doorbell;

/// The stop request shared by the server's threads, with its deadline.
#[derive(Debug)]
pub(crate) struct StopSignal {
    raised: AtomicBool,
    quiet: AtomicBool,
    #[cfg(feature = "testing")]
    fatal_drill: AtomicBool,
    #[cfg(feature = "testing")]
    executor_drill: AtomicBool,
    deadline: OnceLock<Instant>,
    timeout: Duration,
    /// The listeners' doorbells: a stop or quiet request wakes a sleeping listener at once
    /// (a listener between batches of a run may otherwise sleep its idle wait first).
    bells: Mutex<Vec<Weak<Doorbell>>>,
    monitor: Monitor,
    /// Operators' pause and resume orders for the listeners' partitions.
    pub(crate) orders: super::orders::Board,
    /// Wakes whoever awaits [`StopSignal::raised`].
    on_raise: tokio::sync::Notify,
}

impl StopSignal {
    pub(crate) fn new(timeout: Duration, monitor: Monitor) -> Self {
        StopSignal {
            raised: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            #[cfg(feature = "testing")]
            fatal_drill: AtomicBool::new(false),
            #[cfg(feature = "testing")]
            executor_drill: AtomicBool::new(false),
            deadline: OnceLock::new(),
            timeout,
            bells: Mutex::new(Vec::new()),
            monitor,
            orders: super::orders::Board::default(),
            on_raise: tokio::sync::Notify::new(),
        }
    }

    /// Rings `bell` on every stop or quiet request from now on (a listener's, for each client
    /// it builds; bells of clients gone are forgotten).
    pub(crate) fn wake_on_request(&self, bell: &Arc<Doorbell>) {
        let mut bells = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        bells.retain(|b| b.strong_count() > 0);
        bells.push(Arc::downgrade(bell));
    }

    pub(crate) fn raise(&self) {
        self.deadline
            .get_or_init(|| crate::config::later(Instant::now(), self.timeout));
        if !self.raised.swap(true, Ordering::AcqRel) {
            self.monitor.emit(|| Event::AppState(AppState::Stopping));
        }
        self.on_raise.notify_waiters();
        self.ring();
    }

    /// Resolves once the stop is raised (by a signal, `RunningServer::stop` or a command).
    #[cfg(feature = "cli")]
    pub(crate) async fn raised(&self) {
        loop {
            let notified = self.on_raise.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }

    /// Posts an operator's order for a partition and wakes the listeners; each answers on
    /// the returned receiver.
    pub(crate) fn post_order(
        &self,
        partition: (String, String, i32),
        kind: super::orders::OrderKind,
    ) -> tokio::sync::mpsc::UnboundedReceiver<super::orders::Answer> {
        let answers = self.orders.post(partition, kind);
        self.ring();
        answers
    }

    pub(crate) fn quiet(&self) {
        if !self.quiet.swap(true, Ordering::AcqRel) {
            self.monitor.emit(|| Event::AppState(AppState::Quieting));
        }
        self.ring();
    }

    fn ring(&self) {
        let bells = self.bells.lock().unwrap_or_else(|p| p.into_inner());
        bells
            .iter()
            .filter_map(Weak::upgrade)
            .for_each(|b| b.ring());
    }

    /// Asks the listeners to raise a real librdkafka fatal error (a fault drill).
    #[cfg(feature = "testing")]
    pub(crate) fn request_fatal_drill(&self) {
        self.fatal_drill.store(true, Ordering::Release);
    }

    /// True once after `RunningServer::drill_fatal_error` was called.
    #[cfg(feature = "testing")]
    pub(crate) fn take_fatal_drill(&self) -> bool {
        self.fatal_drill.swap(false, Ordering::AcqRel)
    }

    /// Asks the listeners to end their executor tasks without a report (a fault drill).
    #[cfg(feature = "testing")]
    pub(crate) fn request_executor_drill(&self) {
        self.executor_drill.store(true, Ordering::Release);
        self.ring();
    }

    /// True once after `RunningServer::drill_executor_death` was called.
    #[cfg(feature = "testing")]
    pub(crate) fn take_executor_drill(&self) -> bool {
        self.executor_drill.swap(false, Ordering::AcqRel)
    }

    /// Always false: only the `testing` feature can request a fault drill.
    #[cfg(not(feature = "testing"))]
    pub(crate) fn take_fatal_drill(&self) -> bool {
        false
    }

    pub(crate) fn is_quiet(&self) -> bool {
        self.quiet.load(Ordering::Acquire)
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// When in-flight work must be done; only meaningful once raised.
    pub(crate) fn deadline(&self) -> Instant {
        *self
            .deadline
            .get_or_init(|| crate::config::later(Instant::now(), self.timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_quiet_requests_wake_a_sleeping_listener() {
        for request in [StopSignal::raise, StopSignal::quiet] {
            let stop = Arc::new(StopSignal::new(Duration::from_secs(1), Monitor::default()));
            let bell = Arc::new(Doorbell::default());
            stop.wake_on_request(&bell);
            let sleeper = {
                let bell = bell.clone();
                std::thread::spawn(move || {
                    let start = Instant::now();
                    bell.wait(Duration::from_secs(30));
                    start.elapsed()
                })
            };
            std::thread::sleep(Duration::from_millis(20));
            request(&stop);
            let slept = sleeper.join().unwrap();
            assert!(slept < Duration::from_secs(10), "slept {slept:?}");
        }
    }
}
