//! Resolving the routes against the settings: every route checked (all problems at once), its
//! settings filled in from the app-wide ones, and the topics placed in subscription groups, one
//! librdkafka consumer each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::patterns::{PatternEngine, TopicPattern};
use super::{ConsumerGroupRoute, DEFAULT_SUBSCRIPTION_GROUP, SubscriptionGroup, Topic, TopicRoute};
use crate::config::{Config, Problem, Source};
use crate::declaratives::check_topic_name;
use crate::kafka::{self, TopicOverrides};

/// Resolves routes into subscription groups and collects every routing problem.
pub(crate) fn resolve(
    config: &Config,
    groups: &[ConsumerGroupRoute],
    problems: &mut Vec<Problem>,
) -> Vec<SubscriptionGroup> {
    let mut resolved: Vec<SubscriptionGroup> = Vec::new();
    for group in groups {
        let group_id: Arc<str> = group
            .name
            .as_deref()
            .unwrap_or(config.default_group_id())
            .into();
        if group_id.trim().is_empty() {
            problems.push(Problem::new(
                "routes.consumer_group",
                &group_id,
                "needs to be a non-empty consumer group id",
                "give `consumer_group` a name",
            ));
        }
        let mut seen: Vec<(&str, bool)> = Vec::new();
        for route in &group.topics {
            let key = (route.name.as_str(), route.pattern.is_some());
            if seen.contains(&key) {
                problems.push(Problem::new(
                    &format!("routes.{group_id}.{}", route.name),
                    &route.name,
                    &format!(
                        "needs to be routed once per consumer group, {group_id} routes it twice"
                    ),
                    "remove the second route or move it to another consumer group",
                ));
            }
            seen.push(key);
            let (max_messages, max_wait_time) = check_route(config, &group_id, route, problems);
            let overrides = TopicOverrides {
                topic: &route.name,
                initial_offset: route.initial_offset,
                kafka: &route.kafka,
                eofed: route.eofed,
            };
            let kafka = kafka::consumer(config, &group_id, &overrides).into_parts();
            let pattern = route.pattern.as_deref().and_then(|regex| {
                let path = format!("routes.{group_id}.{}.pattern", route.name);
                let engine = PatternEngine::of(&kafka.0);
                super::pattern_checks::check_refresh(&path, engine, &kafka.0, problems);
                TopicPattern::compile(&path, &route.name, regex, engine, problems)
            });
            let topic = Arc::new(Topic {
                virtual_partitions: route.virtual_partitions.clone(),
                filters: route.filters.clone(),
                tick_interval: route.tick_interval,
                idle_after: route.idle_after,
                eofed: route.eofed,
                dead_letter_queue: route.dead_letter_queue.clone(),
                name: route.pattern.as_deref().unwrap_or(&route.name).into(),
                pattern: pattern.map(Arc::new),
                consumer_group: group_id.clone(),
                max_messages,
                max_wait_time,
                manual_offset_management: route.manual_offset_management,
                transactional: route.transactional,
                web_masked: route.web_masked,
                active: route.active,
                consumer_persistence: route
                    .consumer_persistence
                    .unwrap_or(config.consumer_persistence),
                factory: route.factory.clone(),
                deserializer: route.deserializer.clone(),
            });
            let base = route
                .subscription_group
                .as_deref()
                .unwrap_or(DEFAULT_SUBSCRIPTION_GROUP);
            place(&mut resolved, &group_id, base, kafka, topic);
        }
    }
    super::pattern_checks::check_overlaps(&resolved, problems);
    distinguish_static_members(&mut resolved);
    check_revocation_timeout(config, &resolved, problems);
    resolved
}

