//! Tests of the topics planner against a cluster in memory.

use super::*;
use crate::admin::memory::{Memory, Read, group};

/// Name, partitions, replication factor, settings.
type Row<'a> = (&'a str, i32, i32, &'a [(&'a str, &'a str)]);

/// The shared in-memory cluster holding `topics`.
fn memory(topics: &[Row<'_>]) -> Memory {
    topics
        .iter()
        .fold(Memory::default(), |m, (name, partitions, rf, settings)| {
            m.with_topic(name, *partitions, *rf, settings)
        })
}

/// No topic is routed to a group by the app.
fn unrouted() -> BTreeMap<String, BTreeSet<String>> {
    BTreeMap::new()
}

fn spec(name: &str, partitions: i32, rf: i32, settings: &[(&str, &str)]) -> TopicSpec {
    TopicSpec {
        name: name.into(),
        partitions,
        replication_factor: rf,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn migrate_creates_then_grows_then_aligns_and_a_second_run_has_nothing_to_do() {
    let cluster = memory(&[
        (
            "orders",
            3,
            1,
            &[("retention.ms", "1000"), ("undeclared.setting", "x")],
        ),
        ("undeclared-topic", 1, 1, &[]),
    ]);
    let declared = [
        spec(
            "orders",
            6,
            1,
            &[("retention.ms", "2000"), ("cleanup.policy", "delete")],
        ),
        spec("payments", 2, 1, &[]),
    ];
    let plan = block_on(plan_against(&cluster, Action::Migrate, &declared)).unwrap();
    let kinds: Vec<_> = plan.steps.iter().map(|s| (s.kind(), s.topic())).collect();
    assert_eq!(
        kinds,
        [
            ("create", "payments"),
            ("grow partitions", "orders"),
            ("align settings", "orders")
        ]
    );
    assert_eq!(
        plan.steps[2].details(),
        "cleanup.policy: (unset) -> delete, retention.ms: 1000 -> 2000"
    );
    assert!(plan.notices.is_empty(), "{:?}", plan.notices);

    block_on(apply(&cluster, &plan, |_, _| {})).unwrap();
    let again = block_on(plan_against(&cluster, Action::Migrate, &declared)).unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert!(
        cluster.topic("undeclared-topic").is_some(),
        "undeclared topic untouched"
    );
    assert_eq!(
        cluster.topic("orders").unwrap().settings["undeclared.setting"],
        "x",
        "undeclared setting untouched"
    );
}

#[test]
fn partitions_never_shrink_and_replication_factor_is_only_reported() {
    let cluster = memory(&[("orders", 8, 1, &[])]);
    let declared = [spec("orders", 4, 3, &[])];
    let plan = block_on(plan_against(&cluster, Action::Migrate, &declared)).unwrap();
    assert!(plan.steps.is_empty(), "{:?}", plan.steps);
    assert_eq!(
        plan.notices,
        [
            Notice::ReplicationFactor {
                topic: "orders".into(),
                declared: 3,
                actual: 1
            },
            Notice::CannotShrink {
                topic: "orders".into(),
                declared: 4,
                actual: 8
            },
        ]
    );
    assert!(plan.notices[1].to_string().contains("cannot shrink"));
}

#[test]
fn each_action_plans_only_its_own_steps() {
    let cluster = memory(&[("orders", 1, 1, &[("retention.ms", "1")])]);
    let declared = [
        spec("orders", 2, 1, &[("retention.ms", "2")]),
        spec("missing", 1, 1, &[]),
    ];
    let kinds = |action| {
        let plan = block_on(plan_against(&cluster, action, &declared)).unwrap();
        plan.steps
            .iter()
            .map(|s| format!("{} {}", s.kind(), s.topic()))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(Action::Create), ["create missing"]);
    assert_eq!(kinds(Action::Repartition), ["grow partitions orders"]);
    assert_eq!(kinds(Action::Align), ["align settings orders"]);
    assert_eq!(kinds(Action::Delete), ["delete orders"]);
    assert_eq!(kinds(Action::Reset), ["reset orders", "create missing"]);
    let align = block_on(plan_against(&cluster, Action::Align, &declared)).unwrap();
    assert_eq!(
        align.notices,
        [Notice::Missing {
            topic: "missing".into()
        }]
    );
}

#[test]
fn unreadable_settings_are_reported_not_guessed() {
    let cluster = memory(&[("orders", 1, 1, &[])]).failing(
        Read::TopicSettings,
        "orders",
        "DescribeConfigs timed out",
    );
    let declared = [spec("orders", 1, 1, &[("retention.ms", "2")])];
    let plan = block_on(plan_against(&cluster, Action::Align, &declared)).unwrap();
    assert!(plan.steps.is_empty());
    assert!(
        matches!(&plan.notices[0], Notice::SettingsUnknown { reason, .. } if reason.contains("timed out"))
    );
}

#[test]
fn removing_a_topic_with_active_readers_is_refused() {
    let cluster =
        memory(&[("orders", 1, 1, &[]), ("idle", 1, 1, &[])]).with_group("billing", &[&["orders"]]);
    let declared = [spec("orders", 1, 1, &[]), spec("idle", 1, 1, &[])];
    for action in [Action::Delete, Action::Reset] {
        let plan = block_on(plan_against(&cluster, action, &declared)).unwrap();
        let err = block_on(refuse_active_readers(&cluster, &unrouted(), &plan)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("orders (read by billing)"), "{text}");
        assert!(text.contains("--force"), "{text}");
        assert!(!text.contains("idle"), "{text}");
    }
    let only_idle = [spec("idle", 1, 1, &[])];
    let plan = block_on(plan_against(&cluster, Action::Delete, &only_idle)).unwrap();
    block_on(refuse_active_readers(&cluster, &unrouted(), &plan)).unwrap();
    block_on(apply(&cluster, &plan, |_, _| {})).unwrap();
    assert_eq!(cluster.log(), ["delete idle"]);
}

#[test]
fn without_member_topics_a_route_or_a_commit_marks_a_reader() {
    let blind = |name: &str, members: &[&[&str]]| {
        let mut g = group(name, "Stable", "", members);
        for m in &mut g.members {
            m.topics = None; // tansu 0.6.0 does not report member topics.
        }
        g
    };
    let cluster = memory(&[("orders", 2, 1, &[])])
        .with_watermarks("orders", 1, 0, 10)
        .with_group_description(blind("routed", &[&[]]))
        .with_group_description(blind("committed", &[&[]]))
        .with_group_description(blind("idle", &[&[]]))
        .with_group_description(blind("gone", &[]))
        .with_committed("committed", "orders", 1, 4)
        .with_committed("gone", "orders", 1, 4);
    let routed = BTreeMap::from([("orders".to_string(), BTreeSet::from(["routed".to_string()]))]);
    let readers = block_on(active_readers(&cluster, &routed, "orders")).unwrap();
    assert_eq!(readers, ["committed", "routed"]);
    let lags = block_on(cluster.committed("committed", "orders")).unwrap();
    assert_eq!(lags[1].lag, Some(6));
    assert_eq!(lags[0].committed, None);
}

#[test]
fn a_failing_read_is_a_typed_error() {
    let cluster = memory(&[("orders", 1, 1, &[])]).failing(Read::Groups, "", "coordinator away");
    let err = block_on(active_readers(&cluster, &unrouted(), "orders")).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Admin {
                operation: "list groups",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("coordinator away"), "{err}");
}
