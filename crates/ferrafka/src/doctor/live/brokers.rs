//! Live checks of cluster-wide broker facts that decide durability whatever the app
//! configures: topic auto-creation on the brokers and the replication of the topic that holds
//! every group's committed offsets.

use std::collections::BTreeMap;

use super::Live;
use crate::admin::{Cluster, TopicInfo};
use crate::doctor::{Report, Severity, WHY_BROKER_AUTO_CREATE, WHY_OFFSETS_TOPIC_RF};

/// FD003 (live): the brokers create topics on first use. FD012 (live): `__consumer_offsets`
/// with fewer than three replicas.
pub(crate) fn broker_facts(
    cluster: &Live<'_, impl Cluster>,
    existing: &BTreeMap<String, TopicInfo>,
    report: &mut Report,
) {
    const AUTO_CREATE: &str = "auto.create.topics.enable";
    match cluster.broker_setting(AUTO_CREATE) {
        Ok(v) if v.trim() == "true" => report.push(
            "FD003",
            Severity::Warning,
            format!("broker {AUTO_CREATE}"),
            "true (on the cluster)",
            WHY_BROKER_AUTO_CREATE,
            format!(
                "set {AUTO_CREATE}=false on the brokers and create topics with `topics migrate`"
            ),
        ),
        Ok(_) => {}
        Err(reason) => report.push_unknown(
            "FD003",
            format!("broker {AUTO_CREATE}"),
            format!("unknown: {reason}"),
            WHY_BROKER_AUTO_CREATE,
            format!("check {AUTO_CREATE} in the brokers' configuration: it should be false"),
        ),
    }
    // Kafka creates it when the first group commits; absent, there is nothing to judge yet.
    if let Some(offsets) = existing.get("__consumer_offsets")
        && offsets.replication_factor() < 3
    {
        report.push(
            "FD012",
            Severity::Error,
            "topic __consumer_offsets",
            format!(
                "replication factor {} (on the cluster)",
                offsets.replication_factor()
            ),
            WHY_OFFSETS_TOPIC_RF,
            "set offsets.topic.replication.factor=3 on the brokers before any group commits; an \
             existing __consumer_offsets needs a partition reassignment to more replicas",
        );
    }
}
