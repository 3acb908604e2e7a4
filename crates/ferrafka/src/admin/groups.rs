//! Consumer groups: list, describe, committed offsets and lag, move offsets, delete.
//!
//! Moving offsets and deleting a group are refused while the group has members: a running
//! consumer would overwrite the moved offsets with its next commit, and Kafka itself refuses to
//! delete a non-empty group (some brokers, like tansu 0.6.0, do not, so ferrafka checks first).

use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::groups::GroupInfo;
use rdkafka::{Offset, TopicPartitionList};

use super::descriptions::{GroupDescription, GroupMember, GroupSummary, PartitionLag};
use super::{Admin, OffsetSpec, code_error, kafka_error};
use crate::error::{Error, Result};
use crate::kafka::known_offset;

/// A partition (topic, partition) and the group's committed offset there (`None`: none).
pub type CommittedOffset = ((String, i32), Option<i64>);

impl Admin {
    fn group_list(&self, group: Option<&str>) -> Result<Vec<OwnedGroup>> {
        let list = self
            .metadata
            .fetch_group_list(group, self.timeout)
            .map_err(|e| kafka_error("list groups", group.unwrap_or("cluster"), &e))?;
        // GroupList borrows native memory; copy what we need.
        Ok(list.groups().iter().map(copy_group).collect())
    }

    /// Every consumer group the cluster knows, sorted by name. KIP-848 groups, which the
    /// classic DescribeGroups reports as `Dead`, are described through ConsumerGroupDescribe.
    pub fn list_groups(&self) -> Result<Vec<GroupSummary>> {
        let mut groups: Vec<GroupSummary> = self
            .group_list(None)?
            .into_iter()
            .map(|g| GroupSummary {
                name: g.name,
                state: g.state,
                protocol_type: g.protocol_type,
                members: g.members.len(),
            })
            .collect();
        let dead: Vec<&str> = groups
            .iter()
            .filter(|g| g.state == "Dead")
            .map(|g| g.name.as_str())
            .collect();
        let kip848 = match dead.is_empty() {
            true => Vec::new(),
            false => self.describe_kip848(&dead)?,
        };
        for described in kip848 {
            if let Some(g) = groups.iter_mut().find(|g| g.name == described.name) {
                g.state = described.state;
                g.protocol_type = described.protocol_type;
                g.members = described.members.len();
            }
        }
        groups.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(groups)
    }

    /// One group in detail, or `None` when the cluster does not know it. A KIP-848 group
    /// (`group.protocol=consumer`), which the classic DescribeGroups reports as `Dead`, is
    /// described through ConsumerGroupDescribe.
    pub fn describe_group(&self, group: &str) -> Result<Option<GroupDescription>> {
        let classic = self
            .group_list(Some(group))?
            .into_iter()
            .find(|g| g.name == group && g.state != "Dead")
            .map(|g| GroupDescription {
                name: g.name,
                state: g.state,
                protocol_type: g.protocol_type,
                group_protocol: "classic".into(),
                assignor: g.assignor,
                members: g.members,
            });
        match classic {
            Some(description) => Ok(Some(description)),
            None => Ok(self.describe_kip848(&[group])?.pop()),
        }
    }

    /// The KIP-848 groups among `groups`, described by ConsumerGroupDescribe. A group the
    /// broker does not know as a KIP-848 group is left out.
    fn describe_kip848(&self, groups: &[&str]) -> Result<Vec<GroupDescription>> {
        let client = self.client.clone();
        let described = crate::sys::groups::describe_consumer_groups(&client, groups, self.timeout)
            .map_err(|e| Error::Admin {
                operation: "describe consumer groups",
                resource: groups.join(", "),
                reason: e.reason,
                source: None,
            })?;
        Ok(described
            .into_iter()
            .flatten()
            .filter(|g| g.group_protocol == "consumer" && g.state != "Dead")
            .collect())
    }

