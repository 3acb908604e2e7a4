//! Topic lifecycle: create, delete, grow partitions. Each waits until fresh metadata shows the
//! result, within the admin timeout.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use super::{Admin, TopicSpec, code_error, kafka_error};
use crate::error::{Error, Result};

/// How often to re-read metadata while waiting for a change to show.
const POLL: Duration = Duration::from_millis(50);

impl Admin {
    fn options(&self) -> AdminOptions {
        AdminOptions::new()
            .operation_timeout(Some(self.timeout))
            .request_timeout(Some(self.timeout))
    }

    /// Creates a topic and waits until every partition has a leader. An existing topic is an
    /// error; use [`Admin::ensure_topic`] to accept it.
    pub async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        );
        for (k, v) in &spec.settings {
            topic = topic.set(k, v);
        }
        let results = self
            .client
            .create_topics([&topic], &self.options())
            .await
            .map_err(|e| kafka_error("create topic", &spec.name, &e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(code_error(
                    "create topic",
                    name,
                    Some(code),
                    code.to_string(),
                ));
            }
        }
        self.wait_until(
            "create topic",
            &spec.name,
            "partitions had no leader",
            |t| {
                t.is_some_and(|t| {
                    t.partitions.len() == spec.partitions as usize
                        && t.partitions.iter().all(|p| p.leader >= 0)
                })
            },
        )
        .await
    }

    /// Creates the topic unless it exists already.
    pub async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()> {
        match self.create_topic(spec).await {
            Err(e) if super::error_code(&e) == Some(RDKafkaErrorCode::TopicAlreadyExists) => Ok(()),
            other => other,
        }
    }

    /// Deletes a topic and waits until the metadata no longer lists it.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let results = self
            .client
            .delete_topics(&[name], &self.options())
            .await
            .map_err(|e| kafka_error("delete topic", name, &e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(code_error(
                    "delete topic",
                    name,
                    Some(code),
                    code.to_string(),
                ));
            }
        }
        self.wait_until("delete topic", name, "still listed", |t| t.is_none())
            .await
    }

    /// Grows a topic to `total` partitions and waits until the metadata shows them all with a
    /// leader. Kafka cannot shrink a topic: a `total` below the current count is an error.
    pub async fn grow_partitions(&self, name: &str, total: i32) -> Result<()> {
        let current = self.topic_info(name)?.ok_or_else(|| Error::Admin {
            operation: "grow partitions",
            resource: name.to_string(),
            reason: "unknown topic".into(),
            source: None,
        })?;
        if (total as usize) < current.partitions.len() {
            return Err(Error::Admin {
                operation: "grow partitions",
                resource: name.to_string(),
                reason: format!(
                    "cannot shrink from {} to {total} partitions",
                    current.partitions.len()
                ),
                source: None,
            });
        }
        if total as usize == current.partitions.len() {
            return Ok(());
        }
        let request = NewPartitions::new(name, total as usize);
        let results = self
            .client
            .create_partitions([&request], &self.options())
            .await
            .map_err(|e| kafka_error("grow partitions", name, &e))?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(code_error(
                    "grow partitions",
                    name,
                    Some(code),
                    code.to_string(),
                ));
            }
        }
        self.wait_until("grow partitions", name, "partitions had no leader", |t| {
            t.is_some_and(|t| {
                t.partitions.len() == total as usize && t.partitions.iter().all(|p| p.leader >= 0)
            })
        })
        .await
    }

    /// Re-reads the metadata until `done` holds for the topic (`None` when absent) or the
    /// timeout passes; then fails with `what` and the timeout as the reason.
    async fn wait_until(
        &self,
        operation: &'static str,
        name: &str,
        what: &str,
        done: impl Fn(Option<&super::TopicInfo>) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            // A failed read is retried: right after a change the cluster may answer partially.
            if let Ok(info) = self.topic_info(name)
                && done(info.as_ref())
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Admin {
                    operation,
                    resource: name.into(),
                    reason: format!("{what} after {:?}", self.timeout),
                    source: None,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
