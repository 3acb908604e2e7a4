//! The delivery opaque: what librdkafka hands back with each delivery report.
//!
//! Fire-and-forget messages (`produce_async`) carry no tracker at all (a null pointer), so
//! queueing one touches no reference count shared with the delivery thread; awaited ones carry
//! their tracker's `Arc`.

use std::ffi::c_void;
use std::sync::Arc;

use rdkafka::util::IntoOpaque;

use crate::producer::{Tracked, Tracker};

impl IntoOpaque for Tracked {
    fn into_ptr(self) -> *mut c_void {
        self.0
            .map_or(std::ptr::null_mut(), |t| Arc::into_raw(t) as *mut c_void)
    }

    unsafe fn from_ptr(ptr: *mut c_void) -> Self {
        if ptr.is_null() {
            return Tracked(None);
        }
        // SAFETY: a non-null pointer comes from `into_ptr` above (`Arc::into_raw`), and
        // librdkafka hands each message's opaque back at most once, in its delivery report.
        Tracked(Some(unsafe { Arc::from_raw(ptr as *const Tracker) }))
    }
}
