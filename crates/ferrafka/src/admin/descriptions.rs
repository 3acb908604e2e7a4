//! What the admin API reports about consumer groups: plain data, read by `groups` and filled
//! by both rdkafka's classic group list and librdkafka's DescribeConsumerGroups (`sys::groups`).

/// A consumer group as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    /// Group id.
    pub name: String,
    /// State, e.g. `Stable`, `Empty`, `PreparingRebalance`.
    pub state: String,
    /// Protocol type, `consumer` for consumer groups.
    pub protocol_type: String,
    /// How many members it has.
    pub members: usize,
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id given by the coordinator.
    pub id: String,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the broker saw it.
    pub host: String,
    /// Topics it subscribes to or is assigned, when the broker reports them (tansu 0.6.0 does
    /// not).
    pub topics: Option<Vec<String>>,
}

/// A consumer group in detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub name: String,
    /// State, e.g. `Stable` or `Empty`.
    pub state: String,
    /// Protocol type, `consumer` for consumer groups.
    pub protocol_type: String,
    /// The group protocol: `classic`, or `consumer` for a KIP-848 group (whose assignor is the
    /// broker's, e.g. `uniform`).
    pub group_protocol: String,
    /// The assignor in use, e.g. `range` or `cooperative-sticky` (empty on tansu 0.6.0).
    pub assignor: String,
    /// Its members.
    pub members: Vec<GroupMember>,
}

/// A group's position in one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset, `None` when the group committed nothing here.
    pub committed: Option<i64>,
    /// The partition's high watermark.
    pub high_watermark: i64,
    /// Messages not yet consumed (`high_watermark - committed`), `None` without a commit.
    pub lag: Option<i64>,
}
