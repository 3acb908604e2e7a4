//! The kernel's clock state through `adjtimex(2)` with `modes = 0`, which only reads it;
//! neither std nor a safe crate in the dependency tree exposes it.

/// What `adjtimex` reports: the clock state it returns, its `status` flags and its maximum
/// error in microseconds; `Err` when the call failed.
#[cfg(target_os = "linux")]
pub(crate) fn adjtimex_read() -> std::io::Result<(i32, i32, i64)> {
    // SAFETY: `timex` is plain old data, so an all-zero value is valid; `modes = 0` makes the
    // call read-only, and the pointer is to a live, exclusively borrowed local.
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        tx.modes = 0;
        let state = libc::adjtimex(&mut tx);
        (state, tx)
    };
    if state == -1 {
        return Err(std::io::Error::last_os_error());
    }
    // `c_long` is 32 bits wide on some targets.
    #[allow(clippy::useless_conversion)]
    let max_error_us = i64::from(tx.maxerror);
    Ok((state, tx.status, max_error_us))
}
