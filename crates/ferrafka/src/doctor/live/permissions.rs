//! FD022 (live): the app's principal lacks an ACL its routes need. The broker reports what the
//! principal itself may do with each topic and group (KIP-430), so the check needs no right to
//! read the ACLs, and a missing grant shows before the deploy instead of as a consumer that
//! never joins or a dead-letter queue that cannot be written.

use std::collections::{BTreeMap, BTreeSet};

use super::Live;
use crate::admin::{Cluster, Permissions, ResourceKind};
use crate::doctor::{AppView, Report, Severity, WHY_PERMISSIONS};

/// What the app needs: per resource, the operations and why.
type Needs = BTreeMap<(ResourceKind, String), BTreeMap<&'static str, String>>;

/// Every (resource, operation) the app's routes need, with the route that needs it: Read on
/// each consumer group and each active topic, Write on each dead-letter topic.
pub(crate) fn needs(app: &dyn AppView) -> Needs {
    let mut needs = Needs::new();
    let mut add = |kind, name: &str, op, why: String| {
        needs
            .entry((kind, name.to_string()))
            .or_default()
            .entry(op)
            .or_insert(why);
    };
    for sg in app.subscription_groups() {
        let group = &sg.consumer_group;
        add(
            ResourceKind::Group,
            group,
            "READ",
            "its consumers join it".into(),
        );
        for t in sg.topics.iter().filter(|t| t.active) {
            // A pattern's topics are not known here: its regular expression is no resource.
            if !t.is_pattern() {
                add(
                    ResourceKind::Topic,
                    &t.name,
                    "READ",
                    format!("group {group} consumes it"),
                );
            }
            if let Some(dlq) = &t.dead_letter_queue {
                add(
                    ResourceKind::Topic,
                    &dlq.topic,
                    "WRITE",
                    format!("the dead-letter queue of {}", t.name),
                );
            }
        }
    }
    needs
}

/// FD022: reads the principal's permissions on every resource the app needs and reports each
/// missing operation; an `info` finding when the cluster reports none (no authorizer) or the
/// question could not be asked.
pub(crate) fn permissions(
    app: &dyn AppView,
    cluster: &Live<'_, impl Cluster>,
    program: &str,
    report: &mut Report,
) {
    let needs = needs(app);
    let mut answers = BTreeMap::new();
    for kind in [ResourceKind::Topic, ResourceKind::Group] {
        let names: Vec<String> = needs
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.clone())
            .collect();
        match cluster.permissions(kind, &names) {
            Ok(found) => answers.extend(found.into_iter().map(|(n, p)| ((kind, n), p))),
            Err(reason) => {
                return report.push_unknown(
                    "FD022",
                    "permissions",
                    format!("unknown: cannot ask the cluster: {reason}"),
                    WHY_PERMISSIONS,
                    "check the ACLs of the app's principal by hand (kafka-acls --list)",
                );
            }
        }
    }
    let mut not_reported = BTreeSet::new();
    for ((kind, name), ops) in &needs {
        let subject = format!("{kind} {name}");
        let allowed = match answers.get(&(*kind, name.clone())) {
            Some(Permissions::Allowed(allowed)) => allowed.clone(),
            Some(Permissions::DescribeDenied) => BTreeSet::new(),
            Some(Permissions::NotReported) => {
                not_reported.insert(subject);
                continue;
            }
            Some(Permissions::Unknown(reason)) => {
                report.push_unknown(
                    "FD022",
                    subject,
                    format!("unknown: {reason}"),
                    WHY_PERMISSIONS,
                    "check the ACLs of the app's principal on it by hand (kafka-acls --list)",
                );
                continue;
            }
            None => BTreeSet::new(),
        };
        let missing: Vec<(&str, &String)> = ops
            .iter()
            .filter(|(op, _)| !allowed.contains(**op))
            .map(|(op, why)| (*op, why))
            .collect();
        if missing.is_empty() {
            continue;
        }
        report.push(
            "FD022",
            Severity::Error,
            subject,
            found(&missing, &allowed),
            WHY_PERMISSIONS,
            fix(program, *kind, name, &missing),
        );
    }
    if !not_reported.is_empty() {
        report.push_unknown(
            "FD022",
            "permissions",
            "unknown: the cluster reports no permissions (it runs no authorizer, so everything \
             is allowed, or a broker predates Kafka 2.3)",
            WHY_PERMISSIONS,
            "nothing to do without ACLs; with an authorizer, upgrade the brokers to read them",
        );
    }
}

/// `the app's principal may not READ (group g consumes it); it may DESCRIBE`.
fn found(missing: &[(&str, &String)], allowed: &BTreeSet<String>) -> String {
    let missing: Vec<String> = missing
        .iter()
        .map(|(op, why)| format!("{op} ({why})"))
        .collect();
    let allowed = if allowed.is_empty() {
        "nothing, not even DESCRIBE".to_string()
    } else {
        allowed.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    format!(
        "the app's principal may not {}; it may: {allowed}",
        missing.join(", ")
    )
}

/// The `kafka-acls` command that grants the missing operations.
fn fix(program: &str, kind: ResourceKind, name: &str, missing: &[(&str, &String)]) -> String {
    let ops: String = missing
        .iter()
        .map(|(op, _)| format!(" --operation {}", title(op)))
        .collect();
    format!(
        "grant it: kafka-acls --bootstrap-server <brokers> --add --allow-principal \
         User:<the app's principal>{ops} --{kind} {name}; then run `{program} doctor --live` \
         again"
    )
}

/// `READ` → `Read`, as `kafka-acls` spells operations.
fn title(op: &str) -> String {
    let lower = op.to_ascii_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
