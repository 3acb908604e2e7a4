//! One home for librdkafka client properties: which properties only consumers understand, which
//! ones ferrafka owns and why, the librdkafka defaults the checks assume, and the property maps of
//! the consumer, producer and admin clients, each value with the layer it came from.
//!
//! Every client gets `client.id` and every app-wide property (`c.kafka`, `FERRAFKA_KAFKA_*`),
//! security settings included; nothing outside this module layers properties. Secrets are
//! hidden with [`crate::secrets`] wherever a value is shown.
//!
//! What the clients report goes through here too: configuration failures explained
//! (`failures`), and librdkafka's log lines and errors written once per event, levels mapped,
//! repeats summarised (`log`, `repeats`).

mod check;
mod defaults;
mod failures;
mod log;
pub(crate) mod partitioners;
mod repeats;
/// The offset when it is one: librdkafka answers a logical offset (-1001 "invalid", or the
/// beginning/end markers) where a group committed nothing or no message matches.
pub(crate) fn known_offset(offset: rdkafka::Offset) -> Option<i64> {
    match offset {
        rdkafka::Offset::Offset(o) if o >= 0 => Some(o),
        _ => None,
    }
}

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use crate::config::{Config, InitialOffset, Problem, Source};
use crate::secrets::redact;

pub(crate) use check::{check_clients, check_kafka};
pub(crate) use defaults::{effective, is_set, millis};
pub use failures::{ConnectionFailure, FailureKind};
pub(crate) use failures::{FailureWatch, WatchedContext};
pub(crate) use log::{Who, any_broker_up};

/// The librdkafka properties of one client (the producer, the admin client), each value with
/// the layer it came from: what [`App::clients`](crate::App::clients) returns. Its `Debug`
/// output redacts secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientProperties {
    values: BTreeMap<String, (String, Source)>,
}

impl fmt::Debug for ClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.shown().into_iter().map(|[k, v, s]| (k, (v, s))))
            .finish()
    }
}

impl ClientProperties {
    /// The properties of `values`, each from the layer `sources` names (default if none).
    pub(crate) fn from_parts(
        values: &BTreeMap<String, String>,
        sources: &BTreeMap<String, Source>,
    ) -> Self {
        let values = values
            .iter()
            .map(|(k, v)| {
                let source = sources.get(k).cloned().unwrap_or(Source::Default);
                (k.clone(), (v.clone(), source))
            })
            .collect();
        ClientProperties { values }
    }

    fn set(&mut self, name: &str, value: &str, source: Source) {
        self.values
            .insert(name.to_string(), (value.to_string(), source));
    }

    /// The value of `property`, if set.
    pub fn get(&self, property: &str) -> Option<&str> {
        self.values.get(property).map(|(v, _)| v.as_str())
    }

    /// The layer `property`'s value came from, if set.
    pub fn source(&self, property: &str) -> Option<&Source> {
        self.values.get(property).map(|(_, s)| s)
    }

    /// Every property with its value and layer, by name. Values of secrets are included: show
    /// them through [`ferrafka::config::redact`](crate::config::redact).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Source)> {
        self.values
            .iter()
            .map(|(k, (v, s))| (k.as_str(), v.as_str(), s))
    }

    /// The values alone, as a client is configured with them (e.g. for
    /// [`Admin::new`](crate::admin::Admin::new) or [`Producer::new`](crate::Producer::new)).
    pub fn values(&self) -> BTreeMap<String, String> {
        self.values
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    /// Each property with its value and layer.
    pub(crate) fn with_sources(&self) -> &BTreeMap<String, (String, Source)> {
        &self.values
    }

    /// The values and, separately, their layers.
    pub(crate) fn into_parts(self) -> (BTreeMap<String, String>, BTreeMap<String, Source>) {
        self.values
            .into_iter()
            .map(|(k, (v, s))| ((k.clone(), v), (k, s)))
            .unzip()
    }

    /// Rows of name, value (secrets redacted) and layer, as `info` shows them.
    pub(crate) fn shown(&self) -> Vec<[String; 3]> {
        self.values
            .iter()
            .map(|(k, (v, s))| [k.clone(), redact(k, v), s.to_string()])
            .collect()
    }
}

