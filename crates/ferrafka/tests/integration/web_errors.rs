//! The errors pages against a broker: an app of two consumer groups whose consumers each fail
//! one batch once (one panics, one returns an error) publishes two errors; the `/errors` page of a router built on the same app
//! lists them newest first, filters them by group, topic and time, and the detail page of the
//! payment's error shows its chain (escaped) and coordinates and links to the message in the
//! explorer, which shows it. Everything produced is consumed, gap-free.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use ferrafka::{App, ConsumeResult, Consumer, Context, Filters, Messages};

use crate::support::*;
use crate::web_router::fetch;

/// Fails the first batch holding `fail_on`, with an error whose cause holds markup, or (with
/// `panics`) by panicking.
struct FailingOnce {
    tracker: Tracker,
    fail_on: u64,
    what: &'static str,
    panics: bool,
    failed: Arc<AtomicBool>,
}

impl Consumer for FailingOnce {
    async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
        let wanted = self.fail_on.to_string();
        let holds = messages
            .iter()
            .any(|m| m.payload() == Some(wanted.as_bytes()));
        if holds && !self.failed.swap(true, Ordering::SeqCst) {
            if self.panics {
                panic!("{} {} exploded", self.what, self.fail_on);
            }
            return Err(format!("{} {} declined: card <expired>", self.what, self.fail_on).into());
        }
        self.tracker.record(0, messages)
    }
}

struct Names {
    orders: String,
    payments: String,
    shop: String,
    billing: String,
    reports: String,
    errors: String,
}

/// The app; each topic's consumer records into its own tracker.
fn app(bootstrap: &str, n: &Names, trackers: &[Tracker; 2]) -> App {
    let bootstrap = bootstrap.to_string();
    let (shop, reports, errors) = (n.shop.clone(), n.reports.clone(), n.errors.clone());
    let (orders, payments, billing) = (n.orders.clone(), n.payments.clone(), n.billing.clone());
    let [t1, t2] = trackers.clone();
    let (f1, f2) = (Arc::default(), Arc::default());
    App::builder_with_env([])
        .setup(move |c| {
            c.client_id("web-errors")
                .group_id(shop)
                .kafka("bootstrap.servers", bootstrap)
                .max_wait_time(Duration::from_millis(100))
                .pause_timeout(Duration::from_millis(200))
                .reporting(true)
                .report_interval(Duration::from_secs(1))
                .commands_topic(format!("{reports}-commands"))
                .audit_topic(format!("{reports}-audit"))
                .reports_topic(reports)
                .errors_topic(errors);
        })
        .routes(move |r| {
            r.topic(orders).consumer(move || FailingOnce {
                tracker: t1.clone(),
                fail_on: 7,
                what: "order",
                panics: true,
                failed: Arc::clone(&f1),
            });
            r.consumer_group(billing, |g| {
                g.topic(payments).consumer(move || FailingOnce {
                    tracker: t2.clone(),
                    fail_on: 13,
                    what: "payment",
                    panics: false,
                    failed: Arc::clone(&f2),
                });
            });
        })
        .build_with_env([])
}

