//! `/health`: what needs a person's attention, and a verdict.

use maud::{Markup, html};

use super::{age, layout, problems, segment};
use crate::web::ui::snapshot::HealthView;

/// The health page.
pub fn health(base: &str, view: &HealthView) -> Markup {
    let verdict = view.verdict();
    let body = html! {
        p { "Verdict: " strong data-testid="health-verdict" class=(verdict) { (verdict) } }
        (problems(&view.problems))
        h2 { "Processes not reporting" }
        ul data-testid="stale-processes" { @for (id, since) in &view.stale {
            li data-process-id=(id) { a href={ (base) "/processes/" (segment(id)) } { (id) } ": no report for " (age(*since)) }
        } }
        @if view.stale.is_empty() { p.none { "None: every process reports." } }
        h2 { "Partitions stalled or with growing lag" }
        ul data-testid="lagging-partitions" { @for p in &view.lagging {
            li data-topic=(p.topic) data-partition=(p.partition) { (p.consumer_group) " " (p.topic) "/" (p.partition) ": " (p.why) ", lag " (p.lag) }
        } }
        @if view.lagging.is_empty() { p.none { "None." } }
        h2 { "Under-replicated partitions" }
        ul data-testid="under-replicated-partitions" { @for (t, p) in &view.under_replicated {
            li data-topic=(t) data-partition=(p) { (t) "/" (p) }
        } }
        @if view.under_replicated.is_empty() { p.none { "None." } }
    };
    layout(base, "health", "Health", body)
}
