//! Environments and layered settings: profile defaults, precedence, validation messages,
//! redaction, consumer persistence.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrafka::routing::SubscriptionGroup;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages, ServerExit, Source};

use crate::support::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn app_in(env: &str) -> App {
    App::builder_with_env(vars(&[("FERRAFKA_ENV", env)]))
        .setup(|c| {
            c.client_id("shop");
        })
        .routes(|r| {
            r.topic("orders").consumer(|| Noop);
        })
        .build()
}

fn kafka(sg: &SubscriptionGroup, name: &str) -> Option<(String, String)> {
    let kafka = sg.kafka();
    let value = kafka.get(name)?.to_string();
    Some((value, kafka.source(name)?.to_string()))
}

#[test]
fn each_environment_gets_its_profile_defaults() {
    for env in ["development", "test", "staging"] {
        let app = app_in(env);
        assert!(app.validate().is_ok(), "{env}: {:?}", app.validate());
        let sg = &app.subscription_groups()[0];
        let profile = format!("profile:{env}");
        assert_eq!(
            kafka(sg, "allow.auto.create.topics"),
            Some(("true".into(), profile.clone())),
            "{env}"
        );
        assert_eq!(
            kafka(sg, "topic.metadata.refresh.interval.ms"),
            Some(("5000".into(), profile.clone())),
            "{env}"
        );
        assert_eq!(kafka(sg, "partition.assignment.strategy"), None, "{env}");
        let persistent = env != "development";
        assert_eq!(app.config().is_consumer_persistent(), persistent, "{env}");
        assert_eq!(sg.topics()[0].consumer_persistence(), persistent, "{env}");
    }

    let app = app_in("production");
    let sg = &app.subscription_groups()[0];
    let profile = "profile:production".to_string();
    assert_eq!(
        kafka(sg, "allow.auto.create.topics"),
        Some(("false".into(), profile.clone()))
    );
    assert_eq!(
        kafka(sg, "topic.metadata.refresh.interval.ms"),
        Some(("300000".into(), profile.clone()))
    );
    assert_eq!(
        kafka(sg, "partition.assignment.strategy"),
        Some(("cooperative-sticky".into(), profile.clone()))
    );
    assert!(app.config().is_consumer_persistent());
    assert_eq!(
        app.config().source("consumer_persistence"),
        Source::Profile("production".into())
    );

    // In every environment: statistics for metrics, offsets owned by the framework.
    for env in ["development", "test", "production", "staging"] {
        let app = app_in(env);
        let sg = &app.subscription_groups()[0];
        assert_eq!(
            kafka(sg, "statistics.interval.ms"),
            Some(("5000".into(), "default".into()))
        );
        assert_eq!(
            kafka(sg, "enable.auto.offset.store"),
            Some(("false".into(), "framework".into()))
        );
        assert_eq!(
            kafka(sg, "enable.auto.commit"),
            Some(("true".into(), "framework".into()))
        );
        // Consumer-only profile properties stay away from the producer, except that production
        // turns topic auto-creation off for the producer too (librdkafka's producer default is
        // on).
        let producer = app.clients().producer();
        if env == "production" {
            assert_eq!(producer.get("allow.auto.create.topics"), Some("false"));
            assert_eq!(
                producer.source("allow.auto.create.topics"),
                Some(&Source::Profile("production".into()))
            );
        } else {
            assert!(producer.get("allow.auto.create.topics").is_none(), "{env}");
        }
        assert!(
            producer.get("partition.assignment.strategy").is_none(),
            "{env}"
        );
        assert!(producer.get("topic.metadata.refresh.interval.ms").is_some());
    }
}

#[test]
fn info_names_the_environment_and_each_value_s_layer() {
    let text = ferrafka::cli::info(&app_in("staging"));
    assert!(
        text.contains("environment: staging (not a known environment: treated as non-production)"),
        "{text}"
    );
    assert!(text.contains("librdkafka builtin.features: "), "{text}");
    let line = |needle: &str| {
        text.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("| allow.auto.create.topics"),
        "| allow.auto.create.topics true profile:staging |"
    );
    assert_eq!(line("| client_id "), "| client_id shop setup |");
    assert_eq!(line("| group_id "), "| group_id shop setup |");
    assert_eq!(line("| concurrency "), "| concurrency 5 default |");
    let text = ferrafka::cli::info(&app_in("production"));
    assert!(text.contains("environment: production\n"), "{text}");
}