/// The `data-*` attribute `name` of the first element holding `after` onwards.
fn attr(html: &str, after: &str, name: &str) -> String {
    let from = html
        .find(after)
        .unwrap_or_else(|| panic!("{after} in {html}"));
    let rest = &html[from..];
    let start = rest.find(&format!(r#"{name}=""#)).expect(name) + name.len() + 2;
    rest[start..start + rest[start..].find('"').unwrap()].to_string()
}

fn rows(html: &str) -> usize {
    html.matches(r#"data-testid="error-row""#).count()
}

#[test]
fn the_errors_pages_list_filter_and_link_a_failed_batch_to_its_message() {
    let rt = runtime();
    let cluster = Cluster::start();
    let n = Names {
        orders: unique("web-errors-orders"),
        payments: unique("web-errors-payments"),
        shop: unique("web-errors-shop"),
        billing: unique("web-errors-billing"),
        reports: unique("web-errors-reports"),
        errors: unique("web-errors-errors"),
    };
    let trackers = [Tracker::default(), Tracker::default()];
    let app = app(&cluster.bootstrap(), &n, &trackers);
    for spec in app.declared_topics() {
        rt.block_on(cluster.admin.create_topic(spec))
            .unwrap_or_else(|e| panic!("creating {}: {e}", spec.name));
    }
    for topic in [&n.orders, &n.payments] {
        cluster.create_topic(&rt, topic, 2);
        cluster.produce_spread(&rt, topic, 0, 20, 2);
    }
    let server = app.start(&Filters::default()).expect("starts");
    for tracker in &trackers {
        assert!(
            tracker.wait_for(20, Duration::from_secs(60)),
            "consumed {}",
            tracker.len()
        );
    }
    let router = ferrafka::web::Web::new(&app).unwrap().router().unwrap();

    let mut html = String::new();
    let listed = wait_until(Duration::from_secs(30), || {
        html = rt.block_on(fetch(&router, "/errors")).1;
        rows(&html) == 2
    });
    assert!(listed, "two errors listed: {html}");
    let id = server.process_id().to_string();
    assert!(html.contains(&format!(">{id}</a>")), "{html}");
    assert!(html.contains("card &lt;expired&gt;"), "escaped: {html}");
    let times: Vec<i64> = html
        .split(r#"data-testid="error-row""#)
        .skip(1)
        .map(|row| attr(row, "data-at", "data-at").parse().unwrap())
        .collect();
    assert!(times[0] >= times[1], "newest first: {times:?}");

    let only = |path: String, topic: &str| {
        let (status, html) = rt.block_on(fetch(&router, &path));
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(rows(&html), 1, "{path}: {html}");
        assert!(
            html.contains(&format!(r#"data-topic="{topic}""#)),
            "{path}: {html}"
        );
        html
    };
    let payments = only(format!("/errors?topic={}", n.payments), &n.payments);
    let orders = only(format!("/errors?group={}", n.shop), &n.orders);
    // The panic's error carries the backtrace of where it happened.
    let href = attr(&orders, r#"data-testid="error-link""#, "href");
    let (_, detail) = rt.block_on(fetch(&router, &href));
    assert!(
        detail.contains("<li>consumer panicked</li><li>order 7 exploded</li>"),
        "{detail}"
    );
    let backtrace = &detail[detail
        .find(r#"<pre data-testid="backtrace">"#)
        .expect(&detail)..];
    assert!(backtrace.contains("web_errors::FailingOnce"), "{backtrace}");
    only(
        format!("/errors?group={}&topic={}", n.billing, n.payments),
        &n.payments,
    );
    let both = "/errors?since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z";
    assert_eq!(rows(&rt.block_on(fetch(&router, both)).1), 2);
    for path in [
        "/errors?since=2100-01-01T00:00:00Z".to_string(),
        "/errors?until=2000-01-01T00:00:00Z".to_string(),
        format!("/errors?group={}&topic={}", n.shop, n.payments),
    ] {
        let html = rt.block_on(fetch(&router, &path)).1;
        assert_eq!(rows(&html), 0, "{path}: {html}");
        assert!(html.contains(r#"data-testid="no-errors""#), "{path}");
    }

    // The payment's error: 13 went to partition 1 (13 % 2) at offset 6 (13 / 2).
    let href = attr(&payments, r#"data-testid="error-link""#, "href");
    let (status, detail) = rt.block_on(fetch(&router, &href));
    assert_eq!(status, StatusCode::OK, "{href}: {detail}");
    assert!(
        detail.contains(
            r#"<ol data-testid="error-chain"><li>payment 13 declined</li><li>card &lt;expired&gt;</li></ol>"#
        ),
        "{detail}"
    );
    assert!(
        detail.contains(r#"data-testid="error-kind">batch<"#),
        "{detail}"
    );
    assert!(
        detail.contains(r#"data-testid="error-attempt">1<"#),
        "{detail}"
    );
    assert!(
        detail.contains(r#"data-testid="error-partition">1<"#),
        "{detail}"
    );
    assert!(
        detail.contains(&format!(r#"href="/groups/{}">"#, n.billing)),
        "{detail}"
    );
    assert!(detail.contains(r#"data-testid="no-backtrace""#), "{detail}");
    let explorer = attr(&detail, r#"data-testid="explorer-link""#, "href");
    let prefix = format!("/topics/{}/1?offset=", n.payments);
    let first: i64 = explorer
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{explorer} starts with {prefix}"))
        .parse()
        .unwrap();
    assert!(first <= 6, "the batch starts at {first}, at or before 6");
    let (status, message) = rt.block_on(fetch(&router, &explorer));
    assert_eq!(status, StatusCode::OK);
    assert!(
        message.contains(r#"data-testid="message-row" data-offset="6""#),
        "{message}"
    );
    assert!(message.contains("<pre>13</pre>"), "{message}");

    let (status, _) = rt.block_on(fetch(&router, "/errors/0/999999"));
    assert_eq!(status, StatusCode::NOT_FOUND, "no record there");

    assert_eq!(server.shutdown(), ferrafka::ServerExit::Clean);
    for tracker in &trackers {
        let seen = tracker.all();
        assert_eq!(seen.len(), 20, "each message consumed once after the retry");
        assert_contiguous_per_partition(&seen);
    }
}

/// The `data-at` of every error row, top to bottom.
fn row_times(html: &str) -> Vec<i64> {
    html.split(r#"data-testid="error-row""#)
        .skip(1)
        .map(|row| attr(row, "data-at", "data-at").parse().unwrap())
        .collect()
}

#[test]
fn the_list_reads_a_bounded_window_and_pages_back_by_time_without_gaps() {
    const ERRORS: i64 = 2_100;
    let rt = runtime();
    let cluster = Cluster::start();
    let (errors, reports) = (unique("web-errors-paging"), unique("web-errors-paging-r"));
    cluster.create_topic(&rt, &errors, 1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // An error a second for 35 minutes, each record stamped with its error's time.
    let t0 = now - ERRORS * 1_000;
    let payloads: Vec<(i64, String)> = (0..ERRORS)
        .map(|i| {
            let at = t0 + i * 1_000;
            let topic = if i % 2 == 0 { "even" } else { "odd" };
            let report = serde_json::json!({
                "schema": 1, "process_id": "p:1:x", "at_ms": at, "kind": "batch",
                "consumer_group": "g", "topic": topic, "partition": 0, "offsets": [i, i],
                "attempt": 1, "chain": [format!("error {i}")], "backtrace": null
            });
            (at, report.to_string())
        })
        .collect();
    let records = payloads.iter().map(|(at, p)| {
        ferrafka::Record::to(&errors)
            .key("p:1:x")
            .payload(p)
            .timestamp(*at)
    });
    rt.block_on(cluster.producer.produce_many(records))
        .expect("all produced");
    let bootstrap = cluster.bootstrap();
    let app = App::builder_with_env([])
        .setup(move |c| {
            c.kafka("bootstrap.servers", bootstrap)
                .reports_topic(reports)
                .errors_topic(errors);
        })
        .build_with_env([]);
    let router = ferrafka::web::Web::new(&app).unwrap().router().unwrap();

    // The first page: the newest 50 of the newest 2,000 records read, and a link to older ones.
    let (status, first) = rt.block_on(fetch(&router, "/errors"));
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(
        first.contains(r#"data-testid="error-matched">2000<"#),
        "{first}"
    );
    let newest: Vec<i64> = (ERRORS - 50..ERRORS)
        .rev()
        .map(|i| t0 + i * 1_000)
        .collect();
    assert_eq!(row_times(&first), newest);

    // Following "Older errors" to the end shows every error once, newest first.
    let mut shown = Vec::new();
    let mut html = first;
    loop {
        shown.extend(row_times(&html));
        if !html.contains(r#"data-testid="older-errors""#) {
            break;
        }
        let href = attr(&html, r#"data-testid="older-errors""#, "href").replace("&amp;", "&");
        html = rt.block_on(fetch(&router, &href)).1;
    }
    let all: Vec<i64> = (0..ERRORS).rev().map(|i| t0 + i * 1_000).collect();
    assert_eq!(shown, all, "every error once, in order, across the pages");

    // Filtered by topic: only its errors, counted among the records read.
    let even = rt.block_on(fetch(&router, "/errors?topic=even")).1;
    assert!(
        even.contains(r#"data-testid="error-matched">1000<"#),
        "{even}"
    );
    assert_eq!(row_times(&even).len(), 50);
    assert!(!even.contains(r#"data-topic="odd""#));
}
