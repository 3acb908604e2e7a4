//! Render and router tests on synthetic snapshots: no broker.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::live::Fleet;
use super::pages;
use super::snapshot::*;
use super::{Web, WebAuth};
use crate::web::report::{
    ErrorReport, ListenerReport, PartitionReport, ProcessReport, Rates, RunningBatch,
    SCHEMA_VERSION, Totals,
};

/// A report of `id` made at `at_ms` with `partitions` partitions of group `g`, each 5 behind.
pub(crate) fn report(id: &str, at_ms: i64, partitions: i32) -> ProcessReport {
    let json = serde_json::json!({
        "schema": SCHEMA_VERSION, "id": id, "host": "host-1", "pid": 42,
        "ferrafka_version": "0.1.0", "environment": "production", "client_id": "shop",
        "state": "running", "started_at_ms": at_ms - 60_000, "reported_at_ms": at_ms,
        "stale_after_ms": 20_000, "listeners": [], "partitions": [],
        "totals": {"messages": 10, "batches": 2, "batch_errors": 1, "errors": 0, "dead_lettered": 0},
        "rates": {"messages": 100.0, "batches": 2.0, "errors": 0.5}, "recent_errors": []
    });
    let mut r: ProcessReport = serde_json::from_value(json).unwrap();
    r.listeners = vec![
        serde_json::from_value::<ListenerReport>(serde_json::json!({
            "subscription_group": "g/default", "consumer_group": "g", "last_poll_age_ms": 12
        }))
        .unwrap(),
    ];
    r.partitions = (0..partitions)
        .map(|p| {
            let mut pr: PartitionReport = serde_json::from_value(serde_json::json!({
                "consumer_group": "g", "subscription_group": "g/default", "topic": "orders",
                "partition": p, "stored_offset": 95, "committed_offset": 95,
                "high_watermark": 100, "lag": 5, "paused": null, "stalled": false, "running_batch": null
            }))
            .unwrap();
            if p == 0 {
                pr.paused = Some("retry".into());
                pr.running_batch = Some(serde_json::from_value::<RunningBatch>(serde_json::json!({
                    "offsets": [95, 99], "messages": 5, "attempt": 2, "age_ms": 1500
                })).unwrap());
            }
            pr
        })
        .collect();
    let _: (Totals, Rates) = (r.totals.clone(), r.rates.clone());
    r
}

fn fleet(now: i64) -> FleetSnapshot {
    let mut fleet = Fleet::default();
    for (id, at) in [
        ("a:1:x", now - 1_000),
        ("b:2:y", now - 2_000),
        ("c:3:z", now - 60_000),
    ] {
        let r = report(id, at, 3);
        fleet.apply(Some(id.as_bytes()), Some(&serde_json::to_vec(&r).unwrap()));
    }
    fleet.sample(now);
    fleet.snapshot(now)
}

#[test]
fn tombstones_remove_processes_and_old_reports_never_replace_newer_ones() {
    let mut fleet = Fleet::default();
    let newer = serde_json::to_vec(&report("a", 2_000, 1)).unwrap();
    let older = serde_json::to_vec(&report("a", 1_000, 2)).unwrap();
    fleet.apply(Some(b"a"), Some(&newer));
    fleet.apply(Some(b"a"), Some(&older));
    fleet.apply(Some(b"b"), Some(&newer));
    fleet.apply(Some(b"c"), Some(b"not json"));
    let snap = fleet.snapshot(2_500);
    assert_eq!(snap.processes.len(), 2);
    assert_eq!(snap.processes[0].report.partitions.len(), 1);
    fleet.apply(Some(b"b"), None);
    assert_eq!(fleet.len(), 1);
    // Long-stale processes are forgotten: memory is bounded by the live fleet.
    fleet.sample(2_000 + 20_000 + super::live::FORGET_AFTER_MS + 1);
    assert!(fleet.is_empty());
}

