//! Security on Apache Kafka (a one-node cluster of the test's own with TLS, SASL and ACLs, see
//! `ferrafka_testing::SecureKafka`): the server, producer, admin and `doctor --live` connect
//! with credentials from the environment and never print them; rejected credentials and
//! certificates stop the boot with an error naming the listener and mechanism; missing ACLs
//! are found by `doctor --live` up front and named at run time.

use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrafka::admin::{Admin, TopicSpec};
use ferrafka::doctor::{ClockStatus, DoctorOptions, HostClock};
use ferrafka::routing::DeadLetterQueue;
use ferrafka::{
    App, ConsumeResult, Consumer, Context, Filters, Messages, Producer, Record, ServerExit,
};
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

/// The boot of `server` with `properties`: it must fail within `limit`; its output. (A rejected
/// connection is reported within a second, so the boot need not wait out its 10 s metadata
/// timeout; a seeming protocol mismatch waits it out, since a restarting broker looks alike.)
fn failed_boot(kafka: &SecureKafka, properties: &[(String, String)], limit: Duration) -> String {
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
        !output.status.success() && started.elapsed() < limit,
        "the boot did not fail: {logs}"
    );
    // Shown with --nocapture: what an operator sees.
    println!(
        "boot failed after {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        logs.lines().last().unwrap_or_default()
    );
    logs
}

/// Wrong credentials, a broker certificate from an untrusted CA, no client certificate,
/// plaintext to a TLS listener: the
/// boot stops with an error that names the listener, the protocol and mechanism and the
/// settings to fix, and shows neither the wrong secret nor the right one.
#[test]
fn rejected_credentials_and_certificates_stop_the_boot_with_a_clear_error() {
    let kafka = SecureKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let wrong = "not-the-password-31337";
    let properties = kafka.scram(APP_USER, wrong);
    let address = properties[0].1.clone();
    let logs = failed_boot(&kafka, &properties, QUICK);
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
    let logs = failed_boot(&kafka, &untrusted, QUICK);
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
    let logs = failed_boot(&kafka, &no_certificate, QUICK);
    assert!(logs.contains("requires a client certificate"), "{logs}");
    assert!(
        logs.contains("FERRAFKA_KAFKA_SSL_CERTIFICATE_LOCATION"),
        "{logs}"
    );

    let plaintext = vec![("bootstrap.servers".to_string(), address.clone())];
    let logs = failed_boot(&kafka, &plaintext, Duration::from_secs(30));
    assert!(
        logs.contains("does not speak security.protocol PLAINTEXT"),
        "{logs}"
    );
}

/// How soon a boot with rejected credentials or certificates must have failed.
const QUICK: Duration = Duration::from_secs(8);

/// Processes numbers, failing every attempt at `poison`.
struct FailsOn {
    poison: u64,
    done: Arc<Mutex<Vec<u64>>>,
}

impl Consumer for FailsOn {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let mut numbers = Vec::new();
        for m in messages {
            let n: u64 = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            if n == self.poison {
                return Err(format!("{n} is poison").into());
            }
            numbers.push(n);
        }
        self.done.lock().unwrap().extend(numbers);
        Ok(())
    }
}

/// The FD022 findings of `doctor --live`: subject → what was found.
fn permission_findings(app: &App) -> BTreeMap<String, String> {
    let report = app.doctor(&DoctorOptions {
        live: true,
        clock: HostClock::Assume(ClockStatus::Synchronised { max_error_us: 100 }),
        lock_file: "/nonexistent/topics.lock".into(),
        timeout: Duration::from_secs(10),
        ..DoctorOptions::default()
    });
    report
        .findings
        .iter()
        .filter(|f| f.id == "FD022")
        .map(|f| (f.subject.clone(), f.found.clone()))
        .collect()
}

