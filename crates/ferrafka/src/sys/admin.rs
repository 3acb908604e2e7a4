//! IncrementalAlterConfigs through librdkafka's C API, which rdkafka 0.39 does not wrap, and the
//! request plumbing the other admin calls of `sys` share. Its legacy `alter_configs` resets every setting it is not given and is not
//! implemented by every broker (tansu 0.6.0 lacks it), so ferrafka alters settings
//! incrementally through `rdkafka-sys`.
//!
//! Safety rests on three rules kept inside [`incremental_alter_topic`]: every pointer
//! librdkafka returns is checked for null before use, every object ferrafka creates is destroyed
//! exactly once by a guard (also on early return), and the `AdminClient` (which owns the
//! `rd_kafka_t`) outlives the call because the caller holds it.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka_sys::bindings as rd;

/// One incremental change of a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IncrementalOp {
    /// Set the setting to a value.
    Set(String, String),
    /// Remove the topic-level value, falling back to the broker's default.
    Delete(String),
}

/// Why the call failed: librdkafka's code (when there is one) and text.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub(crate) code: Option<RDKafkaErrorCode>,
    pub(crate) reason: String,
}

impl FfiError {
    pub(crate) fn new(code: Option<RDKafkaErrorCode>, reason: impl Into<String>) -> Self {
        FfiError {
            code,
            reason: reason.into(),
        }
    }
}

/// Destroys what it holds when dropped.
pub(super) struct Guard<T> {
    pub(super) ptr: *mut T,
    pub(super) destroy: unsafe extern "C" fn(*mut T),
}

impl<T> Drop for Guard<T> {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            // SAFETY: `ptr` came from the matching librdkafka constructor and is destroyed once.
            unsafe { (self.destroy)(self.ptr) }
        }
    }
}

pub(super) fn cstring(s: &str) -> Result<CString, FfiError> {
    CString::new(s).map_err(|_| FfiError::new(None, format!("{s:?} contains a NUL byte")))
}

