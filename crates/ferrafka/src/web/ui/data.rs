//! What the pages read from the cluster, turned into their plain data. Blocking (librdkafka's
//! admin calls): the handlers run it on tokio's blocking pool. Whatever the cluster cannot
//! answer (the embedded broker lists no groups and describes few configs) becomes a problem
//! line on the page, never a failed page.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::admin::{Admin, ClusterInfo};
use crate::reader::{StartAt, TopicReader};

use super::snapshot::{
    BrokerRow, ClusterView, FleetSnapshot, GroupPartition, GroupRow, GroupView, GroupsView,
    HealthView, LaggingPartition, MemberRow, MessageRow, PartitionBrowse, PartitionRow,
    PayloadFormat, TopicRow, TopicView,
};

/// Messages shown per explorer page.
pub const PAGE_MESSAGES: u64 = 20;

/// Consumer group → topics it consumes, as the routes and the reports say.
pub type KnownTopics = BTreeMap<String, BTreeSet<String>>;

/// The known topics of every group: the app's routes plus every partition a report shows.
pub fn known_topics(routes: &KnownTopics, fleet: &FleetSnapshot) -> KnownTopics {
    let mut known = routes.clone();
    for p in fleet.processes.iter().flat_map(|p| &p.report.partitions) {
        known
            .entry(p.consumer_group.clone())
            .or_default()
            .insert(p.topic.clone());
    }
    known
}

/// The cluster page's data (also the topics list's and the health page's replication).
pub fn cluster(admin: &Admin) -> (ClusterView, Option<ClusterInfo>) {
    match admin.cluster_info() {
        Ok(info) => (cluster_view(&info), Some(info)),
        Err(e) => (
            ClusterView {
                problems: vec![format!("cannot read the cluster's metadata: {e}")],
                ..ClusterView::default()
            },
            None,
        ),
    }
}

/// Metadata as the cluster page shows it.
pub fn cluster_view(info: &ClusterInfo) -> ClusterView {
    let mut under_replicated = Vec::new();
    let topics = info
        .topics
        .iter()
        .map(|t| {
            let under: Vec<i32> = t
                .partitions
                .iter()
                .filter(|p| p.isr.len() < p.replicas.len())
                .map(|p| p.id)
                .collect();
            under_replicated.extend(under.iter().map(|p| (t.name.clone(), *p)));
            TopicRow {
                name: t.name.clone(),
                partitions: t.partitions.len(),
                replication_factor: t.replication_factor(),
                under_replicated: under.len(),
            }
        })
        .collect();
    ClusterView {
        brokers: info
            .brokers
            .iter()
            .map(|b| BrokerRow {
                id: b.id,
                address: format!("{}:{}", b.host, b.port),
            })
            .collect(),
        topics,
        under_replicated,
        problems: Vec::new(),
    }
}

/// Partitions of `topics` per the metadata.
fn partitions_of<'a>(
    info: &ClusterInfo,
    topics: impl IntoIterator<Item = &'a String>,
) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    for name in topics {
        if let Some(t) = info.topics.iter().find(|t| &t.name == name) {
            out.extend(t.partitions.iter().map(|p| (name.clone(), p.id)));
        }
    }
    out
}

/// The groups list: the cluster's groups plus the ones routes and reports know, each with its
/// lag over its known topics.
pub fn groups(admin: &Admin, known: &KnownTopics) -> GroupsView {
    let mut view = GroupsView::default();
    let mut rows: BTreeMap<String, GroupRow> = BTreeMap::new();
    match admin.list_groups() {
        Ok(listed) => {
            for g in listed
                .into_iter()
                .filter(|g| g.protocol_type == "consumer" || g.protocol_type.is_empty())
            {
                rows.insert(
                    g.name.clone(),
                    GroupRow {
                        name: g.name,
                        state: g.state,
                        members: Some(g.members),
                        lag: None,
                    },
                );
            }
        }
        Err(e) => view
            .problems
            .push(format!("the cluster did not list its consumer groups: {e}")),
    }
    for name in known.keys() {
        rows.entry(name.clone()).or_insert_with(|| GroupRow {
            name: name.clone(),
            state: "-".into(),
            ..GroupRow::default()
        });
    }
    let info = match admin.cluster_info() {
        Ok(info) => Some(info),
        Err(e) => {
            view.problems
                .push(format!("cannot read the cluster's metadata: {e}"));
            None
        }
    };
    if let Some(info) = info {
        let mut wanted: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
        for (group, topics) in known {
            wanted.insert(group, partitions_of(&info, topics));
        }
        let all: BTreeSet<(String, i32)> = wanted.values().flatten().cloned().collect();
        let ends = end_offsets(
            admin,
            &all.into_iter().collect::<Vec<_>>(),
            &mut view.problems,
        );
        for (group, partitions) in wanted {
            match admin.committed_offsets(group, &partitions) {
                Ok(committed) => {
                    let lags: Vec<i64> = committed
                        .iter()
                        .filter_map(|(tp, c)| Some((ends.get(tp)? - (*c)?).max(0)))
                        .collect();
                    if let Some(row) = rows.get_mut(group) {
                        row.lag = (!lags.is_empty()).then(|| lags.iter().sum());
                    }
                }
                Err(e) => view.problems.push(format!("group {group}: {e}")),
            }
        }
    }
    view.groups = rows.into_values().collect();
    view
}

