//! Forms to commands, the audit record, acknowledgements per command and expiry, the pages and
//! buttons (escaped, absent when read-only), and a refused form through the guard: no broker.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt as _;

use super::form::CommandForm;
use super::render::{command_page, commands_page, partition_buttons, process_buttons};
use super::store::{Commands, MAX_COMMANDS, MAX_ORPHANS, Sent, Status};
use super::*;
use crate::web::commands::{Acknowledgement, Action, Command, Outcome, Record, Target};

fn form(fields: &[(&str, &str)]) -> CommandForm {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    serde_urlencoded_form(&body)
}

/// The form as axum's `Form` reads it.
fn serde_urlencoded_form(body: &str) -> CommandForm {
    let request = Request::post("/")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        use axum::extract::FromRequest as _;
        Form::<CommandForm>::from_request(request, &())
            .await
            .unwrap()
            .0
    })
}

const PAUSE: [(&str, &str); 7] = [
    ("csrf", "ignored"),
    ("action", "pause_partition"),
    ("process", "h:1:ab"),
    ("consumer_group", "shop"),
    ("topic", "orders"),
    ("partition", "2"),
    ("expires_s", "30"),
];

#[test]
fn forms_become_commands_with_their_expiry_and_pause_duration() {
    let pause = form(&PAUSE).command("alice").unwrap();
    assert_eq!(pause.target, Target::Process("h:1:ab".into()));
    assert_eq!(
        pause.action,
        Action::PausePartition {
            consumer_group: "shop".into(),
            topic: "orders".into(),
            partition: 2,
            for_ms: None,
        }
    );
    assert_eq!(pause.expires_at_ms - pause.issued_at_ms, 30_000);
    assert_eq!(pause.issued_by, "alice");
    let mut fields = PAUSE.to_vec();
    fields.push(("for_s", "90"));
    fields[6] = ("expires_s", "");
    let timed = form(&fields).command("bob").unwrap();
    assert!(matches!(
        timed.action,
        Action::PausePartition {
            for_ms: Some(90_000),
            ..
        }
    ));
    assert_eq!(timed.expires_at_ms - timed.issued_at_ms, 60_000, "default");
    fields[1] = ("action", "resume_partition");
    let resume = form(&fields).command("bob").unwrap();
    assert_eq!(resume.action.name(), "resume_partition");
    for (action, expected) in [("quiet", Action::Quiet), ("stop", Action::Stop)] {
        let c = form(&[("action", action), ("process", "p")])
            .command("x")
            .unwrap();
        assert_eq!(
            (c.action, c.target),
            (expected, Target::Process("p".into()))
        );
    }
}