/// Checks one route (topic name, consumer, batch settings, dead-letter queue, virtual
/// partitions) and returns its resolved `max_messages` and `max_wait_time`.
fn check_route(
    config: &Config,
    group_id: &str,
    route: &TopicRoute,
    problems: &mut Vec<Problem>,
) -> (usize, Duration) {
    let path = format!("routes.{group_id}.{}", route.name);
    if route.pattern.is_none() {
        check_topic_name(&route.name, &path, problems);
    } else {
        super::pattern_checks::check_route(&path, route, problems);
        if route.eofed {
            // librdkafka names only the partition whose end was reached, not its topic.
            problems.push(Problem::new(
                &format!("{path}.eofed"),
                "true",
                "is only possible on a named topic route: a pattern may match several topics, and librdkafka's end-of-partition report does not say which one",
                "route the topics that need `eofed` by name, or drop `.eofed(true)` from the pattern",
            ));
        }
    }
    if route.active && route.factory.is_none() {
        problems.push(Problem::new(
            &format!("{path}.consumer"),
            "none",
            "needs a consumer for an active topic",
            "add `.consumer(|| MyConsumer)` or `.active(false)`",
        ));
    }
    let max_messages = route.max_messages.unwrap_or(config.max_messages);
    if max_messages == 0 {
        problems.push(Problem::new(
            &format!("{path}.max_messages"),
            "0",
            "needs to be at least 1",
            "set `.max_messages(n)` with n >= 1",
        ));
    }
    let max_wait_time = route.max_wait_time.unwrap_or(config.max_wait_time);
    if route.max_wait_time.is_some() && max_wait_time >= config.shutdown_timeout {
        problems.push(Problem::new(
            &format!("{path}.max_wait_time"),
            &format!("{max_wait_time:?}"),
            &format!(
                "needs to be shorter than shutdown_timeout ({:?})",
                config.shutdown_timeout
            ),
            "lower the topic's `max_wait_time` or raise `shutdown_timeout`",
        ));
    }
    if let Some(dlq) = &route.dead_letter_queue {
        let dlq_path = format!("{path}.dead_letter_queue");
        check_topic_name(&dlq.topic, &dlq_path, problems);
        if route.pattern.is_none() && dlq.topic == route.name {
            problems.push(Problem::new(
                &dlq_path,
                &dlq.topic,
                "needs to differ from the topic it serves, or failing messages would loop",
                "name a separate dead-letter topic, e.g. `<topic>_dlq`",
            ));
        }
    }
    if let Some(vp) = &route.virtual_partitions {
        vp.check(&path, problems);
    }
    for (name, value) in [
        ("tick_interval", route.tick_interval),
        ("idle_after", route.idle_after),
    ] {
        if value.is_some_and(|v| v.is_zero()) {
            problems.push(Problem::new(
                &format!("{path}.{name}"),
                "0s",
                "needs to be longer than zero",
                &format!("set `.{name}(d)` with a positive duration, e.g. 1s, or leave it out"),
            ));
        }
    }
    if route.transactional {
        check_transactional(config, &path, route, problems);
    }
    if let Some(name) = route
        .subscription_group
        .as_deref()
        .filter(|n| n.contains('/'))
    {
        // Events and metrics name it `consumer_group/subscription_group`.
        problems.push(Problem::new(
            &format!("{path}.subscription_group"),
            name,
            "needs to be a name without `/`",
            "name the subscription group with letters, digits, `-`, `_` or `.`",
        ));
    }
    (max_messages, max_wait_time)
}

/// A rebalance holds the poll thread for up to `revocation_timeout`; librdkafka expels a member
/// that does not poll for `max.poll.interval.ms`, so the first must stay below the second.
fn check_revocation_timeout(
    config: &Config,
    groups: &[SubscriptionGroup],
    problems: &mut Vec<Problem>,
) {
    for sg in groups {
        let poll = kafka::millis(&sg.kafka, "max.poll.interval.ms")
            .map_or(Duration::MAX, Duration::from_millis);
        if config.revocation_timeout >= poll {
            problems.push(Problem::new(
                "revocation_timeout",
                &format!("{:?}", config.revocation_timeout),
                &format!(
                    "needs to be shorter than max.poll.interval.ms ({poll:?}) of subscription \
                     group {}/{}, or a rebalance that waits for running batches gets the member \
                     expelled from its group",
                    sg.consumer_group, sg.name
                ),
                "lower `revocation_timeout` or raise `max.poll.interval.ms`",
            ));
        }
    }
}

