//! `/cluster`: brokers, topics and replication.

use maud::{Markup, html};

use super::{layout, problems, segment};
use crate::web::ui::snapshot::ClusterView;

/// The cluster page.
pub fn cluster(base: &str, view: &ClusterView) -> Markup {
    let body = html! {
        (problems(&view.problems))
        p { span data-testid="broker-count" { (view.brokers.len()) } " brokers, " (view.topics.len()) " topics, "
            span data-testid="under-replicated-count" { (view.under_replicated.len()) } " under-replicated partitions" }
        table { thead { tr { th { "Broker" } th { "Address" } } }
            tbody { @for b in &view.brokers { tr data-testid="broker-row" { td { (b.id) } td { (b.address) } } } } }
        h2 { "Topics" }
        table {
            thead { tr { th { "Topic" } th { "Partitions" } th { "Replication" } th { "Under-replicated" } } }
            tbody { @for t in &view.topics { tr data-testid="topic-row" data-topic=(t.name) {
                td { a href={ (base) "/topics/" (segment(&t.name)) } { (t.name) } }
                td { (t.partitions) }
                td { (t.replication_factor) }
                td data-testid="under-replicated" class=[(t.under_replicated > 0).then_some("bad")] { (t.under_replicated) }
            } } }
        }
    };
    layout(base, "cluster", "Cluster", body)
}
