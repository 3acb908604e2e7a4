//! The errors pages' HTML. maud escapes every value; query values in links are
//! percent-encoded.

use maud::{Markup, html};

use super::Filter;
use super::read::{ErrorDetail, ErrorList, Listed, PAGE_SIZE, SCAN_PER_PARTITION};
use crate::web::report::ErrorReport;
use crate::web::ui::data::KnownTopics;
use crate::web::ui::pages::{layout, problems, segment, time};

/// Characters of the error chain shown in a list row; the detail page shows all of it.
const SHOWN_CHAIN: usize = 200;

/// A time as RFC 3339 with milliseconds (what the "Older" link's `until` carries, so no error
/// of the same second is skipped).
pub(crate) fn time_ms(ms: i64) -> String {
    let seconds = time(ms);
    format!("{}.{:03}Z", &seconds[..19], ms.rem_euclid(1000))
}

/// The query string of `filter` (with `?`, empty when nothing is set).
pub(crate) fn query(filter: &Filter) -> String {
    let pairs = [
        ("group", filter.group.clone()),
        ("topic", filter.topic.clone()),
        ("since", filter.since_ms.map(time_ms)),
        ("until", filter.until_ms.map(time_ms)),
    ];
    let set: Vec<String> = pairs
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", segment(&v?))))
        .collect();
    match set.is_empty() {
        true => String::new(),
        false => format!("?{}", set.join("&")),
    }
}

/// `/errors`: the filter form and the newest matching errors.
pub(crate) fn list(base: &str, view: &ErrorList, known: &KnownTopics) -> Markup {
    let f = &view.filter;
    let topics: std::collections::BTreeSet<&String> = known.values().flatten().collect();
    let older = view
        .entries
        .last()
        .filter(|_| view.older_unread || view.matched > view.entries.len() as u64);
    let body = html! {
        (problems(&view.problems))
        form.filters method="get" action={ (base) "/errors" } data-testid="error-filters" {
            label { "Consumer group " input type="text" name="group" list="known-groups"
                value=[f.group.as_deref()] data-testid="filter-group"; }
            label { " Topic " input type="text" name="topic" list="known-topics"
                value=[f.topic.as_deref()] data-testid="filter-topic"; }
            label { " Since " input type="text" name="since" placeholder="2026-01-01T00:00:00Z"
                value=[f.since_ms.map(time_ms)] data-testid="filter-since"; }
            label { " Until " input type="text" name="until" placeholder="2026-01-02T00:00:00Z"
                value=[f.until_ms.map(time_ms)] data-testid="filter-until"; }
            " " button type="submit" data-testid="filter-apply" { "Filter" }
            @if f.is_set() { " " a href={ (base) "/errors" } data-testid="filter-clear" { "Clear" } }
            datalist id="known-groups" { @for g in known.keys() { option value=(g) {} } }
            datalist id="known-topics" { @for t in &topics { option value=(t) {} } }
        }
        p data-testid="error-summary" {
            "Showing " span data-testid="error-count" { (view.entries.len()) }
            " of " span data-testid="error-matched" { (view.matched) }
            " matching errors among the " (view.scanned) " newest records of "
            code { (view.topic) } " read (at most " (SCAN_PER_PARTITION) " per partition, "
            (PAGE_SIZE) " shown)."
            @if view.undecodable > 0 { " " (view.undecodable) " records were not error reports." }
        }
        @if view.entries.is_empty() { p.none data-testid="no-errors" { "No errors." } } @else {
            table.errors {
                thead { tr { th { "Time" } th { "Process" } th { "Kind" } th { "Consumer group" }
                    th { "Topic" } th { "Partition" } th { "Offsets" } th { "Attempt" } th { "Error" } } }
                tbody { @for e in &view.entries { (row(base, e)) } }
            }
        }
        @if let Some(oldest) = older {
            p { a data-testid="older-errors" href={ (base) "/errors" (query(&Filter {
                until_ms: Some(oldest.report.at_ms), ..f.clone() })) } { "Older errors" } }
        }
    };
    layout(base, "errors", "Errors", body)
}

