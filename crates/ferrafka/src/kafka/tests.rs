//! The property maps of every client and the framework-owned check.

use super::*;
use crate::app::App;
use crate::config::Environment;
use crate::noop::Noop;

/// An app with TLS and SASL credentials set in `setup`, one from an environment variable.
fn secured_app() -> App {
    App::builder_with_env([(
        "FERRAFKA_KAFKA_SASL_USERNAME".to_string(),
        "shop-user".to_string(),
    )])
    .setup(|c| {
        c.client_id("shop")
            .kafka("security.protocol", "sasl_ssl")
            .kafka("sasl.mechanisms", "PLAIN")
            .kafka("sasl.password", "hunter2");
    })
    .routes(|r| {
        r.topic("orders").consumer(|| Noop);
    })
    .build()
}

#[test]
fn the_admin_client_gets_client_id_and_the_security_settings() {
    let app = secured_app();
    let admin = app.clients().admin();
    let value = |k: &str| admin.get(k).zip(admin.source(k).cloned());
    assert_eq!(value("client.id"), Some(("shop", Source::Setup)));
    assert_eq!(
        value("security.protocol"),
        Some(("sasl_ssl", Source::Setup))
    );
    assert_eq!(value("sasl.password"), Some(("hunter2", Source::Setup)));
    let var = Source::EnvVar("FERRAFKA_KAFKA_SASL_USERNAME".into());
    assert_eq!(value("sasl.username"), Some(("shop-user", var)));
}

#[test]
fn every_client_gets_client_id_and_the_security_settings() {
    let app = secured_app();
    let consumer = app.subscription_groups()[0].kafka.clone();
    for (client, kafka) in [
        ("consumer", consumer),
        ("producer", app.clients().producer().values()),
        ("admin", app.clients().admin().values()),
    ] {
        for (k, v) in [
            ("client.id", "shop"),
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanisms", "PLAIN"),
            ("sasl.username", "shop-user"),
        ] {
            assert_eq!(kafka.get(k).map(String::as_str), Some(v), "{client}: {k}");
        }
    }
}

#[test]
fn shown_properties_hide_secrets() {
    let app = secured_app();
    let rows = app.admin_properties().shown();
    let password = rows.iter().find(|[k, ..]| k == "sasl.password").unwrap();
    assert_eq!(password[1], crate::secrets::REDACTED);
    assert!(!format!("{:?}", app.admin_properties()).contains("hunter2"));
}

#[test]
fn consumer_layers_override_in_order_and_ferrafka_owns_the_last_word() {
    let mut config = Config::default();
    config
        .client_id("shop")
        .kafka("fetch.max.bytes", "1000")
        .kafka("enable.auto.commit", "false");
    config.apply_env([(
        "FERRAFKA_KAFKA_SESSION_TIMEOUT_MS".to_string(),
        "10000".to_string(),
    )]);
    let overrides = BTreeMap::from([
        ("fetch.max.bytes".to_string(), "2000".to_string()),
        ("session.timeout.ms".to_string(), "20000".to_string()),
    ]);
    let topic = TopicOverrides {
        topic: "orders",
        initial_offset: Some(InitialOffset::Latest),
        kafka: &overrides,
        eofed: false,
    };
    let properties = consumer(&config, "shop", &topic);
    let layer = |k: &str| properties.with_sources()[k].clone();
    let orders = Source::Topic("orders".into());
    assert_eq!(layer("fetch.max.bytes"), ("2000".into(), orders.clone()));
    assert_eq!(layer("auto.offset.reset"), ("latest".into(), orders));
    let var = Source::EnvVar("FERRAFKA_KAFKA_SESSION_TIMEOUT_MS".into());
    assert_eq!(layer("session.timeout.ms"), ("10000".into(), var));
    assert_eq!(layer("group.id"), ("shop".into(), Source::Framework));
    assert_eq!(
        layer("enable.auto.commit"),
        ("true".into(), Source::Framework)
    );
    assert_eq!(properties.values()["statistics.interval.ms"], "5000");
}

#[test]
fn the_producer_gets_no_consumer_only_property() {
    let mut config = Config::default();
    config
        .kafka("session.timeout.ms", "10000")
        .kafka("linger.ms", "5")
        .producer_kafka("compression.codec", "zstd");
    let producer = producer(&config).values();
    assert_eq!(producer.get("session.timeout.ms"), None);
    assert_eq!(producer["linger.ms"], "5");
    assert_eq!(producer["compression.codec"], "zstd");
}