    /// The group's committed offset and lag in every partition of `topics`.
    pub fn lags(&self, group: &str, topics: &[&str]) -> Result<Vec<PartitionLag>> {
        let mut tpl = TopicPartitionList::new();
        for topic in topics {
            let info = self.topic_info(topic)?.ok_or_else(|| Error::Admin {
                operation: "read lags",
                resource: format!("{group} on {topic}"),
                reason: "unknown topic".into(),
                source: None,
            })?;
            for p in &info.partitions {
                tpl.add_partition(topic, p.id);
            }
        }
        let consumer = self.consumer(Some(group))?;
        let committed = consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| kafka_error("read committed offsets", group, &e))?;
        let mut lags = Vec::new();
        for e in committed.elements() {
            let (_, high) = self.watermarks(e.topic(), e.partition())?;
            let committed = known_offset(e.offset());
            lags.push(PartitionLag {
                topic: e.topic().to_string(),
                partition: e.partition(),
                committed,
                high_watermark: high,
                lag: committed.map(|c| (high - c).max(0)),
            });
        }
        Ok(lags)
    }

    /// The group's committed offset in each of `partitions` (`None`: nothing committed), in
    /// one OffsetFetch request, without reading watermarks (see [`Admin::end_offsets`]).
    pub fn committed_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<CommittedOffset>> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            tpl.add_partition(topic, *partition);
        }
        let consumer = self.consumer(Some(group))?;
        let committed = consumer
            .committed_offsets(tpl, self.timeout)
            .map_err(|e| kafka_error("read committed offsets", group, &e))?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let offset = known_offset(e.offset());
                ((e.topic().to_string(), e.partition()), offset)
            })
            .collect())
    }

    /// Fails when the group has members; `operation` names what was refused.
    fn refuse_with_members(&self, operation: &'static str, group: &str) -> Result<()> {
        if let Some(g) = self.describe_group(group)?
            && !g.members.is_empty()
        {
            let clients: Vec<&str> = g.members.iter().map(|m| m.client_id.as_str()).collect();
            return Err(Error::Admin {
                operation,
                resource: group.into(),
                reason: format!(
                    "the group has {} active member(s) ({}); stop its consumers first",
                    g.members.len(),
                    clients.join(", ")
                ),
                source: None,
            });
        }
        Ok(())
    }

    /// Moves the group's committed offsets on every partition of `topic` to `to`. Refused
    /// while the group has members; retried while the group's coordinator is not ready.
    /// Returns the new offset per partition.
    pub fn move_offsets(
        &self,
        group: &str,
        topic: &str,
        to: OffsetSpec,
    ) -> Result<Vec<(i32, i64)>> {
        self.refuse_with_members("move offsets", group)?;
        let info = self.topic_info(topic)?.ok_or_else(|| Error::Admin {
            operation: "move offsets",
            resource: format!("{group} on {topic}"),
            reason: "unknown topic".into(),
            source: None,
        })?;
        let mut tpl = TopicPartitionList::new();
        let mut moved = Vec::new();
        for p in &info.partitions {
            let offset = self.resolve_offset(topic, p.id, to)?;
            tpl.add_partition_offset(topic, p.id, Offset::Offset(offset))
                .map_err(|e| kafka_error("move offsets", group, &e))?;
            moved.push((p.id, offset));
        }
        let consumer = self.consumer(Some(group))?;
        // The group's coordinator may not be ready yet: on a fresh cluster the first commit
        // creates `__consumer_offsets`, and after a broker failure its partitions move.
        let coordinator_not_ready = |e: &KafkaError| {
            matches!(
                e,
                KafkaError::ConsumerCommit(
                    RDKafkaErrorCode::NotCoordinator
                        | RDKafkaErrorCode::CoordinatorNotAvailable
                        | RDKafkaErrorCode::CoordinatorLoadInProgress,
                )
            )
        };
        self.retrying(coordinator_not_ready, || {
            consumer.commit(&tpl, CommitMode::Sync)
        })
        .map_err(|e| kafka_error("move offsets", group, &e))?;
        Ok(moved)
    }

    /// Deletes a consumer group and its committed offsets. Refused while it has members.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        self.refuse_with_members("delete group", group)?;
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .client
            .delete_groups(&[group], &opts)
            .await
            .map_err(|e| kafka_error("delete group", group, &e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(code_error(
                    "delete group",
                    name,
                    Some(code),
                    code.to_string(),
                ));
            }
        }
        Ok(())
    }
}

/// An owned copy of librdkafka's group description.
struct OwnedGroup {
    name: String,
    state: String,
    protocol_type: String,
    assignor: String,
    members: Vec<GroupMember>,
}

fn copy_group(g: &GroupInfo) -> OwnedGroup {
    OwnedGroup {
        name: g.name().to_string(),
        state: g.state().to_string(),
        protocol_type: g.protocol_type().to_string(),
        assignor: g.protocol().to_string(),
        members: g
            .members()
            .iter()
            .map(|m| {
                let mut topics: Option<Vec<String>> = None;
                for found in [
                    m.metadata().and_then(subscription_topics),
                    m.assignment().and_then(assignment_topics),
                ]
                .into_iter()
                .flatten()
                {
                    let all = topics.get_or_insert_with(Vec::new);
                    all.extend(found);
                    all.sort();
                    all.dedup();
                }
                GroupMember {
                    id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    topics,
                }
            })
            .collect(),
    }
}

/// Reads big-endian fields of Kafka's consumer protocol.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.take(len)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
}

/// Topics of a member's subscription (ConsumerProtocolSubscription: version, topics, …).
fn subscription_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(bytes);
    r.i16()?;
    let n = usize::try_from(r.i32()?).ok()?;
    (0..n).map(|_| r.string()).collect()
}

/// Topics of a member's assignment (ConsumerProtocolAssignment: version, [topic, [partition]]).
fn assignment_topics(bytes: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader(bytes);
    r.i16()?;
    let n = usize::try_from(r.i32()?).ok()?;
    let mut topics = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        topics.push(r.string()?);
        let partitions = usize::try_from(r.i32()?).ok()?;
        r.take(partitions.checked_mul(4)?)?;
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as i16).to_be_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn member_subscription_and_assignment_are_decoded() {
        let mut sub = 1i16.to_be_bytes().to_vec();
        sub.extend(2i32.to_be_bytes());
        sub.extend(string("orders"));
        sub.extend(string("payments"));
        sub.extend((-1i32).to_be_bytes()); // null user data
        assert_eq!(
            subscription_topics(&sub),
            Some(vec!["orders".into(), "payments".into()])
        );

        let mut asg = 0i16.to_be_bytes().to_vec();
        asg.extend(1i32.to_be_bytes());
        asg.extend(string("orders"));
        asg.extend(2i32.to_be_bytes());
        asg.extend(0i32.to_be_bytes());
        asg.extend(3i32.to_be_bytes());
        assert_eq!(assignment_topics(&asg), Some(vec!["orders".into()]));
        // Truncated input is rejected rather than misread.
        assert_eq!(assignment_topics(&asg[..asg.len() - 2]), None);
        assert_eq!(subscription_topics(&[0, 1, 0]), None);
    }
}