fn row(base: &str, e: &Listed) -> Markup {
    let r = &e.report;
    let href = format!("{base}/errors/{}/{}", e.partition, e.offset);
    let chain = r.chain.join(": ");
    let shown: String = chain.chars().take(SHOWN_CHAIN).collect();
    html! {
        tr data-testid="error-row" data-partition=(e.partition) data-offset=(e.offset)
            data-at=(r.at_ms) data-kind=(r.kind) data-group=[r.consumer_group.as_deref()] data-topic=[r.topic.as_deref()] {
            td style="white-space: nowrap" { a data-testid="error-link" href=(href) { (time(r.at_ms)) } }
            td { a href={ (base) "/processes/" (segment(&r.process_id)) } { (r.process_id) } }
            td { (r.kind) }
            td { (opt(r.consumer_group.as_deref())) }
            td { (opt(r.topic.as_deref())) }
            td { (opt(r.partition)) }
            td { (offsets(r)) }
            td { (opt(r.attempt)) }
            td data-testid="error-chain" { (shown) @if shown.len() < chain.len() { "…" } }
        }
    }
}

fn opt(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn offsets(r: &ErrorReport) -> String {
    match r.offsets {
        Some((first, last)) if first == last => first.to_string(),
        Some((first, last)) => format!("{first}–{last}"),
        None => "-".into(),
    }
}

/// `/errors/{partition}/{offset}`: one error, its chain, backtrace and message coordinates.
pub(crate) fn detail(base: &str, view: &ErrorDetail) -> Markup {
    let record = format!(
        "{base}/topics/{}/{}?offset={}&format=json",
        segment(&view.topic),
        view.partition,
        view.offset
    );
    let body = html! {
        (problems(&view.problems))
        @if let Some(r) = &view.report { (report(base, r)) }
        p.muted {
            "The record: " code { (view.topic) } " partition " (view.partition) ", offset " (view.offset)
            " (" a data-testid="error-record-link" href=(record) { "raw" } "). "
            a href={ (base) "/errors" } { "All errors" }
        }
    };
    let title = match &view.report {
        Some(r) => format!("Error at {}", time(r.at_ms)),
        None => "Error not found".into(),
    };
    layout(base, "error", &title, body)
}

fn report(base: &str, r: &ErrorReport) -> Markup {
    let explorer = r.topic.as_ref().zip(r.partition).map(|(t, p)| {
        let from = r
            .offsets
            .map_or(String::new(), |(first, _)| format!("?offset={first}"));
        format!("{base}/topics/{}/{p}{from}", segment(t))
    });
    html! {
        table.detail data-testid="error-detail" { colgroup { col style="width: 12rem"; col; } tbody {
            tr { th { "Time" } td data-testid="error-time" { (time_ms(r.at_ms)) } }
            tr { th { "Process" } td data-testid="error-process" {
                a href={ (base) "/processes/" (segment(&r.process_id)) } { (r.process_id) } } }
            tr { th { "Kind" } td data-testid="error-kind" { (r.kind) } }
            tr { th { "Attempt" } td data-testid="error-attempt" { (opt(r.attempt)) } }
            tr { th { "Consumer group" } td data-testid="error-group" { @match &r.consumer_group {
                Some(g) => a href={ (base) "/groups/" (segment(g)) } { (g) }, None => "-" } } }
            tr { th { "Topic" } td data-testid="error-topic" { (opt(r.topic.as_deref())) } }
            tr { th { "Partition" } td data-testid="error-partition" { (opt(r.partition)) } }
            tr { th { "Offsets" } td data-testid="error-offsets" { (offsets(r)) } }
        } }
        @if let Some(href) = explorer {
            p { a data-testid="explorer-link" href=(href) { "Open the message in the topic explorer" } }
        }
        h2 { "Error chain" }
        ol data-testid="error-chain" { @for link in &r.chain { li { (link) } } }
        h2 { "Backtrace" }
        @match &r.backtrace {
            Some(bt) => pre data-testid="backtrace" { (bt) },
            None => p.none data-testid="no-backtrace" {
                "None: a returned error carries none (a panic in consume shows where it happened)." },
        }
    }
}
