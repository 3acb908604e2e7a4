//! CPU-time readings: this process through `getrusage(RUSAGE_SELF)`, the broker child through
//! `/proc/<pid>/stat`; plus the allocation counters (and, while a phase counts them, the
//! instructions retired) read at the same moments.

use std::time::{Duration, Instant};

use crate::alloc::Counts;

/// CPU time consumed so far by every thread of this process (librdkafka's included), plus a
/// wall-clock instant and the Rust allocation counters taken at the same moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// When the reading was taken.
    pub at: Instant,
    /// User CPU time of the process.
    pub user: Duration,
    /// System CPU time of the process.
    pub system: Duration,
    /// Rust heap allocations of the process so far.
    pub allocs: Counts,
    /// User-space instructions retired so far, while a phase counts them
    /// ([`crate::instructions::count`]).
    pub instructions: Option<u64>,
}

impl Snapshot {
    /// Reads the process's CPU time now.
    pub fn now() -> Self {
        let (user, system) = rusage(libc::RUSAGE_SELF);
        Snapshot {
            at: Instant::now(),
            user,
            system,
            allocs: Counts::now(),
            instructions: crate::instructions::read(),
        }
    }

    /// User plus system time.
    pub fn cpu(&self) -> Duration {
        self.user + self.system
    }
}

/// What happened between two snapshots.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Elapsed wall-clock time.
    pub wall: Duration,
    /// CPU time (user + system) of the process. Only the sum is precise: Linux splits it
    /// into user and system time by tick sampling, which is too coarse for short phases.
    pub cpu: Duration,
    /// Rust heap allocations made meanwhile (every thread; librdkafka's C mallocs excluded).
    pub allocs: Counts,
    /// User-space instructions retired meanwhile (every thread, librdkafka's included), when
    /// both ends read a counter.
    pub instructions: Option<u64>,
}

impl Span {
    /// The span from `start` to `end`.
    pub fn between(start: &Snapshot, end: &Snapshot) -> Self {
        Span {
            wall: end.at.saturating_duration_since(start.at),
            cpu: end.cpu().saturating_sub(start.cpu()),
            allocs: start.allocs.until(&end.allocs),
            instructions: end
                .instructions
                .zip(start.instructions)
                .map(|(e, s)| e.saturating_sub(s)),
        }
    }
}

/// CPU time (user + system) of the children this process has waited for so far
/// (`getrusage(RUSAGE_CHILDREN)`). The broker child is only reaped at the end, so the delta
/// around one waited-for child (the Python peer) is that child's CPU time.
pub fn reaped_children_cpu() -> Duration {
    let (user, system) = rusage(libc::RUSAGE_CHILDREN);
    user + system
}

/// `getrusage(who)`: user and system time summed over all threads of the process (or of the
/// reaped children).
///
/// Linux derives the total from the scheduler's nanosecond run-time accounting, so the sum is
/// precise (microsecond resolution) even though the user/system split is tick-sampled.
#[allow(unsafe_code)] // the workspace denies unsafe code; this one FFI call is the exception
fn rusage(who: libc::c_int) -> (Duration, Duration) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to writable memory of the right size and type; getrusage only
    // writes it and returns 0 on success.
    let rc = unsafe { libc::getrusage(who, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage cannot fail with valid arguments");
    // SAFETY: initialised by the successful call above (and zeroed before it anyway).
    let usage = unsafe { usage.assume_init() };
    (timeval(usage.ru_utime), timeval(usage.ru_stime))
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// CPU time (user + system) of another process from `/proc/<pid>/stat`, in clock ticks of
/// 10 ms (USER_HZ is 100 on Linux); `None` when unreadable (no procfs, process gone).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15), so indices 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_cpu_grows_with_work() {
        // Spin until 30 ms of CPU were counted: on a loaded machine 50 ms of wall-clock time
        // may hold much less CPU time, so a fixed wall-clock spin would be flaky.
        let start = Snapshot::now();
        let mut x = 0u64;
        let mut span = Span::between(&start, &start);
        while span.cpu < Duration::from_millis(30) && span.wall < Duration::from_secs(10) {
            for _ in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            span = Span::between(&start, &Snapshot::now());
        }
        assert!(span.cpu >= Duration::from_millis(30), "{span:?}");
        assert!(process_cpu(std::process::id()).is_some());
    }
}