fn end_offsets(
    admin: &Admin,
    partitions: &[(String, i32)],
    problems: &mut Vec<String>,
) -> BTreeMap<(String, i32), i64> {
    if partitions.is_empty() {
        return BTreeMap::new();
    }
    match admin.end_offsets(partitions) {
        Ok(ends) => ends.into_iter().collect(),
        Err(e) => {
            problems.push(format!("cannot read high watermarks: {e}"));
            BTreeMap::new()
        }
    }
}

/// One group: members, and committed offset, high watermark and lag per partition of its
/// topics (the members', routes' and reports' topics; every topic's when none is known, so a
/// group nobody runs still shows).
pub fn group(admin: &Admin, name: &str, known: &KnownTopics, fleet: &FleetSnapshot) -> GroupView {
    let mut view = GroupView {
        name: name.to_string(),
        ..GroupView::default()
    };
    let mut topics: BTreeSet<String> = known.get(name).cloned().unwrap_or_default();
    match admin.describe_group(name) {
        Ok(Some(d)) => {
            view.state = Some(d.state);
            for m in d.members {
                topics.extend(m.topics.iter().flatten().cloned());
                view.members.push(MemberRow {
                    client_id: m.client_id,
                    host: m.host,
                    topics: m.topics.unwrap_or_default(),
                });
            }
        }
        Ok(None) => view
            .problems
            .push("the cluster does not know this group".into()),
        Err(e) => view
            .problems
            .push(format!("the cluster did not describe the group: {e}")),
    }
    let info = match admin.cluster_info() {
        Ok(info) => info,
        Err(e) => {
            view.problems
                .push(format!("cannot read the cluster's metadata: {e}"));
            return view;
        }
    };
    let scan_all = topics.is_empty();
    if scan_all {
        topics.extend(
            info.topics
                .iter()
                .filter(|t| !t.name.starts_with("__"))
                .map(|t| t.name.clone()),
        );
    }
    let partitions = partitions_of(&info, &topics);
    let committed = match admin.committed_offsets(name, &partitions) {
        Ok(c) => c,
        Err(e) => {
            view.problems
                .push(format!("cannot read the group's committed offsets: {e}"));
            Vec::new()
        }
    };
    // Scanning every topic, only the partitions the group committed in are its own.
    let shown: Vec<((String, i32), Option<i64>)> = committed
        .into_iter()
        .filter(|(_, c)| !scan_all || c.is_some())
        .collect();
    let keys: Vec<(String, i32)> = shown.iter().map(|(tp, _)| tp.clone()).collect();
    let ends = end_offsets(admin, &keys, &mut view.problems);
    let owners: BTreeMap<(&str, i32), &str> = fleet
        .live()
        .flat_map(|p| {
            p.report
                .partitions
                .iter()
                .filter(|pr| pr.consumer_group == name)
                .map(move |pr| ((pr.topic.as_str(), pr.partition), p.report.id.as_str()))
        })
        .collect();
    for ((topic, partition), committed) in shown {
        let high = ends.get(&(topic.clone(), partition)).copied();
        view.partitions.push(GroupPartition {
            owner: owners
                .get(&(topic.as_str(), partition))
                .map(|s| s.to_string()),
            lag: committed.zip(high).map(|(c, h)| (h - c).max(0)),
            topic,
            partition,
            committed,
            high_watermark: high,
        });
    }
    view.partitions
        .sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    view.trend = fleet
        .series
        .iter()
        .filter_map(|p| Some((p.at_ms, *p.group_lag.get(name)?)))
        .collect();
    view
}

