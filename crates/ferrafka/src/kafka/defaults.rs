//! librdkafka's own defaults for the properties ferrafka's checks read, and the value a client
//! would use given the properties it is configured with.

use std::collections::BTreeMap;

/// librdkafka 2.12's defaults for the properties the checks read.
fn librdkafka_default(property: &str, producer: bool) -> Option<&'static str> {
    Some(match property {
        // The one property whose default differs between consumers and producers.
        "allow.auto.create.topics" if producer => "true",
        "allow.auto.create.topics" => "false",
        "topic.metadata.refresh.interval.ms" => "300000",
        "partition.assignment.strategy" => "range,roundrobin",
        "group.protocol" => "classic",
        "session.timeout.ms" => "45000",
        "heartbeat.interval.ms" => "3000",
        "max.poll.interval.ms" => "300000",
        "request.required.acks" => "-1",
        "enable.idempotence" => "false",
        "compression.codec" => "none",
        "security.protocol" => "plaintext",
        "sasl.mechanisms" => "GSSAPI",
        "enable.ssl.certificate.verification" => "true",
        "ssl.endpoint.identification.algorithm" => "https",
        "enable.sasl.oauthbearer.unsecure.jwt" => "false",
        "api.version.request" => "true",
        "broker.version.fallback" => "0.10.0",
        "message.send.max.retries" => "2147483647",
        "message.timeout.ms" => "300000",
        "isolation.level" => "read_committed",
        // CRC32 of the key: not where the Java client puts it (ferrafka's producer sets
        // murmur2_random, see `PRODUCER_DEFAULTS`).
        "partitioner" => "consistent_random",
        _ => return None,
    })
}

/// librdkafka's alternative names for the same property.
fn aliases(property: &str) -> &'static [&'static str] {
    match property {
        "request.required.acks" => &["request.required.acks", "acks"],
        "compression.codec" => &["compression.codec", "compression.type"],
        "topic.metadata.refresh.interval.ms" => &["topic.metadata.refresh.interval.ms"],
        "sasl.mechanisms" => &["sasl.mechanisms", "sasl.mechanism"],
        "message.send.max.retries" => &["message.send.max.retries", "retries"],
        "message.timeout.ms" => &["message.timeout.ms", "delivery.timeout.ms"],
        _ => &[],
    }
}

/// The value a client would use: the last set alias, else librdkafka's default.
pub(crate) fn effective(
    kafka: &BTreeMap<String, String>,
    property: &str,
    producer: bool,
) -> Option<String> {
    let names = aliases(property);
    let set = if names.is_empty() {
        kafka.get(property)
    } else {
        names.iter().find_map(|n| kafka.get(*n))
    };
    set.cloned()
        .or_else(|| librdkafka_default(property, producer).map(str::to_string))
}

pub(crate) fn is_set(kafka: &BTreeMap<String, String>, property: &str) -> bool {
    let names = aliases(property);
    if names.is_empty() {
        kafka.contains_key(property)
    } else {
        names.iter().any(|n| kafka.contains_key(*n))
    }
}

pub(crate) fn millis(kafka: &BTreeMap<String, String>, property: &str) -> Option<u64> {
    effective(kafka, property, false).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_the_checks_assume_are_librdkafka_s() {
        let native = rdkafka::config::ClientConfig::new()
            .create_native_config()
            .unwrap();
        for property in [
            "topic.metadata.refresh.interval.ms",
            "partition.assignment.strategy",
            "group.protocol",
            "session.timeout.ms",
            "heartbeat.interval.ms",
            "max.poll.interval.ms",
            "enable.idempotence",
            "security.protocol",
            "sasl.mechanisms",
            "enable.ssl.certificate.verification",
            "ssl.endpoint.identification.algorithm",
            "enable.sasl.oauthbearer.unsecure.jwt",
            "api.version.request",
            "broker.version.fallback",
            "message.send.max.retries",
            "isolation.level",
        ] {
            assert_eq!(
                native.get(property).ok().as_deref(),
                librdkafka_default(property, false),
                "{property}"
            );
        }
        // A topic-level property is read through the default topic configuration, which exists
        // once one topic-level property is set.
        let topic_level = rdkafka::config::ClientConfig::new()
            .set("message.timeout.ms", "300000")
            .create_native_config()
            .unwrap();
        assert_eq!(
            topic_level.get("partitioner").ok().as_deref(),
            librdkafka_default("partitioner", true)
        );
        // Topic auto-creation applies to producers too (librdkafka gives them `true` unless set).
        assert_eq!(
            crate::librdkafka::properties()["allow.auto.create.topics"].scope,
            crate::librdkafka::Scope::Both
        );
    }
}