#[test]
fn newer_schemas_are_read_and_flagged() {
    let mut value = serde_json::to_value(report("n", 1_000, 1)).unwrap();
    value["schema"] = serde_json::json!(SCHEMA_VERSION + 1);
    value["a_field_from_the_future"] = serde_json::json!(1);
    let mut fleet = Fleet::default();
    fleet.apply(Some(b"n"), Some(&serde_json::to_vec(&value).unwrap()));
    let snap = fleet.snapshot(1_000);
    assert!(snap.processes[0].newer_schema);
    let html = pages::processes("", &snap).into_string();
    assert!(html.contains(r#"data-testid="newer-schema""#), "{html}");
}

#[test]
fn the_series_is_bounded_and_growing_lag_is_flagged() {
    let mut fleet = Fleet::default();
    for i in 0..(super::live::MAX_POINTS as i64 + 10) {
        let mut r = report("a", i * 1000, 1);
        r.partitions[0].lag = Some(i);
        fleet.apply(Some(b"a"), Some(&serde_json::to_vec(&r).unwrap()));
        fleet.sample(i * 1000);
    }
    let now = (super::live::MAX_POINTS as i64 + 9) * 1000;
    let snap = fleet.snapshot(now);
    assert_eq!(snap.series.len(), super::live::MAX_POINTS);
    assert_eq!(
        snap.series.last().unwrap().total_lag,
        super::live::MAX_POINTS as i64 + 9
    );
    let lagging = fleet.lagging(now);
    assert_eq!(lagging.len(), 1);
    assert_eq!(lagging[0].why, "lag growing");
}

fn attr_count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn dashboard_and_processes_show_the_fleet_figures() {
    let now = 1_800_000_000_000;
    let snap = fleet(now);
    let html = pages::dashboard("", &snap).into_string();
    assert!(
        html.contains(r#"<main data-testid="page" data-page="dashboard">"#),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="process-count">2<"#), "{html}");
    // Two live processes × 3 partitions × lag 5; 100 messages/s and 0.5 errors/s each.
    assert!(html.contains(r#"data-testid="total-lag">30<"#), "{html}");
    assert!(
        html.contains(r#"data-testid="messages-rate">200.0<"#),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="errors-rate">1.0<"#), "{html}");
    for chart in ["chart-messages", "chart-errors", "chart-lag"] {
        assert!(
            html.contains(&format!(r#"<svg class="spark" data-testid="{chart}""#)),
            "{chart}"
        );
    }
    for nav in [
        "dashboard",
        "processes",
        "groups",
        "topics",
        "cluster",
        "health",
    ] {
        assert!(
            html.contains(&format!(r#"data-testid="nav-{nav}""#)),
            "{nav}"
        );
    }
    let html = pages::processes("/ops", &snap).into_string();
    assert!(html.contains(r#"data-testid="process-count">2<"#), "{html}");
    assert!(html.contains(r#"data-testid="stale-count">1<"#), "{html}");
    assert_eq!(attr_count(&html, r#"data-testid="process-row""#), 3);
    assert!(
        html.contains(r#"data-process-id="c:3:z" data-stale="true""#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-process-id="a:1:x" data-stale="false""#),
        "{html}"
    );
    assert_eq!(attr_count(&html, r#"data-testid="partition-count">3<"#), 3);
    assert!(
        html.contains(r#"href="/ops/processes/a%3A1%3Ax""#),
        "{html}"
    );
    let html = pages::process("", &snap, "a:1:x", None).into_string();
    assert!(html.contains(r#"data-testid="paused">retry"#), "{html}");
    assert!(
        html.contains("95–99 (5 messages, attempt 2, 1.5 s)"),
        "{html}"
    );
    assert_eq!(attr_count(&html, r#"data-testid="listener-row""#), 1);
    let html = pages::process("", &snap, "gone", None).into_string();
    assert!(html.contains(r#"data-testid="unknown-process""#), "{html}");
}

#[test]
fn errors_of_a_process_are_shown_escaped() {
    let now = 1_800_000_000_000;
    let mut snap = fleet(now);
    let error: ErrorReport = serde_json::from_value(serde_json::json!({
        "schema": 1, "process_id": "a:1:x", "at_ms": now, "kind": "batch", "consumer_group": "g",
        "topic": "orders", "partition": 1, "offsets": [3, 4], "attempt": 1,
        "chain": ["<script>alert(1)</script>"], "backtrace": null
    }))
    .unwrap();
    snap.processes[0].report.recent_errors.push(error);
    let html = pages::process("", &snap, "a:1:x", None).into_string();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "{html}");
}

#[test]
fn groups_cluster_and_health_show_their_figures() {
    let view = GroupsView {
        groups: vec![GroupRow {
            name: "g".into(),
            state: "Empty".into(),
            members: Some(0),
            lag: Some(7),
        }],
        problems: vec!["the cluster did not list its consumer groups: not supported".into()],
    };
    let html = pages::groups("", &view).into_string();
    assert!(
        html.contains(r#"<tr data-testid="group-row" data-group="g">"#),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="lag">7<"#), "{html}");
    assert!(html.contains("not supported"), "{html}");
    let view = GroupView {
        name: "g".into(),
        partitions: vec![
            GroupPartition {
                topic: "t".into(),
                partition: 0,
                committed: Some(3),
                high_watermark: Some(10),
                lag: Some(7),
                owner: None,
            },
            GroupPartition {
                topic: "t".into(),
                partition: 1,
                committed: None,
                high_watermark: Some(2),
                lag: None,
                owner: None,
            },
        ],
        ..GroupView::default()
    };
    let html = pages::group("", &view, None).into_string();
    assert!(html.contains(r#"<tr data-testid="group-partition-row" data-topic="t" data-partition="0"><td><a href="/topics/t">t</a></td><td>0</td><td data-testid="committed">3</td><td data-testid="high-watermark">10</td><td data-testid="lag">7</td>"#), "{html}");
    assert!(html.contains(r#"data-testid="committed">-<"#), "{html}");
    assert!(html.contains(r#"data-testid="no-members""#), "{html}");
    let info = crate::admin::ClusterInfo {
        brokers: vec![crate::admin::BrokerInfo {
            id: 1,
            host: "k1".into(),
            port: 9092,
        }],
        topics: vec![crate::admin::TopicInfo {
            name: "t".into(),
            partitions: vec![
                crate::admin::PartitionInfo {
                    id: 0,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1],
                },
                crate::admin::PartitionInfo {
                    id: 1,
                    leader: 1,
                    replicas: vec![1, 2],
                    isr: vec![1, 2],
                },
            ],
        }],
    };
    let cluster = super::data::cluster_view(&info);
    let html = pages::cluster("", &cluster).into_string();
    assert!(html.contains(r#"data-testid="broker-count">1<"#), "{html}");
    assert!(
        html.contains(r#"<tr data-testid="topic-row" data-topic="t">"#),
        "{html}"
    );
    assert!(
        html.contains(r#"data-testid="under-replicated" class="bad">1<"#),
        "{html}"
    );
    let now = 1_800_000_000_000;
    let health = super::data::health(&fleet(now), Vec::new(), &cluster);
    let html = pages::health("", &health).into_string();
    assert!(
        html.contains(r#"data-testid="health-verdict" class="problems">problems<"#),
        "{html}"
    );
    assert!(html.contains(r#"<li data-process-id="c:3:z">"#), "{html}");
    assert!(
        html.contains(r#"<li data-topic="t" data-partition="0">t/0</li>"#),
        "{html}"
    );
    assert!(!html.contains("every process reports"), "{html}");
    let ok = HealthView::default();
    let html = pages::health("", &ok).into_string();
    assert!(html.contains(">ok<"), "{html}");
    // An empty section says so, rather than showing a heading over nothing.
    assert!(html.contains("None: every process reports."), "{html}");
    assert_eq!(html.matches(">None.<").count(), 2, "{html}");
}

fn browse_view(masked: bool, format: PayloadFormat) -> PartitionBrowse {
    PartitionBrowse {
        topic: "t".into(),
        partition: 0,
        watermarks: Some((0, 2)),
        masked,
        format,
        messages: vec![
            MessageRow {
                offset: 0,
                timestamp_ms: Some(0),
                key: Some(b"<b>k</b>".to_vec()),
                payload: Some(b"<script>alert(1)</script>\xff\x00".to_vec()),
                headers: vec![("h<".into(), Some(b"\"v\"".to_vec())), ("n".into(), None)],
            },
            MessageRow {
                offset: 1,
                payload: Some(br#"{"a":"<i>"}"#.to_vec()),
                ..MessageRow::default()
            },
        ],
        ..PartitionBrowse::default()
    }
}

#[test]
fn the_explorer_escapes_every_byte_and_masks_payloads() {
    for format in [PayloadFormat::Json, PayloadFormat::Text, PayloadFormat::Hex] {
        let html = pages::browse("", &browse_view(false, format)).into_string();
        assert!(!html.contains("<script>alert"), "{format:?}: {html}");
        assert!(!html.contains("<b>k"), "{html}");
        assert!(!html.contains("<i>"), "{html}");
        assert!(
            html.contains(r#"<tr data-testid="message-row" data-offset="0">"#),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;k&lt;/b&gt;"), "{html}");
        assert!(html.contains("h&lt;"), "{html}");
        assert!(!html.contains('\u{0}'), "{html}");
    }
    let text = pages::browse("", &browse_view(false, PayloadFormat::Text)).into_string();
    assert!(
        text.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\xff\\u{0}"),
        "{text}"
    );
    let hex = pages::browse("", &browse_view(false, PayloadFormat::Hex)).into_string();
    assert!(hex.contains("00000000  3c 73 63 72"), "{hex}");
    let json = pages::browse("", &browse_view(false, PayloadFormat::Json)).into_string();
    assert!(
        json.contains("&quot;a&quot;: &quot;&lt;i&gt;&quot;"),
        "{json}"
    );
    let masked = pages::browse("", &browse_view(true, PayloadFormat::Text)).into_string();
    assert_eq!(attr_count(&masked, r#"data-testid="masked""#), 2);
    assert!(!masked.contains("alert"), "{masked}");
}

#[test]
fn rfc3339_times_parse() {
    let ms = super::rfc3339::to_millis;
    assert_eq!(ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(ms("2026-12-07T14:00:00.5+01:00"), Some(1_796_648_400_500));
    assert_eq!(ms("2026-13-07T14:00:00Z"), None);
    assert_eq!(ms("yesterday"), None);
}

fn web(auth: WebAuth) -> Web {
    let app = crate::App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", "127.0.0.1:1");
        })
        .build();
    Web::new(&app)
        .unwrap()
        .auth(auth)
        .reports_topic("web-ui-unit-reports")
}

async fn status(
    router: &axum::Router,
    authorization: Option<&str>,
    path: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn auth_admits_only_the_right_token() {
    let router = web(WebAuth::token("t0ken")).router().unwrap();
    assert_eq!(
        status(&router, None, "/processes").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&router, Some("Bearer wrong"), "/processes").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&router, Some("Bearer wrong"), "/assets/ui.js")
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let (code, body) = status(&router, Some("Bearer t0ken"), "/processes").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains(r#"data-page="processes""#), "{body}");
    let (code, body) = status(&router, Some("Bearer t0ken"), "/assets/ui.js").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.contains("replaceWith"), "{body}");
    let router = web(WebAuth::basic("ops", "pw")).router().unwrap();
    assert_eq!(
        status(&router, Some("Basic b3BzOnB4"), "/").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&router, Some("Basic b3BzOnB3"), "/").await.0,
        StatusCode::OK
    );
    let router = web(WebAuth::None).router().unwrap();
    assert_eq!(status(&router, None, "/").await.0, StatusCode::OK);
    let (code, body) = status(&router, None, "/topics/t/0?format=xml").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("json, text or hex"), "{body}");
}

#[test]
fn a_public_bind_without_auth_is_refused_with_the_fix() {
    let public: std::net::SocketAddr = "0.0.0.0:3000".parse().unwrap();
    let error = web(WebAuth::None)
        .bind(public)
        .check_bind()
        .unwrap_err()
        .to_string();
    assert!(error.contains("web_bind = \"0.0.0.0:3000\""), "{error}");
    assert!(error.contains("needs `web_auth`"), "{error}");
    assert!(error.contains("FERRAFKA_WEB_AUTH=token:<T>"), "{error}");
    assert!(web(WebAuth::token("x")).bind(public).check_bind().is_ok());
    assert!(web(WebAuth::None).check_bind().is_ok());
    let debug = format!("{:?}", web(WebAuth::token("sekrit")));
    assert!(!debug.contains("sekrit"), "{debug}");
}

#[test]
fn doctor_warns_about_a_public_ui_without_auth() {
    let app = crate::App::builder()
        .setup(|c| {
            c.web_bind("0.0.0.0:3000".parse().unwrap());
        })
        .build();
    let report = app.doctor(&crate::doctor::DoctorOptions::default());
    let finding = report.findings.iter().find(|f| f.id == "FD025");
    assert!(finding.is_some(), "{report:?}");
    let quiet = crate::App::builder()
        .setup(|c| {
            c.web_bind("0.0.0.0:3000".parse().unwrap())
                .web_auth(WebAuth::token("x"));
        })
        .build()
        .doctor(&crate::doctor::DoctorOptions::default());
    assert!(!quiet.findings.iter().any(|f| f.id == "FD025"), "{quiet:?}");
    assert!(!format!("{quiet:?}").contains("\"x\""));
}

#[test]
fn payloads_are_masked_by_the_setting_and_by_the_route() {
    let app = crate::App::builder()
        .setup(|c| {
            c.web_masked_topics(vec!["listed".into()]);
        })
        .routes(|r| {
            r.topic("routed")
                .consumer(|| crate::noop::Noop)
                .web_masked(true);
            r.topic("plain").consumer(|| crate::noop::Noop);
        })
        .build();
    let web = Web::new(&app).unwrap();
    assert!(web.is_masked("listed"));
    assert!(web.is_masked("routed"));
    assert!(!web.is_masked("plain"));
}

#[cfg(feature = "cli")]
#[test]
fn the_web_command_refuses_a_public_bind_without_auth() {
    use clap::Parser as _;
    let app = crate::App::builder().build();
    let cli = crate::cli::Cli::parse_from(["my-app", "web", "--bind", "0.0.0.0:3999"]);
    assert_eq!(
        crate::cli::run_with(app, cli),
        std::process::ExitCode::from(1)
    );
}
