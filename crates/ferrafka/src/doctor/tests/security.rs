//! FD016-FD021: client settings that weaken security or give up on messages, on every client.
//! One table: the settings, the finding they must raise, and what it must say.

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

const EVERY_CLIENT: &[&str] = &[
    "admin client",
    "producer",
    "subscription group shop/default",
];
const PRODUCER: &[&str] = &["producer"];
const CONSUMERS: &[&str] = &["subscription group shop/default"];

/// One row: settings in, one finding out.
struct Case {
    /// App-wide settings (every client).
    kafka: &'static [(&'static str, &'static str)],
    /// The producer's own settings.
    producer: &'static [(&'static str, &'static str)],
    id: &'static str,
    /// Every subject the finding must be raised on, sorted.
    on: &'static [&'static str],
    /// The finding looked at closely: on this subject, of this severity, its `found` starting
    /// with this, its fix containing that.
    subject: &'static str,
    severity: Severity,
    found: &'static str,
    fix: &'static str,
}

const CASES: &[Case] = &[
    Case {
        kafka: &[("enable.ssl.certificate.verification", "false")],
        producer: &[],
        id: "FD016",
        on: EVERY_CLIENT,
        subject: "producer",
        severity: Severity::Error,
        found: "enable.ssl.certificate.verification=false",
        fix: "ssl.ca.location",
    },
    Case {
        kafka: &[],
        producer: &[("ssl.endpoint.identification.algorithm", "none")],
        id: "FD016",
        on: PRODUCER,
        subject: "producer",
        severity: Severity::Error,
        found: "ssl.endpoint.identification.algorithm=none",
        fix: "",
    },
    Case {
        kafka: &[("security.protocol", "plaintext")],
        producer: &[],
        id: "FD017",
        on: EVERY_CLIENT,
        subject: "admin client",
        severity: Severity::Warning,
        found: "security.protocol=plaintext: no TLS",
        fix: "",
    },
    // A plain password in clear is an error...
    Case {
        kafka: &[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "PLAIN"),
        ],
        producer: &[],
        id: "FD017",
        on: EVERY_CLIENT,
        subject: "subscription group shop/default",
        severity: Severity::Error,
        found: "",
        fix: "sasl_ssl",
    },
    // ...SCRAM does not send the password, but the data still crosses in clear.
    Case {
        kafka: &[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
        ],
        producer: &[],
        id: "FD017",
        on: EVERY_CLIENT,
        subject: "producer",
        severity: Severity::Warning,
        found: "",
        fix: "",
    },
    Case {
        kafka: &[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "OAUTHBEARER"),
            ("enable.sasl.oauthbearer.unsecure.jwt", "true"),
        ],
        producer: &[],
        id: "FD018",
        on: EVERY_CLIENT,
        subject: "producer",
        severity: Severity::Error,
        found: "",
        fix: "",
    },
    Case {
        kafka: &[],
        producer: &[("message.send.max.retries", "0")],
        id: "FD019",
        on: PRODUCER,
        subject: "producer",
        severity: Severity::Warning,
        found: "message.send.max.retries=0",
        fix: "",
    },
    // `retries` is librdkafka's alias.
    Case {
        kafka: &[],
        producer: &[("retries", "0")],
        id: "FD019",
        on: PRODUCER,
        subject: "producer",
        severity: Severity::Warning,
        found: "message.send.max.retries=0",
        fix: "",
    },
    Case {
        kafka: &[],
        producer: &[("delivery.timeout.ms", "10000")],
        id: "FD019",
        on: PRODUCER,
        subject: "producer",
        severity: Severity::Warning,
        found: "message.timeout.ms=10000",
        fix: "30000",
    },
    Case {
        kafka: &[("isolation.level", "read_uncommitted")],
        producer: &[],
        id: "FD020",
        on: CONSUMERS,
        subject: "subscription group shop/default",
        severity: Severity::Warning,
        found: "",
        fix: "",
    },
    Case {
        kafka: &[
            ("api.version.request", "false"),
            ("broker.version.fallback", "0.9.0"),
        ],
        producer: &[],
        id: "FD021",
        on: EVERY_CLIENT,
        subject: "producer",
        severity: Severity::Warning,
        found: "api.version.request=false (broker.version.fallback=0.9.0)",
        fix: "",
    },
];

#[test]
fn each_weakening_setting_raises_its_finding() {
    for case in CASES {
        let report = with(case.kafka, case.producer);
        let what = format!("{} from {:?} {:?}", case.id, case.kafka, case.producer);
        assert_eq!(subjects(&report, case.id), case.on, "{what}");
        let f = one(&report, case.id, case.subject);
        assert_eq!(f.severity, case.severity, "{what}");
        assert!(f.found.starts_with(case.found), "{what}: {}", f.found);
        assert!(f.fix.contains(case.fix), "{what}: {}", f.fix);
    }
}

#[test]
fn secure_and_durable_settings_pass() {
    let reports = [
        with(
            &[
                ("security.protocol", "sasl_ssl"),
                ("sasl.mechanisms", "SCRAM-SHA-512"),
                ("isolation.level", "read_committed"),
            ],
            &[("message.timeout.ms", "300000")],
        ),
        // 0 is librdkafka's "no timeout": nothing gives up.
        with(&[], &[("message.timeout.ms", "0")]),
        with(&[], &[("message.timeout.ms", "60000")]),
    ];
    for report in &reports {
        for id in ["FD016", "FD017", "FD018", "FD019", "FD020", "FD021"] {
            none(report, id);
        }
    }
}
