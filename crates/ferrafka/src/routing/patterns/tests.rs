//! Tests of pattern checks against each engine, of matching semantics, and of the boot checks
//! that need the other routes.

use super::*;
use crate::config::Config;
use crate::noop::Noop;
use crate::routing::{DeadLetterQueue, Router, SubscriptionGroup, resolve};

fn compile(source: &str, engine: PatternEngine) -> Result<TopicPattern, Vec<Problem>> {
    let mut problems = Vec::new();
    let compiled = TopicPattern::compile("routes.g.p.pattern", "p", source, engine, &mut problems);
    match compiled {
        Some(p) if problems.is_empty() => Ok(p),
        _ => Err(problems),
    }
}

fn refused(source: &str, engine: PatternEngine) -> String {
    match compile(source, engine) {
        Ok(_) => panic!("{source} was accepted under {engine:?}"),
        Err(problems) => {
            assert_eq!(problems.len(), 1, "{problems:?}");
            problems[0].to_string()
        }
    }
}

#[test]
fn a_pattern_in_the_shared_subset_is_accepted_by_both_engines() {
    for source in [
        "^orders-[0-9]+$",
        "^(orders|payments)\\.eu-[[:digit:]]{2,3}$",
        "^a.b\\.c[^x-z]*x?$",
    ] {
        for engine in [PatternEngine::Client, PatternEngine::Broker] {
            assert!(compile(source, engine).is_ok(), "{source} under {engine:?}");
        }
    }
}

#[test]
fn constructs_posix_regex_lacks_are_refused_under_the_classic_protocol_naming_them() {
    for (source, named) in [
        ("^orders-\\d+$", "`\\d`"),
        ("^(?i)orders$", "inline flags"),
        ("^(?:orders|payments)$", "non-capturing"),
        ("^orders.*?$", "lazy repetitions"),
        ("^orders[\\.]x$", "inside brackets"),
        ("^orders\\b", "word boundaries"),
        ("^orders\\n", "escapes other than"),
    ] {
        let problem = refused(source, PatternEngine::Client);
        assert!(problem.contains(named), "{source}: {problem}");
        assert!(problem.contains("classic group protocol"), "{problem}");
        assert!(problem.contains("routes.g.p.pattern"), "{problem}");
        // The same pattern is fine where the broker evaluates it.
        assert!(
            compile(source, PatternEngine::Broker).is_ok(),
            "{source} under KIP-848"
        );
    }
}

#[test]
fn constructs_re2j_lacks_are_refused_under_kip_848() {
    for (source, named) in [
        ("^orders[a-z&&[^x]]$", "class set operations"),
        ("^orders\\<", "word boundaries"),
        ("^(?x)orders$", "flags u, R or x"),
        ("^(?<n>orders)$", "(?P<name>"),
    ] {
        let problem = refused(source, PatternEngine::Broker);
        assert!(problem.contains(named), "{source}: {problem}");
        assert!(problem.contains("KIP-848"), "{problem}");
    }
}

#[test]
fn a_pattern_must_start_with_a_caret_and_parse() {
    let problem = refused("orders-.*", PatternEngine::Client);
    assert!(problem.contains("needs to start with `^`"), "{problem}");
    let problem = refused("^orders-(", PatternEngine::Broker);
    assert!(problem.contains("valid regular expression"), "{problem}");
}

#[test]
fn the_classic_engine_searches_and_the_broker_matches_the_whole_name() {
    let client = compile("^orders-[0-9]", PatternEngine::Client).unwrap();
    let broker = compile("^orders-[0-9]", PatternEngine::Broker).unwrap();
    assert!(client.matches("orders-1") && broker.matches("orders-1"));
    // librdkafka's regexec finds a match at the start; RE2/J's matches() needs all of it.
    assert!(client.matches("orders-12"));
    assert!(!broker.matches("orders-12"));
    assert!(!client.matches("old-orders-1") && !broker.matches("old-orders-1"));
    let alternation = compile("^a|^b", PatternEngine::Broker).unwrap();
    assert!(alternation.matches("b") && !alternation.matches("ba"));
}

