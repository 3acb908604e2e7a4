//! Planning and applying topic changes: compare declarations with what a cluster has, list the
//! steps an action needs, then run them.
//!
//! The planner reads the cluster and the executor changes it through the [`Cluster`] seam,
//! which [`Admin`](crate::admin::Admin) implements and tests fake in memory. Rules: undeclared
//! topics are never touched, partitions only grow, the replication factor is only applied on
//! creation (a different one is reported), and topics a consumer group with active members
//! reads are not deleted or reset without `force`.

use crate::admin::{Cluster, ConfigOp, TopicSpec};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What a declared topic looks like in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic-level settings as described, or why they could not be read.
    pub settings: std::result::Result<BTreeMap<String, String>, String>,
}

/// A `topics` action that changes (or would change) the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create missing topics, grow partitions, align settings.
    Migrate,
    /// Create missing topics.
    Create,
    /// Delete existing declared topics.
    Delete,
    /// Delete and recreate existing declared topics; create missing ones.
    Reset,
    /// Grow partitions up to the declared count.
    Repartition,
    /// Set declared settings that differ.
    Align,
}

/// One setting to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// Setting name.
    pub name: String,
    /// Current value, `None` when the broker does not report it.
    pub from: Option<String>,
    /// Declared value.
    pub to: String,
}

/// One change to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Create a missing topic.
    Create(TopicSpec),
    /// Grow a topic's partitions.
    Grow {
        /// Topic.
        topic: String,
        /// Current count.
        from: i32,
        /// Declared count.
        to: i32,
    },
    /// Set settings that differ from the declaration.
    Align {
        /// Topic.
        topic: String,
        /// The settings to set.
        changes: Vec<SettingChange>,
    },
    /// Delete a topic.
    Delete(String),
    /// Delete a topic and create it again as declared.
    Recreate(TopicSpec),
}

impl Step {
    /// The topic it changes.
    pub fn topic(&self) -> &str {
        match self {
            Step::Create(spec) | Step::Recreate(spec) => &spec.name,
            Step::Grow { topic, .. } | Step::Align { topic, .. } | Step::Delete(topic) => topic,
        }
    }

    /// A short name of the change: create, grow, align, delete, reset.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Create(_) => "create",
            Step::Grow { .. } => "grow partitions",
            Step::Align { .. } => "align settings",
            Step::Delete(_) => "delete",
            Step::Recreate(_) => "reset",
        }
    }

    /// What exactly changes, for the plan table.
    pub fn details(&self) -> String {
        match self {
            Step::Create(spec) | Step::Recreate(spec) => {
                let mut s = format!(
                    "partitions {}, replication factor {}",
                    spec.partitions, spec.replication_factor
                );
                for (k, v) in &spec.settings {
                    s.push_str(&format!(", {k}={v}"));
                }
                s
            }
            Step::Grow { from, to, .. } => format!("partitions {from} -> {to}"),
            Step::Align { changes, .. } => changes
                .iter()
                .map(|c| match &c.from {
                    Some(from) => format!("{}: {from} -> {}", c.name, c.to),
                    None => format!("{}: (unset) -> {}", c.name, c.to),
                })
                .collect::<Vec<_>>()
                .join(", "),
            Step::Delete(_) => "all messages and committed positions are lost".into(),
        }
    }
}

/// Something the plan cannot change, reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The topic has more partitions than declared; Kafka cannot shrink a topic.
    CannotShrink {
        /// Topic.
        topic: String,
        /// Declared count.
        declared: i32,
        /// Current count.
        actual: i32,
    },
    /// The replication factor differs; ferrafka only applies it on creation.
    ReplicationFactor {
        /// Topic.
        topic: String,
        /// Declared factor.
        declared: i32,
        /// Current factor.
        actual: i32,
    },
    /// The topic's settings could not be read, so they were not compared.
    SettingsUnknown {
        /// Topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The action needs the topic to exist.
    Missing {
        /// Topic.
        topic: String,
    },
}

