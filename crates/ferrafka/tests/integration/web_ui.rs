//! The web UI against a broker: synthetic reports of 3 processes (one stopped cleanly) on a
//! reports topic of the test's own, a consumer group with committed offsets and no process
//! running, and the explorer reading produced messages, all through the router.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrafka::admin::OffsetSpec;
use ferrafka::{App, Record};

use crate::support::{Cluster, runtime, unique, wait_until};
use crate::web_router::page;

fn report(id: &str, partitions: i32) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let partitions: Vec<_> = (0..partitions)
        .map(|p| {
            serde_json::json!({
                "consumer_group": "web-g", "subscription_group": "web-g/default", "topic": "t",
                "partition": p, "stored_offset": 1, "committed_offset": 1, "high_watermark": 4,
                "lag": 3, "paused": null, "stalled": false, "running_batch": null
            })
        })
        .collect();
    serde_json::json!({
        "schema": 1, "id": id, "host": "h", "pid": 1, "ferrafka_version": "0", "environment": "test",
        "client_id": "c", "state": "running", "started_at_ms": now, "reported_at_ms": now,
        "stale_after_ms": 600_000, "listeners": [], "partitions": partitions,
        "totals": {"messages": 0, "batches": 0, "batch_errors": 0, "errors": 0, "dead_lettered": 0},
        "rates": {"messages": 1.0, "batches": 1.0, "errors": 0.0}, "recent_errors": []
    })
    .to_string()
}

#[test]
fn web_ui_shows_reported_processes_idle_group_lag_and_messages() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (reports, topic, group) = (
        unique("web-reports"),
        unique("web-data"),
        unique("web-idle"),
    );
    cluster.create_topic(&rt, &reports, 1);
    cluster.create_topic(&rt, &topic, 2);
    cluster.produce_spread(&rt, &topic, 0, 10, 2);
    let (a, b, c) = (
        report("proc-a", 2),
        report("proc-b", 3),
        report("proc-c", 1),
    );
    rt.block_on(async {
        for (key, payload) in [("proc-a", &a), ("proc-b", &b), ("proc-c", &c)] {
            let record = Record::to(&reports).key(key).payload(payload.as_str());
            cluster.producer.produce(record).await.unwrap();
        }
        // proc-c stopped cleanly: its tombstone removes it.
        cluster
            .producer
            .produce(Record::to(&reports).key("proc-c"))
            .await
            .unwrap();
    });
    // The group committed 2 in each partition and nobody runs it: lag 5 - 2 = 3.
    cluster
        .admin
        .move_offsets(&group, &topic, OffsetSpec::At(2))
        .unwrap();

    let bootstrap = cluster.bootstrap();
    let app = App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", &bootstrap);
        })
        .build();
    let router = ferrafka::web::Web::new(&app)
        .unwrap()
        .reports_topic(&reports)
        .router()
        .unwrap();

    let mut processes = String::new();
    let shown = wait_until(Duration::from_secs(30), || {
        processes = rt.block_on(page(&router, "/processes"));
        processes.contains(r#"data-testid="process-count">2<"#) && !processes.contains("proc-c")
    });
    assert!(shown, "{processes}");
    assert!(
        processes.contains(r#"data-process-id="proc-a" data-stale="false""#),
        "{processes}"
    );
    assert!(
        processes.contains(r#"data-process-id="proc-b""#),
        "{processes}"
    );
    assert!(
        !processes.contains("proc-c"),
        "the tombstone removes proc-c: {processes}"
    );
    assert!(
        processes.contains(r#"data-testid="partition-count">3<"#),
        "{processes}"
    );

    let html = rt.block_on(page(&router, &format!("/groups/{group}")));
    for p in 0..2 {
        let row = format!(
            r#"data-topic="{topic}" data-partition="{p}"><td><a href="/topics/{topic}">{topic}</a></td><td>{p}</td><td data-testid="committed">2</td><td data-testid="high-watermark">5</td><td data-testid="lag">3</td>"#
        );
        assert!(html.contains(&row), "{row} in {html}");
    }
    let groups = rt.block_on(page(&router, "/groups"));
    if std::env::var("FERRAFKA_TEST_BROKER").as_deref() == Ok("kafka") {
        assert!(
            groups.contains(&format!(r#"data-group="{group}""#)),
            "{groups}"
        );
    }
    // Routes and reports make a group known even where the broker lists none.
    assert!(groups.contains(r#"data-group="web-g""#), "{groups}");

    let html = rt.block_on(page(
        &router,
        &format!("/topics/{topic}/1?offset=0&format=text"),
    ));
    for offset in 0..5 {
        assert!(
            html.contains(&format!(
                r#"data-testid="message-row" data-offset="{offset}""#
            )),
            "{html}"
        );
    }
    assert!(
        html.contains("<pre>9</pre>"),
        "partition 1 holds 1, 3, 5, 7, 9: {html}"
    );
    for path in [
        "/",
        "/topics",
        &format!("/topics/{topic}"),
        "/cluster",
        "/health",
    ] {
        let html = rt.block_on(page(&router, path));
        assert!(
            html.contains(r#"<main data-testid="page""#),
            "{path}: {html}"
        );
    }
}
