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
use crate::routing::ConsumerGroupRoute;

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

/// The problem text of a routed topic without a declaration in strict mode.
pub(crate) const NEEDS_DECLARATION: &str =
    "needs a declaration while strict_declarative_topics is on";

/// Resolves every declaration (inline and block) into topic specs sorted by name, and checks
/// them; with `strict_declarative_topics` every routed topic needs one.
pub(crate) fn resolve(
    config: &Config,
    routes: &[ConsumerGroupRoute],
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
    let mut routed: Vec<(String, String)> = Vec::new();
    for group in routes {
        let group_id = group.name.as_deref().unwrap_or(config.default_group_id());
        for route in &group.topics {
            let path = format!("routes.{group_id}.{}.config", route.name);
            if let Some(topic) = &route.declaration {
                add(&route.name, path.clone(), topic, problems);
            }
            routed.push((route.name.clone(), path));
            // Dead-letter topics are written to by this app: they need declarations as well.
            if let Some(dlq) = &route.dead_letter_queue {
                let path = format!("routes.{group_id}.{}.dead_letter_queue", route.name);
                routed.push((dlq.topic.clone(), path));
            }
        }
    }
    for (name, (path, topic)) in &declared {
        if !routed.iter().any(|(r, _)| r == name) {
            crate::routing::check_topic_name(name, path, problems);
        }
        check_numbers(name, path, topic, problems);
    }
    if config.strict_declarative_topics_enabled() {
        for (name, path) in &routed {
            if declared.contains_key(name) {
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
mod tests {
    use super::*;
    use crate::routing::Router;
    use crate::{ConsumeResult, Consumer, Context, Messages};

    struct Noop;
    impl Consumer for Noop {
        async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult {
            Ok(())
        }
    }

    fn run(
        strict: bool,
        routes: impl FnOnce(&mut Router),
        block: impl FnOnce(&mut Declarations),
    ) -> (Vec<TopicSpec>, Vec<Problem>) {
        let mut config = Config::default();
        config.strict_declarative_topics(strict);
        let mut router = Router::default();
        routes(&mut router);
        let mut declarations = Declarations::default();
        block(&mut declarations);
        let mut problems = Vec::new();
        let specs = resolve(&config, &router.groups, &declarations, &mut problems);
        (specs, problems)
    }

    #[test]
    fn strict_mode_requires_dead_letter_topics_to_be_declared_too() {
        use crate::routing::DeadLetterQueue;
        let (_, problems) = run(
            true,
            |r| {
                r.topic("orders")
                    .consumer(|| Noop)
                    .config(|t| t.partitions(3))
                    .dead_letter_queue(DeadLetterQueue::to("orders-dlq"));
            },
            |_| {},
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].setting,
            "routes.ferrafka.orders.dead_letter_queue"
        );
        assert_eq!(problems[0].value, "orders-dlq");
        let (_, problems) = run(
            true,
            |r| {
                r.topic("orders")
                    .consumer(|| Noop)
                    .config(|t| t.partitions(3))
                    .dead_letter_queue(DeadLetterQueue::to("orders-dlq"));
            },
            |d| {
                d.topic("orders-dlq", |t| t.partitions(1));
            },
        );
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn inline_and_block_declarations_merge_with_defaults() {
        let (specs, problems) = run(
            true,
            |r| {
                r.topic("orders")
                    .consumer(|| Noop)
                    .config(|t| t.partitions(6).setting("retention.ms", "86400000"));
            },
            |d| {
                d.defaults(|t| t.replication_factor(3).setting("cleanup.policy", "delete"));
                d.topic("orders-dlq", |t| t.partitions(1).replication_factor(2));
            },
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "orders");
        assert_eq!((specs[0].partitions, specs[0].replication_factor), (6, 3));
        assert_eq!(
            specs[0].settings,
            BTreeMap::from([
                ("cleanup.policy".into(), "delete".into()),
                ("retention.ms".into(), "86400000".into())
            ])
        );
        assert_eq!(specs[1].name, "orders-dlq");
        assert_eq!((specs[1].partitions, specs[1].replication_factor), (1, 2));
    }

    #[test]
    fn strict_mode_names_undeclared_topics_and_suggests_near_names() {
        let (_, problems) = run(
            true,
            |r| {
                r.topic("ordres").consumer(|| Noop);
                r.topic("visits").consumer(|| Noop);
            },
            |d| {
                d.topic("orders", |t| t);
            },
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].setting, "routes.ferrafka.ordres.config");
        assert!(
            problems[0].fix.starts_with("did you mean `orders`?"),
            "{}",
            problems[0]
        );
        assert_eq!(problems[1].value, "visits");
        assert!(!problems[1].fix.contains("did you mean"), "{}", problems[1]);
    }

    #[test]
    fn lenient_mode_accepts_undeclared_routes() {
        let (specs, problems) = run(
            false,
            |r| {
                r.topic("visits").consumer(|| Noop);
            },
            |_| {},
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(specs.is_empty());
    }

    #[test]
    fn conflicting_and_invalid_declarations_are_reported() {
        let (_, problems) = run(
            false,
            |r| {
                r.topic("orders")
                    .consumer(|| Noop)
                    .config(|t| t.partitions(3));
                r.consumer_group("other", |g| {
                    g.topic("orders")
                        .consumer(|| Noop)
                        .config(|t| t.partitions(4));
                });
            },
            |d| {
                d.topic("bad", |t| t.partitions(0).replication_factor(-1));
                d.topic("a.b_c", |t| t);
            },
        );
        let settings: Vec<_> = problems.iter().map(|p| p.setting.as_str()).collect();
        assert_eq!(
            settings,
            [
                "routes.other.orders.config",
                "declarations.a.b_c",
                "declarations.bad.partitions",
                "declarations.bad.replication_factor",
            ]
        );
        assert!(
            problems[0]
                .problem
                .contains("routes.ferrafka.orders.config"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn did_you_mean_only_for_one_or_two_edits() {
        let declared = ["orders".to_string(), "payments".to_string()];
        assert_eq!(did_you_mean("order", declared.iter()), Some("orders"));
        assert_eq!(did_you_mean("paymnets", declared.iter()), Some("payments"));
        assert_eq!(did_you_mean("refunds", declared.iter()), None);
        assert_eq!(did_you_mean("orders", declared.iter()), None);
    }
}
