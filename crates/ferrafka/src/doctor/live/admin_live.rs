//! [`LiveCluster`] over the [`Admin`] API: what `doctor --live` reads from a real cluster.
//!
//! A fact the cluster did not deliver is an error here (the reason it is unknown), never an
//! empty answer: a partition that has messages but none could be read in time, or a message
//! without a timestamp.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::message::{Message as _, OwnedMessage};

use super::LiveCluster;
use crate::admin::{Admin, GroupDescription, OffsetSpec, TopicInfo};
use crate::doctor::AppView;
use crate::error::error_chain;

/// [`LiveCluster`] over the [`Admin`] API, with the app's kafka properties.
pub struct AdminLive {
    admin: Admin,
    /// A second client with a short timeout for DescribeConfigs on brokers, which some brokers
    /// (tansu 0.6.0) never answer.
    broker_admin: Admin,
    runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for AdminLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLive").finish_non_exhaustive()
    }
}

/// How long the broker-config request may take at most.
const BROKER_CONFIG_TIMEOUT: Duration = Duration::from_secs(5);

impl AdminLive {
    /// Connects with the app's kafka properties; `timeout` bounds each request.
    pub fn connect(app: &dyn AppView, timeout: Duration) -> crate::Result<Self> {
        let kafka = &app.admin_kafka();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| crate::Error::Server {
                reason: "cannot start a runtime".into(),
                source: Some(e),
            })?;
        Ok(AdminLive {
            admin: Admin::new(kafka)?.with_timeout(timeout),
            broker_admin: Admin::new(kafka)?.with_timeout(timeout.min(BROKER_CONFIG_TIMEOUT)),
            runtime,
        })
    }
}

/// The timestamp (ms) of the first of `messages`, read from `topic`/`partition` where a message
/// was expected at `offset`; an error when none came back or it carries no timestamp.
fn timestamp_of(
    messages: &[OwnedMessage],
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<i64, String> {
    let message = messages
        .first()
        .ok_or_else(|| format!("{topic}/{partition}: no message came back from offset {offset}"))?;
    message
        .timestamp()
        .to_millis()
        .filter(|t| *t >= 0)
        .ok_or_else(|| {
            format!(
                "{topic}/{partition}: the message at offset {} carries no timestamp",
                message.offset()
            )
        })
}

impl LiveCluster for AdminLive {
    fn topics(&self) -> Result<Vec<TopicInfo>, String> {
        self.admin
            .cluster_info()
            .map(|c| c.topics)
            .map_err(|e| error_chain(&e))
    }

    fn topic_settings(&self, topic: &str) -> Result<BTreeMap<String, String>, String> {
        self.runtime
            .block_on(self.admin.describe_topic_config(topic))
            .map(|entries| {
                entries
                    .into_iter()
                    .filter_map(|(k, v)| v.value.map(|v| (k, v)))
                    .collect()
            })
            .map_err(|e| error_chain(&e))
    }

    fn offsets_retention(&self) -> Result<Duration, String> {
        let info = self.admin.cluster_info().map_err(|e| error_chain(&e))?;
        let broker = info
            .brokers
            .first()
            .ok_or("the cluster reported no broker")?;
        let config = self
            .runtime
            .block_on(self.broker_admin.describe_broker_config(broker.id))
            .map_err(|e| {
                format!(
                    "broker {} did not describe its configuration: {}",
                    broker.id,
                    error_chain(&e)
                )
            })?;
        let value = config
            .get("offsets.retention.minutes")
            .and_then(|v| v.value.clone())
            .ok_or_else(|| {
                format!(
                    "broker {} did not report offsets.retention.minutes",
                    broker.id
                )
            })?;
        value
            .trim()
            .parse::<u64>()
            .map(|m| Duration::from_secs(m * 60))
            .map_err(|_| format!("offsets.retention.minutes={value:?} is not a number"))
    }

    fn group(&self, group: &str) -> Result<Option<GroupDescription>, String> {
        self.admin
            .describe_group(group)
            .map_err(|e| error_chain(&e))
    }

    fn newest_timestamps(&self, topic: &str) -> Result<Vec<(i32, i64)>, String> {
        let info = self
            .admin
            .topic_info(topic)
            .map_err(|e| error_chain(&e))?
            .ok_or_else(|| format!("topic {topic} does not exist"))?;
        let mut out = Vec::new();
        for p in &info.partitions {
            let (low, high) = self
                .admin
                .watermarks(topic, p.id)
                .map_err(|e| error_chain(&e))?;
            if high <= low {
                continue; // Empty: nothing to judge.
            }
            let messages = self
                .admin
                .read_messages(topic, p.id, OffsetSpec::At(high - 1), 1)
                .map_err(|e| error_chain(&e))?;
            out.push((p.id, timestamp_of(&messages, topic, p.id, high - 1)?));
        }
        Ok(out)
    }

    fn first_unprocessed(&self, group: &str, topic: &str) -> Result<Vec<(i32, i64)>, String> {
        let lags = self
            .admin
            .lags(group, &[topic])
            .map_err(|e| error_chain(&e))?;
        let mut out = Vec::new();
        for lag in lags {
            let (Some(committed), Some(behind)) = (lag.committed, lag.lag) else {
                continue; // Nothing committed here: the group never stopped in it.
            };
            if behind <= 0 {
                continue;
            }
            let messages = self
                .admin
                .read_messages(topic, lag.partition, OffsetSpec::At(committed), 1)
                .map_err(|e| error_chain(&e))?;
            out.push((
                lag.partition,
                timestamp_of(&messages, topic, lag.partition, committed)?,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedHeaders;

    use super::*;

    fn message(timestamp: Timestamp) -> OwnedMessage {
        OwnedMessage::new(
            None,
            None,
            "t".into(),
            timestamp,
            0,
            7,
            None::<OwnedHeaders>,
        )
    }

    #[test]
    fn a_missing_message_or_timestamp_is_an_error_not_an_empty_answer() {
        let none = timestamp_of(&[], "t", 0, 7).expect_err("nothing came back");
        assert!(
            none.contains("no message came back from offset 7"),
            "{none}"
        );
        let unstamped = timestamp_of(&[message(Timestamp::NotAvailable)], "t", 0, 7);
        assert!(
            unstamped
                .expect_err("no timestamp")
                .contains("offset 7 carries no timestamp")
        );
        let stamped = timestamp_of(&[message(Timestamp::CreateTime(1_000))], "t", 0, 7);
        assert_eq!(stamped, Ok(1_000));
    }
}