#[test]
fn each_layer_overrides_the_one_below_and_remembers_it() {
    let app = App::builder_with_env(vars(&[
        ("FERRAFKA_ENV", "production"),
        ("FERRAFKA_KAFKA_FETCH_MAX_BYTES", "3000"),
        ("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", "env:9092"),
    ]))
    .setup(|c| {
        // The profile is already applied when setup runs, and setup can read the environment.
        assert!(c.env().is_production());
        assert_eq!(
            c.source("kafka.allow.auto.create.topics"),
            Source::Profile("production".into())
        );
        // Declarations are not what this test is about.
        c.strict_declarative_topics(false);
        c.client_id("shop")
            .kafka("topic.metadata.refresh.interval.ms", "60000")
            .kafka("allow.auto.create.topics", "true")
            .kafka("fetch.max.bytes", "1000")
            .kafka("bootstrap.servers", "setup:9092")
            .kafka("queued.min.messages", "500");
        c.consumer_persistence(false);
    })
    .routes(|r| {
        r.topic("orders")
            .consumer(|| Noop)
            .config(|t| t.partitions(3))
            .kafka("fetch.max.bytes", "2000")
            .kafka("queued.min.messages", "700")
            .consumer_persistence(true);
        r.topic("refunds")
            .consumer(|| Noop)
            .config(|t| t.partitions(3));
    })
    .build();
    assert!(app.validate().is_ok(), "{:?}", app.validate());
    let sgs = app.subscription_groups();
    let orders = sgs
        .iter()
        .find(|sg| sg.active_topics() == ["orders"])
        .unwrap();
    let refunds = sgs
        .iter()
        .find(|sg| sg.active_topics() == ["refunds"])
        .unwrap();

    // default < profile < setup: a user value wins even against production's profile.
    assert_eq!(
        kafka(orders, "topic.metadata.refresh.interval.ms"),
        Some(("60000".into(), "setup".into()))
    );
    assert_eq!(
        kafka(orders, "allow.auto.create.topics"),
        Some(("true".into(), "setup".into()))
    );
    assert_eq!(
        kafka(orders, "partition.assignment.strategy"),
        Some(("cooperative-sticky".into(), "profile:production".into()))
    );
    // setup < topic
    assert_eq!(
        kafka(orders, "queued.min.messages"),
        Some(("700".into(), "topic:orders".into()))
    );
    assert_eq!(
        kafka(refunds, "queued.min.messages"),
        Some(("500".into(), "setup".into()))
    );
    // topic < environment variable
    let env_fetch = Some((
        "3000".into(),
        "env:FERRAFKA_KAFKA_FETCH_MAX_BYTES".to_string(),
    ));
    assert_eq!(kafka(orders, "fetch.max.bytes"), env_fetch);
    assert_eq!(kafka(refunds, "fetch.max.bytes"), env_fetch);
    assert_eq!(
        kafka(orders, "bootstrap.servers"),
        Some((
            "env:9092".into(),
            "env:FERRAFKA_KAFKA_BOOTSTRAP_SERVERS".into()
        ))
    );
    let producer = app.clients().producer();
    assert_eq!(producer.get("bootstrap.servers"), Some("env:9092"));
    assert_eq!(
        producer.source("bootstrap.servers"),
        Some(&Source::EnvVar("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS".into()))
    );
    // consumer_persistence: profile (on) < setup (off) < topic (on).
    assert_eq!(app.config().source("consumer_persistence"), Source::Setup);
    let persistence = |sg: &SubscriptionGroup| sg.topics()[0].consumer_persistence();
    assert!(persistence(orders));
    assert!(!persistence(refunds));
}

