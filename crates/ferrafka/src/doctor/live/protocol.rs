//! FD015 (live): what the brokers say about KIP-848 (`group.protocol=consumer`) groups, whose
//! assignor and session timeout are broker settings, not client properties.

use std::collections::BTreeMap;
use std::time::Duration;

use super::Live;
use crate::admin::Cluster;
use crate::doctor::{AppView, Report, Severity, WHY_KIP848_BROKER, WHY_STATIC_SESSION, sg_subject};
use crate::kafka::uses_consumer_protocol;

/// For each subscription group on KIP-848: the brokers must enable the protocol
/// (`group.coordinator.rebalance.protocols`), and a static member's session on the broker
/// (`group.consumer.session.timeout.ms`) must outlast a restart.
pub(crate) fn group_protocol(
    app: &dyn AppView,
    cluster: &Live<'_, impl Cluster>,
    report: &mut Report,
) {
    let groups: BTreeMap<String, bool> = app
        .subscription_groups()
        .iter()
        .filter(|sg| uses_consumer_protocol(&sg.kafka))
        .map(|sg| (sg_subject(sg), sg.kafka.contains_key("group.instance.id")))
        .collect();
    if groups.is_empty() {
        return;
    }
    let protocols = cluster.broker_setting("group.coordinator.rebalance.protocols");
    let enabled = match &protocols {
        Ok(list) => list.split(',').any(|p| p.trim() == "consumer"),
        Err(_) => true,
    };
    let shutdown = app.config().shutdown_timeout;
    for (subject, is_static) in groups {
        match &protocols {
            Ok(list) if !enabled => report.push(
                "FD015",
                Severity::Error,
                subject.clone(),
                format!(
                    "group.protocol=consumer, but the brokers' group.coordinator.rebalance.protocols={list}"
                ),
                WHY_KIP848_BROKER,
                "add `consumer` to group.coordinator.rebalance.protocols on the brokers \
                 (Apache Kafka 4.0 and later enable it by default), or use \
                 group.protocol=classic",
            ),
            Ok(_) => {}
            Err(reason) => report.push_unknown(
                "FD015",
                subject.clone(),
                format!("unknown: whether the brokers speak KIP-848: {reason}"),
                WHY_KIP848_BROKER,
                "check that the brokers are Apache Kafka 4.0+ (or 3.7+ with the new group \
                 coordinator enabled) before using group.protocol=consumer",
            ),
        }
        // With the protocols unknown, so is whether the session matters: one unknown is enough.
        if is_static && enabled && protocols.is_ok() {
            static_session(cluster, &subject, shutdown, report);
        }
    }
}

/// A static KIP-848 member keeps its partitions while it is gone less than the broker's
/// `group.consumer.session.timeout.ms`.
fn static_session(
    cluster: &Live<'_, impl Cluster>,
    subject: &str,
    shutdown: Duration,
    report: &mut Report,
) {
    const NAME: &str = "group.consumer.session.timeout.ms";
    match cluster.broker_setting(NAME).map(|v| v.trim().parse::<u64>()) {
        Ok(Ok(ms)) if Duration::from_millis(ms) <= shutdown => report.push(
            "FD015",
            Severity::Warning,
            subject,
            format!(
                "static membership under group.protocol=consumer with the brokers' {NAME}={ms}, \
                 not longer than shutdown_timeout ({shutdown:?})"
            ),
            WHY_STATIC_SESSION,
            format!(
                "raise {NAME} on the brokers (or the group's consumer.session.timeout.ms) above \
                 shutdown_timeout plus the boot time, or lower shutdown_timeout"
            ),
        ),
        Ok(Ok(_)) => {}
        Ok(Err(_)) | Err(_) => report.push_unknown(
            "FD015",
            subject,
            format!("unknown: the brokers did not report {NAME}"),
            WHY_STATIC_SESSION,
            format!("check {NAME} on the brokers: it must exceed shutdown_timeout ({shutdown:?}) plus the boot time"),
        ),
    }
}
