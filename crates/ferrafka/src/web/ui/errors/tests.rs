//! Filtering, bounding and rendering of the errors pages on synthetic reports: no broker.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

use super::page::{self, query, time_ms};
use super::read::{ErrorDetail, ErrorList, Listed, Newest, PAGE_SIZE, Window};
use super::{Filter, ListQuery};
use crate::web::report::{ErrorReport, SCHEMA_VERSION};
use crate::web::ui::data::KnownTopics;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;

fn error(at_ms: i64, group: Option<&str>, topic: Option<&str>) -> ErrorReport {
    serde_json::from_value(serde_json::json!({
        "schema": SCHEMA_VERSION, "process_id": "host:1:abc", "at_ms": at_ms, "kind": "batch",
        "consumer_group": group, "topic": topic, "partition": topic.map(|_| 2),
        "offsets": topic.map(|_| [40, 44]), "attempt": topic.map(|_| 1),
        "chain": ["payment 7 declined", "card expired"], "backtrace": null
    }))
    .unwrap()
}

fn query_of(pairs: &[(&str, &str)]) -> ListQuery {
    let text: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parse_query(&format!("?{}", text.join("&")))
}

fn parse_query(query: &str) -> ListQuery {
    let uri: axum::http::Uri = format!("/errors{query}").parse().unwrap();
    axum::extract::Query::<ListQuery>::try_from_uri(&uri)
        .unwrap()
        .0
}