/// librdkafka properties every consumer gets unless a layer above sets them.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    // Statistics feed metrics; librdkafka emits none unless an interval is set.
    ("statistics.interval.ms", "5000"),
];

/// librdkafka properties the producer gets unless a layer above sets them.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    // The Java client's partitioner, which Kafka Streams, Kafka Connect and kafkajs share: a
    // key lands on the partition they pick. librdkafka's own default (consistent_random,
    // CRC32) agrees with it for about one key in six (docs/partitioning.md).
    ("partitioner", partitioners::JAVA_COMPATIBLE),
];

/// `kafka` with the producer defaults it does not set: what a producer built outside an app
/// ([`Producer::new`](crate::Producer::new)) runs with, so it places keys like the app's.
pub(crate) fn with_producer_defaults(kafka: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut kafka = kafka.clone();
    for (k, v) in PRODUCER_DEFAULTS {
        kafka
            .entry((*k).to_string())
            .or_insert_with(|| (*v).to_string());
    }
    kafka
}

/// librdkafka properties whose value ferrafka depends on, with the reason.
pub(crate) const FRAMEWORK_OWNED: &[(&str, &str, &str)] = &[
    (
        "enable.auto.offset.store",
        "false",
        "ferrafka stores offsets only after a batch succeeded; automatic storing would commit \
         messages that were never processed",
    ),
    (
        "enable.auto.commit",
        "true",
        "ferrafka relies on librdkafka's periodic asynchronous commit of the offsets it stored",
    ),
];

/// librdkafka properties that only consumers understand, kept away from the producer and the
/// admin client.
pub(crate) const CONSUMER_ONLY: &[&str] = &[
    "group.id",
    "group.instance.id",
    "group.protocol",
    "group.remote.assignor",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
    "auto.offset.reset",
    "enable.auto.commit",
    "auto.commit.interval.ms",
    "enable.auto.offset.store",
    "enable.partition.eof",
    "fetch.wait.max.ms",
    "fetch.min.bytes",
    "fetch.max.bytes",
    "fetch.message.max.bytes",
    "fetch.error.backoff.ms",
    "fetch.queue.backoff.ms",
    "queued.min.messages",
    "queued.max.messages.kbytes",
    "isolation.level",
    "check.crcs",
    "allow.auto.create.topics",
];

/// Whether `name` is understood by consumers only.
pub(crate) fn is_consumer_only(name: &str) -> bool {
    CONSUMER_ONLY.contains(&name)
}

/// A topic's own consumer settings, which override the app's.
pub(crate) struct TopicOverrides<'a> {
    /// The topic's name (the layer of its overrides).
    pub(crate) topic: &'a str,
    /// Where its group starts without committed offsets, if the topic says.
    pub(crate) initial_offset: Option<InitialOffset>,
    /// Its librdkafka properties.
    pub(crate) kafka: &'a BTreeMap<String, String>,
    /// Its consumer's `eofed` hook is on: librdkafka must report the end of each partition.
    pub(crate) eofed: bool,
}

/// The librdkafka property that makes the consumer report reaching a partition's end, for
/// the `eofed` hook.
pub(crate) const PARTITION_EOF: &str = "enable.partition.eof";

