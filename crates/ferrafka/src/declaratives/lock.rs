//! The lock file: the reviewed list of declared topics, one TOML table per topic, sorted by
//! name so that a change shows as a small diff in review. `topics lock` writes it;
//! `topics check` fails with a readable diff when the declarations drift from it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::admin::TopicSpec;

/// The default lock file path, relative to the working directory.
pub const DEFAULT_PATH: &str = "topics.lock";

const HEADER: &str = "# Topics declared by this app, written by `topics lock`.\n\
# Review changes to this file: `topics check` fails when the declarations drift from it.\n\n";

#[derive(Debug, Serialize, Deserialize)]
struct LockFile {
    #[serde(default)]
    topics: BTreeMap<String, LockedTopic>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockedTopic {
    partitions: i32,
    replication_factor: i32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    settings: BTreeMap<String, String>,
}

/// The lock file's text for these topics.
pub fn render(topics: &[TopicSpec]) -> String {
    let file = LockFile {
        topics: topics
            .iter()
            .map(|t| {
                (
                    t.name.clone(),
                    LockedTopic {
                        partitions: t.partitions,
                        replication_factor: t.replication_factor,
                        settings: t.settings.clone(),
                    },
                )
            })
            .collect(),
    };
    let body = toml::to_string(&file).expect("a map of plain tables always serializes");
    format!("{HEADER}{body}")
}

/// Reads a lock file's text back into topic specs, sorted by name.
pub fn parse(text: &str) -> Result<Vec<TopicSpec>, String> {
    let file: LockFile = toml::from_str(text).map_err(|e| e.to_string())?;
    Ok(file
        .topics
        .into_iter()
        .map(|(name, t)| TopicSpec {
            name,
            partitions: t.partitions,
            replication_factor: t.replication_factor,
            settings: t.settings,
        })
        .collect())
}

/// Lines describing how `declared` differs from `locked`: `+` for a topic declared but not
/// locked, `-` for one locked but no longer declared, `~` for a changed field. Empty when
/// they agree.
pub fn diff(locked: &[TopicSpec], declared: &[TopicSpec]) -> Vec<String> {
    let locked: BTreeMap<&str, &TopicSpec> = locked.iter().map(|t| (t.name.as_str(), t)).collect();
    let declared: BTreeMap<&str, &TopicSpec> =
        declared.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut names: Vec<&str> = locked.keys().chain(declared.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut lines = Vec::new();
    for name in names {
        match (locked.get(name), declared.get(name)) {
            (None, Some(d)) => lines.push(format!("+ {name}: {}", summary(d))),
            (Some(l), None) => lines.push(format!("- {name}: {}", summary(l))),
            (Some(l), Some(d)) => changes(name, l, d, &mut lines),
            (None, None) => unreachable!("name came from one of the maps"),
        }
    }
    lines
}

fn summary(t: &TopicSpec) -> String {
    let mut s = format!(
        "partitions {}, replication factor {}",
        t.partitions, t.replication_factor
    );
    for (k, v) in &t.settings {
        let _ = write!(s, ", {k}={v:?}");
    }
    s
}

fn changes(name: &str, locked: &TopicSpec, declared: &TopicSpec, lines: &mut Vec<String>) {
    if locked.partitions != declared.partitions {
        lines.push(format!(
            "~ {name}: partitions {} -> {}",
            locked.partitions, declared.partitions
        ));
    }
    if locked.replication_factor != declared.replication_factor {
        lines.push(format!(
            "~ {name}: replication factor {} -> {}",
            locked.replication_factor, declared.replication_factor
        ));
    }
    let mut keys: Vec<&String> = locked
        .settings
        .keys()
        .chain(declared.settings.keys())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    for key in keys {
        match (locked.settings.get(key), declared.settings.get(key)) {
            (Some(a), Some(b)) if a != b => {
                lines.push(format!("~ {name}: {key} {a:?} -> {b:?}"));
            }
            (None, Some(b)) => lines.push(format!("~ {name}: {key} added as {b:?}")),
            (Some(a), None) => lines.push(format!("~ {name}: {key} removed (was {a:?})")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, partitions: i32, settings: &[(&str, &str)]) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor: 1,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn lock_file_is_sorted_readable_toml_that_round_trips() {
        let topics = vec![
            spec("orders", 6, &[("retention.ms", "86400000")]),
            spec("events.v1", 1, &[]),
        ];
        let text = render(&topics);
        assert!(text.starts_with("# Topics declared"), "{text}");
        let events = text
            .find("[topics.\"events.v1\"]")
            .expect("quoted dotted name");
        let orders = text.find("[topics.orders]").expect("orders table");
        assert!(events < orders, "tables sorted by name:\n{text}");
        assert!(text.contains("\"retention.ms\" = \"86400000\""), "{text}");
        let mut sorted = topics.clone();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(parse(&text).unwrap(), sorted);
    }

    #[test]
    fn diff_lists_added_removed_and_changed_fields() {
        let locked = vec![
            spec("gone", 1, &[]),
            spec(
                "orders",
                3,
                &[("retention.ms", "1000"), ("cleanup.policy", "delete")],
            ),
        ];
        let declared = vec![
            spec("new", 2, &[]),
            spec(
                "orders",
                6,
                &[("retention.ms", "2000"), ("segment.ms", "10")],
            ),
        ];
        assert_eq!(
            diff(&locked, &declared),
            [
                "- gone: partitions 1, replication factor 1",
                "+ new: partitions 2, replication factor 1",
                "~ orders: partitions 3 -> 6",
                "~ orders: cleanup.policy removed (was \"delete\")",
                "~ orders: retention.ms \"1000\" -> \"2000\"",
                "~ orders: segment.ms added as \"10\"",
            ]
        );
        assert!(diff(&declared, &declared).is_empty());
    }

    #[test]
    fn malformed_lock_files_are_rejected_with_the_reason() {
        let err =
            parse("[topics.orders]\npartitions = \"six\"\nreplication_factor = 1\n").unwrap_err();
        assert!(err.contains("partitions"), "{err}");
        let err = parse("[topics.orders]\npartitions = 1\nreplication_factor = 1\nretention = 1\n")
            .unwrap_err();
        assert!(err.contains("retention"), "{err}");
    }
}
