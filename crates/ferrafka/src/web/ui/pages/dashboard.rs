//! `/`: the fleet at a glance and its trends.

use maud::{Markup, html};

use super::charts::sparkline;
use super::{layout, rate};
use crate::web::ui::snapshot::FleetSnapshot;

/// The dashboard.
pub fn dashboard(base: &str, fleet: &FleetSnapshot) -> Markup {
    let now = fleet.current();
    let messages: Vec<f64> = fleet.series.iter().map(|p| p.messages_rate).collect();
    let errors: Vec<f64> = fleet.series.iter().map(|p| p.errors_rate).collect();
    let lag: Vec<f64> = fleet.series.iter().map(|p| p.total_lag as f64).collect();
    let stale = fleet.processes.len() - fleet.live().count();
    let body = html! {
        @if let Some(problem) = &fleet.reports_problem { p.problem { (problem) } }
        section.figures {
            div.figure { span.label { "Processes" } span.value data-testid="process-count" { (fleet.live().count()) } }
            div.figure { span.label { "Stale" } span.value { (stale) } }
            div.figure { span.label { "Messages/s" } span.value data-testid="messages-rate" { (rate(now.messages_rate)) } }
            div.figure { span.label { "Errors/s" } span.value data-testid="errors-rate" { (rate(now.errors_rate)) } }
            div.figure { span.label { "Total lag" } span.value data-testid="total-lag" { (now.total_lag) } }
        }
        section.charts {
            figure { figcaption { "Messages/s" } (sparkline("chart-messages", "messages per second", &messages)) }
            figure { figcaption { "Errors/s" } (sparkline("chart-errors", "errors per second", &errors)) }
            figure { figcaption { "Total lag" } (sparkline("chart-lag", "total lag", &lag)) }
        }
    };
    layout(base, "dashboard", "Dashboard", body)
}
