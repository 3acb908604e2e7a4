//! Static checks of client settings that weaken security or give up on messages: TLS
//! verification, cleartext transport and passwords, unsigned OAUTHBEARER tokens, a producer
//! that stops retrying before a leader failover ends, consumers that read aborted transactions,
//! and clients that do not negotiate protocol versions. Every client is checked: each
//! subscription group's consumer, the producer and the admin client.

use std::collections::BTreeMap;

use crate::doctor::{
    AppView, Report, Severity, WHY_API_VERSIONS, WHY_CLEARTEXT, WHY_CLEARTEXT_PASSWORD,
    WHY_DELIVERY_RETRIES, WHY_DELIVERY_TIMEOUT, WHY_READ_UNCOMMITTED, WHY_TLS_VERIFY,
    WHY_UNSECURED_JWT, sg_subject,
};
use crate::kafka::{effective, is_set};

/// Shortest `message.timeout.ms` that outlasts a leader failover: a killed broker is fenced
/// after `broker.session.timeout.ms` (9 s by default) and only then are new leaders elected;
/// measured on Kafka 4.4, acknowledgements stopped for 10.5–12.5 s (docs/reliability.md).
pub(crate) const FAILOVER_MS: u64 = 30_000;

/// Which client a [`Client`] is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Consumer,
    Producer,
    Admin,
}

/// One client and its properties.
struct Client {
    subject: String,
    kafka: BTreeMap<String, String>,
    kind: Kind,
}

/// Each subscription group's consumer, the producer and the admin client.
fn clients(app: &dyn AppView) -> Vec<Client> {
    let mut clients: Vec<Client> = app
        .subscription_groups()
        .iter()
        .map(|sg| Client {
            subject: sg_subject(sg),
            kafka: sg.kafka.clone(),
            kind: Kind::Consumer,
        })
        .collect();
    clients.push(Client {
        subject: "producer".into(),
        kafka: app.producer_kafka(),
        kind: Kind::Producer,
    });
    clients.push(Client {
        subject: "admin client".into(),
        kafka: app.admin_kafka(),
        kind: Kind::Admin,
    });
    clients
}

impl Client {
    /// The value the client uses (librdkafka's producer defaults for the producer).
    fn value(&self, property: &str) -> String {
        effective(&self.kafka, property, self.kind == Kind::Producer)
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }
}

/// FD016-FD018 and FD021: TLS verification, cleartext, unsigned tokens, protocol versions.
pub(crate) fn check_client_security(app: &dyn AppView, report: &mut Report) {
    for c in clients(app) {
        tls_verification(&c, report);
        cleartext(&c, report);
        if c.value("enable.sasl.oauthbearer.unsecure.jwt") == "true" {
            report.push(
                "FD018",
                Severity::Error,
                &c.subject,
                "enable.sasl.oauthbearer.unsecure.jwt=true",
                WHY_UNSECURED_JWT,
                "remove it and configure an OIDC token endpoint \
                 (`sasl.oauthbearer.method=oidc`, `sasl.oauthbearer.token.endpoint.url`, client \
                 id and secret from the environment)",
            );
        }
        if c.value("api.version.request") == "false" {
            report.push(
                "FD021",
                Severity::Warning,
                &c.subject,
                format!(
                    "api.version.request=false (broker.version.fallback={})",
                    c.value("broker.version.fallback")
                ),
                WHY_API_VERSIONS,
                "remove api.version.request (and broker.version.fallback): every Kafka since \
                 0.10 answers ApiVersions",
            );
        }
    }
}

/// FD016: certificate or host name verification turned off.
fn tls_verification(c: &Client, report: &mut Report) {
    let off = [
        ("enable.ssl.certificate.verification", "false"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ];
    for (property, value) in off {
        if is_set(&c.kafka, property) && c.value(property) == value {
            report.push(
                "FD016",
                Severity::Error,
                &c.subject,
                format!("{property}={value}"),
                WHY_TLS_VERIFY,
                format!(
                    "remove {property}; give the brokers' CA with `ssl.ca.location` (or \
                     `ssl.ca.pem`) if it is not in the system store"
                ),
            );
        }
    }
}

/// FD017: no TLS (warning), and a SASL password sent in clear (error).
fn cleartext(c: &Client, report: &mut Report) {
    let protocol = c.value("security.protocol");
    let mechanism = c.value("sasl.mechanisms");
    match protocol.as_str() {
        "sasl_plaintext" if mechanism == "plain" => report.push(
            "FD017",
            Severity::Error,
            &c.subject,
            "security.protocol=sasl_plaintext with sasl.mechanisms=PLAIN",
            WHY_CLEARTEXT_PASSWORD,
            "use security.protocol=sasl_ssl (the same mechanism over TLS)",
        ),
        "plaintext" | "sasl_plaintext" => report.push(
            "FD017",
            Severity::Warning,
            &c.subject,
            format!("security.protocol={protocol}: no TLS"),
            WHY_CLEARTEXT,
            "use security.protocol=ssl or sasl_ssl, unless the network between the app and the \
             brokers is private and trusted by design",
        ),
        _ => {}
    }
}

/// FD019 and FD020: a producer that gives up before a failover ends; consumers that read
/// aborted transactions.
pub(crate) fn check_delivery(app: &dyn AppView, report: &mut Report) {
    for c in clients(app) {
        match c.kind {
            Kind::Producer => producer_delivery(&c, report),
            Kind::Consumer if c.value("isolation.level") == "read_uncommitted" => report.push(
                "FD020",
                Severity::Warning,
                &c.subject,
                "isolation.level=read_uncommitted",
                WHY_READ_UNCOMMITTED,
                "remove it (read_committed is librdkafka's default)",
            ),
            Kind::Consumer | Kind::Admin => {}
        }
    }
}

/// FD019: no retries, or a delivery timeout shorter than a failover.
fn producer_delivery(producer: &Client, report: &mut Report) {
    if producer.value("message.send.max.retries") == "0" {
        report.push(
            "FD019",
            Severity::Warning,
            &producer.subject,
            "message.send.max.retries=0",
            WHY_DELIVERY_RETRIES,
            "remove it (librdkafka retries until message.timeout.ms)",
        );
    }
    let timeout = producer.value("message.timeout.ms");
    if let Ok(ms) = timeout.parse::<u64>()
        && ms > 0
        && ms < FAILOVER_MS
    {
        report.push(
            "FD019",
            Severity::Warning,
            &producer.subject,
            format!("message.timeout.ms={ms}, shorter than a leader failover"),
            WHY_DELIVERY_TIMEOUT,
            format!("raise message.timeout.ms to at least {FAILOVER_MS} (librdkafka's default is 300000)"),
        );
    }
}
