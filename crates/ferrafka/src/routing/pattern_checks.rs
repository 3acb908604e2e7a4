//! Boot checks of pattern routes that need the other routes: a pattern must not reach its own
//! dead-letter topic, nor a topic another subscription group of its consumer group reads, and
//! dead-letter topics must not feed back into the routes that fill them.

use std::collections::BTreeMap;

use super::patterns::PatternEngine;
use super::{SubscriptionGroup, Topic, TopicRoute};
use crate::config::Problem;

/// A pattern route's own checks: a usable name, and no declaration (a pattern names no single
/// topic to create).
pub(crate) fn check_route(path: &str, route: &TopicRoute, problems: &mut Vec<Problem>) {
    if route.name.trim().is_empty() || route.name.contains('/') {
        problems.push(Problem::new(
            path,
            &route.name,
            "needs to be a non-empty route name without `/`",
            "name the pattern route, e.g. `r.pattern(\"orders\", \"^orders-.*\")`",
        ));
    }
    if route.declaration.is_some() {
        problems.push(Problem::new(
            &format!("{path}.config"),
            route.pattern.as_deref().unwrap_or_default(),
            "needs to be on a concrete topic: a pattern names no single topic to create",
            "declare each topic on its own inactive route \
             (`r.topic(\"orders-1\").active(false).config(...)`; the pattern still consumes it) \
             or in `declarations`",
        ));
    }
}

/// Under the classic protocol librdkafka finds new topics on its metadata refresh; with the
/// refresh off (-1) a pattern never sees a topic created after start.
pub(crate) fn check_refresh(
    path: &str,
    engine: PatternEngine,
    kafka: &BTreeMap<String, String>,
    problems: &mut Vec<Problem>,
) {
    const REFRESH: &str = "topic.metadata.refresh.interval.ms";
    let value = kafka.get(REFRESH).map(|v| v.trim());
    if engine == PatternEngine::Client && value.is_some_and(|v| v.starts_with('-')) {
        problems.push(Problem::new(
            &format!("{path} ({REFRESH})"),
            value.unwrap_or_default(),
            "needs to be a positive interval for a pattern route under the classic protocol: \
             with the refresh off, topics created after start are never consumed",
            "remove the override (default 300000, 5 min) or set a positive value",
        ));
    }
}

/// One active route of a consumer group, with its subscription group.
struct Routed<'a> {
    subscription_group: &'a str,
    topic: &'a Topic,
}

impl Routed<'_> {
    /// Whether this route consumes `name` in its consumer group, where a concrete route wins
    /// over any pattern.
    fn consumes(&self, name: &str, routes: &[Routed<'_>]) -> bool {
        match self.topic.pattern() {
            Some(p) if self.topic.is_pattern() => {
                p.matches(name)
                    && !routes
                        .iter()
                        .any(|r| !r.topic.is_pattern() && *r.topic.name == *name)
            }
            _ => *self.topic.name == *name,
        }
    }

    fn label(&self) -> String {
        match self.topic.pattern() {
            Some(p) if self.topic.is_pattern() => format!("pattern {} ({})", p.name(), p.regex()),
            _ => format!("topic {}", self.topic.name),
        }
    }
}

/// Checks the pattern routes of each consumer group against the group's other routes.
pub(crate) fn check_overlaps(groups: &[SubscriptionGroup], problems: &mut Vec<Problem>) {
    let mut by_group: BTreeMap<&str, Vec<Routed<'_>>> = BTreeMap::new();
    for sg in groups {
        for topic in sg.topics.iter().filter(|t| t.active) {
            by_group
                .entry(&*sg.consumer_group)
                .or_default()
                .push(Routed {
                    subscription_group: &sg.name,
                    topic,
                });
        }
    }
    for (group_id, routes) in &by_group {
        for route in routes.iter().filter(|r| r.topic.is_pattern()) {
            check_pattern(group_id, route, routes, problems);
        }
        check_dead_letter_cycles(group_id, routes, problems);
    }
}

fn check_pattern(
    group_id: &str,
    route: &Routed<'_>,
    routes: &[Routed<'_>],
    problems: &mut Vec<Problem>,
) {
    let Some(pattern) = route.topic.pattern() else {
        return;
    };
    let path = format!("routes.{group_id}.{}.pattern", pattern.name());
    if let Some(dlq) = route.topic.dead_letter_queue()
        && pattern.matches(&dlq.topic)
    {
        problems.push(Problem::new(
            &path,
            pattern.regex(),
            &format!(
                "needs not to match its own dead-letter topic {}, or failing messages would \
                 come back to it for ever",
                dlq.topic
            ),
            "narrow the pattern (e.g. end it with `$`) or name a dead-letter topic it does not \
             match",
        ));
    }
    for other in routes.iter().filter(|r| {
        !r.topic.is_pattern()
            && r.subscription_group != route.subscription_group
            && pattern.matches(&r.topic.name)
    }) {
        problems.push(Problem::new(
            &path,
            pattern.regex(),
            &format!(
                "needs not to match topic {} of subscription group {} in the same consumer \
                 group: both consumers would subscribe to it and split its partitions",
                other.topic.name, other.subscription_group
            ),
            "route the topic in the pattern's subscription group (a topic routed by name wins \
             over a pattern there) or narrow the pattern",
        ));
    }
}

/// Dead-lettered messages of a route that another route consumes, whose own dead-letter topic
/// leads back, would circle for ever.
fn check_dead_letter_cycles(group_id: &str, routes: &[Routed<'_>], problems: &mut Vec<Problem>) {
    // next[i]: the routes that consume route i's dead-letter topic (itself left out: a route
    // that consumes its own dead-letter topic is reported by its own check).
    let next: Vec<Vec<usize>> = routes
        .iter()
        .enumerate()
        .map(|(i, r)| match r.topic.dead_letter_queue() {
            Some(dlq) => (0..routes.len())
                .filter(|&j| j != i && routes[j].consumes(&dlq.topic, routes))
                .collect(),
            None => Vec::new(),
        })
        .collect();
    for start in 0..routes.len() {
        if let Some(cycle) = cycle_from(start, &next) {
            // Reported once, from its first route.
            if cycle.iter().all(|&i| i >= start) {
                let path: Vec<String> = cycle.iter().map(|&i| routes[i].label()).collect();
                problems.push(Problem::new(
                    &format!("routes.{group_id}.dead_letter_queue"),
                    &path.join(" -> "),
                    "needs not to form a cycle: each route's dead-letter topic is consumed by \
                     the next, so failing messages would circle for ever",
                    "give one of these routes a dead-letter topic no route of the consumer group \
                     consumes",
                ));
            }
        }
    }
}

/// A path of routes from `start` back to `start`, if there is one.
fn cycle_from(start: usize, next: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut stack = vec![(start, vec![start])];
    let mut seen = vec![false; next.len()];
    while let Some((at, path)) = stack.pop() {
        for &to in &next[at] {
            if to == start {
                return Some(path);
            }
            if !seen[to] {
                seen[to] = true;
                let mut longer = path.clone();
                longer.push(to);
                stack.push((to, longer));
            }
        }
    }
    None
}
