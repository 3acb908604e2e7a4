//! Declarative topics: what the app's topics should look like, checked at build time, locked
//! in a reviewed file, and planned against the cluster.
//!
//! Topics are declared inline on a route (`.config(|t| t.partitions(6))`) or in the app's
//! `declarations` block for topics nobody here consumes (produce-only targets, dead-letter
//! topics). Fields a declaration leaves unset come from the block's `defaults`, then from
//! ferrafka's (1 partition, replication factor 1, no settings). `plan` compares declarations
//! with a cluster, `lock` compares them with the lock file.

pub mod lock;
pub mod plan;

use std::collections::BTreeMap;

use crate::admin::TopicSpec;
use crate::config::{Config, Problem};

/// How one topic should look; unset fields fall back to the declaration defaults.
///
/// ```
/// use ferrafka::declaratives::TopicConfig;
/// let t = TopicConfig::default()
///     .partitions(6)
///     .replication_factor(3)
///     .setting("retention.ms", "86400000");
/// assert_eq!(t, TopicConfig::default().setting("retention.ms", "86400000").replication_factor(3).partitions(6));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct TopicConfig {
    partitions: Option<i32>,
    replication_factor: Option<i32>,
    settings: BTreeMap<String, String>,
}

impl TopicConfig {
    /// Sets the partition count.
    pub fn partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }

    /// Sets the replication factor (only applied when the topic is created).
    pub fn replication_factor(mut self, n: i32) -> Self {
        self.replication_factor = Some(n);
        self
    }

    /// Sets a topic-level setting such as `retention.ms` or `cleanup.policy`.
    pub fn setting(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.insert(name.into(), value.into());
        self
    }

    /// This declaration with unset fields taken from `defaults`.
    fn over(&self, defaults: &TopicConfig) -> TopicConfig {
        let mut settings = defaults.settings.clone();
        settings.extend(self.settings.clone());
        TopicConfig {
            partitions: self.partitions.or(defaults.partitions),
            replication_factor: self.replication_factor.or(defaults.replication_factor),
            settings,
        }
    }

    fn into_spec(self, name: &str) -> TopicSpec {
        TopicSpec {
            name: name.to_string(),
            partitions: self.partitions.unwrap_or(1),
            replication_factor: self.replication_factor.unwrap_or(1),
            settings: self.settings,
        }
    }
}

/// Declarations of topics that are not consumed here, and defaults for every declaration.
#[derive(Debug, Clone, Default)]
pub struct Declarations {
    defaults: TopicConfig,
    topics: Vec<(String, TopicConfig)>,
}

impl Declarations {
    /// Sets the defaults every declaration (inline ones included) starts from.
    pub fn defaults(&mut self, config: impl FnOnce(TopicConfig) -> TopicConfig) -> &mut Self {
        self.defaults = config(std::mem::take(&mut self.defaults));
        self
    }

    /// Declares a topic nobody here consumes, e.g. a produce-only or dead-letter topic.
    pub fn topic(
        &mut self,
        name: impl Into<String>,
        config: impl FnOnce(TopicConfig) -> TopicConfig,
    ) -> &mut Self {
        self.topics
            .push((name.into(), config(TopicConfig::default())));
        self
    }
}

impl Declarations {
    /// True when the block declares `name` (the framework's own declarations step aside).
    pub(crate) fn declares(&self, name: &str) -> bool {
        self.topics.iter().any(|(n, _)| n == name)
    }
}

/// A topic the routes name: consumed, or a dead-letter target.
pub(crate) struct RoutedTopic<'a> {
    /// The topic's name.
    pub(crate) name: &'a str,
    /// Where the routes name it, for problems (e.g. `routes.shop.orders.config`).
    pub(crate) path: String,
    /// Its inline declaration (`.config(...)` on the route), if any.
    pub(crate) declaration: Option<&'a TopicConfig>,
}

/// The problem text of a routed topic without a declaration in strict mode.
pub(crate) const NEEDS_DECLARATION: &str =
    "needs a declaration while strict_declarative_topics is on";

