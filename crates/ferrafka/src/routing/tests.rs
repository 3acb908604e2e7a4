//! Tests of route resolution.

use super::*;
use crate::config::Problem;
use crate::noop::Noop;

fn resolve_routes(
    config: &Config,
    f: impl FnOnce(&mut Router),
) -> (Vec<SubscriptionGroup>, Vec<Problem>) {
    let mut router = Router::default();
    f(&mut router);
    let mut problems = Vec::new();
    let sgs = resolve(config, &router.groups, &mut problems);
    (sgs, problems)
}

#[test]
fn topics_with_different_kafka_settings_get_their_own_subscription_group() {
    let mut config = Config::default();
    config.client_id("shop");
    let (sgs, problems) = resolve_routes(&config, |r| {
        r.topic("orders").consumer(|| Noop);
        r.topic("payments")
            .consumer(|| Noop)
            .kafka("fetch.max.bytes", "1000");
        r.topic("refunds").consumer(|| Noop);
        r.consumer_group("analytics", |g| {
            g.topic("visits")
                .consumer(|| Noop)
                .subscription_group("fast");
        });
    });
    assert!(problems.is_empty(), "{problems:?}");
    let names: Vec<_> = sgs
        .iter()
        .map(|sg| {
            (
                sg.consumer_group.to_string(),
                sg.name.clone(),
                sg.active_topics().join(","),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("shop".into(), "default".into(), "orders,refunds".into()),
            ("shop".into(), "default-2".into(), "payments".into()),
            ("analytics".into(), "fast".into(), "visits".into()),
        ]
    );
    assert_eq!(sgs[0].kafka["group.id"], "shop");
    assert_eq!(sgs[0].kafka["enable.auto.offset.store"], "false");
}

#[test]
fn static_member_ids_are_unique_per_subscription_group() {
    let mut config = Config::default();
    config.client_id("shop").kafka("group.instance.id", "pod-7");
    let (sgs, problems) = resolve_routes(&config, |r| {
        r.topic("orders").consumer(|| Noop);
        r.topic("payments")
            .consumer(|| Noop)
            .subscription_group("slow");
        r.consumer_group("analytics", |g| {
            g.topic("visits").consumer(|| Noop);
        });
    });
    assert!(problems.is_empty(), "{problems:?}");
    let ids: Vec<_> = sgs
        .iter()
        .map(|sg| sg.kafka["group.instance.id"].as_str())
        .collect();
    assert_eq!(ids, ["pod-7-default", "pod-7-slow", "pod-7"]);
}

#[test]
fn routing_problems_are_all_reported() {
    let config = Config::default();
    let (_, problems) = resolve_routes(&config, |r| {
        r.topic("a.b_c").consumer(|| Noop);
        r.topic("ok").consumer(|| Noop);
        r.topic("ok").consumer(|| Noop);
        r.topic("no-consumer");
        r.topic("bad name!").consumer(|| Noop);
        r.topic("idle").active(false);
    });
    let got: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
    assert_eq!(
        got,
        [
            "routes.ferrafka.a.b_c",
            "routes.ferrafka.ok",
            "routes.ferrafka.no-consumer.consumer",
            "routes.ferrafka.bad name!",
        ]
    );
    assert!(problems[3].problem.contains("found ' '"), "{}", problems[3]);
}

#[test]
fn zero_virtual_partitions_are_refused_naming_the_setting_and_the_fix() {
    let (_, problems) = resolve_routes(&Config::default(), |r| {
        r.topic("images")
            .consumer(|| Noop)
            .virtual_partitions(VirtualPartitions::new(0));
        r.topic("ok")
            .consumer(|| Noop)
            .virtual_partitions(VirtualPartitions::new(1));
        r.topic("huge")
            .consumer(|| Noop)
            .virtual_partitions(VirtualPartitions::new(1025));
    });
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[1]
            .setting
            .ends_with(".huge.virtual_partitions.max_partitions")
            && problems[1].problem.contains("at most 1024"),
        "{}",
        problems[1]
    );
    let p = &problems[0];
    assert!(
        p.setting
            .ends_with(".images.virtual_partitions.max_partitions"),
        "{p}"
    );
    assert_eq!(p.value, "0");
    assert!(p.problem.contains("at least 1") && p.fix.contains("VirtualPartitions::new(n)"));
}

#[test]
fn the_key_hash_is_stable_and_keyless_messages_share_one_group() {
    // FNV-1a test vectors: the value may never change, or keys would move between groups.
    assert_eq!(VirtualPartitions::hash(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(VirtualPartitions::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    let vp = VirtualPartitions::new(4);
    let keyless = |o| crate::Message::builder("t", 0, o).build();
    let groups: Vec<usize> = (0..20).map(|o| vp.group_of(&keyless(o))).collect();
    assert!(groups.iter().all(|&g| g == groups[0]), "{groups:?}");
    let keyed = |k: &str| vp.group_of(&crate::Message::builder("t", 0, 0).key(k).build());
    let spread: std::collections::BTreeSet<usize> =
        (0..50).map(|i| keyed(&format!("user-{i}"))).collect();
    assert_eq!(spread.len(), 4, "keys spread over every group");
}

/// Events and metrics name a subscription group `consumer_group/name`: a `/` in the name would
/// make that ambiguous.
#[test]
fn a_subscription_group_name_with_a_slash_is_refused() {
    let (_, problems) = resolve_routes(&Config::default(), |r| {
        r.topic("orders")
            .consumer(|| Noop)
            .subscription_group("eu/fast");
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].setting,
        "routes.ferrafka.orders.subscription_group"
    );
    assert_eq!(problems[0].value, "eu/fast");
}

#[test]
fn each_eofed_topic_gets_a_subscription_group_of_its_own_that_reports_partition_ends() {
    let mut config = Config::default();
    config.client_id("shop");
    let (sgs, problems) = resolve_routes(&config, |r| {
        r.topic("orders").consumer(|| Noop);
        r.topic("audit").consumer(|| Noop).eofed(true);
        r.topic("ledger").consumer(|| Noop).eofed(true);
        r.topic("refunds").consumer(|| Noop);
    });
    assert!(problems.is_empty(), "{problems:?}");
    let topics: Vec<_> = sgs.iter().map(|sg| sg.active_topics().join(",")).collect();
    // librdkafka's end-of-partition report names no topic: one eofed topic per consumer.
    assert_eq!(topics, ["orders,refunds", "audit", "ledger"]);
    let eof: Vec<_> = sgs
        .iter()
        .map(|sg| sg.kafka.get("enable.partition.eof").map(String::as_str))
        .collect();
    assert_eq!(eof, [None, Some("true"), Some("true")]);
}

#[test]
fn zero_hook_intervals_are_boot_problems() {
    let (_, problems) = resolve_routes(&Config::default(), |r| {
        r.topic("orders")
            .consumer(|| Noop)
            .tick_interval(Duration::ZERO)
            .idle_after(Duration::ZERO);
    });
    let got: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
    assert_eq!(
        got,
        [
            "routes.ferrafka.orders.tick_interval",
            "routes.ferrafka.orders.idle_after"
        ]
    );
}
