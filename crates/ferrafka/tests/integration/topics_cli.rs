//! `topics` actions against the embedded broker: from nothing to the declared state and back,
//! idempotence with --detailed-exitcode, the refusal to reset a topic a running group reads,
//! the lock file, and the clear error where tansu lacks CreatePartitions.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use ferrafka::admin::{ConfigOp, TopicSpec};
use ferrafka::cli::topics::{Outcome, TopicsArgs, TopicsError, execute, exit_code};
use ferrafka::cli::{Cli, Command};
use ferrafka::{App, Filters, ServerExit};

use crate::support::*;

/// An app consuming `topic` (declared inline) that also declares `extra` in the block.
fn app(bootstrap: &str, group: &str, topic: &str, extra: &str, tracker: &Tracker) -> App {
    let (bootstrap, group, topic, extra) = (
        bootstrap.to_string(),
        group.to_string(),
        topic.to_string(),
        extra.to_string(),
    );
    let tracker = tracker.clone();
    App::builder()
        .setup(move |c| {
            c.client_id("topics-cli")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap)
                .max_wait_time(Duration::from_millis(100));
            c.kafka("auto.commit.interval.ms", "100");
        })
        .declarations(move |d| {
            d.defaults(|t| t.setting("cleanup.policy", "delete"));
            d.topic(extra, |t| t.partitions(1));
        })
        .routes(move |r| {
            r.topic(topic)
                .consumer(move || Recording {
                    instance: 1,
                    tracker: tracker.clone(),
                    batch_sleep: Duration::ZERO,
                })
                .config(|t| t.partitions(2).setting("retention.ms", "86400000"));
        })
        .build_with_env([])
}

fn args(words: &[&str]) -> TopicsArgs {
    let mut argv = vec!["app", "topics"];
    argv.extend_from_slice(words);
    match Cli::parse_from(argv).command {
        Command::Topics(args) => args,
        other => panic!("parsed {other:?}"),
    }
}

/// Runs an action; returns its exit code under --detailed-exitcode, its output and result.
fn run(app: &App, words: &[&str]) -> (u8, String, Result<Outcome, TopicsError>) {
    let args = args(words);
    let mut out = Vec::new();
    let result = execute(app, &args, &mut out);
    (
        exit_code(&result, true),
        String::from_utf8(out).unwrap(),
        result,
    )
}