/// The properties of the consumer of `group_id` that reads `topic`, lowest layer first: the
/// consumer defaults, `client.id` and `initial_offset`, the app's properties, the topic's
/// overrides, environment variables, then the properties ferrafka owns.
pub(crate) fn consumer(
    config: &Config,
    group_id: &str,
    topic: &TopicOverrides<'_>,
) -> ClientProperties {
    let mut properties = ClientProperties::default();
    for (k, v) in CONSUMER_DEFAULTS {
        properties.set(k, v, Source::Default);
    }
    properties.set("client.id", &config.client_id, config.source("client_id"));
    properties.set(
        "auto.offset.reset",
        config.initial_offset.as_kafka(),
        config.source("initial_offset"),
    );
    properties.set(
        "auto.commit.interval.ms",
        &config.commit_interval.as_millis().to_string(),
        config.source("commit_interval"),
    );
    app_wide(config, &mut properties, |_| true);
    let layer = Source::Topic(topic.topic.to_string());
    if let Some(offset) = topic.initial_offset {
        properties.set("auto.offset.reset", offset.as_kafka(), layer.clone());
    }
    for (k, v) in topic.kafka {
        properties.set(k, v, layer.clone());
    }
    from_env(config, &mut properties, |_| true);
    if uses_consumer_protocol(&properties.values()) {
        // The broker assigns and times out members (KIP-848); librdkafka refuses these, so a
        // profile's or framework default's value goes (one set by the user is a boot error,
        // see `check_group_protocol`).
        for name in CLASSIC_PROTOCOL_ONLY {
            if properties
                .values
                .get(*name)
                .is_some_and(|(_, s)| matches!(s, Source::Default | Source::Profile(_)))
            {
                properties.values.remove(*name);
            }
        }
    }
    properties.set("group.id", group_id, Source::Framework);
    if topic.eofed {
        properties.set(PARTITION_EOF, "true", Source::Framework);
    }
    for (k, v, _) in FRAMEWORK_OWNED {
        properties.set(k, v, Source::Framework);
    }
    properties
}

/// The producer's properties, lowest layer first: the producer defaults (`partitioner`),
/// `client.id`, the app's properties without consumer-only ones, the producer's own, then
/// environment variables.
pub(crate) fn producer(config: &Config) -> ClientProperties {
    let mut properties = ClientProperties::default();
    for (k, v) in PRODUCER_DEFAULTS {
        properties.set(k, v, Source::Default);
    }
    properties.set("client.id", &config.client_id, config.source("client_id"));
    app_wide(config, &mut properties, |k| !is_consumer_only(k));
    for (k, v) in &config.producer_kafka {
        properties.set(k, v, config.source(&format!("producer_kafka.{k}")));
    }
    from_env(config, &mut properties, |k| !is_consumer_only(k));
    properties
}

/// The admin's properties: `client.id` and every app-wide property, environment variables
/// included. [`crate::admin::Admin`] keeps consumer-only ones for the short-lived consumers of
/// group operations and leaves them out of its admin client.
pub(crate) fn admin(config: &Config) -> ClientProperties {
    let mut properties = ClientProperties::default();
    properties.set("client.id", &config.client_id, config.source("client_id"));
    app_wide(config, &mut properties, |_| true);
    from_env(config, &mut properties, |_| true);
    properties
}

/// Sets the app's `c.kafka` properties that `keep` admits.
fn app_wide(config: &Config, properties: &mut ClientProperties, keep: impl Fn(&str) -> bool) {
    for (k, v) in config.kafka.iter().filter(|(k, _)| keep(k)) {
        properties.set(k, v, config.source(&format!("kafka.{k}")));
    }
}

/// Sets the `FERRAFKA_KAFKA_*` properties that `keep` admits; they win over every other layer.
fn from_env(config: &Config, properties: &mut ClientProperties, keep: impl Fn(&str) -> bool) {
    for (k, (v, var)) in config.env_kafka.iter().filter(|(k, _)| keep(k)) {
        properties.set(k, v, Source::EnvVar(var.clone()));
    }
}

/// Consumer properties of the classic group protocol that librdkafka refuses with
/// `group.protocol=consumer` (KIP-848), where the broker assigns partitions and times members
/// out.
const CLASSIC_PROTOCOL_ONLY: &[&str] = &[
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
];

/// Whether `kafka` selects the consumer group protocol of KIP-848.
pub(crate) fn uses_consumer_protocol(kafka: &BTreeMap<String, String>) -> bool {
    kafka
        .get("group.protocol")
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("consumer"))
}