impl Notice {
    /// The topic it is about.
    pub fn topic(&self) -> &str {
        match self {
            Notice::CannotShrink { topic, .. }
            | Notice::ReplicationFactor { topic, .. }
            | Notice::SettingsUnknown { topic, .. }
            | Notice::Missing { topic } => topic,
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::CannotShrink {
                topic,
                declared,
                actual,
            } => write!(
                f,
                "{topic}: has {actual} partitions, more than the declared {declared}; Kafka \
                 cannot shrink a topic, so it is left as is"
            ),
            Notice::ReplicationFactor {
                topic,
                declared,
                actual,
            } => write!(
                f,
                "{topic}: replication factor is {actual}, declared {declared}; it is only \
                 applied on creation (change it with a partition reassignment)"
            ),
            Notice::SettingsUnknown { topic, reason } => {
                write!(
                    f,
                    "{topic}: settings not compared, cannot read them: {reason}"
                )
            }
            Notice::Missing { topic } => {
                write!(
                    f,
                    "{topic}: does not exist; create it first (`topics create`)"
                )
            }
        }
    }
}

/// The steps an action needs, plus what it cannot change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Changes, in the order they run.
    pub steps: Vec<Step>,
    /// What cannot or will not be changed.
    pub notices: Vec<Notice>,
}

