//! Whether the kernel says this host's clock is disciplined by NTP (or PTP, chrony, …).
//! The kernel is asked through `adjtimex(2)` in read-only mode (`sys::clock`).

use serde::Serialize;

/// What the kernel reports about clock synchronisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ClockStatus {
    /// A time daemon keeps the clock in sync; `max_error_us` is the kernel's bound on the error.
    Synchronised {
        /// The kernel's estimated maximum error, in microseconds.
        max_error_us: i64,
    },
    /// Nothing disciplines the clock (`STA_UNSYNC`, or the state `TIME_ERROR`): it drifts
    /// freely.
    Unsynchronised {
        /// The kernel's estimated maximum error, in microseconds.
        max_error_us: i64,
    },
    /// The kernel could not be asked (e.g. a sandbox forbids the call); the reason.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// Asks the kernel through `adjtimex` in read-only mode.
#[cfg(target_os = "linux")]
pub(crate) fn kernel_status() -> ClockStatus {
    match crate::sys::clock::adjtimex_read() {
        Ok((state, status, max_error_us)) => interpret(state, status, max_error_us),
        Err(e) => ClockStatus::Unknown {
            reason: format!("adjtimex failed: {e}"),
        },
    }
}

/// Asks the kernel; only Linux is supported.
#[cfg(not(target_os = "linux"))]
pub fn kernel_status() -> ClockStatus {
    ClockStatus::Unknown {
        reason: "only checked on Linux (adjtimex)".into(),
    }
}

/// Reads `adjtimex`'s answer: the returned clock state and the status bits.
#[cfg(target_os = "linux")]
fn interpret(state: i32, status: i32, max_error_us: i64) -> ClockStatus {
    if state == libc::TIME_ERROR || status & libc::STA_UNSYNC != 0 {
        ClockStatus::Unsynchronised { max_error_us }
    } else {
        ClockStatus::Synchronised { max_error_us }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_unsync_bit_or_the_error_state_means_unsynchronised() {
        assert_eq!(
            interpret(libc::TIME_OK, libc::STA_PLL, 20),
            ClockStatus::Synchronised { max_error_us: 20 }
        );
        assert_eq!(
            interpret(libc::TIME_OK, libc::STA_UNSYNC, 16_000_000),
            ClockStatus::Unsynchronised {
                max_error_us: 16_000_000
            }
        );
        assert_eq!(
            interpret(libc::TIME_ERROR, 0, 5),
            ClockStatus::Unsynchronised { max_error_us: 5 }
        );
    }

    #[test]
    fn the_kernel_answers() {
        // Whatever this host's state, the call itself works here (no sandbox forbids it).
        let status = kernel_status();
        assert!(!matches!(status, ClockStatus::Unknown { .. }), "{status:?}");
    }
}
