//! The stop request the server shares with its listener threads: stop, quiet mode, and (with
//! the `testing` feature) a fault drill.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The stop request shared by the server's threads, with its deadline.
#[derive(Debug)]
pub(crate) struct StopSignal {
    raised: AtomicBool,
    quiet: AtomicBool,
    #[cfg(feature = "testing")]
    fatal_drill: AtomicBool,
    deadline: OnceLock<Instant>,
    timeout: Duration,
}

impl StopSignal {
    pub(crate) fn new(timeout: Duration) -> Self {
        StopSignal {
            raised: AtomicBool::new(false),
            quiet: AtomicBool::new(false),
            #[cfg(feature = "testing")]
            fatal_drill: AtomicBool::new(false),
            deadline: OnceLock::new(),
            timeout,
        }
    }

    pub(crate) fn raise(&self) {
        self.deadline.get_or_init(|| Instant::now() + self.timeout);
        self.raised.store(true, Ordering::Release);
    }

    pub(crate) fn quiet(&self) {
        self.quiet.store(true, Ordering::Release);
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
        *self.deadline.get_or_init(|| Instant::now() + self.timeout)
    }
}
