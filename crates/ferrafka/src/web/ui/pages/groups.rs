//! `/groups` and `/groups/{group}`: committed offsets and lag from the cluster's admin API, so
//! they show even when no process runs.

use maud::{Markup, html};

use super::charts::sparkline;
use super::{figure, layout, problems, segment};
use crate::web::ui::operations::partition_buttons;
use crate::web::ui::snapshot::{GroupView, GroupsView};

/// The groups list.
pub fn groups(base: &str, view: &GroupsView) -> Markup {
    let body = html! {
        (problems(&view.problems))
        table {
            thead { tr { th { "Group" } th { "State" } th { "Members" } th { "Lag" } } }
            tbody { @for g in &view.groups { tr data-testid="group-row" data-group=(g.name) {
                td { a href={ (base) "/groups/" (segment(&g.name)) } { (g.name) } }
                td { (g.state) }
                td { (g.members.map_or_else(|| "-".to_string(), |m| m.to_string())) }
                td data-testid="lag" { (figure(g.lag)) }
            } } }
        }
    };
    layout(base, "groups", "Consumer groups", body)
}

/// One group; with pause and resume buttons for the partitions a process holds, unless the UI
/// is read-only (`csrf` is `None`).
pub fn group(base: &str, view: &GroupView, csrf: Option<&str>) -> Markup {
    let trend: Vec<f64> = view.trend.iter().map(|(_, lag)| *lag as f64).collect();
    let total: Option<i64> = view.partitions.iter().map(|p| p.lag).sum();
    let body = html! {
        (problems(&view.problems))
        dl {
            dt { "State" } dd data-testid="state" { (view.state.as_deref().unwrap_or("-")) }
            dt { "Lag" } dd data-testid="total-lag" { (figure(total)) }
        }
        figure { figcaption { "Lag (from process reports)" } (sparkline("chart-group-lag", "lag of the group", &trend)) }
        h2 { "Members" }
        @if view.members.is_empty() { p data-testid="no-members" { "No members: no consumer of this group is running." } }
        table { tbody { @for m in &view.members { tr data-testid="member-row" {
            td { (m.client_id) } td { (m.host) } td { (m.topics.join(", ")) }
        } } } }
        h2 { "Partitions" }
        table {
            thead { tr { th { "Topic" } th { "Partition" } th { "Committed" } th { "High watermark" } th { "Lag" } th { "Process" } @if csrf.is_some() { th { "Commands" } } } }
            tbody { @for p in &view.partitions {
                tr data-testid="group-partition-row" data-topic=(p.topic) data-partition=(p.partition) {
                    td { a href={ (base) "/topics/" (segment(&p.topic)) } { (p.topic) } }
                    td { (p.partition) }
                    td data-testid="committed" { (figure(p.committed)) }
                    td data-testid="high-watermark" { (figure(p.high_watermark)) }
                    td data-testid="lag" { (figure(p.lag)) }
                    td { @if let Some(o) = &p.owner { a href={ (base) "/processes/" (segment(o)) } { (o) } } @else { "-" } }
                    @if csrf.is_some() { td { @if let Some(o) = &p.owner { (partition_buttons(base, csrf, o, (&view.name, &p.topic, p.partition))) } } }
                }
            } }
        }
    };
    layout(
        base,
        "group",
        &format!("Consumer group {}", view.name),
        body,
    )
}
