//! The command form: what the buttons post, checked and turned into a [`Command`], and the
//! audit record written before it is sent.

use std::time::Duration;

use serde::Deserialize;

use crate::web::audit::AuditRecord;
use crate::web::commands::{Action, Command, Target};
use crate::web::ui::pages::time;
use crate::web::ui::safety::Operator;

/// The expiry a form proposes, in seconds.
pub(crate) const DEFAULT_EXPIRY_S: u64 = 60;
/// The longest expiry a form may ask: a day.
pub(super) const MAX_EXPIRY_S: u64 = 86_400;
/// The longest pause with an end a form may ask: a week.
pub(super) const MAX_PAUSE_S: u64 = 7 * 86_400;

/// The fields of `POST /commands` (the `csrf` field is the guard's). Every field is text, so
/// an empty or malformed one is named in the refusal instead of failing the whole form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct CommandForm {
    /// `pause_partition`, `resume_partition`, `quiet` or `stop`.
    pub(super) action: String,
    /// The target process's id.
    pub(super) process: String,
    pub(super) consumer_group: String,
    pub(super) topic: String,
    pub(super) partition: String,
    /// Pause only: resume by itself after this many seconds (empty: until a resume).
    pub(super) for_s: String,
    /// Seconds until the command expires.
    pub(super) expires_s: String,
}

impl CommandForm {
    /// The command the form asks for, issued by `who`; or every problem of the form, each
    /// naming the field, the value and what is allowed.
    pub(super) fn command(&self, who: &str) -> Result<Command, Vec<String>> {
        let mut problems = Vec::new();
        let process = self.process.trim();
        if process.is_empty() {
            problems.push(
                "process: empty; give the id of the process to command (a report's id)".into(),
            );
        }
        let expires_s = seconds("expires_s", &self.expires_s, MAX_EXPIRY_S, &mut problems)
            .map(|s| s.unwrap_or(DEFAULT_EXPIRY_S));
        let action = match self.action.as_str() {
            "quiet" => Some(Action::Quiet),
            "stop" => Some(Action::Stop),
            "pause_partition" | "resume_partition" => self.partition_action(&mut problems),
            other => {
                problems.push(format!(
                    "action: {other:?} is not a command; use pause_partition, resume_partition, quiet or stop"
                ));
                None
            }
        };
        match (action, expires_s, problems.is_empty()) {
            (Some(action), Some(expires_s), true) => Ok(Command::new(
                Target::Process(process.to_string()),
                action,
                Duration::from_secs(expires_s),
                who,
            )),
            _ => Err(problems),
        }
    }

    fn partition_action(&self, problems: &mut Vec<String>) -> Option<Action> {
        let (consumer_group, topic) = (self.consumer_group.trim(), self.topic.trim());
        for (name, value) in [("consumer_group", consumer_group), ("topic", topic)] {
            if value.is_empty() {
                problems.push(format!("{name}: empty; give the partition's {name}"));
            }
        }
        let partition = match self.partition.trim().parse::<i32>() {
            Ok(p) if p >= 0 => Some(p),
            _ => {
                problems.push(format!(
                    "partition: {:?} is not a partition; use a whole number, 0 or more",
                    self.partition
                ));
                None
            }
        };
        let (consumer_group, topic) = (consumer_group.to_string(), topic.to_string());
        match self.action.as_str() {
            "pause_partition" => {
                let for_s = seconds("for_s", &self.for_s, MAX_PAUSE_S, problems)?;
                Some(Action::PausePartition {
                    consumer_group,
                    topic,
                    partition: partition?,
                    for_ms: for_s.map(|s| s * 1000),
                })
            }
            _ => Some(Action::ResumePartition {
                consumer_group,
                topic,
                partition: partition?,
            }),
        }
    }
}

/// A number of seconds from 1 to `max`: `Some(None)` when empty, `None` (and a problem) when
/// it is not one.
fn seconds(name: &str, value: &str, max: u64, problems: &mut Vec<String>) -> Option<Option<u64>> {
    let value = value.trim();
    if value.is_empty() {
        return Some(None);
    }
    match value.parse::<u64>() {
        Ok(s) if (1..=max).contains(&s) => Some(Some(s)),
        _ => {
            problems.push(format!(
                "{name}: {value:?} is not a number of seconds from 1 to {max}"
            ));
            None
        }
    }
}

/// What a command is done to: its target.
pub(super) fn subject(command: &Command) -> String {
    match &command.target {
        Target::All => "all processes".into(),
        Target::Process(id) => id.clone(),
    }
}

/// The partition a command is about, as `group/topic/partition`.
pub(super) fn partition_of(action: &Action) -> Option<String> {
    match action {
        Action::PausePartition {
            consumer_group,
            topic,
            partition,
            ..
        }
        | Action::ResumePartition {
            consumer_group,
            topic,
            partition,
        } => Some(format!("{consumer_group}/{topic}/{partition}")),
        _ => None,
    }
}

/// The audit record of sending `command` (its id is the command's).
pub(super) fn audit_record(command: &Command, operator: &Operator) -> AuditRecord {
    let mut record = AuditRecord::new(
        command.command_id.clone(),
        operator.who.clone(),
        operator.from.clone(),
        format!("command {}", command.action.name()),
        subject(command),
    )
    .detail("command_id", command.command_id.clone())
    .detail("expires_at", time(command.expires_at_ms));
    if let Some(partition) = partition_of(&command.action) {
        record = record.detail("partition", partition);
    }
    if let Action::PausePartition {
        for_ms: Some(ms), ..
    } = &command.action
    {
        record = record.detail("for_ms", ms.to_string());
    }
    record
}
