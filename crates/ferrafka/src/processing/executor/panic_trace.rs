//! The backtrace of a panic in `consume`, captured where it happens.
//!
//! `catch_unwind` hands back only the panic's payload: the stack is unwound by then. A panic
//! hook runs before unwinding, on the panicking thread, so ferrafka's hook (installed once per
//! process, in front of the hook that was there, which still runs and prints the panic) keeps a
//! backtrace in a slot of that thread. The executor polls `consume` through [`traced`], which
//! empties the slot before every poll, and [`take`]s it right after catching the panic: on the
//! same thread, within the same poll (unwinding is synchronous), so the backtrace is that
//! panic's, never an older one's.
//!
//! Only panics while [`traced`] polls are captured (whatever `RUST_BACKTRACE` says: a consumer's
//! panic is worth its stack); any other panic of the process costs the hook one flag read. The
//! frames are resolved to names when [`take`]n. An app that replaces the panic hook after the
//! server started gets no backtraces (its hook runs instead of ferrafka's; nothing else changes).

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Once;

/// A backtrace is cut to this many bytes (an error record stays small).
pub(crate) const MAX_BACKTRACE_BYTES: usize = 16 * 1024;

thread_local! {
    static SLOT: RefCell<Option<Backtrace>> = const { RefCell::new(None) };
    /// Set while [`traced`] polls on this thread.
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the capturing hook in front of the current one, once per process.
pub(crate) fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // A panic during thread teardown finds no flag: it keeps no backtrace.
            if ARMED.try_with(Cell::get).unwrap_or(false) {
                let backtrace = Backtrace::force_capture();
                let _ = SLOT.try_with(|slot| *slot.borrow_mut() = Some(backtrace));
            }
            previous(info);
        }));
    });
}

/// Polls `work` with this thread's capture armed, emptying the slot before every poll.
pub(crate) async fn traced<F: Future>(work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        let _ = SLOT.try_with(|slot| slot.borrow_mut().take());
        let _armed = Armed::new();
        work.as_mut().poll(cx)
    })
    .await
}

/// Arms this thread's capture until dropped (also when a poll unwinds).
struct Armed;

impl Armed {
    fn new() -> Armed {
        let _ = ARMED.try_with(|armed| armed.set(true));
        Armed
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        let _ = ARMED.try_with(|armed| armed.set(false));
    }
}

/// The backtrace of the panic caught last on this thread (since [`traced`] last polled), as
/// text cut to [`MAX_BACKTRACE_BYTES`].
pub(crate) fn take() -> Option<String> {
    let backtrace = SLOT.try_with(|slot| slot.borrow_mut().take()).ok()??;
    Some(cut(backtrace.to_string(), MAX_BACKTRACE_BYTES))
}

/// `text` cut to at most `max` bytes at a char boundary, marked when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n… (cut)");
    }
    text
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;

    use futures::FutureExt as _;

    use super::*;

    #[inline(never)]
    fn deep_in_the_consumer(n: u32) -> u32 {
        if n > 0 {
            panic!("payment {n} exploded");
        }
        n
    }

    #[tokio::test]
    async fn a_panic_in_traced_work_carries_its_own_backtrace_and_nothing_else_does() {
        install();
        let caught =
            traced(AssertUnwindSafe(async { deep_in_the_consumer(3) }).catch_unwind()).await;
        assert!(caught.is_err());
        let text = take().expect("a backtrace");
        assert!(text.contains("deep_in_the_consumer"), "{text}");
        assert_eq!(take(), None, "taken once");
        // A panic outside traced work is not captured.
        let _ = std::panic::catch_unwind(|| deep_in_the_consumer(1));
        assert_eq!(take(), None, "only traced work is captured");
        // One caught inside traced work by the consumer itself is dropped at the next poll.
        let fine = traced(async {
            let _ = std::panic::catch_unwind(|| deep_in_the_consumer(2));
            tokio::task::yield_now().await;
            deep_in_the_consumer(0)
        })
        .await;
        assert_eq!(fine, 0);
        assert_eq!(take(), None, "no stale backtrace after a clean run");
    }

    #[test]
    fn a_long_backtrace_is_cut_at_a_char_boundary() {
        assert_eq!(cut("short".into(), 16), "short");
        assert_eq!(cut("aé€b".into(), 4), "aé\n… (cut)");
        assert_eq!(cut("aé€b".into(), 6), "aé€\n… (cut)");
    }
}