#[test]
fn migrate_reaches_the_declared_state_and_a_second_run_has_nothing_to_do() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (topic, extra) = (unique("orders"), unique("orders-dlq"));
    let app = app(
        &cluster.bootstrap(),
        "g",
        &topic,
        &extra,
        &Tracker::default(),
    );

    let (code, out, _) = run(&app, &["plan"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("2 would change"), "{out}");
    assert!(
        out.contains(&format!("| {topic}")) && out.contains("| create"),
        "{out}"
    );
    assert_eq!(
        cluster.admin.partition_count(&topic).unwrap(),
        None,
        "plan changes nothing"
    );

    let (code, out, _) = run(&app, &["migrate"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("applied 2 change(s)"), "{out}");
    assert_eq!(cluster.admin.partition_count(&topic).unwrap(), Some(2));
    assert_eq!(cluster.admin.partition_count(&extra).unwrap(), Some(1));
    let settings = rt
        .block_on(cluster.admin.describe_topic_config(&topic))
        .unwrap();
    assert_eq!(settings["retention.ms"].value.as_deref(), Some("86400000"));
    assert_eq!(settings["cleanup.policy"].value.as_deref(), Some("delete"));

    for action in ["plan", "migrate", "create", "align"] {
        let (code, out, result) = run(&app, &[action]);
        assert!(
            matches!(result, Ok(Outcome::Unchanged)),
            "{action}: {result:?}"
        );
        assert_eq!(code, 0, "{action}: {out}");
        assert!(out.contains("nothing to do"), "{action}: {out}");
    }
    let (_, out, _) = run(&app, &["list"]);
    assert!(
        out.contains(&format!("| {topic}")) && out.contains("| ok"),
        "{out}"
    );

    // Producing right after creation works: migrate waited for the partition leaders.
    cluster.produce_numbered(&rt, &topic, 0, 4, 2);
    let (_, high) = cluster.admin.watermarks(&topic, 0).unwrap();
    let (_, high1) = cluster.admin.watermarks(&topic, 1).unwrap();
    assert_eq!(high + high1, 4);
}

#[test]
fn align_sets_drifted_settings_and_leaves_undeclared_topics_alone() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (topic, extra) = (unique("orders"), unique("extra"));
    let bystander = unique("undeclared");
    let app = app(
        &cluster.bootstrap(),
        "g",
        &topic,
        &extra,
        &Tracker::default(),
    );
    cluster.create_topic(&rt, &bystander, 1);
    assert_eq!(run(&app, &["migrate"]).0, 2);
    rt.block_on(cluster.admin.alter_topic_config(
        &topic,
        &[ConfigOp::Set("retention.ms".into(), "1000".into())],
    ))
    .unwrap();

    let (code, out, _) = run(&app, &["plan"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("retention.ms: 1000 -> 86400000"), "{out}");
    let (code, out, _) = run(&app, &["align"]);
    assert_eq!(code, 2, "{out}");
    let settings = rt
        .block_on(cluster.admin.describe_topic_config(&topic))
        .unwrap();
    assert_eq!(settings["retention.ms"].value.as_deref(), Some("86400000"));
    assert_eq!(run(&app, &["align"]).0, 0);

    // delete removes the declared topics only.
    let (code, out, _) = run(&app, &["delete"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(cluster.admin.partition_count(&topic).unwrap(), None);
    assert_eq!(cluster.admin.partition_count(&extra).unwrap(), None);
    assert_eq!(cluster.admin.partition_count(&bystander).unwrap(), Some(1));
    let (code, out, _) = run(&app, &["delete"]);
    assert_eq!(code, 0, "{out}");
}

/// `topics repartition` grows partitions on Kafka, and on tansu (no CreatePartitions) fails
/// naming the unsupported operation.
#[test]
fn repartition_grows_partitions_or_names_the_unsupported_operation() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (topic, extra) = (unique("orders"), unique("extra"));
    let app = app(
        &cluster.bootstrap(),
        "g",
        &topic,
        &extra,
        &Tracker::default(),
    );
    cluster.create_topic(&rt, &topic, 1);

    let (code, out, _) = run(&app, &["plan"]);
    assert!(out.contains("partitions 1 -> 2"), "{out}");
    assert_eq!(code, 2);
    let (_, out, _) = run(&app, &["list"]);
    assert!(out.contains("| 2 x rf 1 | 1 x rf 1"), "{out}");
    assert!(
        out.contains("needs grow partitions, align settings"),
        "{out}"
    );
    assert!(
        out.contains(&format!("| {extra}")) && out.contains("| missing"),
        "{out}"
    );
    let (code, out, result) = run(&app, &["repartition"]);
    if cluster.broker.is_kafka() {
        assert!(out.contains("applied 1 change(s)"), "{out}");
        assert_eq!(code, 2, "{out}");
        let grown = wait_until(Duration::from_secs(10), || {
            cluster.admin.partition_count(&topic).unwrap() == Some(2)
        });
        assert!(grown, "2 partitions after repartition");
        return;
    }
    assert_eq!(code, 1);
    let err = result.unwrap_err();
    assert!(
        matches!(&err, TopicsError::Ferrafka(ferrafka::Error::NotSupported { operation: "grow partitions", resource, .. }) if *resource == topic),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not supported by this broker"),
        "{err}"
    );
}

#[test]
fn reset_is_refused_while_a_group_with_members_reads_the_topic() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (topic, extra, group) = (unique("orders"), unique("extra"), unique("readers"));
    let tracker = Tracker::default();
    let app = app(&cluster.bootstrap(), &group, &topic, &extra, &tracker);
    assert_eq!(run(&app, &["migrate"]).0, 2);
    cluster.produce_numbered(&rt, &topic, 0, 6, 3);

    let server = app.start(&Filters::default()).expect("server starts");
    assert!(
        tracker.wait_for(6, Duration::from_secs(30)),
        "consumed {}",
        tracker.len()
    );
    assert!(wait_until(Duration::from_secs(10), || {
        cluster
            .admin
            .describe_group(&group)
            .unwrap()
            .is_some_and(|g| !g.members.is_empty())
    }));

    for action in ["reset", "delete"] {
        let (code, _, result) = run(&app, &[action]);
        assert_eq!(code, 1, "{action}");
        let text = result.unwrap_err().to_string();
        assert!(
            text.contains(&format!("{topic} (read by {group})")),
            "{text}"
        );
        assert!(text.contains("--force"), "{text}");
    }
    let total: i64 = (0..2)
        .map(|p| cluster.admin.watermarks(&topic, p).unwrap().1)
        .sum();
    assert_eq!(total, 6, "the refused reset kept the messages");

    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(wait_until(Duration::from_secs(10), || {
        cluster
            .admin
            .describe_group(&group)
            .unwrap()
            .is_none_or(|g| g.members.is_empty())
    }));
    let (code, out, _) = run(&app, &["reset"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("| reset"), "{out}");
    let total: i64 = (0..2)
        .map(|p| cluster.admin.watermarks(&topic, p).unwrap().1)
        .sum();
    assert_eq!(total, 0, "reset recreated the topic empty");
    assert_eq!(cluster.admin.partition_count(&topic).unwrap(), Some(2));
}

#[test]
fn lock_then_check_passes_and_fails_with_a_diff_after_drift() {
    let dir = tempfile::tempdir().unwrap();
    let lock = dir.path().join("topics.lock");
    let lock_arg = lock.to_str().unwrap();
    // No broker: lock and check only read the declarations.
    let app = app(
        "127.0.0.1:1",
        "g",
        "orders",
        "orders-dlq",
        &Tracker::default(),
    );

    let (code, _, result) = run(&app, &["check", "--lock-file", lock_arg]);
    assert_eq!(code, 1);
    assert!(
        result
            .unwrap_err()
            .to_string()
            .contains("run `topics lock`")
    );

    assert_eq!(run(&app, &["lock", "--lock-file", lock_arg]).0, 2);
    let text = std::fs::read_to_string(&lock).unwrap();
    assert!(
        text.contains("[topics.orders]\npartitions = 2\nreplication_factor = 1"),
        "{text}"
    );
    assert_eq!(
        run(&app, &["lock", "--lock-file", lock_arg]).0,
        0,
        "unchanged lock"
    );
    let (code, out, _) = run(&app, &["check", "--lock-file", lock_arg]);
    assert_eq!(code, 0, "{out}");

    let drifted = App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", "127.0.0.1:1");
        })
        .declarations(|d| {
            d.defaults(|t| t.setting("cleanup.policy", "delete"));
            d.topic("orders-dlq", |t| t.partitions(1));
        })
        .routes(|r| {
            r.topic("ordres")
                .consumer(|| Recording {
                    instance: 1,
                    tracker: Tracker::default(),
                    batch_sleep: Duration::ZERO,
                })
                .config(|t| t.partitions(4).setting("retention.ms", "86400000"));
        })
        .build_with_env([]);
    let (code, _, result) = run(&drifted, &["check", "--lock-file", lock_arg]);
    assert_eq!(code, 1);
    let text = result.unwrap_err().to_string();
    assert!(text.contains("- orders: partitions 2"), "{text}");
    assert!(text.contains("+ ordres: partitions 4"), "{text}");
    assert_lock_untouched(&lock, &text);
}

