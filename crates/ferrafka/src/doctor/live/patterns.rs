//! FD024 (live): routing patterns against the cluster's topics: a pattern that matches no
//! topic, and topics two patterns of one consumer group both match.

use std::collections::BTreeMap;

use crate::admin::TopicInfo;
use crate::doctor::{AppView, Report, Severity};

const WHY_NO_MATCH: &str = "a pattern that matches no topic consumes nothing until a matching topic is created; a typo in it fails silently";
const WHY_OVERLAP: &str = "a topic two patterns match is consumed by one of them only: the first declared in its subscription group, or, across subscription groups, both consumers split its partitions, each with its own consumer";

/// A pattern route of one consumer group: (subscription group, its patterns in declared order).
type GroupPatterns<'a> = Vec<(&'a str, &'a crate::routing::TopicPattern)>;

/// FD024 (live): every active pattern against the existing topics.
pub(super) fn patterns(
    app: &dyn AppView,
    existing: &BTreeMap<String, TopicInfo>,
    report: &mut Report,
) {
    let mut by_group: BTreeMap<&str, GroupPatterns<'_>> = BTreeMap::new();
    for sg in app.subscription_groups() {
        for pattern in sg.active_patterns() {
            by_group
                .entry(&*sg.consumer_group)
                .or_default()
                .push((&sg.name, pattern));
        }
    }
    for (group, patterns) in &by_group {
        for (_, pattern) in patterns {
            if !existing.keys().any(|t| pattern.matches(t)) {
                report.push(
                    "FD024",
                    Severity::Warning,
                    format!("pattern {} ({})", pattern.name(), pattern.regex()),
                    format!("matches no topic of the cluster (consumer group {group})"),
                    WHY_NO_MATCH,
                    "check the regular expression against `info`'s list of topics, or create \
                     the topics it is meant for",
                );
            }
        }
        for topic in existing.keys() {
            overlap(group, topic, patterns, report);
        }
    }
}

/// Reports `topic` when more than one pattern of `group` matches it.
fn overlap(group: &str, topic: &str, patterns: &GroupPatterns<'_>, report: &mut Report) {
    let matching: Vec<&(&str, &crate::routing::TopicPattern)> =
        patterns.iter().filter(|(_, p)| p.matches(topic)).collect();
    let [(first_sg, first), rest @ ..] = matching.as_slice() else {
        return;
    };
    if rest.is_empty() {
        return;
    }
    let names: Vec<String> = matching
        .iter()
        .map(|(sg, p)| format!("{} ({sg})", p.name()))
        .collect();
    let split = rest.iter().any(|(sg, _)| sg != first_sg);
    report.push(
        "FD024",
        Severity::Warning,
        format!("topic {topic}"),
        if split {
            format!(
                "matched by patterns {} of consumer group {group} in different subscription \
                 groups: their consumers split its partitions",
                names.join(", ")
            )
        } else {
            format!(
                "matched by patterns {} of consumer group {group}: {} consumes it (declared \
                 first)",
                names.join(", "),
                first.name()
            )
        },
        WHY_OVERLAP,
        "narrow the patterns so that each topic matches one, or route the topic by name",
    );
}
