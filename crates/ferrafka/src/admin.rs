//! Cluster administration that works without a server: creating and deleting topics, reading
//! metadata and watermarks.
//!
//! Topic creation waits until every partition has a leader in fresh metadata instead of sleeping
//! a fixed time, so producing right after creation works (Kafka propagates topic metadata
//! asynchronously).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;

use crate::error::{Error, Result};

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor.
    pub replication_factor: i32,
    /// Topic-level settings such as `retention.ms`.
    pub settings: BTreeMap<String, String>,
}

impl TopicSpec {
    /// A topic with `partitions` partitions, replication factor 1 and no settings.
    pub fn new(name: impl Into<String>, partitions: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor: 1,
            settings: BTreeMap::new(),
        }
    }
}

/// Admin operations against one cluster.
pub struct Admin {
    client: AdminClient<DefaultClientContext>,
    metadata: BaseConsumer,
    timeout: Duration,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Admin {
    /// Connects with the given librdkafka properties (consumer-only ones are ignored).
    pub fn new(kafka: &BTreeMap<String, String>) -> Result<Self> {
        let mut config = ClientConfig::new();
        for (k, v) in kafka {
            if !crate::config::CONSUMER_ONLY.contains(&k.as_str()) {
                config.set(k, v);
            }
        }
        let client = config.create().map_err(|source| Error::CreateClient {
            client: "admin".into(),
            source: Box::new(source),
        })?;
        let metadata = config.create().map_err(|source| Error::CreateClient {
            client: "admin metadata".into(),
            source: Box::new(source),
        })?;
        Ok(Admin {
            client,
            metadata,
            timeout: Duration::from_secs(30),
        })
    }

    /// Connects to `bootstrap_servers` with default properties.
    pub fn connect(bootstrap_servers: &str) -> Result<Self> {
        Self::new(&BTreeMap::from([(
            "bootstrap.servers".to_string(),
            bootstrap_servers.to_string(),
        )]))
    }

    /// Creates a topic and waits until every partition has a leader. An existing topic is an
    /// error; use [`Admin::ensure_topic`] to accept it.
    pub async fn create_topic(&self, spec: &TopicSpec) -> Result<()> {
        let settings: Vec<(&str, &str)> = spec
            .settings
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        );
        for (k, v) in &settings {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = self
            .client
            .create_topics([&topic], &opts)
            .await
            .map_err(|e| Error::Admin {
                operation: "create topic",
                resource: spec.name.clone(),
                reason: e.to_string(),
            })?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(Error::Admin {
                    operation: "create topic",
                    resource: name,
                    reason: code.to_string(),
                });
            }
        }
        self.wait_for_leaders(&spec.name, spec.partitions).await
    }

    /// Creates the topic unless it exists already.
    pub async fn ensure_topic(&self, spec: &TopicSpec) -> Result<()> {
        match self.create_topic(spec).await {
            Err(Error::Admin { reason, .. })
                if reason == RDKafkaErrorCode::TopicAlreadyExists.to_string() =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Deletes a topic and waits until the metadata no longer lists it.
    pub async fn delete_topic(&self, name: &str) -> Result<()> {
        let opts = AdminOptions::new().operation_timeout(Some(self.timeout));
        let results = self
            .client
            .delete_topics(&[name], &opts)
            .await
            .map_err(|e| Error::Admin {
                operation: "delete topic",
                resource: name.to_string(),
                reason: e.to_string(),
            })?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(Error::Admin {
                    operation: "delete topic",
                    resource: name,
                    reason: code.to_string(),
                });
            }
        }
        let deadline = Instant::now() + self.timeout;
        while Instant::now() < deadline {
            if self.partition_count(name)?.is_none() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(Error::Admin {
            operation: "delete topic",
            resource: name.into(),
            reason: format!("still listed after {:?}", self.timeout),
        })
    }

    /// The partition count of a topic, or `None` when the cluster does not know it.
    pub fn partition_count(&self, name: &str) -> Result<Option<usize>> {
        let metadata = self
            .metadata
            .fetch_metadata(Some(name), self.timeout)
            .map_err(|e| Error::Admin {
                operation: "fetch metadata",
                resource: name.to_string(),
                reason: e.to_string(),
            })?;
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == name && t.error().is_none())
            .map(|t| t.partitions().len()))
    }

    /// Low and high watermarks of a partition.
    pub fn watermarks(&self, topic: &str, partition: i32) -> Result<(i64, i64)> {
        self.metadata
            .fetch_watermarks(topic, partition, self.timeout)
            .map_err(|e| Error::Admin {
                operation: "fetch watermarks",
                resource: format!("{topic}/{partition}"),
                reason: e.to_string(),
            })
    }

    async fn wait_for_leaders(&self, name: &str, partitions: i32) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let metadata = self
                .metadata
                .fetch_metadata(Some(name), Duration::from_secs(5));
            if let Ok(md) = metadata {
                let ready = md
                    .topics()
                    .iter()
                    .find(|t| t.name() == name && t.error().is_none())
                    .is_some_and(|t| {
                        t.partitions().len() == partitions as usize
                            && t.partitions()
                                .iter()
                                .all(|p| p.leader() >= 0 && p.error().is_none())
                    });
                if ready {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Admin {
                    operation: "create topic",
                    resource: name.into(),
                    reason: format!("partitions had no leader within {:?}", self.timeout),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