#[test]
fn the_producer_partitions_like_java_unless_a_layer_says_otherwise() {
    let partitioner = |config: &Config| {
        let properties = producer(config);
        let (value, source) = properties.with_sources()["partitioner"].clone();
        (value, source)
    };
    let mut config = Config::for_env(Environment::Production);
    assert_eq!(
        partitioner(&config),
        ("murmur2_random".into(), Source::Default)
    );
    // Consumers and the admin client have no use for it.
    let overrides = TopicOverrides {
        topic: "orders",
        initial_offset: None,
        kafka: &BTreeMap::new(),
        eofed: false,
    };
    assert_eq!(
        consumer(&config, "shop", &overrides).get("partitioner"),
        None
    );
    assert_eq!(admin(&config).get("partitioner"), None);

    config.kafka("partitioner", "fnv1a_random");
    assert_eq!(partitioner(&config), ("fnv1a_random".into(), Source::Setup));
    config.producer_kafka("partitioner", "consistent_random");
    assert_eq!(
        partitioner(&config),
        ("consistent_random".into(), Source::Setup)
    );
    config.apply_env([(
        "FERRAFKA_KAFKA_PARTITIONER".to_string(),
        "murmur2".to_string(),
    )]);
    assert_eq!(
        partitioner(&config),
        (
            "murmur2".into(),
            Source::EnvVar("FERRAFKA_KAFKA_PARTITIONER".into())
        )
    );
}

#[test]
fn a_producer_built_from_bare_properties_partitions_like_the_app_s() {
    let bare = BTreeMap::from([("bootstrap.servers".to_string(), "b:9092".to_string())]);
    assert_eq!(
        with_producer_defaults(&bare)["partitioner"],
        partitioners::JAVA_COMPATIBLE
    );
    let chosen = BTreeMap::from([("partitioner".to_string(), "consistent_random".to_string())]);
    assert_eq!(with_producer_defaults(&chosen), chosen);
}

#[test]
fn changing_a_framework_owned_property_is_a_problem() {
    let mut config = Config::default();
    config
        .kafka("enable.auto.offset.store", "true")
        .kafka("enable.auto.commit", "true");
    let mut problems = Vec::new();
    check_framework_owned(&config, &mut problems);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].setting, "kafka.enable.auto.offset.store");
    assert!(problems[0].problem.starts_with("needs to be false: "));
}

#[test]
fn the_consumer_protocol_drops_the_profiles_assignor_and_refuses_the_users() {
    // Production's profile sets cooperative-sticky; under KIP-848 librdkafka would refuse it.
    let mut config = Config::for_env(Environment::Production);
    config.kafka("group.protocol", "consumer");
    let overrides = TopicOverrides {
        topic: "orders",
        initial_offset: None,
        kafka: &BTreeMap::new(),
        eofed: false,
    };
    let values = consumer(&config, "shop", &overrides).values();
    assert_eq!(values.get("partition.assignment.strategy"), None);
    assert_eq!(values["group.protocol"], "consumer");
    let mut problems = Vec::new();
    check_group_protocol(&config, &mut problems);
    assert!(problems.is_empty(), "{problems:?}");

    // Set by the user: a boot error naming the setting and what replaces it.
    config.kafka("session.timeout.ms", "10000");
    config.apply_env([(
        "FERRAFKA_KAFKA_PARTITION_ASSIGNMENT_STRATEGY".to_string(),
        "range".to_string(),
    )]);
    check_group_protocol(&config, &mut problems);
    let settings: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
    assert_eq!(
        settings,
        [
            "kafka.partition.assignment.strategy",
            "kafka.session.timeout.ms"
        ]
    );
    assert!(
        problems[0].problem.contains("group.remote.assignor"),
        "{problems:?}"
    );
    assert!(
        problems[1]
            .problem
            .contains("group.consumer.session.timeout.ms"),
        "{problems:?}"
    );

    // The classic protocol keeps them.
    let mut classic = Config::for_env(Environment::Production);
    classic.kafka("group.protocol", "classic");
    let values = consumer(&classic, "shop", &overrides).values();
    assert_eq!(
        values["partition.assignment.strategy"],
        "cooperative-sticky"
    );
}
