//! Tests of the topics planner against a cluster in memory.

use super::*;
use std::sync::Mutex;

/// A cluster in memory: topics with their state, and which groups actively read what.
#[derive(Default)]
struct Memory {
    topics: Mutex<BTreeMap<String, TopicState>>,
    readers: BTreeMap<String, Vec<String>>,
    log: Mutex<Vec<String>>,
}

/// Name, partitions, replication factor, settings.
type Row<'a> = (&'a str, i32, i32, &'a [(&'a str, &'a str)]);

impl Memory {
    fn with(topics: &[Row<'_>]) -> Self {
        let m = Memory::default();
        for (name, partitions, rf, settings) in topics {
            m.topics.lock().unwrap().insert(
                name.to_string(),
                TopicState {
                    partitions: *partitions,
                    replication_factor: *rf,
                    settings: Ok(settings
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()),
                },
            );
        }
        m
    }
}

impl ClusterState for Memory {
    async fn topics(&self, names: &[String]) -> Result<BTreeMap<String, TopicState>> {
        Ok(self
            .topics
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| names.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
    async fn active_readers(&self, topic: &str) -> Result<Vec<String>> {
        Ok(self.readers.get(topic).cloned().unwrap_or_default())
    }
}

impl ClusterOps for Memory {
    async fn create(&self, spec: &TopicSpec) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("create {}", spec.name));
        self.topics.lock().unwrap().insert(
            spec.name.clone(),
            TopicState {
                partitions: spec.partitions,
                replication_factor: spec.replication_factor,
                settings: Ok(spec.settings.clone()),
            },
        );
        Ok(())
    }
    async fn grow(&self, topic: &str, total: i32) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("grow {topic} {total}"));
        self.topics
            .lock()
            .unwrap()
            .get_mut(topic)
            .unwrap()
            .partitions = total;
        Ok(())
    }
    async fn alter(&self, topic: &str, ops: &[ConfigOp]) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push(format!("alter {topic} {ops:?}"));
        let mut topics = self.topics.lock().unwrap();
        let settings = topics.get_mut(topic).unwrap().settings.as_mut().unwrap();
        for op in ops {
            if let ConfigOp::Set(k, v) = op {
                settings.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
    async fn delete(&self, topic: &str) -> Result<()> {
        self.log.lock().unwrap().push(format!("delete {topic}"));
        self.topics.lock().unwrap().remove(topic);
        Ok(())
    }
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
    let cluster = Memory::with(&[
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
    let topics = cluster.topics.lock().unwrap();
    assert!(
        topics.contains_key("undeclared-topic"),
        "undeclared topic untouched"
    );
    assert_eq!(
        topics["orders"].settings.as_ref().unwrap()["undeclared.setting"],
        "x",
        "undeclared setting untouched"
    );
}

#[test]
fn partitions_never_shrink_and_replication_factor_is_only_reported() {
    let cluster = Memory::with(&[("orders", 8, 1, &[])]);
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
    let cluster = Memory::with(&[("orders", 1, 1, &[("retention.ms", "1")])]);
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
    let cluster = Memory::with(&[("orders", 1, 1, &[])]);
    cluster
        .topics
        .lock()
        .unwrap()
        .get_mut("orders")
        .unwrap()
        .settings = Err("DescribeConfigs timed out".into());
    let declared = [spec("orders", 1, 1, &[("retention.ms", "2")])];
    let plan = block_on(plan_against(&cluster, Action::Align, &declared)).unwrap();
    assert!(plan.steps.is_empty());
    assert!(
        matches!(&plan.notices[0], Notice::SettingsUnknown { reason, .. } if reason.contains("timed out"))
    );
}

#[test]
fn removing_a_topic_with_active_readers_is_refused() {
    let mut cluster = Memory::with(&[("orders", 1, 1, &[]), ("idle", 1, 1, &[])]);
    cluster
        .readers
        .insert("orders".into(), vec!["billing".into()]);
    let declared = [spec("orders", 1, 1, &[]), spec("idle", 1, 1, &[])];
    for action in [Action::Delete, Action::Reset] {
        let plan = block_on(plan_against(&cluster, action, &declared)).unwrap();
        let err = block_on(refuse_active_readers(&cluster, &plan)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("orders (read by billing)"), "{text}");
        assert!(text.contains("--force"), "{text}");
        assert!(!text.contains("idle"), "{text}");
    }
    let only_idle = [spec("idle", 1, 1, &[])];
    let plan = block_on(plan_against(&cluster, Action::Delete, &only_idle)).unwrap();
    block_on(refuse_active_readers(&cluster, &plan)).unwrap();
    block_on(apply(&cluster, &plan, |_, _| {})).unwrap();
    assert_eq!(*cluster.log.lock().unwrap(), ["delete idle"]);
}
