//! Commands from the web UI through its router, on a real broker: the pause button of a
//! process's page pauses the partition in the owning server (its report says `operator`, the
//! command's page says `done`), the resume button lets it catch up with what was produced
//! meanwhile, exactly once and without a gap; every command is audited first; a command to a
//! process that does not exist expires and its page says no process took it; quiet stops new
//! batches.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ferrafka::web::audit;
use ferrafka::{Filters, ServerExit};
use tower::ServiceExt as _;

use crate::support::*;
use crate::web_commands::{assert_partition_0_holds, started};
use crate::web_reporting::records;
use crate::web_router::page;

/// Posts a command form; the command's page it redirects to.
async fn post(router: &axum::Router, fields: &[(&str, &str)]) -> String {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = Request::post("/commands")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{fields:?}");
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with("/commands/"), "{location}");
    location.to_string()
}

/// The value of the first `name="csrf"` field of a page.
fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a write form") + 19;
    html[start..start + 32].to_string()
}

/// Waits until the page at `path` contains `text`; the page.
fn page_with(
    rt: &tokio::runtime::Runtime,
    router: &axum::Router,
    path: &str,
    text: &str,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let html = rt.block_on(page(router, path));
        if html.contains(text) {
            return html;
        }
        assert!(Instant::now() < deadline, "{text} never on {path}: {html}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn pause_and_resume_from_the_ui_hold_a_partition_then_catch_up_and_commands_expire() {
    let (rt, cluster, topics, app, tracker, received) = started("ops-pause");
    let bootstrap = cluster.bootstrap();
    let server = app.start(&Filters::default()).expect("starts");
    let id = server.process_id().to_string();
    let group = app.subscription_groups()[0].consumer_group().to_string();
    let router = ferrafka::web::Web::new(&app).unwrap().router().unwrap();
    cluster.produce_spread(&rt, &topics.consumed, 0, 20, 2);
    assert!(
        tracker.wait_for(20, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );

    // The process page shows a pause button per partition once the report is read.
    let process = format!("/processes/{}", id.replace(':', "%3A"));
    let html = page_with(&rt, &router, &process, r#"data-testid="command-pause""#);
    assert_eq!(
        html.matches(r#"data-testid="command-pause""#).count(),
        2,
        "{html}"
    );
    let csrf = csrf_of(&html);
    let partition = |action, p| {
        let fields = [
            ("csrf", csrf.as_str()),
            ("action", action),
            ("process", id.as_str()),
            ("consumer_group", group.as_str()),
            ("topic", topics.consumed.as_str()),
            ("partition", p),
            ("expires_s", "60"),
        ];
        rt.block_on(post(&router, &fields))
    };
    let pause = partition("pause_partition", "0");
    let command_id = pause.trim_start_matches("/commands/").to_string();
    let html = page_with(&rt, &router, &pause, r#"data-status="done""#);
    assert!(
        html.contains(&format!(r#"data-testid="ack-row" data-process-id="{id}""#)),
        "{html}"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .contains(&(command_id.clone(), "done".into()))
    );
    // Audited: who, what, the partition and the expiry.
    let audited: Vec<audit::AuditRecord> = records(&bootstrap, &topics.audit)
        .into_iter()
        .filter_map(|(_, payload)| audit::decode(&payload?).ok())
        .collect();
    let record = audited
        .iter()
        .find(|r| r.id == command_id)
        .expect("audited");
    assert_eq!(record.action, "command pause_partition");
    assert_eq!(record.subject, id);
    assert_eq!(
        record.details["partition"],
        format!("{group}/{}/0", topics.consumed)
    );
    assert!(record.details.contains_key("expires_at"), "{record:?}");

    assert_partition_0_holds(&rt, &cluster, &topics, &tracker);
    page_with(&rt, &router, &process, r#"data-testid="paused">operator"#);

    let resume = partition("resume_partition", "0");
    page_with(&rt, &router, &resume, r#"data-status="done""#);
    assert!(
        tracker.wait_for(60, Duration::from_secs(60)),
        "consumed {}",
        tracker.len()
    );
    let counts = tracker.counts();
    assert_eq!(counts.len(), 60);
    assert!(
        counts.values().all(|n| *n == 1),
        "each message once: {counts:?}"
    );
    assert_contiguous_per_partition(&tracker.all());

    // A command to a process that does not exist: pending, then expired, nobody answered.
    let nobody = [
        ("csrf", csrf.as_str()),
        ("action", "quiet"),
        ("process", "nobody:1:0"),
        ("expires_s", "2"),
    ];
    let lost = rt.block_on(post(&router, &nobody));
    let html = page_with(&rt, &router, &lost, r#"data-testid="command-expired""#);
    assert!(html.contains("no process took it"), "{html}");
    assert!(!html.contains(r#"data-testid="ack-row""#), "{html}");
    let list = rt.block_on(page(&router, "/commands"));
    for path in [&pause, &resume, &lost] {
        assert!(
            list.contains(&format!(r#"href="{path}""#)),
            "{path} in {list}"
        );
    }

    // Quiet from the UI: no new batch.
    let quiet = [
        ("csrf", csrf.as_str()),
        ("action", "quiet"),
        ("process", id.as_str()),
        ("expires_s", "60"),
    ];
    let quiet = rt.block_on(post(&router, &quiet));
    page_with(&rt, &router, &quiet, r#"data-status="done""#);
    cluster.produce_spread(&rt, &topics.consumed, 60, 70, 2);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(tracker.len(), 60, "quiet: no new batch");
    assert_eq!(server.shutdown(), ServerExit::Clean);
}