#[test]
fn a_bad_form_names_every_problem_at_once() {
    let problems = form(&[
        ("action", "pause_partition"),
        ("process", " "),
        ("topic", "t"),
        ("partition", "-1"),
        ("for_s", "soon"),
        ("expires_s", "0"),
    ])
    .command("x")
    .unwrap_err();
    let text = problems.join("\n");
    for expected in [
        "process: empty",
        "consumer_group: empty",
        r#"partition: "-1" is not a partition"#,
        r#"for_s: "soon" is not a number of seconds from 1 to 604800"#,
        r#"expires_s: "0" is not a number of seconds from 1 to 86400"#,
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert_eq!(problems.len(), 5, "{text}");
    let unknown = form(&[("action", "rewind"), ("process", "p")])
        .command("x")
        .unwrap_err();
    assert!(unknown[0].contains(r#"action: "rewind" is not a command"#));
}

#[test]
fn the_audit_record_names_the_command_its_partition_and_expiry() {
    let mut fields = PAUSE.to_vec();
    fields.push(("for_s", "5"));
    let command = form(&fields).command("alice").unwrap();
    let operator = Operator {
        who: "alice".into(),
        from: "127.0.0.1".into(),
    };
    let record = form::audit_record(&command, &operator);
    assert_eq!(record.id, command.command_id);
    assert_eq!(record.action, "command pause_partition");
    assert_eq!(record.subject, "h:1:ab");
    assert_eq!(
        (record.who.as_str(), record.from.as_str()),
        ("alice", "127.0.0.1")
    );
    assert_eq!(record.details["command_id"], command.command_id);
    assert_eq!(record.details["partition"], "shop/orders/2");
    assert_eq!(record.details["for_ms"], "5000");
    assert_eq!(
        record.details["expires_at"],
        crate::web::ui::pages::time(command.expires_at_ms)
    );
    let quiet = form(&[("action", "quiet"), ("process", "p")])
        .command("x")
        .unwrap();
    let record = form::audit_record(&quiet, &operator);
    assert!(!record.details.contains_key("partition"));
    assert_eq!(record.action, "command quiet");
}

fn command(process: &str, ttl_ms: u64) -> Command {
    Command::new(
        Target::Process(process.into()),
        Action::Quiet,
        Duration::from_millis(ttl_ms),
        "alice",
    )
}

fn ack(command: &Command, process: &str, outcome: Outcome) -> Vec<u8> {
    Record::Acknowledgement(Acknowledgement::new(&command.command_id, process, outcome)).to_json()
}

#[test]
fn acknowledgements_gather_per_command_in_either_order_and_set_its_status() {
    let mut store = Commands::default();
    let (c1, c2, c3) = (
        command("p1", 60_000),
        command("p2", 60_000),
        command("p3", 1),
    );
    // The acknowledgement of c1 comes before c1 itself (another partition).
    store.apply(Some(&ack(&c1, "p1", Outcome::Done)));
    store.apply(Some(&Record::Command(c1.clone()).to_json()));
    store.apply(Some(&Record::Command(c1.clone()).to_json()));
    store.insert_command(c2.clone());
    store.apply(Some(&Record::Command(c3.clone()).to_json()));
    store.apply(Some(b"not a command"));
    store.apply(None);
    let now = c1.issued_at_ms;
    let one = store.get(&c1.command_id).unwrap();
    assert_eq!((one.acks.len(), one.status(now)), (1, Status::Done));
    let two = store.get(&c2.command_id).unwrap();
    assert_eq!(two.status(now), Status::Pending);
    assert!(!two.untaken(now));
    assert_eq!(two.status(c2.expires_at_ms + 1), Status::Expired);
    assert!(two.untaken(c2.expires_at_ms + 1));
    let reason = Outcome::Refused {
        reason: "not assigned".into(),
    };
    store.apply(Some(&ack(&c2, "p2", reason)));
    store.apply(Some(&ack(&c3, "p3", Outcome::Expired)));
    assert_eq!(
        store.get(&c2.command_id).unwrap().status(now),
        Status::Refused
    );
    let three = store.get(&c3.command_id).unwrap();
    assert_eq!(three.status(now), Status::Expired);
    assert!(!three.untaken(c3.expires_at_ms + 1), "a process answered");
    let newest: Vec<String> = store
        .newest(2)
        .into_iter()
        .map(|s| s.command.command_id)
        .collect();
    assert_eq!(newest.len(), 2);
    assert!(!newest.contains(&c1.command_id) || c1.issued_at_ms == c3.issued_at_ms);
}

#[test]
fn the_store_is_bounded_oldest_first() {
    let mut store = Commands::default();
    let first = command("p", 60_000);
    store.insert_command(first.clone());
    for _ in 0..MAX_COMMANDS + 10 {
        store.insert_command(command("p", 60_000));
    }
    assert_eq!(store.sizes().0, MAX_COMMANDS);
    assert!(store.get(&first.command_id).is_none(), "the oldest went");
    for _ in 0..MAX_ORPHANS + 10 {
        store.apply(Some(&ack(&command("p", 1), "p", Outcome::Done)));
    }
    assert_eq!(store.sizes().1, MAX_ORPHANS);
}

fn sent(process: &str, acks: &[(&str, Outcome)]) -> Sent {
    let command = Command::new(
        Target::Process(process.into()),
        Action::PausePartition {
            consumer_group: "g".into(),
            topic: "t<i>".into(),
            partition: 1,
            for_ms: Some(30_000),
        },
        Duration::from_secs(60),
        "<b>eve</b>",
    );
    let acks = acks
        .iter()
        .map(|(p, o)| {
            let a = Acknowledgement::new(&command.command_id, p, o.clone());
            (p.to_string(), a)
        })
        .collect();
    Sent { command, acks }
}

#[test]
fn command_pages_show_answers_expiry_and_escape_everything() {
    let refused = Outcome::Refused {
        reason: "<script>alert(1)</script>".into(),
    };
    let s = sent("<p1>", &[("<p1>", refused)]);
    let now = s.command.issued_at_ms + 1_000;
    let html = command_page("/ops", &s.command.command_id, Some(&s), now).into_string();
    assert!(html.contains(r#"data-status="refused""#), "{html}");
    assert!(html.contains(r#"data-process-id="&lt;p1&gt;""#), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("pause g/t&lt;i&gt;/1 for 30.0 s"), "{html}");
    assert!(html.contains("&lt;b&gt;eve&lt;/b&gt;"), "{html}");
    assert!(html.contains(r#"href="/ops/processes/%3Cp1%3E""#), "{html}");
    assert!(
        !html.contains("<script>alert") && !html.contains("<b>eve"),
        "{html}"
    );
    assert!(html.contains("(in 59.0 s)"), "{html}");

    let pending = sent("p2", &[]);
    let html = command_page("", "x", Some(&pending), pending.command.issued_at_ms).into_string();
    assert!(html.contains(r#"data-status="pending""#), "{html}");
    assert!(html.contains(r#"data-testid="command-pending""#), "{html}");
    let later = pending.command.expires_at_ms + 5_000;
    let html = command_page("", "x", Some(&pending), later).into_string();
    assert!(html.contains(r#"data-status="expired""#), "{html}");
    assert!(html.contains("no process took it"), "{html}");
    assert!(html.contains(r#"data-testid="command-expired""#), "{html}");
    assert!(html.contains("(5.0 s ago)"), "{html}");

    let done = sent("p3", &[("p3", Outcome::Done)]);
    let html = commands_page("", &[done.clone(), pending.clone()], None, later).into_string();
    assert!(
        html.contains(&format!(r#"data-command-id="{}""#, done.command.command_id)),
        "{html}"
    );
    assert!(html.contains(r#"data-status="done""#), "{html}");
    assert!(html.contains(r#"data-status="expired""#), "{html}");
    let html = commands_page("", &[], Some("cannot read <x>".into()), later).into_string();
    assert!(html.contains(r#"data-testid="no-commands""#), "{html}");
    assert!(html.contains("cannot read &lt;x&gt;"), "{html}");
    let html = command_page("", "<gone>", None, later).into_string();
    assert!(html.contains(r#"data-testid="unknown-command""#) && html.contains("&lt;gone&gt;"));
}

#[test]
fn buttons_carry_the_token_and_target_and_vanish_when_read_only() {
    let html = process_buttons("/ops", Some("tok"), "h:1:\"x\"").into_string();
    assert!(html.contains(r#"action="/ops/commands""#), "{html}");
    assert!(html.contains(r#"name="csrf" value="tok""#), "{html}");
    assert!(
        html.contains(r#"name="process" value="h:1:&quot;x&quot;""#),
        "{html}"
    );
    assert!(html.contains(r#"data-testid="command-quiet""#), "{html}");
    assert!(
        html.contains(r#"data-confirm="Stop process h:1:&quot;x&quot;?"#),
        "{html}"
    );
    assert_eq!(
        html.matches(r#"name="expires_s" value="60""#).count(),
        2,
        "{html}"
    );
    let html = partition_buttons("", Some("tok"), "p", ("g", "t", 3)).into_string();
    for expected in [
        r#"name="action" value="pause_partition""#,
        r#"name="action" value="resume_partition""#,
        r#"name="partition" value="3""#,
        r#"name="consumer_group" value="g""#,
        r#"name="for_s""#,
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
    assert_eq!(process_buttons("", None, "p").into_string(), "");
    assert_eq!(
        partition_buttons("", None, "p", ("g", "t", 3)).into_string(),
        ""
    );
}

#[test]
fn the_process_and_group_pages_show_buttons_only_where_they_can_act() {
    use crate::web::ui::snapshot::{GroupPartition, GroupView};
    let now = 1_800_000_000_000;
    let report = crate::web::ui::tests::report("a:1:x", now, 3);
    let mut fleet = crate::web::ui::live::Fleet::default();
    fleet.apply(Some(b"a:1:x"), Some(&serde_json::to_vec(&report).unwrap()));
    let snap = fleet.snapshot(now);
    let html = crate::web::ui::pages::process("", &snap, "a:1:x", Some("tok")).into_string();
    assert_eq!(html.matches(r#"data-testid="command-pause""#).count(), 3);
    assert_eq!(html.matches(r#"data-testid="command-resume""#).count(), 3);
    assert_eq!(html.matches(r#"data-testid="command-stop""#).count(), 1);
    let html = crate::web::ui::pages::process("", &snap, "a:1:x", None).into_string();
    assert!(!html.contains("command-"), "{html}");
    let partition = |p, owner: Option<&str>| GroupPartition {
        topic: "t".into(),
        partition: p,
        owner: owner.map(str::to_string),
        ..GroupPartition::default()
    };
    let view = GroupView {
        name: "g".into(),
        partitions: vec![partition(0, Some("a:1:x")), partition(1, None)],
        ..GroupView::default()
    };
    let html = crate::web::ui::pages::group("", &view, Some("tok")).into_string();
    assert_eq!(
        html.matches(r#"data-testid="command-pause""#).count(),
        1,
        "{html}"
    );
    assert!(html.contains(r#"name="process" value="a:1:x""#), "{html}");
}

#[tokio::test]
async fn a_bad_form_is_refused_with_its_problems_and_nothing_is_sent() {
    let app = crate::App::builder()
        .setup(|c| {
            c.kafka("bootstrap.servers", "127.0.0.1:1");
        })
        .build();
    let shared = crate::web::ui::Web::new(&app)
        .unwrap()
        .reports_topic("web-ops-unit-reports")
        .shared()
        .unwrap();
    let csrf = shared.csrf().unwrap().to_string();
    let router = routes()
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            crate::web::ui::safety::guard_writes,
        ))
        .with_state(shared);
    let post = |body: String| {
        Request::post("/commands")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let response = router
        .clone()
        .oneshot(post(format!(
            "csrf={csrf}&action=pause_partition&process=p&partition=x"
        )))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let html = String::from_utf8_lossy(&body);
    assert!(html.contains(r#"data-testid="command-not-sent""#), "{html}");
    assert!(html.contains("topic: empty"), "{html}");
    assert!(
        html.contains(r#"partition: &quot;x&quot; is not a partition"#),
        "{html}"
    );
    // Without the token the guard refuses it before the handler.
    let response = router
        .oneshot(post("action=quiet&process=p".into()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
