//! Two servers in one group share a 3-partition topic: every message is processed exactly once,
//! in order within each partition.

use std::time::Duration;

use ferrafka::{App, Filters, ServerExit};

use crate::support::*;

fn app(bootstrap: &str, topic: &str, group: &str, instance: u32, tracker: &Tracker) -> App {
    let tracker = tracker.clone();
    let topic = topic.to_string();
    let (bootstrap, group) = (bootstrap.to_string(), group.to_string());
    App::builder()
        .setup(move |c| {
            c.client_id("happy")
                .group_id(group)
                .kafka("bootstrap.servers", bootstrap);
            c.max_messages(50)
                .max_wait_time(Duration::from_millis(100))
                .concurrency(3);
            c.kafka("session.timeout.ms", "6000")
                .kafka("heartbeat.interval.ms", "500");
        })
        .routes(move |r| {
            r.topic(topic).consumer(move || Recording {
                instance,
                tracker: tracker.clone(),
                batch_sleep: Duration::ZERO,
            });
        })
        .build_with_env([])
}

#[test]
fn two_servers_process_every_message_exactly_once_in_partition_order() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("happy");
    cluster.create_topic(&rt, &topic, 3);
    let tracker = Tracker::default();
    let group = unique("happy-group");

    let a = app(&cluster.bootstrap(), &topic, &group, 1, &tracker)
        .start(&Filters::default())
        .expect("server a starts");
    let b = app(&cluster.bootstrap(), &topic, &group, 2, &tracker)
        .start(&Filters::default())
        .expect("server b starts");

    const N: u64 = 3000;
    cluster.produce_numbered(&rt, &topic, 0, N, 30);
    assert!(
        tracker.wait_for(N as usize, Duration::from_secs(60)),
        "processed {} of {N}",
        tracker.len()
    );
    // Give a duplicate the chance to show up before judging.
    std::thread::sleep(Duration::from_millis(500));

    assert_eq!(a.shutdown(), ServerExit::Clean);
    assert_eq!(b.shutdown(), ServerExit::Clean);

    let counts = tracker.counts();
    assert_eq!(counts.len() as u64, N, "every message processed");
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "processed more than once: {twice:?}");
    let seen = tracker.all();
    assert_contiguous_per_partition(&seen);
    let partitions: std::collections::BTreeSet<_> = seen.iter().map(|s| s.partition).collect();
    assert_eq!(partitions.len(), 3, "messages spread over the 3 partitions");
}
