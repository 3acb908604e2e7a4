//! User-space instructions retired by the whole process, through a hardware performance
//! counter (`perf_event_open`, the `perf-event2` crate).
//!
//! [`count`] opens a counter of the calling thread with `inherit` set, so it also counts every
//! thread started after it (and their threads): call it before the client under measurement
//! starts its threads (ferrafka's listener, executors and librdkafka's). While its [`Counting`]
//! guard lives, [`crate::cpu::Snapshot::now`] reads the counter too, from any thread: the kernel
//! sums the threads' counts on every read. User space only (`exclude_kernel`):
//! `perf_event_paranoid` 2, the usual default, allows nothing more to an unprivileged process.
//!
//! Needs a hardware counter: a VM whose hypervisor exposes no PMU (the kernel logs "PMU not
//! available due to virtualization") has none, and the figures are printed as "n/a" with the
//! reason from [`unavailable`].

use std::sync::{Mutex, OnceLock, PoisonError};

use perf_event::events::Hardware;
use perf_event::{Builder, Counter};

/// The counter of the phase being measured, if one is.
static COUNTER: Mutex<Option<Counter>> = Mutex::new(None);

/// While alive, snapshots read instructions; dropping it closes the counter.
#[derive(Debug)]
pub struct Counting(());

impl Drop for Counting {
    fn drop(&mut self) {
        *COUNTER.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

fn open() -> std::io::Result<Counter> {
    let mut counter = Builder::new(Hardware::INSTRUCTIONS)
        .observe_self()
        .any_cpu()
        .inherit(true)
        .exclude_kernel(true)
        .exclude_hv(true)
        .build()?;
    counter.enable()?;
    Ok(counter)
}

/// Starts counting this thread's instructions and those of every thread started from now on;
/// the reason when there is no counter.
pub fn count() -> Result<Counting, String> {
    if let Some(why) = unavailable() {
        return Err(why.to_string());
    }
    let counter = open().map_err(|e| reason(&e))?;
    *COUNTER.lock().unwrap_or_else(PoisonError::into_inner) = Some(counter);
    Ok(Counting(()))
}

/// Instructions counted so far by the counter [`count`] installed; `None` without one.
pub fn read() -> Option<u64> {
    let mut counter = COUNTER.lock().unwrap_or_else(PoisonError::into_inner);
    counter.as_mut().and_then(|c| c.read().ok())
}

/// Why instructions cannot be counted here, or `None` when they can (tried once).
pub fn unavailable() -> Option<&'static str> {
    static WHY: OnceLock<Option<String>> = OnceLock::new();
    WHY.get_or_init(|| open().err().map(|e| reason(&e)))
        .as_deref()
}

fn reason(e: &std::io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV) => {
            " (no hardware performance counter: a VM without a virtual PMU?)"
        }
        Some(libc::EACCES | libc::EPERM) => {
            " (not allowed: see /proc/sys/kernel/perf_event_paranoid)"
        }
        _ => "",
    };
    format!("perf_event_open(instructions, user space): {e}{hint}")
}
