//! Topic settings: describe (DescribeConfigs) and alter (IncrementalAlterConfigs, through
//! `ffi`).

use std::collections::BTreeMap;

use rdkafka::admin::{AdminOptions, ResourceSpecifier};

use super::{Admin, code_error, kafka_error};
use crate::error::{Error, Result};
use crate::sys::admin::{self as ffi, IncrementalOp};

/// One setting as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigValue {
    /// The value; `None` for sensitive or unset values.
    pub value: Option<String>,
    /// Whether it is the broker's default.
    pub is_default: bool,
    /// Whether it cannot be changed.
    pub read_only: bool,
    /// Whether the broker hides its value.
    pub sensitive: bool,
}

/// One change of a topic setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    /// Set the setting to a value.
    Set(String, String),
    /// Remove the topic-level value so the broker's default applies.
    Delete(String),
}

impl Admin {
    /// The settings of a topic as the broker reports them. Real Kafka lists every setting with
    /// its source; tansu 0.6.0 lists only those set explicitly.
    pub async fn describe_topic_config(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<String, ConfigValue>> {
        self.describe_config(
            ResourceSpecifier::Topic(topic),
            "describe topic config",
            topic,
        )
        .await
    }

    /// The settings of one broker (by node id) as it reports them, e.g.
    /// `offsets.retention.minutes`. tansu 0.6.0 does not answer for brokers: the call times out
    /// after [`Admin::timeout`].
    pub async fn describe_broker_config(
        &self,
        broker: i32,
    ) -> Result<BTreeMap<String, ConfigValue>> {
        let resource = format!("broker {broker}");
        self.describe_config(
            ResourceSpecifier::Broker(broker),
            "describe broker config",
            &resource,
        )
        .await
    }

    /// DescribeConfigs for one resource; errors name `operation` and `resource`.
    async fn describe_config(
        &self,
        spec: ResourceSpecifier<'_>,
        operation: &'static str,
        resource: &str,
    ) -> Result<BTreeMap<String, ConfigValue>> {
        let opts = AdminOptions::new().request_timeout(Some(self.timeout));
        let results = self
            .client
            .describe_configs([&spec], &opts)
            .await
            .map_err(|e| kafka_error(operation, resource, &e))?;
        let described = results
            .into_iter()
            .next()
            .ok_or_else(|| Error::Admin {
                operation,
                resource: resource.into(),
                reason: "the broker returned no result".into(),
                source: None,
            })?
            .map_err(|code| code_error(operation, resource, Some(code), code.to_string()))?;
        Ok(described
            .entries
            .into_iter()
            .map(|e| {
                (
                    e.name,
                    ConfigValue {
                        value: e.value,
                        is_default: e.is_default,
                        read_only: e.is_read_only,
                        sensitive: e.is_sensitive,
                    },
                )
            })
            .collect())
    }

    /// Changes settings of a topic, leaving the others as they are (IncrementalAlterConfigs).
    pub async fn alter_topic_config(&self, topic: &str, ops: &[ConfigOp]) -> Result<()> {
        let ops: Vec<IncrementalOp> = ops
            .iter()
            .map(|op| match op {
                ConfigOp::Set(k, v) => IncrementalOp::Set(k.clone(), v.clone()),
                ConfigOp::Delete(k) => IncrementalOp::Delete(k.clone()),
            })
            .collect();
        let client = self.client.clone();
        let name = topic.to_string();
        let timeout = self.timeout;
        // The call blocks on librdkafka's reply queue; keep it off the async workers.
        let outcome = tokio::task::spawn_blocking(move || {
            ffi::incremental_alter_topic(&client, &name, &ops, timeout)
        })
        .await
        .map_err(|e| Error::Admin {
            operation: "alter topic config",
            resource: topic.into(),
            reason: format!("the blocking call did not finish: {e}"),
            source: None,
        })?;
        outcome.map_err(|e| code_error("alter topic config", topic, e.code, e.reason))
    }
}