/// `group.instance.id` must be unique per member of a consumer group, and each subscription
/// group is its own member: when a consumer group has several, each gets the id suffixed with
/// its subscription group's name.
fn distinguish_static_members(resolved: &mut [SubscriptionGroup]) {
    const ID: &str = "group.instance.id";
    let shared: Vec<Arc<str>> = resolved
        .iter()
        .filter(|sg| {
            resolved
                .iter()
                .filter(|o| o.consumer_group == sg.consumer_group)
                .count()
                > 1
        })
        .map(|sg| sg.consumer_group.clone())
        .collect();
    for sg in resolved.iter_mut() {
        if shared.contains(&sg.consumer_group)
            && let Some(id) = sg.kafka.get(ID)
        {
            let unique = format!("{id}-{}", sg.name);
            sg.kafka.insert(ID.to_string(), unique);
        }
    }
}

/// Adds `topic` to the subscription group with the same base name and kafka settings, or to a
/// new one (`base`, then `base-2`, `base-3`, …).
fn place(
    resolved: &mut Vec<SubscriptionGroup>,
    group_id: &Arc<str>,
    base: &str,
    (kafka, kafka_sources): (BTreeMap<String, String>, BTreeMap<String, Source>),
    topic: Arc<Topic>,
) {
    // librdkafka names only the partition whose end it reached, so a consumer reports ends
    // for the topic of at most one `eofed` route, alone in its subscription group.
    let eofed = topic.eofed;
    let same_group = |sg: &&mut SubscriptionGroup| {
        sg.consumer_group == *group_id && !eofed && !sg.topics.iter().any(|t| t.eofed)
    };
    let is_base = |name: &str| {
        name == base
            || name
                .strip_prefix(base)
                .and_then(|s| s.strip_prefix('-'))
                .is_some_and(|n| n.parse::<u32>().is_ok())
    };
    if let Some(sg) = resolved
        .iter_mut()
        .filter(same_group)
        .find(|sg| is_base(&sg.name) && sg.kafka == kafka)
    {
        sg.topics.push(topic);
        return;
    }
    let taken = resolved
        .iter()
        .filter(|sg| sg.consumer_group == *group_id && is_base(&sg.name))
        .count();
    let name = if taken == 0 {
        base.to_string()
    } else {
        format!("{base}-{}", taken + 1)
    };
    resolved.push(SubscriptionGroup {
        name,
        consumer_group: group_id.clone(),
        topics: vec![topic],
        kafka,
        kafka_sources,
    });
}

/// A transactional route needs the app's `transactional_id` (the base of its producers' stable
/// ids) and runs without virtual partitions, whose groups would each need the partition's
/// offset.
fn check_transactional(
    config: &Config,
    path: &str,
    route: &TopicRoute,
    problems: &mut Vec<Problem>,
) {
    match config.transactional_id.as_deref().map(str::trim) {
        None | Some("") => problems.push(Problem::new(
            "transactional_id",
            config.transactional_id.as_deref().unwrap_or("unset"),
            &format!(
                "needs to be set for the transactional route {path}: it names the process's \
                 transactional producers (`<transactional_id>-<slot>`), stable across restarts \
                 and different for every process of the fleet"
            ),
            "set `c.transactional_id(\"orders-enricher-0\")` in `setup`, e.g. from the pod's \
             stable name (a StatefulSet ordinal) or its `group.instance.id`",
        )),
        Some(_) => {}
    }
    if route.virtual_partitions.is_some() {
        problems.push(Problem::new(
            &format!("{path}.transactional"),
            "true",
            "needs a route without virtual partitions: a transaction commits the partition's \
             offset, which no single virtual group owns",
            "remove `.virtual_partitions(..)` or `.transactional(true)` from the route",
        ));
    }
}
