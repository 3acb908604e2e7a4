//! The dead-letter explorer and republish through the router, against a broker: two routers
//! (two `web` processes) race to republish one dead letter and exactly one record lands, with
//! the republish id, the original key, payload and headers; every later request is refused and
//! says who republished it; the audit topic holds the claim, the outcome and the refusals.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use ferrafka::reader::TopicReader;
use ferrafka::routing::dlq_headers::{
    ATTEMPTS, ERROR, FAILED_AT, REPUBLISH_ID, SOURCE_CONSUMER_GROUP, SOURCE_OFFSET,
    SOURCE_PARTITION, SOURCE_TOPIC,
};
use ferrafka::web::audit::{AuditRecord, decode};
use ferrafka::{App, DeadLetterQueue, Message, Record};

use crate::support::{Cluster, Noop, runtime, unique};
use crate::web_router::{page, respond};

async fn post(router: &axum::Router, path: &str, form: String) -> (StatusCode, String) {
    let request = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form))
        .unwrap();
    respond(router, request).await
}

/// The CSRF token a page's write forms carry.
fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a write form") + 19;
    html[at..at + 32].to_string()
}

fn read_all(bootstrap: &str, topic: &str) -> Vec<Message> {
    TopicReader::builder(topic)
        .timeout(Duration::from_secs(20))
        .connect(bootstrap)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn outcome(html: &str) -> &str {
    let at = html.find(r#"data-outcome=""#).expect("a result") + 14;
    &html[at..at + html[at..].find('"').unwrap()]
}

#[test]
fn a_dead_letter_is_republished_once_whatever_the_clicks_and_web_processes() {
    let rt = runtime();
    let cluster = Cluster::start();
    let (source, dlq, other, audit) = (
        unique("dl-source"),
        unique("dl-dlq"),
        unique("dl-other"),
        unique("dl-audit"),
    );
    cluster.create_topic(&rt, &source, 2);
    cluster.create_topic(&rt, &dlq, 1);
    cluster.create_topic(&rt, &other, 1);
    cluster.create_topic(&rt, &audit, 3);
    rt.block_on(async {
        for n in 0..2 {
            let (key, payload, offset) = (
                format!("k-{n}"),
                format!(r#"{{"n":{n}}}"#),
                (40 + n).to_string(),
            );
            let record = Record::to(&dlq)
                .key(&key)
                .payload(&payload)
                .header("trace", "t-1")
                .header(SOURCE_TOPIC, &source)
                .header(SOURCE_PARTITION, "1")
                .header(SOURCE_OFFSET, &offset)
                .header(SOURCE_CONSUMER_GROUP, "billing")
                .header(ATTEMPTS, "3")
                .header(ERROR, "declined <by> the bank")
                .header(FAILED_AT, "1765000000000");
            cluster.producer.produce(record).await.unwrap();
        }
    });
    let (bootstrap, audit_topic) = (cluster.bootstrap(), audit.clone());
    let (source_route, dlq_route) = (source.clone(), dlq.clone());
    let app = App::builder()
        .setup(move |c| {
            c.kafka("bootstrap.servers", &bootstrap)
                .audit_topic(audit_topic);
        })
        .routes(move |r| {
            r.topic(source_route)
                .consumer(|| Noop)
                .dead_letter_queue(DeadLetterQueue::to(dlq_route));
        })
        .build();
    let reports = unique("dl-reports");
    let router = || {
        ferrafka::web::Web::new(&app)
            .unwrap()
            .reports_topic(&reports)
            .router()
            .unwrap()
    };
    let (a, b) = (router(), router());

    rt.block_on(async {
        let list = page(&a, "/dead-letters").await;
        assert!(list.contains(&format!(r#"data-topic="{dlq}""#)), "{list}");
        assert!(
            list.contains(r#"data-testid="dead-letter-count">2<"#),
            "{list}"
        );
        let page_a = page(&a, &format!("/dead-letters/{dlq}/0")).await;
        assert!(page_a.contains(r#"data-testid="attempts">3<"#), "{page_a}");
        assert!(page_a.contains("declined &lt;by&gt; the bank"), "{page_a}");
        assert!(
            page_a.contains(&format!(r#"href="/topics/{source}/1?offset=41""#)),
            "{page_a}"
        );
        assert_eq!(
            page_a.matches(r#"data-testid="republish""#).count(),
            2,
            "{page_a}"
        );
        let page_b = page(&b, &format!("/dead-letters/{dlq}/0")).await;
        let (csrf_a, csrf_b) = (csrf(&page_a), csrf(&page_b));

        // Two web processes, the same dead letter, at once: one republishes, one refuses.
        let first = format!("/dead-letters/{dlq}/0/0/republish");
        let (ra, rb) = tokio::join!(
            post(&a, &first, format!("csrf={csrf_a}&to=")),
            post(&b, &first, format!("csrf={csrf_b}&to="))
        );
        let mut codes = [
            (ra.0, outcome(&ra.1).to_string()),
            (rb.0, outcome(&rb.1).to_string()),
        ];
        codes.sort();
        assert_eq!(
            codes,
            [
                (StatusCode::OK, "done".into()),
                (StatusCode::CONFLICT, "refused".into())
            ],
            "{}\n{}",
            ra.1,
            rb.1
        );
        // Later: refused, saying who republished it.
        let (code, again) = post(&b, &first, format!("csrf={csrf_b}")).await;
        assert_eq!(
            (code, outcome(&again)),
            (StatusCode::CONFLICT, "refused"),
            "{again}"
        );
        assert!(
            again.contains(r#"data-testid="republished-by">anonymous<"#),
            "{again}"
        );
        let shown = page(&b, &format!("/dead-letters/{dlq}/0")).await;
        assert_eq!(
            shown.matches(r#"data-testid="republish""#).count(),
            1,
            "{shown}"
        );
        assert!(shown.contains(r#"data-state="done""#), "{shown}");

        // One process, two requests at once, to another topic.
        let second = format!("/dead-letters/{dlq}/0/1/republish");
        let (r1, r2) = tokio::join!(
            post(&a, &second, format!("csrf={csrf_a}&to={other}")),
            post(&a, &second, format!("csrf={csrf_a}&to={other}"))
        );
        let mut outcomes = [outcome(&r1.1).to_string(), outcome(&r2.1).to_string()];
        outcomes.sort();
        assert_ne!(outcomes[0], outcomes[1], "{}\n{}", r1.1, r2.1);
        assert!(outcomes.contains(&"done".to_string()), "{}\n{}", r1.1, r2.1);
        // Bad targets are refused before anything is claimed.
        let (code, bad) = post(&a, &second, format!("csrf={csrf_a}&to={dlq}")).await;
        assert_eq!(
            (code, outcome(&bad)),
            (StatusCode::BAD_REQUEST, "failed"),
            "{bad}"
        );
    });

    let bootstrap = cluster.bootstrap();
    let id = |offset: i64| {
        let letter = read_all(&bootstrap, &dlq)
            .into_iter()
            .find(|m| m.offset() == offset)
            .unwrap();
        format!("{dlq}/0/{offset}@{}", letter.timestamp().millis().unwrap())
    };
    let landed = read_all(&bootstrap, &source);
    assert_eq!(
        landed.len(),
        1,
        "exactly one record republished to the source topic"
    );
    let m = &landed[0];
    assert_eq!(m.partition(), 1, "back to its source partition");
    assert_eq!(m.header(REPUBLISH_ID), Some(id(0).as_bytes()));
    assert_eq!(
        (m.key(), m.payload()),
        (Some(&b"k-0"[..]), Some(&br#"{"n":0}"#[..]))
    );
    assert_eq!(m.header("trace"), Some(&b"t-1"[..]));
    assert_eq!(
        m.header(SOURCE_TOPIC),
        None,
        "the dead-letter headers are not carried"
    );
    let to_other = read_all(&bootstrap, &other);
    assert_eq!(
        to_other.len(),
        1,
        "exactly one record republished to the other topic"
    );
    assert_eq!(to_other[0].header(REPUBLISH_ID), Some(id(1).as_bytes()));

    let records: Vec<AuditRecord> = read_all(&bootstrap, &audit)
        .iter()
        .map(|m| decode(m.payload().unwrap()).unwrap())
        .collect();
    let of = |id: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r.id == id && r.outcome.starts_with(outcome))
            .count()
    };
    let first = id(0);
    assert_eq!(of(&first, "done"), 1, "{records:#?}");
    assert!(of(&first, "refused") >= 2, "{records:#?}");
    assert_eq!(of(&id(1), "done"), 1, "{records:#?}");
    let done = records
        .iter()
        .find(|r| r.id == first && r.outcome == "done")
        .unwrap();
    assert_eq!(
        (
            done.action.as_str(),
            done.who.as_str(),
            done.subject.clone()
        ),
        ("republish", "anonymous", format!("{dlq}/0/0"))
    );
    assert_eq!(done.details["to"], source);
    assert_eq!(done.details["republish_id"], first);
    assert!(
        done.details["landed"].starts_with(&format!("{source}/1/")),
        "{done:?}"
    );
    // The claim came before the outcome, on the same partition (one key).
    let audit_log = read_all(&bootstrap, &audit);
    let parts: std::collections::BTreeSet<i32> = audit_log
        .iter()
        .filter(|m| m.key() == Some(first.as_bytes()))
        .map(|m| m.partition())
        .collect();
    assert_eq!(parts.len(), 1, "{parts:?}");

    let html = rt.block_on(page(&a, "/audit"));
    assert!(
        html.contains(&format!(
            r#"data-action="republish" data-id="{first}" data-outcome="done""#
        )),
        "{html}"
    );
}