/// Reports classic-protocol properties the user set for consumers of the KIP-848 protocol: at
/// boot, naming the broker settings that replace them, instead of librdkafka's refusal.
pub(crate) fn check_group_protocol(config: &Config, problems: &mut Vec<Problem>) {
    let mut app: BTreeMap<String, String> = config.kafka.clone();
    app.extend(
        config
            .env_kafka
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone())),
    );
    if !uses_consumer_protocol(&app) {
        return;
    }
    for name in CLASSIC_PROTOCOL_ONLY {
        let in_code = config.kafka.contains_key(*name)
            && !matches!(
                config.source(&format!("kafka.{name}")),
                Source::Default | Source::Profile(_)
            );
        let user_set = in_code || config.env_kafka.contains_key(*name);
        if !user_set {
            continue;
        }
        let replacement = match *name {
            "partition.assignment.strategy" => {
                "the broker assigns partitions: choose its assignor with `group.remote.assignor` \
                 (`uniform` or `range`) or the broker's `group.consumer.assignors`"
            }
            _ => {
                "the broker times members out: set the broker's \
                 `group.consumer.session.timeout.ms` / `group.consumer.heartbeat.interval.ms`"
            }
        };
        problems.push(Problem::new(
            &format!("kafka.{name}"),
            &app[*name],
            &format!("is not allowed with group.protocol=consumer (KIP-848): {replacement}"),
            &format!("remove `{name}`, or use group.protocol=classic"),
        ));
    }
}

/// Reports app-wide properties that would change a value ferrafka depends on.
pub(crate) fn check_framework_owned(config: &Config, problems: &mut Vec<Problem>) {
    for (name, value) in &config.kafka {
        let owned = FRAMEWORK_OWNED
            .iter()
            .find(|(n, v, _)| *n == name.as_str() && *v != value.as_str());
        if let Some((_, expected, why)) = owned {
            problems.push(Problem::new(
                &format!("kafka.{name}"),
                &redact(name, value),
                &format!("needs to be {expected}: {why}"),
                &format!("remove `{name}` from the kafka settings"),
            ));
        }
    }
}

/// Properties a reader ([`crate::reader::TopicReader`]) depends on, with the reason: it reads
/// by assignment, never joins its group and never commits.
pub(crate) const READER_OWNED: &[(&str, &str, &str)] = &[
    (
        "enable.auto.commit",
        "false",
        "a reader never commits: it must not move any group's offsets",
    ),
    (
        "enable.auto.offset.store",
        "false",
        "a reader stores no offsets",
    ),
    (
        "enable.partition.eof",
        "true",
        "the end-of-partition event tells the reader it has caught up",
    ),
    (
        "auto.offset.reset",
        "earliest",
        "a start offset deleted by retention meanwhile continues at the oldest retained message",
    ),
    (
        "group.id",
        "ferrafka-reader",
        "librdkafka assigns partitions only to a consumer with a group id; it is never joined",
    ),
];

/// Properties of the group membership a reader never uses (as for the admin's consumers).
const MEMBERSHIP: &[&str] = &[
    "group.protocol",
    "group.remote.assignor",
    "group.instance.id",
    "partition.assignment.strategy",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "max.poll.interval.ms",
];

/// A reader's properties from a client's (`kafka`: an app's admin properties, or a bare
/// bootstrap list): membership settings dropped, `fetch.wait.max.ms` 100 unless set (a
/// caught-up reader learns of new messages sooner), then [`READER_OWNED`].
pub(crate) fn reader(kafka: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut kafka: BTreeMap<String, String> = kafka
        .iter()
        .filter(|(k, _)| !MEMBERSHIP.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    kafka
        .entry("fetch.wait.max.ms".to_string())
        .or_insert_with(|| "100".to_string());
    for (k, v, _) in READER_OWNED {
        kafka.insert((*k).to_string(), (*v).to_string());
    }
    kafka
}
