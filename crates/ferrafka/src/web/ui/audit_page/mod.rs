//! `/audit`: what the UI wrote, read back from the audit topic (`audit_topic`), newest first:
//! who, when, from where, what, to what and how it went. The reader ([`index`]) is started
//! by the first request that needs it and is the one the republish asks whether a dead letter
//! was republished already.

pub(crate) mod index;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::routing::get;
use maud::{Markup, html};

use super::pages::{layout, problems, time};
use super::state::{Page, Shared, blocking};
use crate::web::audit::AuditRecord;
use index::AuditIndex;

/// How long a page waits for the reader to catch up with the audit topic.
pub(crate) const PAGE_SYNC: Duration = Duration::from_secs(3);

/// The audit reader of one router, started on first use.
pub(crate) type AuditCell = Arc<OnceLock<Result<AuditIndex, String>>>;

/// The routes of this page (the dead-letter module adds the [`AuditCell`] they share).
pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/audit", get(audit))
}

/// The audit reader of `s`'s router, started now if it is not yet.
pub(crate) fn index(cell: &AuditCell, s: &Shared) -> Result<AuditIndex, String> {
    cell.get_or_init(|| {
        AuditIndex::start(
            s.topics.audit.clone(),
            (*s.kafka).clone(),
            Arc::downgrade(&s._alive),
        )
        .map_err(|e| format!("cannot start the audit reader: {e}"))
    })
    .clone()
}

async fn audit(State(s): State<Shared>, Extension(cell): Extension<AuditCell>) -> Page {
    let base = s.base.clone();
    let topic = s.topics.audit.clone();
    let view = blocking(move || {
        let index = index(&cell, &s)?;
        let synced = index.sync(&s.admin, PAGE_SYNC);
        let (records, problem, undecodable) = index.newest();
        let mut problems: Vec<String> = synced.err().into_iter().chain(problem).collect();
        if undecodable > 0 {
            problems.push(format!(
                "{undecodable} records of the topic are not audit records"
            ));
        }
        problems.dedup();
        Ok::<_, String>((records, problems))
    })
    .await?;
    let (records, problems) = view.unwrap_or_else(|e| (Vec::new(), vec![e]));
    Ok(render(&base, &topic, &records, &problems))
}

/// The audit page: `records` newest first.
pub(crate) fn render(
    base: &str,
    topic: &str,
    records: &[(i32, i64, AuditRecord)],
    shown_problems: &[String],
) -> Markup {
    let body = html! {
        (problems(shown_problems))
        p { "The newest " (index::NEWEST) " records of the audit topic " code { (topic) } ", newest first." }
        @if records.is_empty() { p.none data-testid="no-audit" { "Nothing was written through the UI yet." } }
        @else {
            table {
                thead { tr { th { "When" } th { "Who" } th { "From" } th { "What" } th { "Subject" } th { "Details" } th { "Outcome" } } }
                tbody { @for (partition, offset, r) in records {
                    tr data-testid="audit-row" data-action=(r.action) data-id=(r.id) data-outcome=(r.outcome)
                        data-partition=(partition) data-offset=(offset) {
                        td data-testid="audit-at" { (time(r.at_ms)) }
                        td data-testid="audit-who" { (r.who) }
                        td data-testid="audit-from" { (r.from) }
                        td data-testid="audit-action" { (r.action) }
                        td data-testid="audit-subject" { code { (r.subject) } }
                        td { ul { @for (k, v) in &r.details { li { (k) ": " code { (v) } } } } }
                        td data-testid="audit-outcome" class=[(!matches!(r.outcome.as_str(), "done" | "started")).then_some("bad")] { (r.outcome) }
                    }
                } }
            }
        }
    };
    layout(base, "audit", "Audit", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_audit_page_escapes_what_operators_and_proxies_sent() {
        let record = AuditRecord::new(
            "id-1",
            "<script>x</script>",
            "10.0.0.1 (for <img>)",
            "republish",
            "dlq/0/1",
        )
        .detail("to", "orders\"><b>")
        .outcome("refused: already republished");
        let html = render("", "audit", &[(0, 5, record)], &["<i>problem</i>".into()]).into_string();
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
        assert!(html.contains("(for &lt;img&gt;)"), "{html}");
        assert!(html.contains("orders&quot;&gt;&lt;b&gt;"), "{html}");
        assert!(html.contains("&lt;i&gt;problem&lt;/i&gt;"), "{html}");
        assert!(
            !html.contains("<script>x") && !html.contains("<img>") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains(r#"data-testid="audit-row" data-action="republish" data-id="id-1" data-outcome="refused: already republished""#), "{html}");
        let empty = render("", "audit", &[], &[]).into_string();
        assert!(empty.contains(r#"data-testid="no-audit""#), "{empty}");
    }
}
