//! The reports a server process publishes for `web`: what every process of a fleet says about
//! itself, through Kafka, so one `web` process shows many processes on many machines.
//!
//! A report is JSON keyed by its process id on the reports topic (compacted: the newest report
//! of each process stays). A clean stop writes a tombstone (a null payload) under the same key,
//! so a stopped process leaves the UI at once; a crashed one stops reporting and is flagged
//! stale once its newest report is older than its `stale_after_ms`.
//!
//! **Versions.** Every report carries [`ProcessReport::schema`]. A fleet runs mixed versions
//! during a deploy, so readers accept any version: fields added after version 1 are optional
//! (`#[serde(default)]`), unknown fields are ignored, and a report of a newer schema than the
//! reader knows is shown with what the reader understands, flagged as newer.

use serde::{Deserialize, Serialize};

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = 1;

/// One process's status, published every `report_interval`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProcessReport {
    /// The schema version it was written with ([`SCHEMA_VERSION`] for this build).
    pub schema: u32,
    /// The process id: `<host>:<pid>:<random>`, unique per process start; the record key.
    pub id: String,
    /// The host name.
    pub host: String,
    /// The OS process id.
    pub pid: u32,
    /// The ferrafka version of the process.
    pub ferrafka_version: String,
    /// The environment (`development`, `test`, `production`).
    pub environment: String,
    /// The app's `client_id`.
    pub client_id: String,
    /// The server's state: `running`, `quieting`, `stopping` or `stopped`.
    pub state: String,
    /// When the process started, in milliseconds since the Unix epoch.
    pub started_at_ms: i64,
    /// When this report was made, in milliseconds since the Unix epoch.
    pub reported_at_ms: i64,
    /// After how long without a newer report readers flag the process stale.
    pub stale_after_ms: u64,
    /// One entry per listener (subscription group) of the process.
    pub listeners: Vec<ListenerReport>,
    /// Every partition assigned to the process.
    pub partitions: Vec<PartitionReport>,
    /// Totals since the process started; rates come from two reports' difference.
    pub totals: Totals,
    /// Rates over the last interval.
    pub rates: Rates,
    /// The newest errors (at most 10, newest last).
    pub recent_errors: Vec<ErrorReport>,
}

/// A listener: one consumer of one subscription group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListenerReport {
    /// `consumer_group/subscription_group`.
    pub subscription_group: String,
    /// The consumer group id.
    pub consumer_group: String,
    /// How long ago it last polled librdkafka, in milliseconds (`None`: never).
    pub last_poll_age_ms: Option<u64>,
}

/// An assigned partition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PartitionReport {
    /// The consumer group id.
    pub consumer_group: String,
    /// `consumer_group/subscription_group`.
    pub subscription_group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The next offset to commit, as stored by the process (`None`: nothing stored yet).
    pub stored_offset: Option<i64>,
    /// The last committed offset the process saw (`None`: none yet).
    pub committed_offset: Option<i64>,
    /// The high watermark the process knows (`None`: not known yet).
    pub high_watermark: Option<i64>,
    /// Messages behind the high watermark (`None`: not known yet).
    pub lag: Option<i64>,
    /// Why fetching is paused (`retry`, `consumer`, `backlog`, `quiet`, `filter`), if it is.
    pub paused: Option<String>,
    /// Messages wait with no batch running and no pause for longer than `stall_timeout`.
    pub stalled: bool,
    /// The batch running on it, if one is.
    pub running_batch: Option<RunningBatch>,
}

/// A batch that is running.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunningBatch {
    /// Its first and last offsets.
    pub offsets: (i64, i64),
    /// How many messages it holds.
    pub messages: usize,
    /// 1 for a first attempt, then 2, 3, …
    pub attempt: u32,
    /// How long it has run, in milliseconds.
    pub age_ms: u64,
}

/// Counts since the process started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Totals {
    /// Messages consumed (batches that returned `Ok`).
    pub messages: u64,
    /// Batches consumed.
    pub batches: u64,
    /// Batches that failed (each attempt counts).
    pub batch_errors: u64,
    /// Errors of any other kind ([`crate::instrumentation::Event::Error`]).
    pub errors: u64,
    /// Messages sent to a dead-letter topic.
    pub dead_lettered: u64,
}

/// Rates over the last report interval, per second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Rates {
    /// Messages consumed per second.
    pub messages: f64,
    /// Batches consumed per second.
    pub batches: f64,
    /// Failed batches and errors per second.
    pub errors: f64,
}

/// An error, on the errors topic (keyed by process id) and in [`ProcessReport::recent_errors`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorReport {
    /// The schema version it was written with.
    pub schema: u32,
    /// The process it happened in.
    pub process_id: String,
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Where: `batch` for a failed batch, else the [`crate::instrumentation::ErrorKind`]'s name.
    pub kind: String,
    /// The consumer group, when a partition is involved.
    pub consumer_group: Option<String>,
    /// The topic, when a partition is involved.
    pub topic: Option<String>,
    /// The partition, when one is involved.
    pub partition: Option<i32>,
    /// The first and last offsets of the batch, for a failed batch.
    pub offsets: Option<(i64, i64)>,
    /// The attempt, for a failed batch.
    pub attempt: Option<u32>,
    /// The error chain, outermost first (secrets redacted).
    pub chain: Vec<String>,
    /// The backtrace, when one was captured.
    pub backtrace: Option<String>,
}

/// What a reader makes of a record of the reports topic.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A report; `newer_schema` when written by a newer schema than this build knows.
    Report {
        /// The report (fields this build does not know are dropped).
        report: Box<ProcessReport>,
        /// Its schema is newer than [`SCHEMA_VERSION`].
        newer_schema: bool,
    },
    /// A tombstone: the process stopped cleanly.
    Stopped,
}

/// Why a record could not be read as a report.
#[derive(Debug, thiserror::Error)]
#[error("not a ferrafka process report: {0}")]
pub struct DecodeError(#[from] serde_json::Error);

/// Reads a record of the reports topic: `None` payload is a tombstone.
pub fn decode(payload: Option<&[u8]>) -> Result<Decoded, DecodeError> {
    let Some(payload) = payload else {
        return Ok(Decoded::Stopped);
    };
    let report: ProcessReport = serde_json::from_slice(payload)?;
    let newer_schema = report.schema > SCHEMA_VERSION;
    Ok(Decoded::Report {
        report: Box::new(report),
        newer_schema,
    })
}
