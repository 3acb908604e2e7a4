//! A counting global allocator: [`std::alloc::System`] plus two relaxed atomic counters, so a
//! phase can report the Rust heap allocations made per message by every thread of the process.
//!
//! Only Rust allocations pass through here: librdkafka (C) calls `malloc` directly, so its
//! allocations are not counted, for ferrafka and the raw loop alike.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

/// Allocations (`alloc`, `alloc_zeroed`, and `realloc`, which may move) since the start.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Bytes requested by those allocations (for `realloc`, the new size).
static BYTES: AtomicU64 = AtomicU64::new(0);

/// The bench binary's allocator.
pub struct Counting;

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count(size: usize) {
    // Relaxed: the counters are only read as totals around a phase, never to order memory.
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
}

#[allow(unsafe_code)] // a global allocator is an unsafe trait; this forwards to System
// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is `System`'s; the counting touches no memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations and allocated bytes so far, summed over every thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Number of allocations (reallocations included).
    pub allocations: u64,
    /// Bytes requested.
    pub bytes: u64,
}

impl Counts {
    /// The counters now.
    pub fn now() -> Self {
        Counts {
            allocations: ALLOCATIONS.load(Ordering::Relaxed),
            bytes: BYTES.load(Ordering::Relaxed),
        }
    }

    /// What was allocated between `self` (earlier) and `later`.
    pub fn until(&self, later: &Counts) -> Counts {
        Counts {
            allocations: later.allocations.saturating_sub(self.allocations),
            bytes: later.bytes.saturating_sub(self.bytes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_box() {
        let before = Counts::now();
        let b = std::hint::black_box(Box::new([0u8; 64]));
        let spent = before.until(&Counts::now());
        drop(b);
        // Other test threads may allocate too: at least ours is counted.
        assert!(spent.allocations >= 1 && spent.bytes >= 64, "{spent:?}");
    }
}