#[test]
fn empty_fields_filter_nothing_and_bad_times_name_the_field_and_the_format() {
    let filter =
        Filter::parse(&query_of(&[("group", ""), ("topic", "%20"), ("since", "")])).unwrap();
    assert_eq!(filter, Filter::default());
    assert!(!filter.is_set());
    let filter = Filter::parse(&query_of(&[
        ("group", "billing"),
        ("since", "2026-01-01T00:00:00Z"),
        ("until", "2026-01-01T01:00:00%2B01:00"),
    ]));
    assert_eq!(
        filter.unwrap_err(),
        "since needs to be before until",
        "01:00+01:00 is midnight UTC"
    );
    let problems =
        Filter::parse(&query_of(&[("since", "yesterday"), ("until", "soon")])).unwrap_err();
    assert!(
        problems.contains(r#"since "yesterday": use RFC 3339"#),
        "{problems}"
    );
    assert!(
        problems.contains(r#"until "soon": use RFC 3339"#),
        "{problems}"
    );
    let filter = Filter::parse(&query_of(&[
        ("topic", "payments"),
        ("since", "2026-01-01T00:00:00Z"),
        ("until", "2026-01-01T00:00:01.500Z"),
    ]))
    .unwrap();
    assert_eq!(filter.since_ms, Some(T0));
    assert_eq!(filter.until_ms, Some(T0 + 1_500));
    assert_eq!(filter.topic.as_deref(), Some("payments"));
}

#[test]
fn filters_match_group_topic_and_a_half_open_time_range() {
    let billing = error(T0, Some("billing"), Some("payments"));
    let reporting = error(T0, None, None);
    let by_group = Filter {
        group: Some("billing".into()),
        ..Filter::default()
    };
    assert!(by_group.matches(&billing));
    assert!(!by_group.matches(&error(T0, Some("shop"), Some("payments"))));
    assert!(
        !by_group.matches(&reporting),
        "no group is no match for a group filter"
    );
    let by_topic = Filter {
        topic: Some("payments".into()),
        ..Filter::default()
    };
    assert!(by_topic.matches(&billing));
    assert!(!by_topic.matches(&error(T0, Some("billing"), Some("orders"))));
    let range = Filter {
        since_ms: Some(T0),
        until_ms: Some(T0 + 1_000),
        ..Filter::default()
    };
    assert!(range.matches(&billing), "since is inclusive");
    assert!(range.matches(&error(T0 + 999, None, None)));
    assert!(
        !range.matches(&error(T0 + 1_000, None, None)),
        "until is exclusive"
    );
    assert!(!range.matches(&error(T0 - 1, None, None)));
    assert!(Filter::default().matches(&reporting));
}

#[test]
fn the_newest_page_is_kept_newest_first_in_bounded_memory() {
    let mut newest = Newest::default();
    // Shuffled times (a multiplicative walk over 0..1000): the page is the newest 50.
    for i in 0..1000_i64 {
        let at = (i * 7919) % 1000;
        newest.push(Listed {
            partition: (i % 3) as i32,
            offset: i,
            report: error(T0 + at, Some("g"), Some("t")),
        });
        assert!(newest.len() < 2 * PAGE_SIZE, "bounded at every push");
    }
    let page = newest.into_page();
    let times: Vec<i64> = page.iter().map(|l| l.report.at_ms - T0).collect();
    let expected: Vec<i64> = (950..1000).rev().collect();
    assert_eq!(times, expected);
}

#[test]
fn a_window_ends_at_its_end_or_past_it_at_the_first_record_after_until() {
    let plain = Window {
        start: 0,
        end: 10,
        last: 30,
        stop_at_ms: None,
    };
    assert!(!plain.past(9, Some(T0)));
    assert!(plain.past(10, Some(0)), "no until: the end is the end");
    // A coarse answer for `until` (the start of its batch): read on to the first later record.
    let until = Window {
        stop_at_ms: Some(T0),
        ..plain
    };
    assert!(!until.past(10, Some(T0 - 1)));
    assert!(!until.past(29, Some(T0 - 1)));
    assert!(until.past(12, Some(T0)));
    assert!(until.past(12, None), "no timestamp: stop");
    assert!(until.past(30, Some(T0 - 1)), "never past `last`");
}

fn listed(offset: i64, report: ErrorReport) -> Listed {
    Listed {
        partition: 0,
        offset,
        report,
    }
}

#[test]
fn the_list_escapes_everything_and_links_each_error_and_older_ones() {
    let mut hostile = error(T0 + 5_000, Some("g<b>\"x"), Some("top&ic<script>"));
    hostile.chain = vec!["<script>alert(1)</script>".into(), "a & b".into()];
    hostile.process_id = "h:1:\"><img src=x>".into();
    let filter = Filter {
        topic: Some("top&ic<script>".into()),
        ..Filter::default()
    };
    let view = ErrorList {
        topic: "errors".into(),
        filter: filter.clone(),
        entries: vec![
            listed(17, hostile),
            listed(3, error(T0, Some("g"), Some("t"))),
        ],
        matched: 60,
        scanned: 200,
        ..ErrorList::default()
    };
    let mut known = KnownTopics::new();
    known
        .entry("billing".into())
        .or_default()
        .insert("payments".into());
    let html = page::list("/ops", &view, &known).into_string();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;: a &amp; b"),
        "{html}"
    );
    assert!(!html.contains("<img src=x>"), "{html}");
    assert!(
        html.contains(r#"data-topic="top&amp;ic&lt;script&gt;""#),
        "{html}"
    );
    assert!(html.contains(r#"data-group="g&lt;b&gt;&quot;x""#), "{html}");
    assert!(html.contains(r#"href="/ops/errors/0/17""#), "{html}");
    assert!(
        html.contains(r#"href="/ops/processes/h%3A1%3A%22%3E%3Cimg%20src%3Dx%3E""#),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="error-count">2<"#), "{html}");
    assert!(
        html.contains(r#"data-testid="error-matched">60<"#),
        "{html}"
    );
    assert!(
        html.contains(r#"value="top&amp;ic&lt;script&gt;""#),
        "the form keeps the filter"
    );
    assert!(html.contains(r#"<option value="payments">"#), "{html}");
    // The older page: the same filter, until the oldest shown error (to the millisecond).
    let older = format!(
        r#"data-testid="older-errors" href="/ops/errors?topic=top%26ic%3Cscript%3E&amp;until={}""#,
        "2026-01-01T00%3A00%3A00.000Z"
    );
    assert!(html.contains(&older), "{older} in {html}");
    assert!(html.contains(r#"data-testid="filter-clear""#));

    let all_shown = ErrorList {
        matched: 2,
        ..view.clone()
    };
    let html = page::list("", &all_shown, &known).into_string();
    assert!(!html.contains("older-errors"), "nothing older: {html}");
    let empty = ErrorList::default();
    let html = page::list("", &empty, &known).into_string();
    assert!(html.contains(r#"data-testid="no-errors""#), "{html}");
    assert!(!html.contains("filter-clear"));
}

#[test]
fn query_strings_and_times_round_trip() {
    assert_eq!(query(&Filter::default()), "");
    assert_eq!(time_ms(T0 + 1_005), "2026-01-01T00:00:01.005Z");
    let filter = Filter {
        group: Some("a b".into()),
        since_ms: Some(T0 + 1),
        ..Filter::default()
    };
    let q = query(&filter);
    assert_eq!(q, "?group=a%20b&since=2026-01-01T00%3A00%3A00.001Z");
    assert_eq!(Filter::parse(&parse_query(&q)).unwrap(), filter);
}

#[test]
fn the_detail_shows_chain_backtrace_coordinates_and_links_to_the_explorer() {
    let mut report = error(T0 + 42, Some("billing"), Some("pay ments"));
    report.backtrace = Some("0: consume\n   at src/<main>.rs:3".into());
    report.chain.push("<b>bold</b>".into());
    let view = ErrorDetail {
        topic: "ferrafka_errors".into(),
        partition: 1,
        offset: 9,
        report: Some(report),
        problems: Vec::new(),
    };
    let html = page::detail("", &view).into_string();
    assert!(
        html.contains(r#"data-testid="explorer-link" href="/topics/pay%20ments/2?offset=40""#),
        "{html}"
    );
    assert!(
        html.contains(r#"<ol data-testid="error-chain"><li>payment 7 declined</li><li>card expired</li><li>&lt;b&gt;bold&lt;/b&gt;</li></ol>"#),
        "{html}"
    );
    assert!(html.contains("at src/&lt;main&gt;.rs:3</pre>"), "{html}");
    assert!(html.contains(r#"data-testid="error-attempt">1<"#), "{html}");
    assert!(
        html.contains(r#"data-testid="error-offsets">40–44<"#),
        "{html}"
    );
    assert!(
        html.contains(r#"href="/groups/billing">billing<"#),
        "{html}"
    );
    assert!(html.contains(r#"href="/topics/ferrafka_errors/1?offset=9&amp;format=json""#));
    assert!(html.contains(r#"data-testid="error-time">2026-01-01T00:00:00.042Z<"#));

    let without = ErrorDetail {
        report: Some(error(T0, None, None)),
        ..view.clone()
    };
    let html = page::detail("", &without).into_string();
    assert!(
        !html.contains("explorer-link"),
        "no message, no link: {html}"
    );
    assert!(html.contains(r#"data-testid="no-backtrace""#), "{html}");
    let missing = ErrorDetail {
        report: None,
        problems: vec!["no record <here>".into()],
        ..view
    };
    let html = page::detail("", &missing).into_string();
    assert!(html.contains("no record &lt;here&gt;"), "{html}");
    assert!(html.contains("Error not found"), "{html}");
}

#[tokio::test]
async fn bad_filters_and_coordinates_are_refused_before_any_read() {
    let app = crate::App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", "127.0.0.1:1");
        })
        .build();
    let router = crate::web::ui::Web::new(&app)
        .unwrap()
        .reports_topic("web-errors-unit-reports")
        .router()
        .unwrap();
    for (path, expected) in [
        (
            "/errors?since=yesterday",
            r#"since "yesterday": use RFC 3339"#,
        ),
        ("/errors/-1/0", "use whole numbers, 0 or more"),
        ("/errors/0/x", ""),
    ] {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(expected), "{path}: {body}");
    }
}
