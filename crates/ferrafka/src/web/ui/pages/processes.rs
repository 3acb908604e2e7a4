//! `/processes` and `/processes/{id}`: what every process reported.

use maud::{Markup, html};

use super::{age, figure, layout, rate, segment, time};
use crate::web::ui::operations::{partition_buttons, process_buttons};
use crate::web::ui::snapshot::{FleetSnapshot, ProcessView};

/// The processes list.
pub fn processes(base: &str, fleet: &FleetSnapshot) -> Markup {
    let live = fleet.live().count();
    let body = html! {
        @if let Some(problem) = &fleet.reports_problem { p.problem { (problem) } }
        p {
            span data-testid="process-count" { (live) } " live, "
            span data-testid="stale-count" { (fleet.processes.len() - live) } " stale"
        }
        table {
            thead { tr { th { "Process" } th { "Host" } th { "State" } th { "Version" } th { "Partitions" }
                th { "Messages/s" } th { "Errors/s" } th { "Lag" } th { "Reported" } } }
            tbody {
                @for p in &fleet.processes { (row(base, p, fleet.now_ms)) }
            }
        }
    };
    layout(base, "processes", "Processes", body)
}

fn row(base: &str, p: &ProcessView, now_ms: i64) -> Markup {
    let r = &p.report;
    let lag: i64 = r.partitions.iter().filter_map(|p| p.lag).sum();
    html! {
        tr data-testid="process-row" data-process-id=(r.id) data-stale=(p.stale) class=[p.stale.then_some("stale")] {
            td { a href={ (base) "/processes/" (segment(&r.id)) } { (r.id) } (badges(p)) }
            td { (r.host) }
            td { (r.state) }
            td { (r.ferrafka_version) }
            td data-testid="partition-count" { (r.partitions.len()) }
            td { (rate(r.rates.messages)) }
            td { (rate(r.rates.errors)) }
            td { (lag) }
            td { (age(now_ms - r.reported_at_ms)) " ago" }
        }
    }
}

fn badges(p: &ProcessView) -> Markup {
    html! {
        @if p.stale { " " span.badge.bad data-testid="stale" { "stale" } }
        @if p.newer_schema { " " span.badge data-testid="newer-schema" title="written by a newer ferrafka; fields this version does not know are not shown" { "newer schema" } }
    }
}

/// One process, or a page saying it is not (or no longer) reporting; with command buttons
/// unless the UI is read-only (`csrf` is `None`).
pub fn process(base: &str, fleet: &FleetSnapshot, id: &str, csrf: Option<&str>) -> Markup {
    let Some(p) = fleet.processes.iter().find(|p| p.report.id == id) else {
        let body = html! { p.problem data-testid="unknown-process" { "No report of process " code { (id) } ": it stopped cleanly, or never reported." } };
        return layout(base, "process", "Process", body);
    };
    let r = &p.report;
    let body = html! {
        p { code { (r.id) } (badges(p)) }
        dl {
            dt { "Host" } dd { (r.host) " (pid " (r.pid) ")" }
            dt { "State" } dd data-testid="state" { (r.state) }
            dt { "Environment" } dd { (r.environment) }
            dt { "Client id" } dd { (r.client_id) }
            dt { "ferrafka" } dd { (r.ferrafka_version) " (report schema " (r.schema) ")" }
            dt { "Started" } dd { (time(r.started_at_ms)) }
            dt { "Reported" } dd { (time(r.reported_at_ms)) " (" (age(fleet.now_ms - r.reported_at_ms)) " ago)" }
            dt { "Totals" } dd { (r.totals.messages) " messages, " (r.totals.batches) " batches, " (r.totals.batch_errors) " failed batches, " (r.totals.errors) " errors, " (r.totals.dead_lettered) " dead-lettered" }
        }
        h2 { "Listeners" }
        table { thead { tr { th { "Subscription group" } th { "Consumer group" } th { "Last poll" } } }
            tbody { @for l in &r.listeners { tr data-testid="listener-row" {
                td { (l.subscription_group) }
                td { a href={ (base) "/groups/" (segment(&l.consumer_group)) } { (l.consumer_group) } }
                td { @match l.last_poll_age_ms { Some(ms) => { (age(ms as i64)) " ago" }, None => "never" } }
            } } } }
        h2 { "Partitions" }
        table { thead { tr { th { "Group" } th { "Topic" } th { "Partition" } th { "Stored" } th { "Committed" }
                th { "High watermark" } th { "Lag" } th { "Paused" } th { "Running batch" } @if csrf.is_some() { th { "Commands" } } } }
            tbody { @for pr in &r.partitions { tr data-testid="partition-row" data-topic=(pr.topic) data-partition=(pr.partition) class=[pr.stalled.then_some("stale")] {
                td { (pr.consumer_group) }
                td { (pr.topic) }
                td { (pr.partition) }
                td { (figure(pr.stored_offset)) }
                td { (figure(pr.committed_offset)) }
                td { (figure(pr.high_watermark)) }
                td data-testid="lag" { (figure(pr.lag)) }
                td data-testid="paused" { @if let Some(why) = &pr.paused { (why) } @else { "-" } @if pr.stalled { " " span.badge.bad { "stalled" } } }
                td data-testid="running-batch" { @match &pr.running_batch {
                    Some(b) => { (b.offsets.0) "–" (b.offsets.1) " (" (b.messages) " messages, attempt " (b.attempt) ", " (age(b.age_ms as i64)) ")" },
                    None => "-",
                } }
                @if csrf.is_some() { td { (partition_buttons(base, csrf, &r.id, (&pr.consumer_group, &pr.topic, pr.partition))) } }
            } } } }
        (process_buttons(base, csrf, &r.id))
        h2 { "Recent errors" }
        @if r.recent_errors.is_empty() { p { "None." } }
        ul.errors { @for e in r.recent_errors.iter().rev() { li data-testid="error" {
            (time(e.at_ms)) " " strong { (e.kind) }
            @if let (Some(t), Some(p)) = (&e.topic, e.partition) { " " (t) "/" (p) }
            @if let Some((a, b)) = e.offsets { " offsets " (a) "–" (b) }
            @if let Some(n) = e.attempt { " attempt " (n) }
            ul { @for line in &e.chain { li { (line) } } }
            @if let Some(bt) = &e.backtrace { details { summary { "backtrace" } pre { (bt) } } }
        } } }
    };
    layout(base, "process", &format!("Process {}", r.host), body)
}