/// Reads a C string librdkafka owns; empty for null.
///
/// SAFETY: `ptr` is null or a NUL-terminated string that stays valid during the call.
pub(super) unsafe fn text(ptr: *const c_char) -> String {
    if ptr.is_null() {
        String::new()
    } else {
        // SAFETY: checked for null; librdkafka returns NUL-terminated strings.
        unsafe { CStr::from_ptr(ptr) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Sets `include_authorized_operations` on `options`.
///
/// SAFETY: `options` is live.
pub(super) unsafe fn include_operations(options: *mut rd::rd_kafka_AdminOptions_t) {
    // SAFETY: the caller's promise; the returned error (none for a valid option) is destroyed.
    let error = unsafe { rd::rd_kafka_AdminOptions_set_include_authorized_operations(options, 1) };
    drop(Guard {
        ptr: error,
        destroy: rd::rd_kafka_error_destroy,
    });
}

/// Sends one admin request and waits for its answer: creates the options (`op`, with
/// `timeout` as the request timeout) and a reply queue, lets `send` issue the request with the
/// client handle, options and queue, and returns the reply event once it came without a
/// request-level error. Blocks up to `timeout` plus a second.
pub(super) fn request(
    client: &AdminClient<DefaultClientContext>,
    op: rd::rd_kafka_admin_op_t,
    timeout: Duration,
    send: impl FnOnce(*mut rd::rd_kafka_t, *mut rd::rd_kafka_AdminOptions_t, *mut rd::rd_kafka_queue_t),
) -> Result<Guard<rd::rd_kafka_event_t>, FfiError> {
    let rk = client.inner().native_ptr();
    // SAFETY: rk is the live client handle; the options are destroyed by their guard.
    let options = Guard {
        ptr: unsafe { rd::rd_kafka_AdminOptions_new(rk, op) },
        destroy: rd::rd_kafka_AdminOptions_destroy,
    };
    let timeout_ms = timeout.as_millis().min(i32::MAX as u128 - 1000) as i32;
    let mut errbuf = [0 as c_char; 256];
    // SAFETY: options is live; errbuf is writable for its length.
    let set = unsafe {
        rd::rd_kafka_AdminOptions_set_request_timeout(
            options.ptr,
            timeout_ms,
            errbuf.as_mut_ptr(),
            errbuf.len(),
        )
    };
    if set != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: librdkafka wrote a NUL-terminated message into errbuf.
        return Err(FfiError::new(Some(set.into()), unsafe {
            text(errbuf.as_ptr())
        }));
    }
    // SAFETY: rk is live; the queue is destroyed by its guard after the event is taken.
    let queue = Guard {
        ptr: unsafe { rd::rd_kafka_queue_new(rk) },
        destroy: rd::rd_kafka_queue_destroy,
    };
    send(rk, options.ptr, queue.ptr);
    // SAFETY: queue is live; the event is destroyed by its guard.
    let event = Guard {
        ptr: unsafe { rd::rd_kafka_queue_poll(queue.ptr, timeout_ms + 1000) },
        destroy: rd::rd_kafka_event_destroy,
    };
    if event.ptr.is_null() {
        return Err(FfiError::new(
            Some(RDKafkaErrorCode::OperationTimedOut),
            format!("no answer within {timeout:?}"),
        ));
    }
    // SAFETY: event is live and owned by its guard.
    let code = unsafe { rd::rd_kafka_event_error(event.ptr) };
    if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        // SAFETY: as above; librdkafka returns a NUL-terminated string or null.
        let reason = unsafe { text(rd::rd_kafka_event_error_string(event.ptr)) };
        return Err(FfiError::new(Some(code.into()), reason));
    }
    Ok(event)
}

/// Applies `ops` to the settings of `topic` and waits for the broker's answer. Blocks up to
/// `timeout` (plus a second for the reply to arrive), so call it off the async runtime.
pub(crate) fn incremental_alter_topic(
    client: &AdminClient<DefaultClientContext>,
    topic: &str,
    ops: &[IncrementalOp],
    timeout: Duration,
) -> Result<(), FfiError> {
    let name = cstring(topic)?;
    // SAFETY: `name` is a valid C string; the resource is destroyed by its guard.
    let resource = Guard {
        ptr: unsafe {
            rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                name.as_ptr(),
            )
        },
        destroy: rd::rd_kafka_ConfigResource_destroy,
    };
    if resource.ptr.is_null() {
        return Err(FfiError::new(None, "librdkafka refused the topic resource"));
    }
    for op in ops {
        add_op(&resource, op)?;
    }
    let mut resources = [resource.ptr];
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS;
    let event = request(client, op, timeout, |rk, options, queue| {
        // SAFETY: every argument is live; librdkafka copies the resources and options.
        unsafe {
            rd::rd_kafka_IncrementalAlterConfigs(rk, resources.as_mut_ptr(), 1, options, queue)
        }
    })?;
    // SAFETY: event is live until its guard drops at the end of this function, and the result
    // and resource pointers read below belong to it.
    unsafe {
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.ptr);
        if result.is_null() {
            return Err(FfiError::new(None, "unexpected event type in reply"));
        }
        let mut count = 0usize;
        let list = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for i in 0..count {
            let r = *list.add(i);
            let code = rd::rd_kafka_ConfigResource_error(r);
            if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let reason = text(rd::rd_kafka_ConfigResource_error_string(r));
                let code: RDKafkaErrorCode = code.into();
                let reason = if reason.is_empty() {
                    code.to_string()
                } else {
                    reason
                };
                return Err(FfiError::new(Some(code), reason));
            }
        }
    }
    Ok(())
}

/// Adds one incremental change to `resource`.
fn add_op(
    resource: &Guard<rd::rd_kafka_ConfigResource_t>,
    op: &IncrementalOp,
) -> Result<(), FfiError> {
    let (key, op_type, value) = match op {
        IncrementalOp::Set(k, v) => (
            cstring(k)?,
            rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
            Some(cstring(v)?),
        ),
        IncrementalOp::Delete(k) => (
            cstring(k)?,
            rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
            None,
        ),
    };
    let value_ptr = value.as_ref().map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: resource is live; key and value are valid C strings (or null for delete,
    // which librdkafka accepts) that librdkafka copies.
    let error = unsafe {
        rd::rd_kafka_ConfigResource_add_incremental_config(
            resource.ptr,
            key.as_ptr(),
            op_type,
            value_ptr,
        )
    };
    if !error.is_null() {
        let error = Guard {
            ptr: error,
            destroy: rd::rd_kafka_error_destroy,
        };
        // SAFETY: error is a live rd_kafka_error_t owned by its guard.
        let (code, reason) = unsafe {
            (
                rd::rd_kafka_error_code(error.ptr),
                text(rd::rd_kafka_error_string(error.ptr)),
            )
        };
        return Err(FfiError::new(Some(code.into()), reason));
    }
    Ok(())
}
