//! The explorer's pages: the dead-letter topics, one partition's dead letters with their
//! decoded headers and republish forms, and a republish's result. maud escapes every value.

use maud::{Markup, html};

use super::super::audit_page::index::Republished;
use super::super::pages::{layout, problems, read_only_notice, segment, text, time};
use super::letter::DeadLetter;
use super::read::{PAGE, QueuePage, QueueRow};

/// How much of a payload the explorer shows.
const SHOWN_BYTES: usize = 16 * 1024;

/// `/dead-letters`.
pub(crate) fn list(base: &str, rows: &[QueueRow]) -> Markup {
    let body = html! {
        @for row in rows { (problems(&row.problems)) }
        @if rows.is_empty() {
            p.none data-testid="no-dead-letter-queues" { "No route of this app has a dead-letter queue." }
        }
        @for row in rows {
            section data-testid="dead-letter-queue" data-topic=(row.topic) {
                h2 { (row.topic) }
                p { "Dead letters of "
                    @for (i, s) in row.sources.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (s.topic) } " (consumer group " code { (s.consumer_group) } ")"
                    }
                }
                @if !row.exists { p.none data-testid="not-created" { "The topic does not exist yet: nothing was dead-lettered." } }
                @else {
                    table {
                        thead { tr { th { "Partition" } th { "Dead letters" } th { "Offsets" } } }
                        tbody { @for (p, low, high) in &row.partitions {
                            tr data-testid="dead-letter-partition" data-partition=(p) {
                                td { a href={ (base) "/dead-letters/" (segment(&row.topic)) "/" (p) } { (p) } }
                                td data-testid="dead-letter-count" { (high - low) }
                                td { (low) "–" (high) }
                            }
                        } }
                    }
                }
            }
        }
    };
    layout(base, "dead-letters", "Dead letters", body)
}

/// `/dead-letters/{topic}/{partition}`: `state` tells what became of each letter's republish.
pub(crate) fn partition(
    base: &str,
    view: &QueuePage,
    csrf: Option<&str>,
    state: &dyn Fn(&DeadLetter) -> Option<Republished>,
) -> Markup {
    let here = format!(
        "{base}/dead-letters/{}/{}",
        segment(&view.topic),
        view.partition
    );
    let oldest = view.letters.last().map(|l| l.offset);
    let newest = view.letters.first().map(|l| l.offset);
    let body = html! {
        (problems(&view.problems))
        (read_only_notice(csrf))
        p { "Watermarks: " @match view.watermarks { Some((lo, hi)) => { (lo) "–" (hi) }, None => "-" }
            " · newest first, " (PAGE) " a page" }
        form method="get" action=(here) {
            label { "From offset " input type="number" name="offset" min="0"; }
            button { "Read" }
        }
        @if view.masked { p data-testid="masked-topic" { "Payloads of this topic (or of its source) are masked." } }
        @if view.letters.is_empty() { p.none data-testid="no-dead-letters" { "No dead letter here." } }
        @for letter in &view.letters { (row(base, letter, view.masked, csrf, state(letter))) }
        p {
            @if let (Some(oldest), Some((low, _))) = (oldest, view.watermarks) { @if oldest > low {
                a data-testid="older" href={ (here) "?offset=" ((oldest - PAGE).max(low)) } { "Older" } " " } }
            @if let (Some(newest), Some((_, high))) = (newest, view.watermarks) { @if newest + 1 < high {
                a data-testid="newer" href={ (here) "?offset=" (newest + 1) } { "Newer" } } }
        }
    };
    layout(
        base,
        "dead-letter-partition",
        &format!("Dead letters {} / {}", view.topic, view.partition),
        body,
    )
}

