//! Live checks against a fake cluster.

use super::*;
use crate::admin::{Permissions, ResourceKind};

#[derive(Default)]
struct Fake {
    topics: Vec<TopicInfo>,
    settings: BTreeMap<String, BTreeMap<String, String>>,
    retention: Option<Duration>,
    /// Broker settings besides `offsets.retention.minutes`.
    broker: BTreeMap<String, String>,
    groups: BTreeMap<String, GroupDescription>,
    newest: BTreeMap<String, Vec<(i32, i64)>>,
    unprocessed: BTreeMap<String, Vec<(i32, i64)>>,
    /// `group/topic` whose first unprocessed messages cannot be read, with the reason.
    unreadable: BTreeMap<String, String>,
    /// Group, topic, partition and offset where the group stopped but no message is left.
    gaps: Vec<(&'static str, &'static str, i32, i64)>,
    /// What the principal may do; resources not named allow Read, Write and Describe.
    permissions: Vec<(ResourceKind, &'static str, Permissions)>,
}

impl Fake {
    fn topic(mut self, name: &str, partitions: i32, rf: i32, settings: &[(&str, &str)]) -> Self {
        let replicas: Vec<i32> = (1..=rf).collect();
        self.topics.push(TopicInfo {
            name: name.into(),
            partitions: (0..partitions)
                .map(|id| PartitionInfo {
                    id,
                    leader: 1,
                    replicas: replicas.clone(),
                    isr: replicas.clone(),
                })
                .collect(),
        });
        self.settings.insert(
            name.into(),
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self
    }

    /// The ready app's topics, as migrated.
    fn ready() -> Self {
        let s = [("min.insync.replicas", "2"), ("compression.type", "zstd")];
        Fake {
            retention: Some(7 * DAY),
            broker: BTreeMap::from([("auto.create.topics.enable".into(), "false".into())]),
            ..Fake::default()
        }
        .topic("orders", 6, 3, &s)
        .topic("orders-dlq", 3, 3, &s)
    }

    fn group(mut self, name: &str, assignor: &str, members: usize) -> Self {
        self.groups.insert(
            name.into(),
            GroupDescription {
                name: name.into(),
                state: if members == 0 { "Empty" } else { "Stable" }.into(),
                protocol_type: "consumer".into(),
                group_protocol: "classic".into(),
                assignor: assignor.into(),
                members: (0..members)
                    .map(|i| GroupMember {
                        id: format!("m{i}"),
                        client_id: "shop".into(),
                        host: "h".into(),
                        topics: None,
                    })
                    .collect(),
            },
        );
        self
    }
}

/// Where messages sit in the shared in-memory cluster built from a [`Fake`]: a partition with
/// messages ends at [`HIGH`], its newest message is at `HIGH - 1`, a stopped group committed
/// [`STOPPED`].
const HIGH: i64 = 1000;
const STOPPED: i64 = 500;

impl Fake {
    /// The facts as a cluster in memory, the one fake behind [`Cluster`](crate::admin::Cluster).
    fn memory(&self) -> Memory {
        let mut m = Memory::default();
        for t in &self.topics {
            m = m.with_topic(
                &t.name,
                t.partitions.len() as i32,
                t.replication_factor(),
                &[],
            );
            for (k, v) in self.settings.get(&t.name).into_iter().flatten() {
                m = m.alter_setting(&t.name, k, v);
            }
        }
        m = match self.retention {
            Some(r) => {
                m.with_broker_setting("offsets.retention.minutes", &(r.as_secs() / 60).to_string())
            }
            None => m.failing(Read::BrokerSettings, "", "describe broker config timed out"),
        };
        for (k, v) in &self.broker {
            m = m.with_broker_setting(k, v);
        }
        for g in self.groups.values() {
            m = m.with_group_description(g.clone());
        }
        for (kind, name, permissions) in &self.permissions {
            m = m.with_permissions(*kind, name, permissions.clone());
        }
        // Partitions with messages, and the newest message's timestamp when one is given.
        let mut filled: BTreeMap<(String, i32), Option<i64>> = BTreeMap::new();
        for (topic, stamps) in &self.newest {
            for (p, ts) in stamps {
                filled.insert((topic.clone(), *p), Some(*ts));
            }
        }
        let split = |key: &str| {
            let (g, t) = key.split_once('/').expect("group/topic");
            (g.to_string(), t.to_string())
        };
        for (key, stamps) in &self.unprocessed {
            let (group, topic) = split(key);
            for (p, ts) in stamps {
                filled.entry((topic.clone(), *p)).or_default();
                m = m.with_committed(&group, &topic, *p, STOPPED).with_message(
                    &topic,
                    *p,
                    STOPPED,
                    Some(*ts),
                );
            }
        }
        for (key, reason) in &self.unreadable {
            let (group, topic) = split(key);
            filled.entry((topic.clone(), 0)).or_default();
            m = m.with_committed(&group, &topic, 0, STOPPED).failing(
                Read::Messages,
                &topic,
                reason,
            );
        }
        for (group, topic, p, offset) in &self.gaps {
            filled.entry((topic.to_string(), *p)).or_default();
            m = m.with_committed(group, topic, *p, *offset);
        }
        for ((topic, p), newest) in filled {
            m = m.with_watermarks(&topic, p, 0, HIGH).with_message(
                &topic,
                p,
                HIGH - 1,
                Some(newest.unwrap_or(now_ms())),
            );
        }
        m
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn now_ms() -> i64 {
    1_750_000_000_000
}

fn live(app: &App, cluster: &Fake) -> Report {
    let (opts, _dir) = options(app);
    let mut report = Report {
        env: app.config().env().to_string(),
        live: true,
        findings: vec![],
        skipped: vec![],
    };
    let memory = cluster.memory();
    let cluster = crate::doctor::live::Live::new(&memory, &memory).unwrap();
    crate::doctor::live::check(app, &opts, &cluster, now(), &mut report);
    report.finish()
}

#[test]
fn live_a_migrated_cluster_passes() {
    let report = live(
        &ready_app(),
        &Fake::ready().group("shop", "cooperative-sticky", 2),
    );
    assert!(report.findings.is_empty(), "{}", report.to_text());
}

#[test]
fn fd006_routed_topics_missing_on_the_cluster() {
    let cluster = Fake {
        retention: Some(7 * DAY),
        ..Fake::default()
    }
    .topic(
        "orders",
        6,
        3,
        &[("min.insync.replicas", "2"), ("compression.type", "zstd")],
    );
    let report = live(&ready_app(), &cluster);
    let f = one(&report, "FD006", "topic orders-dlq");
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(
        f.fix,
        "run `shop topics migrate` before starting the consumers"
    );
    none(&live(&ready_app(), &Fake::ready()), "FD006");
}

#[test]
fn fd004_fd008_fd012_live_topic_facts() {
    let cluster = Fake {
        retention: Some(7 * DAY),
        ..Fake::default()
    }
    .topic("orders", 1, 1, &[("compression.type", "gzip")])
    .topic(
        "orders-dlq",
        3,
        3,
        &[("min.insync.replicas", "2"), ("compression.type", "zstd")],
    );
    let report = live(&ready_app(), &cluster);
    let p = one(&report, "FD004", "topic orders");
    assert!(
        p.found.contains("declared 6; not migrated yet"),
        "{}",
        p.found
    );
    let c = one(&report, "FD008", "topic orders");
    assert!(
        c.found
            .contains("gzip (on the cluster), producer compresses with zstd"),
        "{}",
        c.found
    );
    let d: Vec<_> = found(&report, "FD012");
    assert!(
        d.iter()
            .any(|f| f.found == "replication factor 1 (on the cluster)"),
        "{d:?}"
    );
    assert!(
        d.iter()
            .any(|f| f.unknown && f.found.contains("did not report min.insync.replicas")),
        "{d:?}"
    );
}

#[test]
fn fd009_a_running_group_with_another_assignor() {
    let app = ready_app();
    let report = live(&app, &Fake::ready().group("shop", "range", 3));
    let f = one(&report, "FD009", "consumer group shop");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.found.contains("uses range (3 member(s))"), "{}", f.found);
    assert!(f.fix.contains("Stop ALL members of shop"), "{}", f.fix);
    // The broker does not say (tansu): unknown, not a pass.
    let report = live(&app, &Fake::ready().group("shop", "", 1));
    assert!(one(&report, "FD009", "consumer group shop").unknown);
    // A stopped group can switch freely.
    none(
        &live(&app, &Fake::ready().group("shop", "range", 0)),
        "FD009",
    );
}

#[test]
fn fd010_messages_from_the_future() {
    let mut cluster = Fake::ready();
    cluster.newest.insert(
        "orders".into(),
        vec![(0, now_ms() - 1000), (4, now_ms() + 60_000)],
    );
    let report = live(&ready_app(), &cluster);
    let f = one(&report, "FD010", "topic orders");
    assert_eq!(f.severity, Severity::Warning);
    assert!(
        f.found
            .contains("partition 4) is 60000 ms in this host's future"),
        "{}",
        f.found
    );
    cluster
        .newest
        .insert("orders".into(), vec![(4, now_ms() + 2_000)]);
    none(&live(&ready_app(), &cluster), "FD010");
}

#[test]
fn fd011_offsets_retention() {
    let app = ready_app();
    let mut cluster = Fake::ready();
    cluster.retention = Some(DAY);
    let report = live(&app, &cluster);
    let f = one(&report, "FD011", "broker offsets.retention.minutes");
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.found
            .contains("1440 (24h), shorter than max_expected_downtime (3d)"),
        "{}",
        f.found
    );
    assert!(f.fix.contains("at least 4320"), "{}", f.fix);

    cluster.retention = None;
    let f = one(
        &live(&app, &cluster),
        "FD011",
        "broker offsets.retention.minutes",
    )
    .clone();
    assert!(f.unknown && f.found.contains("timed out"), "{f:?}");

    // A stopped group whose first unprocessed message is 8 days old, retention 7 days.
    let mut cluster = Fake::ready().group("shop", "", 0);
    cluster
        .unprocessed
        .insert("shop/orders".into(), vec![(2, now_ms() - 8 * 86_400_000)]);
    let f = one(&live(&app, &cluster), "FD011", "consumer group shop").clone();
    assert_eq!(f.severity, Severity::Error);
    assert!(f.found.contains("(orders/2) is 8d old"), "{}", f.found);
    // Four days: within retention but beyond the declared downtime.
    cluster
        .unprocessed
        .insert("shop/orders".into(), vec![(2, now_ms() - 4 * 86_400_000)]);
    assert_eq!(
        one(&live(&app, &cluster), "FD011", "consumer group shop").severity,
        Severity::Warning
    );
    none(&live(&app, &Fake::ready()), "FD011");
}

mod brokers;
mod patterns;
mod permissions;
mod protocol;
mod unknown;
