//! Declarations resolved from routes and the declarations block.

use super::*;
use crate::noop::Noop;
use crate::routing::{Router, routed_topics};

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
    let routed = routed_topics(&config, &router.groups);
    let specs = resolve(&config, &routed, &declarations, &mut problems);
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