fn row(
    base: &str,
    l: &DeadLetter,
    masked: bool,
    csrf: Option<&str>,
    state: Option<Republished>,
) -> Markup {
    let o = &l.origin;
    let action = format!(
        "{base}/dead-letters/{}/{}/{}/republish",
        segment(&l.topic),
        l.partition,
        l.offset
    );
    let source = o.topic.clone().unwrap_or_default();
    html! {
        section.dead-letter data-testid="dead-letter-row" data-offset=(l.offset) data-republish-id=(l.republish_id()) {
            h2 { "Offset " (l.offset) " · " (l.timestamp_ms.map_or_else(|| "-".to_string(), time)) }
            table { tbody {
                tr { th { "Source" } td data-testid="source" {
                    @match (&o.topic, o.partition, o.offset) {
                        (Some(t), Some(p), Some(off)) => a href={ (base) "/topics/" (segment(t)) "/" (p) "?offset=" (off) } { (t) " / " (p) " / " (off) },
                        _ => em { "unknown (no ferrafka-source-* headers)" },
                    }
                } }
                tr { th { "Consumer group" } td data-testid="consumer-group" { (o.consumer_group.as_deref().unwrap_or("-")) } }
                tr { th { "Attempts" } td data-testid="attempts" { (o.attempts.map_or_else(|| "-".to_string(), |a| a.to_string())) } }
                tr { th { "Error" } td data-testid="error" { pre { (o.error.as_deref().unwrap_or("-")) } } }
                tr { th { "Failed at" } td data-testid="failed-at" { (o.failed_at_ms.map_or_else(|| "-".to_string(), time)) } }
                @if let Some(id) = &l.republished_as { tr { th { "Republished before as" } td { code { (id) } } } }
                tr { th { "Key" } td data-testid="key" { @match &l.key { Some(k) => code { (text(k)) }, None => em { "null" } } } }
                tr { th { "Headers" } td data-testid="headers" { ul { @for (k, v) in &l.headers {
                    li { code { (text(k.as_bytes())) } ": " @match v { Some(v) => code { (text(v)) }, None => em { "null" } } }
                } } } }
                tr { th { "Payload" } td data-testid="payload" { @match &l.payload {
                    None => em { "null (tombstone)" },
                    Some(_) if masked || l.masked => span data-testid="masked" { "masked" },
                    Some(p) => { pre { (text(&p[..p.len().min(SHOWN_BYTES)])) }
                        @if p.len() > SHOWN_BYTES { em { "(first " (SHOWN_BYTES) " of " (p.len()) " bytes)" } } },
                } } }
                tr { th { "Republish" } td {
                    @match &state {
                        Some(state) => (republished(state)),
                        None => @if let Some(csrf) = csrf {
                            form.write method="post" action=(action) {
                                input type="hidden" name="csrf" value=(csrf);
                                label { "to topic " input type="text" name="to" value=(source) data-testid="republish-to"
                                    pattern="[a-zA-Z0-9._-]+" placeholder="the source topic"; }
                                " "
                                button type="submit" data-testid="republish" { "Republish" }
                            }
                        } @else { em { "not republished" } },
                    }
                } }
            } }
        }
    }
}

/// What became of a republish, for a row and for a refusal.
pub(crate) fn republished(state: &Republished) -> Markup {
    let a = state.asked();
    let (kind, what) = match state {
        Republished::Done { landed, .. } => ("done", format!("Republished to {landed}")),
        Republished::Started(_) => (
            "started",
            format!(
                "Republish to {} started, outcome not recorded (its web process may have stopped): look for its ferrafka-republish-id header there",
                a.to
            ),
        ),
        Republished::Unsure { error, .. } => (
            "unsure",
            format!(
                "Republish to {} may have landed ({error}): look for its ferrafka-republish-id header there",
                a.to
            ),
        ),
    };
    html! {
        span data-testid="republish-state" data-state=(kind) {
            (what) " · by " strong data-testid="republished-by" { (a.who) } " from " (a.from)
            " at " span data-testid="republished-at" { (time(a.at_ms)) }
        }
    }
}

/// How a republish request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Result {
    /// Produced and acknowledged at `landed`.
    Done { landed: String },
    /// Refused because of what became of an earlier republish.
    Refused(Republished),
    /// Refused for another reason, or failed: the text says.
    Failed(String),
}