/// With ACLs on and nothing granted, `doctor --live` names each missing operation (Read on the
/// group and the topic, Write on the dead-letter topic). Granted Read but not Write, the server
/// consumes, and a message that fails for good waits (retried, never dropped) until the
/// dead-letter topic may be written, then goes there: every message finishes exactly once.
/// Producing where Write is denied names the operation and the topic.
#[test]
fn missing_acls_are_found_up_front_and_a_denied_dead_letter_queue_loses_nothing() {
    let kafka = SecureKafka::start().unwrap_or_else(|e| panic!("{e}"));
    let rt = runtime();
    let (topic, dlq, group) = (unique("acl"), unique("acl-dlq"), unique("acl-group"));
    let setup = Admin::connect(kafka.setup_bootstrap()).expect("admin");
    for t in [&topic, &dlq] {
        rt.block_on(setup.create_topic(&TopicSpec::new(t, 1)))
            .expect("topic");
    }
    let properties = kafka.scram(APP_USER, kafka.app_password());
    let done = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let (topic, dlq, group, done) = (topic.clone(), dlq.clone(), group.clone(), done.clone());
        App::builder_with_env([("FERRAFKA_ENV".to_string(), "development".to_string())])
            .setup(move |c| {
                for (k, v) in &properties {
                    c.kafka(k.as_str(), v.as_str());
                }
                c.client_id("acl").group_id(group);
                c.max_messages(10).max_wait_time(Duration::from_millis(50));
                c.pause_timeout(Duration::from_millis(100))
                    .pause_max_timeout(Duration::from_millis(500));
            })
            .routes(move |r| {
                r.topic(topic)
                    .consumer(move || FailsOn {
                        poison: 7,
                        done: done.clone(),
                    })
                    .dead_letter_queue(DeadLetterQueue::to(dlq).max_retries(1));
            })
            .build()
    };

    let missing = permission_findings(&app);
    let expect = [
        (format!("group {group}"), "may not READ"),
        (format!("topic {topic}"), "not even DESCRIBE"),
        (format!("topic {dlq}"), "may not WRITE"),
    ];
    assert_eq!(missing.len(), 3, "{missing:#?}");
    for (subject, found) in &expect {
        let text = missing
            .get(subject)
            .unwrap_or_else(|| panic!("{subject}: {missing:#?}"));
        assert!(text.contains(found), "{subject}: {text}");
    }

    kafka
        .grant("User:app", "Read", "--group", &group)
        .expect("grant");
    kafka
        .grant("User:app", "Read", "--topic", &topic)
        .expect("grant");
    let missing = permission_findings(&app);
    assert_eq!(
        missing.keys().collect::<Vec<_>>(),
        [&format!("topic {dlq}")],
        "{missing:#?}"
    );

    let producer = Producer::new(&map(&kafka.scram(APP_USER, kafka.app_password()))).unwrap();
    let denied = rt
        .block_on(producer.produce(Record::to(&dlq).payload("x")))
        .expect_err("Write is denied");
    let text = denied.to_string();
    assert!(
        text.contains("denied") && text.contains(&format!("Write on topic {dlq}")),
        "{text}"
    );

    let fixtures = Producer::new(&map(&[(
        "bootstrap.servers".to_string(),
        kafka.setup_bootstrap().to_string(),
    )]))
    .unwrap();
    for n in 0..20u64 {
        let payload = n.to_string();
        rt.block_on(fixtures.produce(Record::to(&topic).payload(payload.as_bytes())))
            .expect("produce");
    }
    let server = app.start(&Filters::default()).expect("server starts");
    assert!(
        wait_until(Duration::from_secs(60), || done.lock().unwrap().len() >= 7),
        "the messages before the poison: {:?}",
        done.lock().unwrap()
    );
    // The poison cannot be dead-lettered: the partition waits on it, nothing is skipped.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(*done.lock().unwrap(), (0..7).collect::<Vec<u64>>());
    let dead = setup
        .read_messages(&dlq, 0, ferrafka::admin::OffsetSpec::Earliest, 1)
        .expect("read dlq");
    assert!(
        dead.is_empty(),
        "nothing dead-lettered while Write is denied"
    );

    kafka
        .grant("User:app", "Write", "--topic", &dlq)
        .expect("grant");
    assert!(
        wait_until(Duration::from_secs(60), || done.lock().unwrap().len() >= 19),
        "after the grant: {:?}",
        done.lock().unwrap()
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);
    let mut processed = done.lock().unwrap().clone();
    processed.sort();
    let expected: Vec<u64> = (0..20).filter(|n| *n != 7).collect();
    assert_eq!(processed, expected, "every other message exactly once");
    let dead = setup
        .read_messages(&dlq, 0, ferrafka::admin::OffsetSpec::Earliest, 2)
        .expect("read dlq");
    assert_eq!(dead.len(), 1, "the poison dead-lettered once");
    assert_eq!(rdkafka::Message::payload(&dead[0]), Some(&b"7"[..]));
}
