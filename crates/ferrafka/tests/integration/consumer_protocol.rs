//! The consumer group protocol of KIP-848 (`group.protocol=consumer`) on Apache Kafka (the
//! embedded broker does not implement it): an app with production's profile boots (librdkafka
//! refuses the profile's `partition.assignment.strategy` under this protocol, so ferrafka leaves
//! it out), consumes, and shares its partitions with a second member the broker assigns; the
//! admin API describes and lists the running group (through ConsumerGroupDescribe) and refuses to
//! move its offsets.

use std::time::Duration;

use ferrafka::{App, Filters, ServerExit};

use crate::support::*;

#[test]
fn a_production_app_on_the_consumer_protocol_boots_consumes_and_shares_partitions() {
    let rt = runtime();
    let cluster = Cluster::kafka();
    let topic = unique("kip848");
    let group = unique("kip848-group");
    cluster.create_topic(&rt, &topic, 4);
    let tracker = Tracker::default();
    let server = |instance: u32| {
        let (tracker, topic, group) = (tracker.clone(), topic.clone(), group.clone());
        let bootstrap = cluster.bootstrap();
        App::builder_with_env([("FERRAFKA_ENV".to_string(), "production".to_string())])
            .setup(move |c| {
                c.strict_declarative_topics(false);
                c.client_id("kip848")
                    .group_id(group)
                    .kafka("bootstrap.servers", bootstrap)
                    .kafka("group.protocol", "consumer")
                    .max_messages(20)
                    .max_wait_time(Duration::from_millis(50));
            })
            .routes(move |r| {
                r.topic(topic).consumer(move || Recording {
                    instance,
                    tracker: tracker.clone(),
                    batch_sleep: Duration::ZERO,
                });
            })
            .build()
    };
    let first = server(1);
    let kafka = first.subscription_groups()[0].kafka();
    assert_eq!(kafka.get("partition.assignment.strategy"), None);
    assert_eq!(kafka.get("group.protocol"), Some("consumer"));
    let a = first.start(&Filters::default()).expect("a starts");
    cluster.produce_numbered(&rt, &topic, 0, 400, 13);
    assert!(
        tracker.wait_for(400, Duration::from_secs(60)),
        "processed {}",
        tracker.len()
    );
    // A second member joins: the broker's assignor gives it some partitions.
    let b = server(2).start(&Filters::default()).expect("b starts");
    std::thread::sleep(Duration::from_secs(5));
    cluster.produce_numbered(&rt, &topic, 400, 1000, 13);
    assert!(
        wait_until(Duration::from_secs(60), || tracker.counts().len() == 1000),
        "processed {}",
        tracker.counts().len()
    );
    // The admin API sees the running KIP-848 group (the classic DescribeGroups calls it Dead).
    let admin = ferrafka::admin::Admin::connect(&cluster.bootstrap()).expect("admin");
    let described = admin.describe_group(&group).expect("described");
    let described = described.expect("the running group is known");
    assert_eq!(described.group_protocol, "consumer", "{described:?}");
    assert_eq!(described.state, "Stable", "{described:?}");
    assert_eq!(described.members.len(), 2, "{described:?}");
    let topics = described
        .members
        .iter()
        .flat_map(|m| m.topics.iter().flatten());
    assert!(topics.clone().all(|t| *t == topic), "{described:?}");
    let listed = admin.list_groups().expect("listed");
    let listed = listed
        .iter()
        .find(|g| g.name == group)
        .expect("listed group");
    assert_eq!(
        (listed.state.as_str(), listed.members),
        ("Stable", 2),
        "{listed:?}"
    );
    // So moving its offsets is refused while it runs, as for a classic group.
    let refused = admin.move_offsets(&group, &topic, ferrafka::admin::OffsetSpec::Earliest);
    let refused = refused.expect_err("refused while the group has members");
    assert!(refused.to_string().contains("2 active member"), "{refused}");
    assert_eq!(b.shutdown(), ServerExit::Clean);
    assert_eq!(a.shutdown(), ServerExit::Clean);
    assert!(
        tracker.all().iter().any(|s| s.instance == 2),
        "the second member got partitions"
    );
    assert_contiguous_per_partition(&tracker.all());
}
