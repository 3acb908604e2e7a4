//! Explanations for Kafka errors whose librdkafka text does not say what to do.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// What to tell an operator about `code`, when librdkafka's own text is not enough.
pub(crate) fn explain(code: RDKafkaErrorCode) -> Option<&'static str> {
    match code {
        RDKafkaErrorCode::InconsistentGroupProtocol => Some(
            "Inconsistent group protocol: members of this consumer group use different \
             `partition.assignment.strategy` values (or group protocols), which happens when the \
             strategy is changed with a rolling deploy. Members with different strategies cannot \
             share a group. To change the strategy: stop ALL consumers of the group, change \
             `partition.assignment.strategy`, then start them again.",
        ),
        RDKafkaErrorCode::FencedInstanceId => Some(
            "Fenced static member: another process joined the group with the same \
             `group.instance.id`. Every process needs its own id (e.g. derived from the pod or \
             host name); this listener will rebuild its client after a backoff.",
        ),
        RDKafkaErrorCode::UnreleasedInstanceId => Some(
            "Unreleased static member id (group.protocol=consumer, KIP-848): the broker still \
             holds a member with this `group.instance.id`, typically a process killed (kill -9) \
             without leaving the group. Under the consumer protocol a duplicate id fences the \
             NEW member, so a quick restart is refused until the broker's session timeout \
             (`group.consumer.session.timeout.ms`, 45 s by default) expires the old one. Wait \
             for it, or give every process its own id; this listener rebuilds its client after \
             a backoff.",
        ),
        RDKafkaErrorCode::GroupAuthorizationFailed => Some(
            "Not authorized: the broker denied this app's principal Read on the consumer group \
             (a consumer needs Read on its group.id). Grant it, e.g. `kafka-acls --add \
             --allow-principal User:<principal> --operation Read --group <group.id>`; `doctor \
             --live` checks every permission the app needs before it starts.",
        ),
        RDKafkaErrorCode::TopicAuthorizationFailed => Some(
            "Not authorized: the broker denied this app's principal an operation on the topic \
             the reason names (a consumer needs Read and Describe on every routed topic). Grant \
             it, e.g. `kafka-acls --add --allow-principal User:<principal> --operation Read \
             --topic <topic>`; `doctor --live` checks every permission the app needs before it \
             starts.",
        ),
        _ => None,
    }
}

/// What to tell an operator about `error`, when librdkafka's own text is not enough.
pub(crate) fn explanation(error: &KafkaError) -> Option<&'static str> {
    error.rdkafka_error_code().and_then(explain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inconsistent_group_protocol_explains_the_stop_all_procedure() {
        let text = explain(RDKafkaErrorCode::InconsistentGroupProtocol).unwrap();
        assert!(text.contains("stop ALL consumers of the group"), "{text}");
        assert!(text.contains("partition.assignment.strategy"), "{text}");
        let error = KafkaError::Global(RDKafkaErrorCode::InconsistentGroupProtocol);
        assert_eq!(explanation(&error), Some(text));
        assert!(explain(RDKafkaErrorCode::BrokerTransportFailure).is_none());
    }

    #[test]
    fn denied_operations_name_the_operation_and_the_grant() {
        let group = explain(RDKafkaErrorCode::GroupAuthorizationFailed).unwrap();
        assert!(group.contains("Read on the consumer group"), "{group}");
        let topic = explain(RDKafkaErrorCode::TopicAuthorizationFailed).unwrap();
        assert!(topic.contains("--operation Read --topic"), "{topic}");
    }
}