#[test]
fn a_different_environment_at_build_time_than_at_setup_is_a_problem() {
    let app = App::builder_with_env(vars(&[("FERRAFKA_ENV", "development")]))
        .routes(|r| {
            r.topic("orders").consumer(|| Noop);
        })
        .build_with_env(vars(&[("FERRAFKA_ENV", "production")]));
    let err = app.validate().unwrap_err().to_string();
    assert!(
        err.contains(
            "FERRAFKA_ENV = \"production\": needs to name the environment the app was set up \
             for (development)"
        ),
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_together_with_a_clear_message_before_any_connection() {
    let app = App::builder_with_env(vars(&[
        ("FERRAFKA_ENV", "production"),
        ("FERRAFKA_KAFKA_AUTO_OFFSET_RESET", "oldest"),
    ]))
    .setup(|c| {
        c.strict_declarative_topics(false);
        c.client_id("shop")
            .concurrency(0)
            .max_wait_time(Duration::from_secs(90))
            .shutdown_timeout(Duration::from_secs(30))
            .pause_timeout(Duration::from_secs(60))
            .pause_max_timeout(Duration::from_secs(10))
            .kafka("bootstrap.server", "broker:9092")
            .kafka("auto.offset.rest", "earliest")
            // Production requires declarations; that check has its own tests (declarative.rs).
            .strict_declarative_topics(false);
    })
    .routes(|r| {
        r.topic("user.events_v2").consumer(|| Noop);
        r.topic("orders").consumer(|| Noop);
        r.topic("orders").consumer(|| Noop);
        r.consumer_group("", |g| {
            g.topic("payments").consumer(|| Noop);
        });
    })
    .build();
    let err = app.validate().expect_err("invalid");
    let settings: Vec<_> = err.problems.iter().map(|p| p.setting.as_str()).collect();
    assert_eq!(
        settings,
        [
            "concurrency",
            "max_wait_time",
            "pause_timeout",
            "routes.shop.user.events_v2",
            "routes.shop.orders",
            "routes.consumer_group",
            "kafka.auto.offset.reset",
            "kafka.auto.offset.rest",
            "kafka.bootstrap.server",
        ],
        "{err}"
    );
    let text = err.to_string();
    for expected in [
        "invalid configuration (9 problems):",
        "concurrency = \"0\": needs to be at least 1",
        "max_wait_time = \"90s\": needs to be shorter than shutdown_timeout (30s)",
        "pause_timeout = \"60s\": needs to be at most pause_max_timeout (10s)",
        "needs to use either `.` or `_`, not both",
        "needs to be routed once per consumer group, shop routes it twice",
        "routes.consumer_group = \"\": needs to be a non-empty consumer group id",
        "kafka.bootstrap.server = \"broker:9092\": No such configuration property: \
         \"bootstrap.server\" (did you mean \"bootstrap.servers\"?) [used by subscription group \
         shop/default, subscription group /default, producer; set in setup] (fix: rename \
         `bootstrap.server` to `bootstrap.servers`)",
        "No such configuration property: \"auto.offset.rest\" (did you mean \
         \"auto.offset.reset\"?)",
        "kafka.auto.offset.reset = \"oldest\": Invalid value \"oldest\" for configuration \
         property \"auto.offset.reset\"; allowed values: ",
        "set in env:FERRAFKA_KAFKA_AUTO_OFFSET_RESET]",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    // Nothing connects: the server refuses to start with the same error.
    match app.start(&Filters::default()) {
        Err(ferrafka::Error::Config(e)) => assert_eq!(e, err),
        other => panic!("expected the configuration error, got {other:?}"),
    }
}

#[test]
fn secrets_are_redacted_in_info_debug_and_errors() {
    let secrets = [
        ("sasl.password", "pw-sasl"),
        ("ssl.key.password", "pw-key"),
        ("ssl.keystore.password", "pw-keystore"),
        ("sasl.oauthbearer.client.secret", "pw-oauth"),
        ("sasl.username", "user-sasl"),
    ];
    let app = App::builder_with_env(vars(&[
        ("FERRAFKA_ENV", "test"),
        ("FERRAFKA_KAFKA_SASL_PASSWORD", "pw-env"),
    ]))
    .setup(move |c| {
        for (k, v) in secrets {
            c.kafka(k, v);
        }
        c.producer_kafka("ssl.key.password", "pw-producer");
        // A misspelled secret is still a secret, and the config is invalid anyway.
        c.kafka("sasl.pasword", "pw-typo");
        c.concurrency(0);
    })
    .routes(|r| {
        r.topic("orders").consumer(|| Noop);
    })
    .build();
    let err = app.validate().expect_err("invalid on purpose");
    let shown = [
        ferrafka::cli::info(&app),
        format!("{:?}", app.config()),
        format!("{app:?}"),
        err.to_string(),
        format!("{err:?}"),
        format!("{:?}", app.subscription_groups()),
    ];
    for text in &shown {
        for secret in [
            "pw-sasl",
            "pw-key",
            "pw-keystore",
            "pw-oauth",
            "user-sasl",
            "pw-env",
            "pw-producer",
            "pw-typo",
        ] {
            assert!(!text.contains(secret), "{secret} shown in\n{text}");
        }
    }
    assert!(shown[0].contains("[redacted]"));
    assert!(
        shown[3].contains("kafka.sasl.pasword = \"[redacted]\""),
        "{}",
        shown[3]
    );
}

/// Counts instances and the batches each one saw; records the environment consumers see.
struct Counting {
    id: usize,
    batches: Arc<Mutex<Vec<(String, usize)>>>,
    envs: Arc<Mutex<Vec<String>>>,
}

impl Consumer for Counting {
    async fn consume(&mut self, ctx: &mut Context, _messages: &Messages) -> ConsumeResult {
        self.batches
            .lock()
            .unwrap()
            .push((ctx.topic().to_string(), self.id));
        self.envs.lock().unwrap().push(ctx.env().to_string());
        Ok(())
    }
}

#[test]
fn without_persistence_every_batch_gets_a_fresh_consumer_instance() {
    let rt = runtime();
    let cluster = Cluster::start();
    let fresh = unique("fresh");
    let kept = unique("kept");
    cluster.create_topic(&rt, &fresh, 1);
    cluster.create_topic(&rt, &kept, 1);
    cluster.produce_numbered(&rt, &fresh, 0, 30, 1);
    cluster.produce_numbered(&rt, &kept, 0, 30, 1);

    let created = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(Mutex::new(Vec::new()));
    let envs = Arc::new(Mutex::new(Vec::new()));
    let factory = {
        let (created, batches, envs) = (created.clone(), batches.clone(), envs.clone());
        move || Counting {
            id: created.fetch_add(1, Ordering::SeqCst),
            batches: batches.clone(),
            envs: envs.clone(),
        }
    };
    let (fresh_route, kept_route) = (fresh.clone(), kept.clone());
    let bootstrap = cluster.bootstrap();
    // Development: persistence is off by default; one topic turns it back on.
    let app = App::builder_with_env(vars(&[("FERRAFKA_ENV", "development")]))
        .setup(move |c| {
            c.client_id("persistence")
                .group_id(unique("persistence-group"))
                .kafka("bootstrap.servers", bootstrap)
                .max_messages(5)
                .max_wait_time(Duration::from_millis(50));
        })
        .routes(move |r| {
            r.topic(fresh_route).consumer(factory.clone());
            r.topic(kept_route)
                .consumer(factory)
                .consumer_persistence(true);
        })
        .build();
    let server = app.start(&Filters::default()).expect("starts");
    assert!(
        wait_until(Duration::from_secs(60), || {
            batches.lock().unwrap().len() >= 12
        }),
        "batches: {:?}",
        batches.lock().unwrap()
    );
    assert_eq!(server.shutdown(), ServerExit::Clean);

    let batches = batches.lock().unwrap().clone();
    let instances = |topic: &str| {
        let ids: Vec<_> = batches
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, id)| *id)
            .collect();
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        (ids.len(), distinct.len())
    };
    let (fresh_batches, fresh_instances) = instances(&fresh);
    let (kept_batches, kept_instances) = instances(&kept);
    assert!(fresh_batches >= 6 && kept_batches >= 6, "{batches:?}");
    assert_eq!(fresh_instances, fresh_batches, "one instance per batch");
    assert_eq!(kept_instances, 1, "one instance for the partition");
    assert!(
        envs.lock().unwrap().iter().all(|e| e == "development"),
        "consumers read the environment"
    );
}

#[test]
fn the_production_profile_consumes_with_cooperative_rebalances() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("prod");
    let group = unique("prod-group");
    cluster.create_topic(&rt, &topic, 4);
    let tracker = Tracker::default();
    let server = |instance: u32| {
        let (tracker, topic, group) = (tracker.clone(), topic.clone(), group.clone());
        let bootstrap = cluster.bootstrap();
        App::builder_with_env(vars(&[("FERRAFKA_ENV", "production")]))
            .setup(move |c| {
                c.strict_declarative_topics(false);
                c.client_id("prod")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("session.timeout.ms", "6000")
                    .kafka("heartbeat.interval.ms", "500")
                    .max_messages(20)
                    .max_wait_time(Duration::from_millis(50));
            })
            .routes(move |r| {
                r.topic(topic)
                    .consumer(move || Recording {
                        instance,
                        tracker: tracker.clone(),
                        batch_sleep: Duration::ZERO,
                    })
                    .config(|t| t.partitions(3));
            })
            .build()
    };
    let first = server(1);
    assert_eq!(
        first.subscription_groups()[0]
            .kafka()
            .get("partition.assignment.strategy"),
        Some("cooperative-sticky")
    );
    let a = first.start(&Filters::default()).expect("a starts");
    cluster.produce_numbered(&rt, &topic, 0, 400, 13);
    assert!(tracker.wait_for(400, Duration::from_secs(60)));
    // A second member joins: the cooperative rebalance moves some partitions to it.
    let b = server(2).start(&Filters::default()).expect("b starts");
    std::thread::sleep(Duration::from_secs(3));
    cluster.produce_numbered(&rt, &topic, 400, 1000, 13);
    assert!(
        wait_until(Duration::from_secs(60), || tracker.counts().len() == 1000),
        "processed {}",
        tracker.counts().len()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(b.shutdown(), ServerExit::Clean);
    assert_eq!(a.shutdown(), ServerExit::Clean);
    let counts = tracker.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
    assert!(
        tracker.all().iter().any(|s| s.instance == 2),
        "the second member got partitions"
    );
    assert_contiguous_per_partition(&tracker.all());
}
