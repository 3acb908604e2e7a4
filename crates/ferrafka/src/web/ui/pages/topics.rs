//! `/topics`, `/topics/{topic}` and `/topics/{topic}/{partition}`: the explorer.

use maud::{Markup, html};

use super::bytes::{SHOWN_BYTES, hex, json, text};
use super::{figure, layout, problems, segment, time};
use crate::web::ui::snapshot::{
    ClusterView, MessageRow, PartitionBrowse, PayloadFormat, TopicView,
};

/// The topics list.
pub fn topics(base: &str, view: &ClusterView) -> Markup {
    let body = html! {
        (problems(&view.problems))
        table {
            thead { tr { th { "Topic" } th { "Partitions" } th { "Replication" } } }
            tbody { @for t in &view.topics { tr data-testid="topic-row" data-topic=(t.name) {
                td { a href={ (base) "/topics/" (segment(&t.name)) } { (t.name) } }
                td { (t.partitions) }
                td { (t.replication_factor) }
            } } }
        }
    };
    layout(base, "topics", "Topics", body)
}

/// One topic: partitions with watermarks, replication and configuration.
pub fn topic(base: &str, view: &TopicView) -> Markup {
    let body = html! {
        (problems(&view.problems))
        table {
            thead { tr { th { "Partition" } th { "Low" } th { "High" } th { "Leader" } th { "Replicas" } th { "ISR" } } }
            tbody { @for p in &view.partitions { tr data-testid="partition-row" data-partition=(p.partition) {
                td { a href={ (base) "/topics/" (segment(&view.name)) "/" (p.partition) } { (p.partition) } }
                td data-testid="low-watermark" { (figure(p.low)) }
                td data-testid="high-watermark" { (figure(p.high)) }
                td { (p.leader) }
                td { (ids(&p.replicas)) }
                td class=[(p.isr.len() < p.replicas.len()).then_some("bad")] { (ids(&p.isr)) }
            } } }
        }
        h2 { "Configuration" }
        table { tbody { @for (k, v) in &view.configs { tr data-testid="config-row" { td { code { (k) } } td { (v) } } } } }
    };
    layout(base, "topic", &format!("Topic {}", view.name), body)
}

fn ids(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One partition's messages from an offset or a time.
pub fn browse(base: &str, view: &PartitionBrowse) -> Markup {
    let here = format!("{base}/topics/{}/{}", segment(&view.topic), view.partition);
    let next = view.messages.last().map(|m| m.offset + 1);
    let body = html! {
        (problems(&view.problems))
        p { "Watermarks: " @match view.watermarks { Some((lo, hi)) => { (lo) "–" (hi) }, None => "-" } }
        form method="get" action=(here) {
            label { "Offset " input type="number" name="offset" min="0"; }
            label { " or time " input type="text" name="time" placeholder="2026-01-01T00:00:00Z"; }
            select name="format" { @for f in [PayloadFormat::Json, PayloadFormat::Text, PayloadFormat::Hex] {
                option value=(f.name()) selected[f == view.format] { (f.name()) } } }
            button { "Read" }
        }
        @if view.masked { p data-testid="masked-topic" { "Payloads of this topic are masked." } }
        table.messages {
            thead { tr { th { "Offset" } th { "Time" } th { "Key" } th { "Headers" } th { "Payload" } } }
            tbody { @for m in &view.messages { (message(m, view.masked, view.format)) } }
        }
        @if let Some(next) = next { a data-testid="next-page" href={ (here) "?offset=" (next) "&format=" (view.format.name()) } { "Next" } }
    };
    layout(
        base,
        "browse",
        &format!("{} / {}", view.topic, view.partition),
        body,
    )
}

fn message(m: &MessageRow, masked: bool, format: PayloadFormat) -> Markup {
    html! {
        tr data-testid="message-row" data-offset=(m.offset) {
            td { (m.offset) }
            td { (m.timestamp_ms.map_or_else(|| "-".to_string(), time)) }
            td data-testid="key" { @match &m.key { Some(k) => code { (text(k)) }, None => em { "null" } } }
            td data-testid="headers" { ul { @for (k, v) in &m.headers {
                li { code { (text(k.as_bytes())) } ": " @match v { Some(v) => code { (text(v)) }, None => em { "null" } } }
            } } }
            td data-testid="payload" { @match &m.payload {
                None => em { "null (tombstone)" },
                Some(_) if masked => span data-testid="masked" { "masked" },
                Some(p) => { pre { (payload(p, format)) } @if p.len() > SHOWN_BYTES { em { "(first " (SHOWN_BYTES) " of " (p.len()) " bytes)" } } },
            } }
        }
    }
}

fn payload(bytes: &[u8], format: PayloadFormat) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    match format {
        PayloadFormat::Json => json(shown),
        PayloadFormat::Text => text(shown),
        PayloadFormat::Hex => hex(shown),
    }
}
