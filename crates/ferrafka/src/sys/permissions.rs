//! What the cluster lets this client's principal do (KIP-430 authorized operations), through
//! librdkafka's DescribeTopics and DescribeConsumerGroups, which rdkafka 0.39 does not wrap.
//!
//! Safety rests on the rules of [`super::admin`]: every pointer librdkafka returns is checked for
//! null, everything ferrafka creates is destroyed once by a guard, the `AdminClient` outlives the
//! call, and everything read from the result event is copied before the event is destroyed.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka_sys::bindings as rd;

use super::admin::{FfiError, Guard, cstring, include_operations, request, text};

/// The operations the principal may perform on one resource: `Ok(None)` when the cluster
/// reports none (no authorizer, or a broker without KIP-430), `Err` when describing the
/// resource failed (a denied Describe shows as `TopicAuthorizationFailed` or
/// `GroupAuthorizationFailed`).
pub(crate) type Operations = Result<Option<BTreeSet<String>>, FfiError>;

/// Copies an authorized-operations array; `None` for null (not reported).
///
/// SAFETY: `ops` is null or points at `count` values of a live result event.
unsafe fn copy_operations(
    ops: *const rd::rd_kafka_AclOperation_t,
    count: usize,
) -> Option<BTreeSet<String>> {
    if ops.is_null() {
        return None;
    }
    // SAFETY: the caller's promise; each name is a static string of librdkafka.
    Some(
        (0..count)
            .map(|i| unsafe { text(rd::rd_kafka_AclOperation_name(*ops.add(i))) })
            .collect(),
    )
}

/// Copies a description's error, if it has one.
///
/// SAFETY: `error` is null or a live error of a live result event.
unsafe fn copy_error(error: *const rd::rd_kafka_error_t) -> Option<FfiError> {
    if error.is_null() {
        return None;
    }
    // SAFETY: the caller's promise.
    unsafe {
        Some(FfiError::new(
            Some(rd::rd_kafka_error_code(error).into()),
            text(rd::rd_kafka_error_string(error)),
        ))
    }
}

/// The principal's operations on each of `topics`, by name.
pub(crate) fn topic_operations(
    client: &AdminClient<DefaultClientContext>,
    topics: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, Operations)>, FfiError> {
    let names: Vec<CString> = topics
        .iter()
        .map(|t| cstring(t))
        .collect::<Result<_, _>>()?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    // SAFETY: the names are valid C strings, copied by librdkafka; destroyed by the guard.
    let collection = Guard {
        ptr: unsafe {
            rd::rd_kafka_TopicCollection_of_topic_names(pointers.as_mut_ptr(), pointers.len())
        },
        destroy: rd::rd_kafka_TopicCollection_destroy,
    };
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS;
    let event = request(client, op, timeout, |rk, options, queue| {
        // SAFETY: every argument is live; librdkafka copies the collection and options.
        unsafe {
            include_operations(options);
            rd::rd_kafka_DescribeTopics(rk, collection.ptr, options, queue)
        }
    })?;
    // SAFETY: event is live until its guard drops at the end of this function; every pointer
    // read below belongs to it and is copied into owned values before then.
    unsafe {
        let result = rd::rd_kafka_event_DescribeTopics_result(event.ptr);
        if result.is_null() {
            return Err(FfiError::new(None, "unexpected event type in reply"));
        }
        let mut count = 0usize;
        let list = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
        Ok((0..count)
            .map(|i| {
                let desc = *list.add(i);
                let name = text(rd::rd_kafka_TopicDescription_name(desc));
                let operations = match copy_error(rd::rd_kafka_TopicDescription_error(desc)) {
                    Some(error) => Err(error),
                    None => {
                        let mut n = 0usize;
                        let ops = rd::rd_kafka_TopicDescription_authorized_operations(desc, &mut n);
                        Ok(copy_operations(ops, n))
                    }
                };
                (name, operations)
            })
            .collect())
    }
}

/// The principal's operations on each of `groups`, by name.
pub(crate) fn group_operations(
    client: &AdminClient<DefaultClientContext>,
    groups: &[&str],
    timeout: Duration,
) -> Result<Vec<(String, Operations)>, FfiError> {
    super::groups::describe_groups(client, groups, timeout, true, |desc| {
        // SAFETY: `describe_groups` hands each description while its reply is alive; what is
        // kept is copied.
        unsafe {
            let name = text(rd::rd_kafka_ConsumerGroupDescription_group_id(desc));
            let operations = match copy_error(rd::rd_kafka_ConsumerGroupDescription_error(desc)) {
                Some(error) => Err(error),
                None => {
                    let mut n = 0usize;
                    let ops =
                        rd::rd_kafka_ConsumerGroupDescription_authorized_operations(desc, &mut n);
                    Ok(copy_operations(ops, n))
                }
            };
            (name, operations)
        }
    })
}
