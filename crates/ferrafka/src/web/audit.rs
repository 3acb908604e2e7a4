//! The audit of the web UI's writes: every republish and every command the UI sends is first
//! recorded on the audit topic (`audit_topic`), keyed by its audit id, as an [`AuditRecord`] in
//! JSON: who asked, when, from where, what and with what outcome. The UI's audit page reads the
//! topic back; a script can too ([`decode`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::producer::{Producer, Record as Produced};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One write made through the UI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditRecord {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema: u32,
    /// The audit id (also the record's key); for a republish, the republish id.
    pub id: String,
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Who: the basic-auth user, `token` for a bearer token, `anonymous` without auth.
    pub who: String,
    /// From where: the peer address, and the `X-Forwarded-For` a proxy set.
    pub from: String,
    /// What: `republish`, or `command` followed by the action (`command pause_partition`).
    pub action: String,
    /// What it was done to (a dead letter's coordinates, a command's target).
    pub subject: String,
    /// The rest, by name (target topic, command id, …).
    #[serde(default)]
    pub details: BTreeMap<String, String>,
    /// `done`, or `refused: <why>`.
    pub outcome: String,
}

impl AuditRecord {
    /// A record of `action` on `subject`, by `who` from `from`, now.
    pub fn new(
        id: impl Into<String>,
        who: impl Into<String>,
        from: impl Into<String>,
        action: impl Into<String>,
        subject: impl Into<String>,
    ) -> Self {
        AuditRecord {
            schema: SCHEMA_VERSION,
            id: id.into(),
            at_ms: crate::messages::now_ms(),
            who: who.into(),
            from: from.into(),
            action: action.into(),
            subject: subject.into(),
            details: BTreeMap::new(),
            outcome: "done".into(),
        }
    }

    /// Adds a detail.
    pub fn detail(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.insert(name.into(), value.into());
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = outcome.into();
        self
    }

    /// The JSON payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("audit records serialize to JSON")
    }
}

/// Why a record could not be read as an audit record.
#[derive(Debug, thiserror::Error)]
#[error("not a ferrafka audit record: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Reads a record of the audit topic.
pub fn decode(payload: &[u8]) -> std::result::Result<AuditRecord, DecodeError> {
    Ok(serde_json::from_slice(payload)?)
}

/// Writes `record` to `topic`, keyed by its id, and waits for the broker's acknowledgement:
/// a write is audited before it is made.
pub(crate) async fn publish(producer: &Producer, topic: &str, record: &AuditRecord) -> Result<()> {
    let payload = record.to_json();
    producer
        .produce(Produced::to(topic).key(&record.id).payload(&payload))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_unknown_fields_are_ignored() {
        let record = AuditRecord::new("r-1", "alice", "127.0.0.1", "republish", "dlq/0/7")
            .detail("to", "payments")
            .outcome("refused: already republished");
        assert_eq!(decode(&record.to_json()).unwrap(), record);
        let newer = br#"{"schema":2,"id":"x","at_ms":1,"who":"w","from":"f","action":"a",
            "subject":"s","outcome":"done","extra":true}"#;
        let read = decode(newer).unwrap();
        assert_eq!((read.schema, read.details.len()), (2, 0));
        assert!(decode(b"{}").is_err());
    }
}
