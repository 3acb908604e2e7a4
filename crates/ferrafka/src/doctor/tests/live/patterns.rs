//! FD024 (live): routing patterns against the cluster's topics.

use super::*;

fn patterns_app(routes: impl FnOnce(&mut crate::routing::Router)) -> App {
    App::builder()
        .setup(|c| {
            c.client_id("shop");
        })
        .routes(routes)
        .build_with_env([])
}

#[test]
fn fd024_a_pattern_that_matches_no_topic_warns() {
    let app = patterns_app(|r| {
        r.pattern("payments", "^payments-.*")
            .consumer(|| crate::noop::Noop);
        r.pattern("orders", "^orders$")
            .consumer(|| crate::noop::Noop);
    });
    let report = live(&app, &Fake::ready());
    let f = one(&report, "FD024", "pattern payments (^payments-.*)");
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.found.contains("matches no topic"), "{}", f.found);
    assert_eq!(found(&report, "FD024").len(), 1, "{}", report.to_text());
}

#[test]
fn fd024_a_topic_two_patterns_match_names_the_one_that_consumes_it() {
    let app = patterns_app(|r| {
        r.pattern("orders", "^orders.*")
            .consumer(|| crate::noop::Noop);
        r.pattern("dlq", "^orders-dlq$")
            .consumer(|| crate::noop::Noop);
    });
    let report = live(&app, &Fake::ready());
    let f = one(&report, "FD024", "topic orders-dlq");
    assert!(
        f.found.contains("orders consumes it (declared first)"),
        "{}",
        f.found
    );
    // In different subscription groups (different kafka settings) the partitions are split.
    let app = patterns_app(|r| {
        r.pattern("orders", "^orders.*")
            .consumer(|| crate::noop::Noop);
        r.pattern("dlq", "^orders-dlq$")
            .consumer(|| crate::noop::Noop)
            .kafka("fetch.max.bytes", "1000000");
    });
    let report = live(&app, &Fake::ready());
    let f = one(&report, "FD024", "topic orders-dlq");
    assert!(f.found.contains("split its partitions"), "{}", f.found);
}
