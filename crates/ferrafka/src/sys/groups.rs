//! DescribeConsumerGroups through librdkafka's C API, which rdkafka 0.39 does not wrap. rdkafka's group list asks the classic
//! DescribeGroups, to which Kafka answers "Dead" for a KIP-848 (`group.protocol=consumer`)
//! group; librdkafka's DescribeConsumerGroups asks ConsumerGroupDescribe for those.
//!
//! Safety rests on the rules of [`super::admin`]: every pointer librdkafka returns is checked for
//! null, everything ferrafka creates is destroyed once by a guard, the `AdminClient` outlives the
//! call, and everything read from the result event is copied before the event is destroyed.

use std::ffi::CString;
use std::os::raw::c_char;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka_sys::bindings as rd;

use super::admin::{FfiError, cstring, include_operations, request, text};
use crate::admin::{GroupDescription, GroupMember};

/// What the broker says about each of `groups`, copied out of librdkafka's answer: the group's
/// description, or why it could not be described.
pub(crate) fn describe_consumer_groups(
    client: &AdminClient<DefaultClientContext>,
    groups: &[&str],
    timeout: Duration,
) -> Result<Vec<Result<GroupDescription, FfiError>>, FfiError> {
    // SAFETY: `describe_groups` hands each description while its reply is alive.
    describe_groups(client, groups, timeout, false, |desc| unsafe {
        copy_description(desc)
    })
}

/// Sends DescribeConsumerGroups for `groups` (asking for the principal's authorized operations
/// too when `operations`), and returns what `copy` makes of each description; `copy` is called
/// while the reply is alive and must copy what it keeps.
pub(super) fn describe_groups<T>(
    client: &AdminClient<DefaultClientContext>,
    groups: &[&str],
    timeout: Duration,
    operations: bool,
    copy: impl Fn(*const rd::rd_kafka_ConsumerGroupDescription_t) -> T,
) -> Result<Vec<T>, FfiError> {
    let names: Vec<CString> = groups
        .iter()
        .map(|g| cstring(g))
        .collect::<Result<_, _>>()?;
    let mut pointers: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let op = rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS;
    let event = request(client, op, timeout, |rk, options, queue| {
        // SAFETY: every argument is live; librdkafka copies the group names and options.
        unsafe {
            if operations {
                include_operations(options);
            }
            rd::rd_kafka_DescribeConsumerGroups(
                rk,
                pointers.as_mut_ptr(),
                pointers.len(),
                options,
                queue,
            )
        }
    })?;
    // SAFETY: event is live until its guard drops at the end of this function; every
    // description handed to `copy` belongs to it.
    unsafe {
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr);
        if result.is_null() {
            return Err(FfiError::new(None, "unexpected event type in reply"));
        }
        let mut count = 0usize;
        let list = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        Ok((0..count).map(|i| copy(*list.add(i))).collect())
    }
}

/// Copies one group description.
///
/// SAFETY: `desc` is a live description of a live result event.
unsafe fn copy_description(
    desc: *const rd::rd_kafka_ConsumerGroupDescription_t,
) -> Result<GroupDescription, FfiError> {
    // SAFETY: the caller's promise; every pointer read is checked for null or passed to `text`.
    unsafe {
        let error = rd::rd_kafka_ConsumerGroupDescription_error(desc);
        if !error.is_null() {
            let code = rd::rd_kafka_error_code(error);
            return Err(FfiError::new(
                Some(code.into()),
                text(rd::rd_kafka_error_string(error)),
            ));
        }
        let state = rd::rd_kafka_ConsumerGroupDescription_state(desc);
        let group_type = rd::rd_kafka_ConsumerGroupDescription_type(desc);
        let members = (0..rd::rd_kafka_ConsumerGroupDescription_member_count(desc))
            .map(|i| rd::rd_kafka_ConsumerGroupDescription_member(desc, i))
            .filter(|m| !m.is_null())
            .map(|m| copy_member(m))
            .collect();
        let description = GroupDescription {
            name: text(rd::rd_kafka_ConsumerGroupDescription_group_id(desc)),
            state: text(rd::rd_kafka_consumer_group_state_name(state)),
            protocol_type: "consumer".into(),
            group_protocol: text(rd::rd_kafka_consumer_group_type_name(group_type)).to_lowercase(),
            assignor: text(rd::rd_kafka_ConsumerGroupDescription_partition_assignor(
                desc,
            )),
            members,
        };
        Ok(description)
    }
}

/// Copies one member: its ids, host and the topics of its assignment.
///
/// SAFETY: `member` is a live member description of a live result event.
unsafe fn copy_member(member: *const rd::rd_kafka_MemberDescription_t) -> GroupMember {
    // SAFETY: the caller's promise; the partition list is checked for null and read within
    // its `cnt` elements.
    unsafe {
        let mut topics: Vec<String> = Vec::new();
        let assignment = rd::rd_kafka_MemberDescription_assignment(member);
        let partitions = match assignment.is_null() {
            true => std::ptr::null(),
            false => rd::rd_kafka_MemberAssignment_partitions(assignment),
        };
        if !partitions.is_null() {
            let list = &*partitions;
            for i in 0..usize::try_from(list.cnt).unwrap_or(0) {
                topics.push(text((*list.elems.add(i)).topic));
            }
        }
        topics.sort();
        topics.dedup();
        GroupMember {
            id: text(rd::rd_kafka_MemberDescription_consumer_id(member)),
            client_id: text(rd::rd_kafka_MemberDescription_client_id(member)),
            host: text(rd::rd_kafka_MemberDescription_host(member)),
            topics: Some(topics),
        }
    }
}
