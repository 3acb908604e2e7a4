//! Processing: the per-partition state machine that decides what runs and what is stored
//! ([`partition`]), the executors that run consumers ([`executor`]), and the stop signal the
//! server shares with its listeners. The listener that feeds them lives in `connection`.

pub(crate) mod doorbell;
pub(crate) mod executor;
pub(crate) mod partition;
pub(crate) mod stop;
pub(crate) mod virtual_partitions;

use std::time::{Duration, Instant};

/// `at + wait`, or a moment far beyond any deadline of a running process when that does not
/// fit in an `Instant` (boot validation bounds the duration settings; this keeps any other
/// duration from panicking the clock arithmetic).
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    at.checked_add(wait)
        .or_else(|| at.checked_add(FAR))
        .unwrap_or(at)
}