fn resolve_routes(
    config: &Config,
    f: impl FnOnce(&mut Router),
) -> (Vec<SubscriptionGroup>, Vec<Problem>) {
    let mut router = Router::default();
    f(&mut router);
    let mut problems = Vec::new();
    let sgs = resolve(config, &router.groups, &mut problems);
    (sgs, problems)
}

fn shop() -> Config {
    let mut config = Config::default();
    config.client_id("shop");
    config
}

#[test]
fn a_pattern_route_subscribes_its_regex_and_follows_the_group_protocol() {
    let (sgs, problems) = resolve_routes(&shop(), |r| {
        r.topic("audit").consumer(|| Noop);
        r.pattern("orders", "^orders-[0-9]+$").consumer(|| Noop);
        r.consumer_group("kip848", |g| {
            g.pattern("eu", "^eu-\\d+$")
                .consumer(|| Noop)
                .kafka("group.protocol", "consumer");
        });
    });
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(sgs[0].subscription(), ["audit", "^orders-[0-9]+$"]);
    assert_eq!(sgs[0].active_topics(), ["audit"]);
    let orders = sgs[0].active_patterns()[0];
    assert_eq!(
        (orders.name(), orders.engine()),
        ("orders", PatternEngine::Client)
    );
    let eu = sgs[1].active_patterns()[0];
    assert_eq!(eu.engine(), PatternEngine::Broker);
    assert!(eu.matches("eu-12") && !eu.matches("eu-12x"));
}

#[test]
fn a_pattern_is_checked_against_the_protocol_of_its_own_consumer() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders-\\d+$").consumer(|| Noop);
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].setting, "routes.shop.orders.pattern");
    assert!(problems[0].problem.contains("`\\d`"), "{}", problems[0]);
    assert!(
        problems[0].fix.contains("group.protocol=consumer"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_pattern_that_matches_its_own_dead_letter_topic_is_refused() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders")
            .consumer(|| Noop)
            .dead_letter_queue(DeadLetterQueue::to("orders_dlq"));
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0]
            .problem
            .contains("own dead-letter topic orders_dlq"),
        "{}",
        problems[0]
    );
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders-[0-9]+$")
            .consumer(|| Noop)
            .dead_letter_queue(DeadLetterQueue::to("orders_dlq"));
    });
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn dead_letter_topics_that_feed_back_into_their_routes_are_refused() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders-.*")
            .consumer(|| Noop)
            .dead_letter_queue(DeadLetterQueue::to("failed"));
        r.topic("failed")
            .consumer(|| Noop)
            .dead_letter_queue(DeadLetterQueue::to("orders-failed"));
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].setting, "routes.shop.dead_letter_queue");
    assert!(
        problems[0].value.contains("pattern orders"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].value.contains("topic failed"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_pattern_may_not_reach_a_topic_another_subscription_group_of_its_group_reads() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.topic("orders-1")
            .consumer(|| Noop)
            .subscription_group("slow");
        r.pattern("orders", "^orders-.*").consumer(|| Noop);
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].problem.contains("split its partitions"),
        "{}",
        problems[0]
    );
    // In the same subscription group the topic's own route wins: fine.
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.topic("orders-1").consumer(|| Noop);
        r.pattern("orders", "^orders-.*").consumer(|| Noop);
    });
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn a_pattern_carries_no_declaration_and_needs_the_metadata_refresh() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders-.*")
            .consumer(|| Noop)
            .config(|t| t.partitions(3))
            .kafka("topic.metadata.refresh.interval.ms", "-1");
    });
    let settings: Vec<&str> = problems.iter().map(|p| p.setting.as_str()).collect();
    assert_eq!(
        settings,
        [
            "routes.shop.orders.config",
            "routes.shop.orders.pattern (topic.metadata.refresh.interval.ms)"
        ],
        "{problems:?}"
    );
}

#[test]
fn a_pattern_cannot_report_partition_ends() {
    let (_, problems) = resolve_routes(&shop(), |r| {
        r.pattern("orders", "^orders-[0-9]+$")
            .consumer(|| Noop)
            .eofed(true);
    });
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].setting, "routes.shop.orders.eofed");
    assert!(problems[0].fix.contains("by name"), "{}", problems[0]);
}
