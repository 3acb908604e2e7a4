//! A wake-up for the listener: executors ring it after each report, librdkafka when its queue
//! stops being empty. The listener sleeps on it instead of polling on a short timer.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A bell that remembers it rang until someone waited on it.
#[derive(Debug, Default)]
pub(crate) struct Doorbell {
    rung: Mutex<bool>,
    bell: Condvar,
}

impl Doorbell {
    /// Wakes the waiter, or the next wait if nobody waits now.
    pub(crate) fn ring(&self) {
        let mut rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        if !*rung {
            *rung = true;
            self.bell.notify_one();
        }
    }

    /// Waits until the bell rang (since the last wait) or `timeout` passed.
    pub(crate) fn wait(&self, timeout: Duration) {
        let rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        let (mut rung, _) = self
            .bell
            .wait_timeout_while(rung, timeout, |rung| !*rung)
            .unwrap_or_else(|p| p.into_inner());
        *rung = false;
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
