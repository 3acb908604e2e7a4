//! Plain data the pages render: what the live state and the cluster said at one moment. Render
//! functions take these, so every page is testable without a broker.

use std::collections::BTreeMap;

use crate::web::report::ProcessReport;

/// A process as the newest report shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessView {
    /// Its newest report.
    pub report: ProcessReport,
    /// No newer report arrived within the report's `stale_after_ms`.
    pub stale: bool,
    /// Written with a newer schema than this build reads: shown with what it understands.
    pub newer_schema: bool,
}

/// One sample of the fleet's trends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    /// When, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Messages per second, summed over live processes.
    pub messages_rate: f64,
    /// Errors per second, summed over live processes.
    pub errors_rate: f64,
    /// Lag summed over every partition live processes report.
    pub total_lag: i64,
    /// Lag per consumer group (at most [`super::live::MAX_TRACKED_GROUPS`] groups).
    pub group_lag: BTreeMap<String, i64>,
}

/// The fleet: processes from the reports topic and the trends kept in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetSnapshot {
    /// Now, in milliseconds since the epoch (staleness is judged against it).
    pub now_ms: i64,
    /// The processes, sorted by id.
    pub processes: Vec<ProcessView>,
    /// Samples, oldest first.
    pub series: Vec<Point>,
    /// Why the reports topic cannot be read right now, if it cannot.
    pub reports_problem: Option<String>,
}

impl FleetSnapshot {
    /// Processes that are not stale.
    pub fn live(&self) -> impl Iterator<Item = &ProcessView> {
        self.processes.iter().filter(|p| !p.stale)
    }

    /// The newest sample, or one computed from the live processes when none was taken yet.
    pub fn current(&self) -> Point {
        self.series
            .last()
            .cloned()
            .unwrap_or_else(|| sample(self.now_ms, self.live().map(|p| &p.report)))
    }
}

/// A sample of the given (live) processes' reports.
pub fn sample<'a>(at_ms: i64, reports: impl Iterator<Item = &'a ProcessReport>) -> Point {
    let mut point = Point {
        at_ms,
        ..Point::default()
    };
    for report in reports {
        point.messages_rate += report.rates.messages;
        point.errors_rate += report.rates.errors;
        for p in &report.partitions {
            let lag = p.lag.unwrap_or(0);
            point.total_lag += lag;
            *point.group_lag.entry(p.consumer_group.clone()).or_default() += lag;
        }
    }
    point
}

/// A consumer group in the groups list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupRow {
    /// The group id.
    pub name: String,
    /// Its state as the cluster says (`-` when the cluster did not list it).
    pub state: String,
    /// Its member count, when known.
    pub members: Option<usize>,
    /// Its total lag over the partitions known to it, when known.
    pub lag: Option<i64>,
}

/// The groups page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupsView {
    /// Every group, sorted by name.
    pub groups: Vec<GroupRow>,
    /// What the cluster could not answer, shown instead of failing the page.
    pub problems: Vec<String>,
}

/// A group's position in one partition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The committed offset, when the group committed one.
    pub committed: Option<i64>,
    /// The high watermark, when known.
    pub high_watermark: Option<i64>,
    /// `high_watermark - committed`, when both are known.
    pub lag: Option<i64>,
    /// The process that holds it, from the reports.
    pub owner: Option<String>,
}

/// A member of a group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemberRow {
    /// The member's `client.id`.
    pub client_id: String,
    /// Its host as the broker saw it.
    pub host: String,
    /// Its topics, when the broker reports them.
    pub topics: Vec<String>,
}

/// One group's page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupView {
    /// The group id.
    pub name: String,
    /// Its state, when the cluster described it.
    pub state: Option<String>,
    /// Its members.
    pub members: Vec<MemberRow>,
    /// Per partition, sorted by topic and partition.
    pub partitions: Vec<GroupPartition>,
    /// The group's lag over time, oldest first: (at_ms, lag).
    pub trend: Vec<(i64, i64)>,
    /// What the cluster could not answer.
    pub problems: Vec<String>,
}

