//! A wake-up for the listener: executors ring it after each report, librdkafka when its queue
//! stops being empty. The listener sleeps on it instead of polling on a short timer.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A bell that remembers it rang until someone waited on it.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    state: Mutex<Bell>,
    bell: Condvar,
}

#[derive(Debug, Default)]
struct Bell {
    rung: bool,
    /// Someone sleeps in `wait`: only then is a ring worth a wake-up call into the kernel
    /// (executors ring once per batch, mostly while the listener is busy).
    sleeping: bool,
}

impl Doorbell {
    /// Wakes the waiter, or the next wait if nobody waits now.
    pub(crate) fn ring(&self) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.rung {
            state.rung = true;
            if state.sleeping {
                self.bell.notify_one();
            }
        }
    }

    /// Waits until the bell rang (since the last wait) or `timeout` passed.
    pub(crate) fn wait(&self, timeout: Duration) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if !state.rung {
            state.sleeping = true;
            state = self
                .bell
                .wait_timeout_while(state, timeout, |s| !s.rung)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            state.sleeping = false;
        }
        state.rung = false;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;

    #[test]
    fn a_ring_before_the_wait_is_not_lost() {
        let bell = Doorbell::default();
        bell.ring();
        let start = Instant::now();
        bell.wait(Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5));
        let start = Instant::now();
        bell.wait(Duration::from_millis(50));
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "a ring wakes one wait only"
        );
    }

    #[test]
    fn a_ring_wakes_a_waiting_thread() {
        let bell = Arc::new(Doorbell::default());
        let ringer = Arc::clone(&bell);
        let start = Instant::now();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            ringer.ring();
        });
        bell.wait(Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5));
        thread.join().unwrap();
    }
}