impl Plan {
    /// True when there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Compares `declared` with `cluster` (the state of the declared topics that exist) and lists
/// the steps of `action`. Topics outside `declared` never appear.
pub fn plan(
    action: Action,
    declared: &[TopicSpec],
    cluster: &BTreeMap<String, TopicState>,
) -> Plan {
    let mut plan = Plan::default();
    let (mut creates, mut grows, mut aligns) = (Vec::new(), Vec::new(), Vec::new());
    for spec in declared {
        let Some(state) = cluster.get(&spec.name) else {
            match action {
                Action::Migrate | Action::Create | Action::Reset => {
                    creates.push(Step::Create(spec.clone()));
                }
                Action::Repartition | Action::Align => plan.notices.push(Notice::Missing {
                    topic: spec.name.clone(),
                }),
                Action::Delete => {}
            }
            continue;
        };
        match action {
            Action::Delete => {
                plan.steps.push(Step::Delete(spec.name.clone()));
                continue;
            }
            Action::Reset => {
                plan.steps.push(Step::Recreate(spec.clone()));
                continue;
            }
            _ => {}
        }
        if state.replication_factor != spec.replication_factor {
            plan.notices.push(Notice::ReplicationFactor {
                topic: spec.name.clone(),
                declared: spec.replication_factor,
                actual: state.replication_factor,
            });
        }
        if matches!(action, Action::Migrate | Action::Repartition) {
            if state.partitions < spec.partitions {
                grows.push(Step::Grow {
                    topic: spec.name.clone(),
                    from: state.partitions,
                    to: spec.partitions,
                });
            } else if state.partitions > spec.partitions {
                plan.notices.push(Notice::CannotShrink {
                    topic: spec.name.clone(),
                    declared: spec.partitions,
                    actual: state.partitions,
                });
            }
        }
        if matches!(action, Action::Migrate | Action::Align) {
            match &state.settings {
                Ok(current) => {
                    let changes = setting_changes(&spec.settings, current);
                    if !changes.is_empty() {
                        aligns.push(Step::Align {
                            topic: spec.name.clone(),
                            changes,
                        });
                    }
                }
                Err(reason) => plan.notices.push(Notice::SettingsUnknown {
                    topic: spec.name.clone(),
                    reason: reason.clone(),
                }),
            }
        }
    }
    // Migrate's order: create missing topics, then grow, then align.
    plan.steps.extend(creates);
    plan.steps.extend(grows);
    plan.steps.extend(aligns);
    plan
}

/// Declared settings whose current value differs or is not reported. Settings that are not
/// declared are left alone.
fn setting_changes(
    declared: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<SettingChange> {
    declared
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| SettingChange {
            name: k.clone(),
            from: current.get(k).cloned(),
            to: v.clone(),
        })
        .collect()
}

/// Reads the state of the declared topics and plans `action`.
pub async fn plan_against(
    cluster: &impl Cluster,
    action: Action,
    declared: &[TopicSpec],
) -> Result<Plan> {
    let names: Vec<String> = declared.iter().map(|t| t.name.clone()).collect();
    let state = topic_states(cluster, &names).await?;
    Ok(plan(action, declared, &state))
}

/// Fails, naming topics and groups, when a delete or reset step would remove a topic that a
/// consumer group with active members reads; `routed` maps topics to the groups the app reads
/// them with (see [`active_readers`]).
pub async fn refuse_active_readers(
    cluster: &impl Cluster,
    routed: &BTreeMap<String, BTreeSet<String>>,
    plan: &Plan,
) -> Result<()> {
    let mut busy = Vec::new();
    for step in &plan.steps {
        if let Step::Delete(topic) | Step::Recreate(TopicSpec { name: topic, .. }) = step {
            let readers = active_readers(cluster, routed, topic).await?;
            if !readers.is_empty() {
                busy.push(format!("{topic} (read by {})", readers.join(", ")));
            }
        }
    }
    if busy.is_empty() {
        return Ok(());
    }
    Err(Error::Admin {
        operation: "remove topic",
        resource: busy.join("; "),
        reason: "consumer groups with active members read it; stop them first or pass --force \
                 (removing a topic under running consumers disrupts them)"
            .into(),
        source: None,
    })
}

/// Runs the plan's steps in order, calling `progress` before each one with its index. Stops at
/// the first failure.
pub async fn apply(
    cluster: &impl Cluster,
    plan: &Plan,
    mut progress: impl FnMut(usize, &Step),
) -> Result<()> {
    for (i, step) in plan.steps.iter().enumerate() {
        progress(i, step);
        match step {
            Step::Create(spec) => cluster.create(spec).await?,
            Step::Grow { topic, to, .. } => cluster.grow(topic, *to).await?,
            Step::Align { topic, changes } => {
                let ops: Vec<ConfigOp> = changes
                    .iter()
                    .map(|c| ConfigOp::Set(c.name.clone(), c.to.clone()))
                    .collect();
                cluster.alter(topic, &ops).await?;
            }
            Step::Delete(topic) => cluster.delete(topic).await?,
            Step::Recreate(spec) => {
                cluster.delete(&spec.name).await?;
                cluster.create(spec).await?;
            }
        }
    }
    Ok(())
}

/// The state of each of `names` that exists in `cluster`; absent names are missing topics. A
/// topic whose settings cannot be read keeps the reason instead.
pub async fn topic_states(
    cluster: &impl Cluster,
    names: &[String],
) -> Result<BTreeMap<String, TopicState>> {
    let topics = cluster.topics().await?;
    let mut out = BTreeMap::new();
    for t in topics.into_iter().filter(|t| names.contains(&t.name)) {
        let settings = cluster
            .topic_settings(&t.name)
            .await
            .map_err(|e| e.to_string());
        out.insert(
            t.name.clone(),
            TopicState {
                partitions: t.partitions.len() as i32,
                replication_factor: t.replication_factor(),
                settings,
            },
        );
    }
    Ok(out)
}

/// Consumer groups with active members that read `topic`; `routed` maps topic names to the
/// consumer groups the app reads them with.
///
/// A group reads the topic when a member subscribes to or is assigned it. Brokers that do not
/// report member topics (tansu 0.6.0) leave two hints: the app routes the group to the topic,
/// or the group has committed offsets on it.
pub async fn active_readers(
    cluster: &impl Cluster,
    routed: &BTreeMap<String, BTreeSet<String>>,
    topic: &str,
) -> Result<Vec<String>> {
    let mut readers = Vec::new();
    for group in cluster.groups().await? {
        if group.members == 0 {
            continue;
        }
        let Some(description) = cluster.group(&group.name).await? else {
            continue;
        };
        let active: Vec<_> = description.members.iter().collect();
        let known: Vec<&Vec<String>> = active.iter().filter_map(|m| m.topics.as_ref()).collect();
        let reads = if !known.is_empty() {
            known.iter().any(|topics| topics.iter().any(|t| t == topic))
        } else {
            routed
                .get(topic)
                .is_some_and(|groups| groups.contains(&group.name))
                || cluster
                    .committed(&group.name, topic)
                    .await?
                    .iter()
                    .any(|l| l.committed.is_some())
        };
        if reads && !active.is_empty() {
            readers.push(group.name);
        }
    }
    Ok(readers)
}

#[cfg(test)]
mod tests;