/// The page a republish request answers with.
pub(crate) fn result(base: &str, letter: &DeadLetter, id: &str, outcome: &Result) -> Markup {
    let back = format!(
        "{base}/dead-letters/{}/{}?offset={}",
        segment(&letter.topic),
        letter.partition,
        letter.offset
    );
    let kind = match outcome {
        Result::Done { .. } => "done",
        Result::Refused(_) => "refused",
        Result::Failed(_) => "failed",
    };
    let body = html! {
        div data-testid="republish-result" data-outcome=(kind) data-republish-id=(id) {
            @match outcome {
                Result::Done { landed } => p { strong.ok { "Republished" } " " code { (letter.coordinates()) } " to " code data-testid="landed" { (landed) } "." },
                Result::Refused(state) => { p { strong.problems { "Refused" } ": this dead letter was republished already (republish id " code { (id) } ")." } p { (republished(state)) } },
                Result::Failed(why) => p { strong.problems { "Not republished" } ": " span data-testid="why" { (why) } },
            }
        }
        p { a data-testid="back" href=(back) { "Back to the dead letter" } }
    };
    layout(base, "republish", "Republish", body)
}

#[cfg(test)]
mod tests {
    use super::super::letter::Origin;
    use super::*;
    use crate::web::ui::audit_page::index::Asked;

    fn letter() -> DeadLetter {
        DeadLetter {
            topic: "dlq".into(),
            partition: 0,
            offset: 3,
            timestamp_ms: Some(1_000),
            key: Some(b"<k>".to_vec()),
            payload: Some(b"<script>alert(1)</script>\x00".to_vec()),
            origin: Origin {
                topic: Some("orders".into()),
                error: Some("bad <b>input</b>".into()),
                ..Origin::default()
            },
            headers: vec![("h<1>".into(), Some(b"\"v\"".to_vec()))],
            republished_as: None,
            masked: false,
        }
    }

    fn page(letters: Vec<DeadLetter>, masked: bool) -> QueuePage {
        QueuePage {
            topic: "dlq".into(),
            partition: 0,
            watermarks: Some((0, 4)),
            letters,
            masked,
            problems: vec![],
        }
    }

    #[test]
    fn dead_letters_are_escaped_and_carry_a_republish_form_until_republished() {
        let html =
            partition("", &page(vec![letter()], false), Some("tok"), &|_| None).into_string();
        for raw in ["<script>", "<b>input", "<k>", "h<1>"] {
            assert!(!html.contains(raw), "{raw} in {html}");
        }
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\u{0}"),
            "{html}"
        );
        assert!(html.contains("bad &lt;b&gt;input&lt;/b&gt;"), "{html}");
        assert!(
            html.contains(r#"action="/dead-letters/dlq/0/3/republish""#),
            "{html}"
        );
        assert!(html.contains(r#"name="csrf" value="tok""#), "{html}");
        assert!(
            html.contains(r#"data-republish-id="dlq/0/3@1000""#),
            "{html}"
        );
        let asked = Asked {
            who: "<alice>".into(),
            from: "1.2.3.4".into(),
            at_ms: 0,
            to: "orders".into(),
        };
        let done = Republished::Done {
            asked,
            landed: "orders/1/9".into(),
        };
        let html = partition("", &page(vec![letter()], false), Some("tok"), &|_| {
            Some(done.clone())
        })
        .into_string();
        assert!(!html.contains("data-testid=\"republish\""), "{html}");
        assert!(
            html.contains(r#"data-state="done""#) && html.contains("&lt;alice&gt;"),
            "{html}"
        );
    }

    #[test]
    fn masked_and_read_only_pages_show_no_payload_and_no_form() {
        let mut l = letter();
        l.payload = Some(Vec::new());
        let html = partition("", &page(vec![l], true), None, &|_| None).into_string();
        assert!(
            html.contains(r#"data-testid="masked""#) && html.contains(r#"data-testid="read-only""#),
            "{html}"
        );
        assert!(!html.contains("<form method=\"post\""), "{html}");
    }

    #[test]
    fn results_say_what_happened() {
        let html = result(
            "/ops",
            &letter(),
            "dlq/0/3@1000",
            &Result::Failed("<x>".into()),
        )
        .into_string();
        assert!(
            html.contains(r#"data-outcome="failed""#) && html.contains("&lt;x&gt;"),
            "{html}"
        );
        assert!(
            html.contains(r#"href="/ops/dead-letters/dlq/0?offset=3""#),
            "{html}"
        );
    }
}