fn assert_lock_untouched(lock: &Path, diff: &str) {
    let text = std::fs::read_to_string(lock).unwrap();
    assert!(
        !text.contains("ordres"),
        "check must not rewrite the lock:\n{diff}"
    );
}

#[test]
fn create_only_creates_missing_topics() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (topic, extra) = (unique("orders"), unique("extra"));
    rt.block_on(cluster.admin.create_topic(&TopicSpec::new(&topic, 2)))
        .unwrap();
    let app = app(
        &cluster.bootstrap(),
        "g",
        &topic,
        &extra,
        &Tracker::default(),
    );
    let (code, out, _) = run(&app, &["create"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains(&extra) && !out.contains(&format!("| {topic}")),
        "{out}"
    );
    assert_eq!(cluster.admin.partition_count(&extra).unwrap(), Some(1));
}

/// Declared topics with replication factor 3 on a three-node Kafka cluster of the test's own:
/// `migrate` creates them replicated with their settings, `align` puts back a setting changed
/// behind its back, and `repartition` grows a replicated topic (CreatePartitions).
#[test]
fn replicated_topics_are_migrated_aligned_and_grown_on_kafka() {
    let rt = runtime();
    let kafka = ferrafka_testing::KafkaCluster::start(3).unwrap_or_else(|e| panic!("{e}"));
    let admin = ferrafka::admin::Admin::connect(&kafka.bootstrap).expect("admin");
    let topic = unique("replicated");
    let declare = |partitions: i32| {
        let (bootstrap, topic) = (kafka.bootstrap.clone(), topic.clone());
        App::builder()
            .setup(move |c| {
                c.client_id("topics-rf3")
                    .kafka("bootstrap.servers", bootstrap);
            })
            .routes(move |r| {
                r.topic(topic).consumer(|| Noop).config(move |t| {
                    t.partitions(partitions)
                        .replication_factor(3)
                        .setting("min.insync.replicas", "2")
                        .setting("compression.type", "zstd")
                });
            })
            .build_with_env([])
    };
    let (code, out, result) = run(&declare(3), &["migrate"]);
    assert_eq!(code, 2, "{out} {result:?}");
    // `migrate` waited until its own client saw the topic; this client may ask a broker that
    // has not caught up yet (Kafka propagates metadata asynchronously).
    let shown = || {
        admin
            .topic_info(&topic)
            .unwrap()
            .filter(|i| i.partitions.iter().all(|p| p.isr.len() == 3))
    };
    assert!(
        wait_until(Duration::from_secs(30), || shown().is_some()),
        "created"
    );
    let info = shown().expect("created");
    assert_eq!((info.partitions.len(), info.replication_factor()), (3, 3));
    assert!(info.partitions.iter().all(|p| p.isr.len() == 3), "{info:?}");
    let setting = |name: &str| {
        let settings = rt.block_on(admin.describe_topic_config(&topic)).unwrap();
        settings[name].value.clone()
    };
    assert_eq!(setting("min.insync.replicas").as_deref(), Some("2"));
    assert_eq!(setting("compression.type").as_deref(), Some("zstd"));

    // Someone lowers min.insync.replicas by hand: align puts the declared value back.
    let drift = [ConfigOp::Set("min.insync.replicas".into(), "1".into())];
    rt.block_on(admin.alter_topic_config(&topic, &drift))
        .unwrap();
    // Each broker applies a config change on its own, and any of them may answer a describe:
    // align may still see the old value, so it runs until it applied the change and the
    // declared value is what the brokers report.
    let mut applied = false;
    let aligned = wait_until(Duration::from_secs(20), || {
        let (code, out, _) = run(&declare(3), &["align"]);
        applied |= code == 2 && out.contains("applied 1 change(s)");
        applied && setting("min.insync.replicas").as_deref() == Some("2")
    });
    assert!(applied, "align applied the declared min.insync.replicas");
    assert!(aligned, "min.insync.replicas back to 2");

    // Six partitions declared: repartition grows the replicated topic.
    let (code, out, _) = run(&declare(6), &["repartition"]);
    assert_eq!(code, 2, "{out}");
    let grown = wait_until(Duration::from_secs(20), || {
        admin.topic_info(&topic).unwrap().is_some_and(|t| {
            t.partitions.len() == 6 && t.partitions.iter().all(|p| p.replicas.len() == 3)
        })
    });
    assert!(grown, "6 partitions of 3 replicas after repartition");
    // A fresh client may still ask a broker whose metadata shows 3 partitions (Kafka propagates
    // metadata asynchronously): `plan` only reads, so it is asked until the brokers agree.
    let mut last = String::new();
    let settled = wait_until(Duration::from_secs(20), || {
        let (code, out, _) = run(&declare(6), &["plan"]);
        last = out;
        code == 0
    });
    assert!(settled, "nothing left to do: {last}");
}
