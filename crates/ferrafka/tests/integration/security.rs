//! Security on Apache Kafka (a one-node cluster of the test's own with TLS, SASL and ACLs, see
//! `ferrafka_testing::SecureKafka`): the server, producer, admin and `doctor --live` connect
//! with credentials from the environment and never print them; rejected credentials and
//! certificates stop the boot with an error naming the listener and mechanism; missing ACLs
//! are found by `doctor --live` up front and named at run time.

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::{Producer, Record};
use ferrafka_testing::{APP_USER, SecureKafka};

use crate::support::*;

const FIXTURE: &str = env!("CARGO_BIN_EXE_ferrafka-reload-fixture");

/// `FERRAFKA_KAFKA_*` variables for librdkafka properties.
fn env_vars(properties: &[(String, String)]) -> Vec<(String, String)> {
    properties
        .iter()
        .map(|(k, v)| {
            let name = format!("FERRAFKA_KAFKA_{}", k.replace('.', "_").to_uppercase());
            (name, v.clone())
        })
        .collect()
}

/// The fixture app (`tests/fixtures/reload_app.rs`) consuming `topic` into `out`.
fn fixture(
    args: &[&str],
    properties: &[(String, String)],
    topic: &str,
    out: &std::path::Path,
) -> Command {
    let mut command = Command::new(FIXTURE);
    command
        .args(args)
        .envs(env_vars(properties))
        .env("FERRAFKA_ENV", "development")
        .env("RELOAD_FIXTURE_TOPIC", topic)
        .env("RELOAD_FIXTURE_GROUP", unique("secure-group"))
        .env("RELOAD_FIXTURE_OUT", out)
        .env("RUST_LOG", "info");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits for `child` at most `limit`, killing it after; its output.
fn finish(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    child.wait_with_output().expect("output")
}

fn map(properties: &[(String, String)]) -> BTreeMap<String, String> {
    properties.iter().cloned().collect()
}

/// SCRAM over TLS, mutual TLS and OAUTHBEARER: admin, producer, `server` and `doctor --live`
/// connect, every message produced is processed, and no output shows a secret.
#[test]
fn every_mechanism_connects_with_credentials_from_the_environment_and_never_prints_them() {
    let kafka = SecureKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let rt = runtime();
    for principal in ["User:app", "User:app-tls", "User:app-oauth"] {
        for (resource, name) in [("--topic", "*"), ("--group", "*")] {
            kafka
                .grant(principal, "All", resource, name)
                .expect("grant");
        }
    }
    let secret = kafka.app_password().to_string();
    let mechanisms = [
        ("SCRAM-SHA-512", kafka.scram(APP_USER, &secret)),
        ("mutual TLS", kafka.mtls()),
        ("OAUTHBEARER", kafka.oauth("app-oauth")),
    ];
    for (mechanism, properties) in mechanisms {
        let topic = unique("secure");
        let admin = Admin::new(&map(&properties)).expect("admin");
        rt.block_on(admin.create_topic(&TopicSpec::new(&topic, 3)))
            .unwrap_or_else(|e| panic!("{mechanism}: admin cannot create a topic: {e}"));
        let producer = Producer::new(&map(&properties)).expect("producer");
        for i in 0..30 {
            let payload = format!("{i}");
            rt.block_on(producer.produce(Record::to(&topic).payload(payload.as_bytes())))
                .unwrap_or_else(|e| panic!("{mechanism}: produce: {e}"));
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let server = fixture(&["server"], &properties, &topic, &out)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fixture starts");
        let processed = || {
            std::fs::read_to_string(&out)
                .map(|t| t.lines().filter(|l| l.starts_with("msg ")).count())
                .unwrap_or(0)
        };
        let all = wait_until(Duration::from_secs(60), || processed() >= 30);
        // SIGTERM: a graceful stop.
        let _ = Command::new("kill").arg(server.id().to_string()).status();
        let output = finish(server, Duration::from_secs(30));
        let logs = text(&output);
        assert!(
            all,
            "{mechanism}: {} of 30 processed; logs:\n{logs}",
            processed()
        );
        assert_eq!(processed(), 30, "{mechanism}: each message once");
        assert!(output.status.success(), "{mechanism}: {logs}");
        assert!(
            !logs.contains(&secret),
            "{mechanism}: the password in the logs:\n{logs}"
        );

        let doctor = fixture(
            &["doctor", "--live", "--format", "json"],
            &properties,
            &topic,
            &out,
        )
        .output()
        .expect("doctor runs");
        let report = text(&doctor);
        assert!(
            !report.contains(&secret),
            "{mechanism}: the password in doctor's output"
        );
        let json: serde_json::Value =
            serde_json::from_slice(&doctor.stdout).unwrap_or_else(|e| panic!("{e}: {report}"));
        let connected = json["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["id"] != "FD006" && f["id"] != "FD022");
        assert!(connected, "{mechanism}: doctor --live: {report}");
    }
}

/// The boot of `server` with `properties`: it must fail within a minute; its output.
fn failed_boot(kafka: &SecureKafka, properties: &[(String, String)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let topic = unique("secure-boot");
    let admin = Admin::connect(kafka.setup_bootstrap()).expect("admin");
    runtime()
        .block_on(admin.create_topic(&TopicSpec::new(&topic, 1)))
        .expect("topic");
    let started = Instant::now();
    let child = fixture(&["server"], properties, &topic, &dir.path().join("out"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fixture starts");
    let output = finish(child, Duration::from_secs(60));
    let logs = text(&output);
    assert!(
        !output.status.success() && started.elapsed() < Duration::from_secs(60),
        "the boot did not fail: {logs}"
    );
    logs
}

/// Wrong credentials, a broker certificate from an untrusted CA, no client certificate: the
/// boot stops with an error that names the listener, the protocol and mechanism and the
/// settings to fix, and shows neither the wrong secret nor the right one.
#[test]
fn rejected_credentials_and_certificates_stop_the_boot_with_a_clear_error() {
    let kafka = SecureKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let wrong = "not-the-password-31337";
    let properties = kafka.scram(APP_USER, wrong);
    let address = properties[0].1.clone();
    let logs = failed_boot(&kafka, &properties);
    for part in [
        "cannot connect",
        address.as_str(),
        "SASL_SSL",
        "SCRAM-SHA-512",
        "FERRAFKA_KAFKA_SASL_PASSWORD",
    ] {
        assert!(logs.contains(part), "{part:?} missing:\n{logs}");
    }
    assert!(
        !logs.contains(wrong) && !logs.contains(kafka.app_password()),
        "{logs}"
    );

    let mut untrusted = kafka.scram(APP_USER, kafka.app_password());
    untrusted.retain(|(k, _)| k != "ssl.ca.location");
    untrusted.push((
        "ssl.ca.location".into(),
        kafka.other_ca().display().to_string(),
    ));
    let logs = failed_boot(&kafka, &untrusted);
    for part in [
        "is not trusted",
        address.as_str(),
        "FERRAFKA_KAFKA_SSL_CA_LOCATION",
    ] {
        assert!(logs.contains(part), "{part:?} missing:\n{logs}");
    }
    assert!(!logs.contains(kafka.app_password()), "{logs}");

    let mut no_certificate = kafka.mtls();
    no_certificate.retain(|(k, _)| !k.starts_with("ssl.certificate") && !k.starts_with("ssl.key"));
    let logs = failed_boot(&kafka, &no_certificate);
    assert!(logs.contains("requires a client certificate"), "{logs}");
    assert!(
        logs.contains("FERRAFKA_KAFKA_SSL_CERTIFICATE_LOCATION"),
        "{logs}"
    );
}
