//! The Admin API as a library against the embedded broker: metadata, watermarks, offsets by
//! time, reading messages, settings, consumer groups (describe, lag, move, delete), and the
//! clear error where tansu lacks an API.

use std::time::{Duration, SystemTime};

use ferrafka::admin::{ConfigOp, OffsetSpec, TopicSpec};
use ferrafka::rdkafka::Message as _;
use ferrafka::{App, Error, Filters, ServerExit};

use crate::support::*;

#[test]
fn metadata_watermarks_offsets_by_time_and_reading_messages() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("admin-read");
    cluster.create_topic(&rt, &topic, 2);
    let before = SystemTime::now() - Duration::from_secs(60);
    // One key: every message lands in the same partition, in order.
    cluster.produce_numbered(&rt, &topic, 0, 10, 1);

    let info = cluster
        .admin
        .topic_info(&topic)
        .unwrap()
        .expect("topic known");
    assert_eq!(info.partitions.len(), 2);
    assert_eq!(info.replication_factor(), 1);
    assert!(info.partitions.iter().all(|p| p.leader >= 0));
    let cluster_info = cluster.admin.cluster_info().unwrap();
    // Every broker of the bootstrap list: one embedded, or each node of the Kafka cluster.
    assert_eq!(
        cluster_info.brokers.len(),
        cluster.bootstrap().split(',').count()
    );
    assert!(cluster_info.topics.iter().any(|t| t.name == topic));

    let partition = (0..2)
        .find(|p| cluster.admin.watermarks(&topic, *p).unwrap().1 == 10)
        .expect("all ten in one partition");
    assert_eq!(
        cluster.admin.watermarks(&topic, partition).unwrap(),
        (0, 10)
    );

    let payloads = |from, n| -> Vec<String> {
        cluster
            .admin
            .read_messages(&topic, partition, from, n)
            .unwrap()
            .iter()
            .map(|m| String::from_utf8(m.payload().unwrap().to_vec()).unwrap())
            .collect()
    };
    assert_eq!(payloads(OffsetSpec::At(3), 3), ["3", "4", "5"]);
    assert_eq!(payloads(OffsetSpec::Latest, 2), ["8", "9"]);
    assert_eq!(payloads(OffsetSpec::Earliest, 2), ["0", "1"]);
    assert_eq!(payloads(OffsetSpec::Time(before), 1), ["0"]);
    assert_eq!(payloads(OffsetSpec::At(9), 5), ["9"], "stops at the end");

    let by_time = cluster.admin.offsets_for_time(&topic, before).unwrap();
    assert!(by_time.contains(&(partition, Some(0))), "{by_time:?}");
}

#[test]
fn settings_are_described_and_altered_incrementally() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("admin-config");
    let mut spec = TopicSpec::new(&topic, 1);
    spec.settings.insert("retention.ms".into(), "1000".into());
    spec.settings
        .insert("cleanup.policy".into(), "delete".into());
    rt.block_on(cluster.admin.create_topic(&spec)).unwrap();

    rt.block_on(cluster.admin.alter_topic_config(
        &topic,
        &[
            ConfigOp::Set("retention.ms".into(), "5000".into()),
            ConfigOp::Delete("cleanup.policy".into()),
        ],
    ))
    .unwrap();
    // Kafka spreads a change through its metadata log: another broker may answer with the
    // old settings for a moment.
    let mut settings = Default::default();
    let altered = wait_until(Duration::from_secs(10), || {
        settings = rt
            .block_on(cluster.admin.describe_topic_config(&topic))
            .unwrap();
        settings
            .get("retention.ms")
            .is_some_and(|v| v.value.as_deref() == Some("5000"))
    });
    assert!(altered, "{settings:?}");
    // Deleted: the embedded broker forgets it, Kafka shows its default.
    assert!(
        settings.get("cleanup.policy").is_none_or(|v| v.is_default),
        "{settings:?}"
    );
}

