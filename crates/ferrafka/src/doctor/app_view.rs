//! What doctor reads of an app. Doctor judges the app's resolved settings, clients and topics,
//! not the [`App`](crate::App) itself: the server an app starts runs doctor at boot, so doctor
//! must not depend on the app.

use std::collections::BTreeMap;

use crate::admin::TopicSpec;
use crate::config::{Config, ConfigError, Source};
use crate::routing::SubscriptionGroup;

/// An app as doctor examines it, resolved for its environment. Implemented by
/// [`App`](crate::App); doctor reads nothing else of it.
pub(crate) trait AppView {
    /// The settings.
    fn config(&self) -> &Config;
    /// Every problem found in the settings and routes, or `Ok`.
    fn validate(&self) -> Result<(), ConfigError>;
    /// The resolved subscription groups, one librdkafka consumer each.
    fn subscription_groups(&self) -> &[SubscriptionGroup];
    /// The declared topics, sorted by name, with defaults applied.
    fn declared_topics(&self) -> &[TopicSpec];
    /// The librdkafka properties of the producer.
    fn producer_kafka(&self) -> BTreeMap<String, String>;
    /// The producer's properties with the layer each value came from.
    fn producer_kafka_sources(&self) -> BTreeMap<String, (String, Source)>;
    /// The librdkafka properties of the admin client.
    fn admin_kafka(&self) -> BTreeMap<String, String>;
}
