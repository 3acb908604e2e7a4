//! Unit tests of the redaction rules, and a test that greps every output mode for secrets.

use super::*;

#[test]
fn secrets_are_redacted() {
    assert_eq!(redact("sasl.password", "hunter2"), "[redacted]");
    assert_eq!(redact("ssl.key.password", "x"), "[redacted]");
    assert_eq!(redact("sasl.oauthbearer.client.secret", "x"), "[redacted]");
    assert_eq!(redact("ssl.keystore.password", "x"), "[redacted]");
    assert_eq!(redact("sasl.username", "x"), "[redacted]");
    assert_eq!(redact("bootstrap.servers", "b:9092"), "b:9092");
    assert_eq!(redact("group.id", "g"), "g");
}

#[test]
fn misspelled_and_secret_looking_names_are_sensitive() {
    for name in [
        "sasl.pasword",
        "ssl.key.pasword",
        "sasl.passwd",
        "my.app.token",
        "vendor.credentials",
        "SASL.PASSWORD",
    ] {
        assert!(is_sensitive(name), "{name}");
    }
    for name in ["bootstrap.servers", "key.serializer", "client.id", "acks"] {
        assert!(!is_sensitive(name), "{name}");
    }
}

fn config_error(key: &str, value: &str) -> KafkaError {
    let mut c = rdkafka::config::ClientConfig::new();
    c.set(key, value);
    match c.create_native_config() {
        Err(e) => e,
        Ok(_) => panic!("librdkafka accepted {key}={value}"),
    }
}

#[test]
fn an_unknown_property_error_hides_the_value() {
    for key in ["sasl.pasword", "ssl.key.pasword", "completely.unknown"] {
        let raw = config_error(key, "hunter2");
        assert!(
            raw.to_string().contains("hunter2"),
            "rdkafka echoes it: {raw}"
        );
        let shown = redact_kafka_error_alone(&raw);
        assert!(
            !format!("{shown} {shown:?}").contains("hunter2"),
            "{shown:?}"
        );
        assert!(shown.to_string().contains(key), "{shown}");
    }
}

#[test]
fn an_invalid_sensitive_value_is_hidden_and_others_are_kept() {
    let shown = redact_kafka_error_alone(&config_error("auto.offset.reset", "oldest"));
    assert!(shown.to_string().contains("\"oldest\""), "{shown}");
    let text = "Invalid value \"hunter2\" for configuration property \"sasl.pasword\"";
    assert_eq!(
        redact_text_alone(text),
        "Invalid value \"[redacted]\" for configuration property \"sasl.pasword\""
    );
    assert_eq!(
        redact_text_alone(
            "Configuration property \"sasl.pasword\" value 12345 is outside allowed range; \
             Configuration property \"linger.ms\" value 12345 is outside allowed range"
        ),
        "Configuration property \"sasl.pasword\" value [redacted] is outside allowed range; \
         Configuration property \"linger.ms\" value 12345 is outside allowed range"
    );
    assert_eq!(
        redact_text_alone("bad sasl.password=hunter2 and acks=all"),
        "bad sasl.password=[redacted] and acks=all"
    );
}

#[test]
fn free_text_loses_every_sensitive_value_of_the_configuration() {
    let kafka = BTreeMap::from([
        ("sasl.username".to_string(), "alice-prod".to_string()),
        ("ssl.key.pasword".to_string(), "pw".to_string()),
        ("bootstrap.servers".to_string(), "b:9092".to_string()),
    ]);
    let error = KafkaError::ClientCreation(
        "cannot log in as alice-prod with key password \"pw\" at b:9092".into(),
    );
    let shown = redact_kafka_error(&error, &kafka).to_string();
    assert_eq!(
        shown,
        "Client creation error: cannot log in as [redacted] with key password \
         \"[redacted]\" at b:9092"
    );
}

// ---------------------------------------------------------------------------------------------
// Every output mode, grepped for the secrets.

mod outputs {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use crate::admin::Admin;
    use crate::doctor::{self, ClockStatus, DoctorOptions, HostClock};
    use crate::error::Error;
    use crate::noop::Noop;
    use crate::{App, Filters, Producer, Record};

    const SECRETS: [&str; 3] = ["hunter2", "swordfish", "opensesame"];