/// Resolves every declaration (inline and block) into topic specs sorted by name, and checks
/// them; with `strict_declarative_topics` every routed topic needs one.
pub(crate) fn resolve(
    config: &Config,
    routed: &[RoutedTopic<'_>],
    declarations: &Declarations,
    problems: &mut Vec<Problem>,
) -> Vec<TopicSpec> {
    let mut declared: BTreeMap<String, (String, TopicConfig)> = BTreeMap::new();
    let mut add = |name: &str, path: String, config: &TopicConfig, problems: &mut Vec<Problem>| {
        let resolved = config.over(&declarations.defaults);
        match declared.get(name) {
            Some((first, existing)) if *existing != resolved => problems.push(Problem::new(
                &path,
                name,
                &format!("needs one declaration, but differs from the one at {first}"),
                "declare the topic once, or make both declarations identical",
            )),
            Some(_) => {}
            None => {
                declared.insert(name.to_string(), (path, resolved));
            }
        }
    };
    for (name, topic) in &declarations.topics {
        add(name, format!("declarations.{name}"), topic, problems);
    }
    for topic in routed {
        if let Some(declaration) = topic.declaration {
            add(topic.name, topic.path.clone(), declaration, problems);
        }
    }
    for (name, (path, topic)) in &declared {
        // Routed names were checked with their routes.
        if !routed.iter().any(|r| r.name == name) {
            check_topic_name(name, path, problems);
        }
        check_numbers(name, path, topic, problems);
    }
    if config.strict_declarative_topics_enabled() {
        for RoutedTopic { name, path, .. } in routed {
            if declared.contains_key(*name) {
                continue;
            }
            let fix = match did_you_mean(name, declared.keys()) {
                Some(near) => format!(
                    "did you mean `{near}`? Fix the routed name, or declare `{name}` with \
                     `.config(|t| t.partitions(n))`"
                ),
                None => "declare it with `.config(|t| t.partitions(n))` on the route or in \
                         `declarations`, or turn off `strict_declarative_topics`"
                    .to_string(),
            };
            problems.push(Problem::new(path, name, NEEDS_DECLARATION, &fix));
        }
    }
    declared
        .into_iter()
        .map(|(name, (_, topic))| topic.into_spec(&name))
        .collect()
}

/// Kafka's rules for topic names, plus ferrafka's: no mix of `.` and `_`, which collide in
/// metric names.
pub(crate) fn check_topic_name(name: &str, path: &str, problems: &mut Vec<Problem>) {
    let mut fail = |problem: &str, fix: &str| problems.push(Problem::new(path, name, problem, fix));
    if name.is_empty() || name.len() > 249 {
        fail("needs to be 1 to 249 characters long", "rename the topic");
    } else if name == "." || name == ".." {
        fail(
            "needs to be something other than `.` or `..`",
            "rename the topic",
        );
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        fail(
            &format!("needs to use only ASCII letters, digits, `.`, `_` and `-` (found {c:?})"),
            "rename the topic",
        );
    } else if name.contains('.') && name.contains('_') {
        fail(
            "needs to use either `.` or `_`, not both: Kafka metric names treat them alike, so \
             such topics can collide",
            "pick one separator",
        );
    }
}

fn check_numbers(name: &str, path: &str, topic: &TopicConfig, problems: &mut Vec<Problem>) {
    if let Some(n) = topic.partitions.filter(|n| *n < 1) {
        problems.push(Problem::new(
            &format!("{path}.partitions"),
            &n.to_string(),
            &format!("needs to be at least 1 for topic {name}"),
            "set `.partitions(n)` with n >= 1",
        ));
    }
    if let Some(n) = topic.replication_factor.filter(|n| *n < 1) {
        problems.push(Problem::new(
            &format!("{path}.replication_factor"),
            &n.to_string(),
            &format!("needs to be at least 1 for topic {name}"),
            "set `.replication_factor(n)` with n >= 1",
        ));
    }
}

/// The declared name closest to `name` when it is one or two edits away.
fn did_you_mean<'a>(name: &str, declared: impl Iterator<Item = &'a String>) -> Option<&'a str> {
    declared
        .map(|d| (strsim::damerau_levenshtein(name, d), d))
        .filter(|(distance, _)| (1..=2).contains(distance))
        .min()
        .map(|(_, d)| d.as_str())
}

#[cfg(test)]
mod tests;
