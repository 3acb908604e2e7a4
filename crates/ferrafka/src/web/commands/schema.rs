//! The records of the commands topic: [`Command`]s an operator (the web UI) sends and the
//! [`Acknowledgement`]s processes answer with. Both are JSON with a `type` field (`command`,
//! `acknowledgement`), on the same topic: a command is keyed by its id, an acknowledgement by
//! `<command id>/<process id>`, so readers find them without decoding every record.
//!
//! **Versions.** Like the reports, every record carries `schema`; fields added later are
//! optional, unknown fields are ignored. A command whose action this build does not know is
//! acknowledged `refused`, naming the action, never run.

use std::collections::HashMap;
use std::time::Duration;

use crate::messages::now_ms;

use serde::{Deserialize, Serialize};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Who a command is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Every process that reads the commands topic.
    All,
    /// One process, by its id (`RunningServer::process_id`, a report's `id`).
    Process(String),
}

/// What a command asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Pause one partition: its running batch finishes, nothing new starts, fetching stops;
    /// what waits runs after the resume, in order. Refused where the partition is not assigned.
    PausePartition {
        /// The consumer group it is consumed in.
        consumer_group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Resumes by itself after this long (`None`: until a resume command).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ms: Option<u64>,
    },
    /// End an operator's pause of one partition.
    ResumePartition {
        /// The consumer group it is consumed in.
        consumer_group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// Quiet mode: running batches finish, nothing new starts, partitions stay assigned.
    Quiet,
    /// The graceful stop: a final report and a tombstone follow.
    Stop,
}

impl Action {
    /// Its name: `pause_partition`, `resume_partition`, `quiet`, `stop`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::PausePartition { .. } => "pause_partition",
            Action::ResumePartition { .. } => "resume_partition",
            Action::Quiet => "quiet",
            Action::Stop => "stop",
        }
    }
}

/// A command to running processes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Command {
    /// The schema version it was written with.
    pub schema: u32,
    /// Unique: a process runs a command id once, however often it arrives.
    pub command_id: String,
    /// Who it is for.
    pub target: Target,
    /// What it asks.
    pub action: Action,
    /// When it was issued, in milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
    /// After this a process acknowledges it `expired` and does nothing.
    pub expires_at_ms: i64,
    /// Who issued it (a user name, `web`, a script), for the audit.
    pub issued_by: String,
}

impl Command {
    /// A command issued now, with a fresh random id, expiring after `ttl`.
    pub fn new(
        target: Target,
        action: Action,
        ttl: Duration,
        issued_by: impl Into<String>,
    ) -> Self {
        let issued_at_ms = now_ms();
        Command {
            schema: SCHEMA_VERSION,
            command_id: fresh_id(),
            target,
            action,
            issued_at_ms,
            expires_at_ms: issued_at_ms
                .saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64),
            issued_by: issued_by.into(),
        }
    }

    /// Whether it is for the process `process_id`.
    pub fn is_for(&self, process_id: &str) -> bool {
        match &self.target {
            Target::All => true,
            Target::Process(id) => id == process_id,
        }
    }

    /// Whether it expired at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms > self.expires_at_ms
    }
}

/// What became of a command in one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Carried out (a stop: the graceful stop began).
    Done,
    /// Not carried out, and why (e.g. the partition is not assigned to this process).
    Refused {
        /// Why.
        reason: String,
    },
    /// It arrived after its `expires_at_ms`: nothing was done.
    Expired,
}

impl Outcome {
    /// Its name: `done`, `refused`, `expired`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused { .. } => "refused",
            Outcome::Expired => "expired",
        }
    }
}

/// A process's answer to a command, on the commands topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Acknowledgement {
    /// The schema version it was written with.
    pub schema: u32,
    /// The command answered.
    pub command_id: String,
    /// The process that answers.
    pub process_id: String,
    /// What became of it.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl Acknowledgement {
    /// The answer of `process_id` to `command_id`, now.
    pub fn new(command_id: &str, process_id: &str, outcome: Outcome) -> Self {
        Acknowledgement {
            schema: SCHEMA_VERSION,
            command_id: command_id.to_string(),
            process_id: process_id.to_string(),
            outcome,
            at_ms: now_ms(),
        }
    }

    /// Its record key: `<command id>/<process id>`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.command_id, self.process_id)
    }
}

/// A record of the commands topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A command.
    Command(Command),
    /// An acknowledgement.
    Acknowledgement(Acknowledgement),
}

impl Record {
    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("commands serialize to JSON")
    }
}

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not a ferrafka command or acknowledgement: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Reads a record of the commands topic.
pub fn decode(payload: &[u8]) -> Result<Record, DecodeError> {
    Ok(serde_json::from_slice(payload)?)
}

/// What a command's envelope says, when its action cannot be read (a newer writer's): enough
/// to refuse it by its id.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) command_id: String,
    pub(crate) target: Target,
    pub(crate) expires_at_ms: i64,
}

/// The command ids a process has handled, each kept until its command expires (an expired
/// command is refused anyway), so the memory is bounded by the commands still alive.
#[derive(Debug, Default)]
pub(crate) struct Handled {
    ids: HashMap<String, i64>,
}

impl Handled {
    /// True the first time `id` comes (and notes it until `expires_at_ms`); false after.
    pub(crate) fn first_time(&mut self, id: &str, expires_at_ms: i64, now_ms: i64) -> bool {
        self.ids.retain(|_, expires| *expires >= now_ms);
        if self.ids.contains_key(id) {
            return false;
        }
        self.ids.insert(id.to_string(), expires_at_ms);
        true
    }
}

/// 128 random bits in hex.
fn fresh_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