    /// Misspelled secrets (not known to be sensitive by librdkafka) and a real one.
    fn kafka() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
            ("sasl.pasword".to_string(), "hunter2".to_string()),
            ("ssl.key.pasword".to_string(), "swordfish".to_string()),
            ("sasl.password".to_string(), "opensesame".to_string()),
        ])
    }

    fn app(env: &str, kafka: &BTreeMap<String, String>) -> App {
        let kafka = kafka.clone();
        App::builder_with_env([("FERRAFKA_ENV".to_string(), env.to_string())])
            .setup(move |c| {
                for (k, v) in &kafka {
                    c.kafka(k, v);
                }
            })
            .routes(|r| {
                r.topic("orders").consumer(|| Noop);
            })
            .build()
    }

    fn live_options() -> DoctorOptions {
        DoctorOptions {
            live: true,
            clock: HostClock::Assume(ClockStatus::Synchronised { max_error_us: 1 }),
            timeout: Duration::from_secs(1),
            ..DoctorOptions::default()
        }
    }

    fn assert_hidden(what: &str, text: &str) {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{what} shows {secret}:\n{text}");
        }
    }

    fn assert_error_hidden(what: &str, error: &Error) {
        assert_hidden(what, &error.to_string());
        assert_hidden(what, &format!("{error:?}"));
        let mut source = std::error::Error::source(error);
        while let Some(e) = source {
            assert_hidden(what, &format!("{e} {e:?}"));
            source = e.source();
        }
    }

    #[test]
    fn doctor_live_text_and_json_show_no_secret_and_do_not_connect() {
        for env in ["development", "production"] {
            let report = doctor::run(&app(env, &kafka()), &live_options());
            assert_hidden("doctor text", &report.to_text());
            assert_hidden("doctor JSON", &report.to_json());
            let cluster: Vec<_> = report.by_id("FD006").collect();
            assert_eq!(cluster.len(), 1, "{}", report.to_text());
            assert!(cluster[0].unknown, "{:?}", cluster[0]);
            assert!(
                cluster[0]
                    .found
                    .contains("not connected, because the configuration does not validate")
                    && cluster[0].found.contains("kafka.sasl.pasword"),
                "{:?}",
                cluster[0]
            );
        }
    }

    #[test]
    fn doctor_live_without_a_cluster_shows_no_secret() {
        let valid = BTreeMap::from([
            ("bootstrap.servers".to_string(), "127.0.0.1:1".to_string()),
            ("sasl.password".to_string(), "opensesame".to_string()),
        ]);
        let report = doctor::run(&app("development", &valid), &live_options());
        let found: Vec<_> = report.by_id("FD006").map(|f| f.found.as_str()).collect();
        assert!(
            found
                .iter()
                .any(|f| f.starts_with("cannot read the cluster")),
            "{found:?}"
        );
        assert_hidden("doctor text", &report.to_text());
        assert_hidden("doctor JSON", &report.to_json());
    }

    #[test]
    #[cfg(feature = "cli")]
    fn info_and_the_server_boot_error_show_no_secret() {
        let app = app("production", &kafka());
        assert_hidden("info", &crate::cli::info(&app));
        assert_hidden("app Debug", &format!("{app:?}"));
        let error = app
            .start(&Filters::default())
            .expect_err("the configuration is invalid");
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        assert_error_hidden("server boot", &error);
    }

    #[test]
    fn producer_and_admin_validate_before_connecting_and_show_no_secret() {
        for (what, error) in [
            (
                "Producer::new",
                Producer::new(&kafka()).expect_err("invalid"),
            ),
            ("Admin::new", Admin::new(&kafka()).expect_err("invalid")),
        ] {
            let Error::Config(config) = &error else {
                panic!("{what}: expected the validation problems, got {error:?}");
            };
            let settings: Vec<_> = config.problems.iter().map(|p| p.setting.as_str()).collect();
            assert_eq!(
                settings,
                ["kafka.sasl.pasword", "kafka.ssl.key.pasword"],
                "{what}"
            );
            assert!(error.to_string().contains("did you mean"), "{error}");
            assert_error_hidden(what, &error);
        }
    }

    #[test]
    fn a_client_created_on_first_use_shows_no_secret() {
        let producer = Producer::lazy(&kafka());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let error = runtime
            .block_on(producer.produce(Record::to("orders").payload("x")))
            .expect_err("librdkafka refuses the properties");
        assert!(matches!(error, Error::CreateClient { .. }), "{error:?}");
        let shown = crate::error::error_chain(&error);
        assert!(shown.contains(".pasword"), "{shown}");
        assert_error_hidden("lazy producer", &error);
    }

    #[test]
    fn errors_built_without_the_properties_are_redacted_at_the_boundary() {
        let raw = Error::CreateClient {
            client: "consumer of subscription group shop/default".into(),
            source: Box::new(rdkafka::error::KafkaError::ClientCreation(
                "cannot log in with password opensesame".into(),
            )),
        };
        assert_error_hidden("redacted", &raw.redacted(&kafka()));
        // Display alone never shows librdkafka's text (the source), so it cannot leak it.
        let raw = Error::CreateClient {
            client: "producer".into(),
            source: Box::new(super::config_error("ssl.key.pasword", "swordfish")),
        };
        assert_hidden("Display", &raw.to_string());
    }
}