#[test]
fn unsupported_apis_and_impossible_changes_fail_clearly() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("admin-grow");
    cluster.create_topic(&rt, &topic, 2);
    let grown = rt.block_on(cluster.admin.grow_partitions(&topic, 4));
    if cluster.broker.is_kafka() {
        // Kafka has CreatePartitions.
        grown.expect("Kafka grows partitions");
        let four = wait_until(Duration::from_secs(10), || {
            cluster
                .admin
                .topic_info(&topic)
                .unwrap()
                .is_some_and(|t| t.partitions.len() == 4)
        });
        assert!(four, "4 partitions after growing");
    } else {
        let err = grown.unwrap_err();
        assert!(
            matches!(&err, Error::NotSupported { operation: "grow partitions", resource, .. } if *resource == topic),
            "{err:?}"
        );
    }
    let err = rt
        .block_on(cluster.admin.grow_partitions(&topic, 1))
        .unwrap_err();
    let from = if cluster.broker.is_kafka() { 4 } else { 2 };
    assert!(
        err.to_string()
            .contains(&format!("cannot shrink from {from} to 1")),
        "{err}"
    );
    let err = rt
        .block_on(cluster.admin.create_topic(&TopicSpec::new(&topic, 1)))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("admin create topic on"), "{text}");
    assert!(text.contains(&topic), "{text}");
    rt.block_on(cluster.admin.ensure_topic(&TopicSpec::new(&topic, 1)))
        .expect("ensure accepts an existing topic");
    rt.block_on(cluster.admin.delete_topic(&topic)).unwrap();
    assert_eq!(cluster.admin.topic_info(&topic).unwrap(), None);
}

#[test]
fn consumer_groups_are_described_lagged_moved_and_deleted() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("admin-groups");
    let group = unique("admin-group");
    cluster.create_topic(&rt, &topic, 1);
    cluster.produce_numbered(&rt, &topic, 0, 8, 1);
    let tracker = Tracker::default();
    let app = {
        let (bootstrap, topic, group, tracker) = (
            cluster.bootstrap(),
            topic.clone(),
            group.clone(),
            tracker.clone(),
        );
        App::builder()
            .setup(move |c| {
                c.client_id("admin-groups")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("auto.commit.interval.ms", "100")
                    .max_wait_time(Duration::from_millis(100));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Recording {
                    instance: 1,
                    tracker: tracker.clone(),
                    batch_sleep: Duration::ZERO,
                });
            })
            .build_with_env([])
    };
    let server = app.start(&Filters::default()).unwrap();
    assert!(tracker.wait_for(8, Duration::from_secs(30)));
    assert!(wait_until(Duration::from_secs(10), || {
        cluster.admin.lags(&group, &[&topic]).unwrap()[0].lag == Some(0)
    }));

    let described = cluster
        .admin
        .describe_group(&group)
        .unwrap()
        .expect("group known");
    assert_eq!(described.state, "Stable");
    assert_eq!(described.protocol_type, "consumer");
    assert_eq!(described.members.len(), 1);
    // tansu 0.6.0 reports empty client ids and hosts (and no assignor); the member id still
    // carries the client id librdkafka sent.
    assert!(
        described.members[0].id.starts_with("admin-groups"),
        "{described:?}"
    );
    let listed = cluster.admin.list_groups().unwrap();
    assert!(
        listed.iter().any(|g| g.name == group && g.members == 1),
        "{listed:?}"
    );

    let err = cluster
        .admin
        .move_offsets(&group, &topic, OffsetSpec::Earliest)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 active member(s)") && err.contains("move offsets"),
        "{err}"
    );
    let err = rt
        .block_on(cluster.admin.delete_group(&group))
        .unwrap_err()
        .to_string();
    assert!(err.contains("delete group"), "{err}");

    assert_eq!(server.shutdown(), ServerExit::Clean);
    assert!(wait_until(Duration::from_secs(10), || {
        cluster
            .admin
            .describe_group(&group)
            .unwrap()
            .is_none_or(|g| g.members.is_empty())
    }));
    let moved = cluster
        .admin
        .move_offsets(&group, &topic, OffsetSpec::At(3))
        .unwrap();
    assert_eq!(moved, [(0, 3)]);
    let lag = &cluster.admin.lags(&group, &[&topic]).unwrap()[0];
    assert_eq!(
        (lag.committed, lag.high_watermark, lag.lag),
        (Some(3), 8, Some(5))
    );
    cluster
        .admin
        .move_offsets(&group, &topic, OffsetSpec::Earliest)
        .unwrap();
    assert_eq!(
        cluster.admin.lags(&group, &[&topic]).unwrap()[0].lag,
        Some(8)
    );

    rt.block_on(cluster.admin.delete_group(&group)).unwrap();
    let lag = &cluster.admin.lags(&group, &[&topic]).unwrap()[0];
    assert_eq!(lag.committed, None, "deleting the group drops its offsets");
}
