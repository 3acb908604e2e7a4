//! Strict declarative topics and the server's boot check, in production and elsewhere.

use std::time::Duration;

use ferrafka::{App, Error, Filters, ServerExit};

use crate::support::*;

fn production() -> [(String, String); 1] {
    [("FERRAFKA_ENV".to_string(), "production".to_string())]
}

fn app(bootstrap: &str, routed: &str, declared: &str, env: &[(String, String)]) -> App {
    let (bootstrap, routed, declared) = (
        bootstrap.to_string(),
        routed.to_string(),
        declared.to_string(),
    );
    App::builder_with_env(env.to_vec())
        .setup(move |c| {
            c.client_id("declarative")
                .group_id(unique("declarative"))
                .kafka("bootstrap.servers", bootstrap)
                .max_wait_time(Duration::from_millis(100));
        })
        .declarations(move |d| {
            d.topic(declared, |t| t.partitions(1));
        })
        .routes(move |r| {
            r.topic(routed).consumer(|| Recording {
                instance: 1,
                tracker: Tracker::default(),
                batch_sleep: Duration::ZERO,
            });
        })
        .build()
}

#[test]
fn strict_mode_is_on_in_production_and_suggests_the_declared_name() {
    let strict = app("127.0.0.1:1", "paymnets", "payments", &production());
    let err = strict.validate().unwrap_err().to_string();
    assert!(err.contains("routes.declarative"), "{err}");
    assert!(err.contains("paymnets"), "{err}");
    assert!(err.contains("did you mean `payments`?"), "{err}");
    let started = strict.start(&Filters::default());
    assert!(matches!(started, Err(Error::Config(_))), "{started:?}");

    let lenient = app("127.0.0.1:1", "paymnets", "payments", &[]);
    assert!(
        lenient.validate().is_ok(),
        "strict mode is off in development"
    );

    let forced = App::builder()
        .setup(|c| {
            c.strict_declarative_topics(true);
        })
        .routes(|r| {
            r.topic("visits").consumer(|| Recording {
                instance: 1,
                tracker: Tracker::default(),
                batch_sleep: Duration::ZERO,
            });
        })
        .build_with_env([]);
    let err = forced.validate().unwrap_err().to_string();
    assert!(err.contains("needs a declaration"), "{err}");
}

#[test]
fn production_boot_fails_naming_missing_topics_and_the_command() {
    let cluster = Cluster::start();
    let topic = unique("missing");
    // Declared so strict mode passes, but never created.
    let app = app(&cluster.bootstrap(), &topic, &topic, &production());
    app.validate().expect("valid app");
    let err = app.start(&Filters::default()).unwrap_err();
    assert!(
        matches!(&err, Error::MissingTopics { topics } if *topics == [topic.clone()]),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&topic) && text.contains("topics migrate"),
        "{text}"
    );
}

#[test]
fn development_boot_warns_about_missing_topics_and_starts() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("missing");
    let app = app(&cluster.bootstrap(), &topic, &topic, &[]);
    let server = app
        .start(&Filters::default())
        .expect("starts despite the missing topic");
    assert_eq!(server.shutdown(), ServerExit::Clean);

    // Once the topic exists, production boots too.
    cluster.create_topic(&rt, &topic, 1);
    let app = self::app(&cluster.bootstrap(), &topic, &topic, &production());
    let server = app
        .start(&Filters::default())
        .expect("starts in production");
    assert_eq!(server.shutdown(), ServerExit::Clean);
}