/// A topic in the topics list and the cluster page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicRow {
    /// The name.
    pub name: String,
    /// Its partition count.
    pub partitions: usize,
    /// Its replication factor.
    pub replication_factor: i32,
    /// Partitions whose in-sync replicas are fewer than their replicas.
    pub under_replicated: usize,
}

/// One partition of a topic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionRow {
    /// The partition.
    pub partition: i32,
    /// Its leader (-1 while there is none).
    pub leader: i32,
    /// Its replicas.
    pub replicas: Vec<i32>,
    /// Its in-sync replicas.
    pub isr: Vec<i32>,
    /// The low watermark, when known.
    pub low: Option<i64>,
    /// The high watermark, when known.
    pub high: Option<i64>,
}

/// One topic's page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicView {
    /// The name.
    pub name: String,
    /// Its partitions.
    pub partitions: Vec<PartitionRow>,
    /// Its configuration (name, value; sensitive values redacted).
    pub configs: Vec<(String, String)>,
    /// What the cluster could not answer.
    pub problems: Vec<String>,
}

/// A message as the explorer shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MessageRow {
    /// Its offset.
    pub offset: i64,
    /// Its timestamp, in milliseconds since the epoch.
    pub timestamp_ms: Option<i64>,
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its payload (`None`: a tombstone).
    pub payload: Option<Vec<u8>>,
    /// Its headers (name, value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// How the explorer shows payloads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PayloadFormat {
    /// Pretty JSON when the payload parses, else text.
    #[default]
    Json,
    /// UTF-8 text, other bytes as `\xNN`.
    Text,
    /// Hex bytes.
    Hex,
}

impl PayloadFormat {
    /// From the `format` query parameter.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "json" => Some(PayloadFormat::Json),
            "text" => Some(PayloadFormat::Text),
            "hex" => Some(PayloadFormat::Hex),
            _ => None,
        }
    }

    /// Its query parameter value.
    pub fn name(self) -> &'static str {
        match self {
            PayloadFormat::Json => "json",
            PayloadFormat::Text => "text",
            PayloadFormat::Hex => "hex",
        }
    }
}

/// One partition's browse page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PartitionBrowse {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Low and high watermarks, when known.
    pub watermarks: Option<(i64, i64)>,
    /// Where the page starts, as asked (`offset=…` or `time=…`).
    pub from: String,
    /// The messages, by offset.
    pub messages: Vec<MessageRow>,
    /// Payloads are hidden (the topic is masked).
    pub masked: bool,
    /// How payloads are shown.
    pub format: PayloadFormat,
    /// What could not be read.
    pub problems: Vec<String>,
}

/// A broker.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BrokerRow {
    /// Node id.
    pub id: i32,
    /// `host:port`.
    pub address: String,
}

/// The cluster page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterView {
    /// The brokers.
    pub brokers: Vec<BrokerRow>,
    /// The topics (internal ones included), sorted by name.
    pub topics: Vec<TopicRow>,
    /// Under-replicated partitions: (topic, partition).
    pub under_replicated: Vec<(String, i32)>,
    /// What the cluster could not answer.
    pub problems: Vec<String>,
}

/// A partition the health page flags.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LaggingPartition {
    /// The consumer group.
    pub consumer_group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Its lag now.
    pub lag: i64,
    /// Why it is flagged: `stalled` or `lag growing`.
    pub why: String,
}

/// The health page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthView {
    /// Stale processes: (id, milliseconds since their newest report).
    pub stale: Vec<(String, i64)>,
    /// Partitions stalled or with growing lag.
    pub lagging: Vec<LaggingPartition>,
    /// Under-replicated partitions: (topic, partition).
    pub under_replicated: Vec<(String, i32)>,
    /// What could not be checked.
    pub problems: Vec<String>,
}

impl HealthView {
    /// `ok` when nothing is flagged, else `problems`.
    pub fn verdict(&self) -> &'static str {
        match self.stale.is_empty() && self.lagging.is_empty() && self.under_replicated.is_empty() {
            true => "ok",
            false => "problems",
        }
    }
}