/// One topic: partitions, watermarks and configuration.
pub fn topic(admin: &Admin, name: &str) -> TopicView {
    let mut view = TopicView {
        name: name.to_string(),
        ..TopicView::default()
    };
    match admin.topic_info(name) {
        Ok(Some(info)) => {
            for p in info.partitions {
                let marks = admin.watermarks(name, p.id);
                if let Err(e) = &marks {
                    view.problems.push(format!("partition {}: {e}", p.id));
                }
                let marks = marks.ok();
                view.partitions.push(PartitionRow {
                    partition: p.id,
                    leader: p.leader,
                    replicas: p.replicas,
                    isr: p.isr,
                    low: marks.map(|m| m.0),
                    high: marks.map(|m| m.1),
                });
            }
        }
        Ok(None) => view
            .problems
            .push("the cluster does not know this topic".into()),
        Err(e) => view
            .problems
            .push(format!("cannot read the topic's metadata: {e}")),
    }
    let configs = tokio::runtime::Handle::try_current()
        .map_err(|e| e.to_string())
        .and_then(|rt| {
            rt.block_on(admin.describe_topic_config(name))
                .map_err(|e| e.to_string())
        });
    match configs {
        Ok(configs) => {
            view.configs = configs
                .into_iter()
                .map(|(k, v)| {
                    let shown = match (v.sensitive, v.value) {
                        (true, _) => crate::secrets::REDACTED.to_string(),
                        (false, Some(value)) => crate::secrets::redact(&k, &value),
                        (false, None) => "-".into(),
                    };
                    (k, shown)
                })
                .collect();
        }
        Err(e) => view.problems.push(format!(
            "the cluster did not describe the topic's configuration: {e}"
        )),
    }
    view
}

/// Where a browse starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum From {
    /// An offset.
    Offset(i64),
    /// A time.
    Time(SystemTime),
    /// The last page.
    Last,
}

/// One page of a partition's messages.
pub fn browse(
    admin: &Admin,
    kafka: &BTreeMap<String, String>,
    topic: &str,
    partition: i32,
    from: From,
    format: PayloadFormat,
    masked: bool,
) -> PartitionBrowse {
    let mut view = PartitionBrowse {
        topic: topic.to_string(),
        partition,
        format,
        masked,
        from: match from {
            From::Offset(o) => format!("offset {o}"),
            From::Time(t) => format!(
                "time {}",
                super::pages::time(crate::messages::millis_since_epoch(t))
            ),
            From::Last => "the last messages".into(),
        },
        ..PartitionBrowse::default()
    };
    match admin.watermarks(topic, partition) {
        Ok(marks) => view.watermarks = Some(marks),
        Err(e) => {
            view.problems
                .push(format!("cannot read the watermarks: {e}"));
            return view;
        }
    }
    let start = match from {
        From::Offset(o) => StartAt::Offset(o),
        From::Time(t) => StartAt::Time(t),
        From::Last => StartAt::Last(PAGE_MESSAGES),
    };
    let reader = TopicReader::builder(topic)
        .partitions([partition])
        .start(start)
        .max_messages(PAGE_MESSAGES)
        .timeout(Duration::from_secs(10))
        .open_with(kafka);
    let reader = match reader {
        Ok(r) => r,
        Err(e) => {
            view.problems
                .push(format!("cannot read the partition: {e}"));
            return view;
        }
    };
    for m in reader {
        match m {
            Ok(m) => view.messages.push(MessageRow {
                offset: m.offset(),
                timestamp_ms: m.timestamp().millis(),
                key: m.key().map(<[u8]>::to_vec),
                // A masked payload never leaves the reader: only its presence is kept.
                payload: m
                    .payload()
                    .map(|p| if masked { Vec::new() } else { p.to_vec() }),
                headers: m
                    .headers()
                    .map(|h| (h.key.into_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect(),
            }),
            Err(e) => {
                view.problems.push(format!("reading stopped: {e}"));
                break;
            }
        }
    }
    view
}

/// The health page: stale processes and lagging partitions from the fleet, replication from
/// the metadata.
pub fn health(
    fleet: &FleetSnapshot,
    lagging: Vec<LaggingPartition>,
    cluster: &ClusterView,
) -> HealthView {
    HealthView {
        stale: fleet
            .processes
            .iter()
            .filter(|p| p.stale)
            .map(|p| (p.report.id.clone(), fleet.now_ms - p.report.reported_at_ms))
            .collect(),
        lagging,
        under_replicated: cluster.under_replicated.clone(),
        problems: cluster
            .problems
            .iter()
            .cloned()
            .chain(fleet.reports_problem.clone())
            .collect(),
    }
}
