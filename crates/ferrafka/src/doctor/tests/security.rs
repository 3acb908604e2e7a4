//! FD016-FD021: client settings that weaken security or give up on messages, on every client.

use super::*;

/// The ready app with `kafka` set app-wide (every client) and `producer` on the producer.
fn with(kafka: &[(&str, &str)], producer: &[(&str, &str)]) -> Report {
    let app = app_with(
        &[],
        |c| {
            for (k, v) in kafka {
                c.kafka(*k, *v);
            }
            for (k, v) in producer {
                c.producer_kafka(*k, *v);
            }
        },
        |_| {},
        |_| {},
    );
    doctor(&app)
}

/// The subjects of `id`'s findings, sorted.
fn subjects(report: &Report, id: &str) -> Vec<String> {
    let mut s: Vec<String> = found(report, id)
        .iter()
        .map(|f| f.subject.clone())
        .collect();
    s.sort();
    s
}

const EVERY_CLIENT: [&str; 3] = [
    "admin client",
    "producer",
    "subscription group shop/default",
];

#[test]
fn fd016_certificate_verification_off_is_an_error_on_every_client() {
    let report = with(&[("enable.ssl.certificate.verification", "false")], &[]);
    assert_eq!(subjects(&report, "FD016"), EVERY_CLIENT);
    let f = one(&report, "FD016", "producer");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.found, "enable.ssl.certificate.verification=false");
    assert!(f.fix.contains("ssl.ca.location"), "{}", f.fix);
}

#[test]
fn fd016_host_name_verification_off_is_an_error() {
    let report = with(&[], &[("ssl.endpoint.identification.algorithm", "none")]);
    let f = one(&report, "FD016", "producer");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.found, "ssl.endpoint.identification.algorithm=none");
}

#[test]
fn fd017_no_tls_is_a_warning() {
    let report = with(&[("security.protocol", "plaintext")], &[]);
    assert_eq!(subjects(&report, "FD017"), EVERY_CLIENT);
    let f = one(&report, "FD017", "admin client");
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.found, "security.protocol=plaintext: no TLS");
}

#[test]
fn fd017_a_plain_password_without_tls_is_an_error() {
    let report = with(
        &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
        ],
        &[],
    );
    let f = one(&report, "FD017", "subscription group shop/default");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.fix.contains("sasl_ssl"), "{}", f.fix);
    // SCRAM does not send the password, but the data still crosses in clear.
    let scram = with(
        &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
        ],
        &[],
    );
    assert_eq!(one(&scram, "FD017", "producer").severity, Severity::Warning);
}

#[test]
fn fd018_unsigned_oauthbearer_tokens_are_an_error() {
    let report = with(
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ],
        &[],
    );
    assert_eq!(subjects(&report, "FD018"), EVERY_CLIENT);
    assert_eq!(one(&report, "FD018", "producer").severity, Severity::Error);
}

#[test]
fn fd019_a_producer_without_retries_warns() {
    for name in ["message.send.max.retries", "retries"] {
        let report = with(&[], &[(name, "0")]);
        let f = one(&report, "FD019", "producer");
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.found, "message.send.max.retries=0");
    }
}

#[test]
fn fd019_a_delivery_timeout_shorter_than_a_failover_warns() {
    let report = with(&[], &[("delivery.timeout.ms", "10000")]);
    let f = one(&report, "FD019", "producer");
    assert!(
        f.found.starts_with("message.timeout.ms=10000"),
        "{}",
        f.found
    );
    assert!(f.fix.contains("30000"), "{}", f.fix);
    // Long enough, or 0 (librdkafka: no timeout): nothing.
    none(&with(&[], &[("message.timeout.ms", "60000")]), "FD019");
    none(&with(&[], &[("message.timeout.ms", "0")]), "FD019");
}

#[test]
fn fd020_consumers_reading_uncommitted_transactions_warn() {
    let report = with(&[("isolation.level", "read_uncommitted")], &[]);
    assert_eq!(
        subjects(&report, "FD020"),
        ["subscription group shop/default"]
    );
}

#[test]
fn fd021_clients_that_skip_protocol_negotiation_warn() {
    let report = with(
        &[
            ("api.version.request", "false"),
            ("broker.version.fallback", "0.9.0"),
        ],
        &[],
    );
    assert_eq!(subjects(&report, "FD021"), EVERY_CLIENT);
    let f = one(&report, "FD021", "producer");
    assert_eq!(
        f.found,
        "api.version.request=false (broker.version.fallback=0.9.0)"
    );
}

#[test]
fn secure_and_durable_settings_pass() {
    let report = with(
        &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("isolation.level", "read_committed"),
        ],
        &[("message.timeout.ms", "300000")],
    );
    for id in ["FD016", "FD017", "FD018", "FD019", "FD020", "FD021"] {
        none(&report, id);
    }
}
