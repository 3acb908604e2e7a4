//! What every handler shares ([`Shared`]), and the small helpers every page handler uses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::data::KnownTopics;
use super::live::{self, SharedFleet};
use super::snapshot::FleetSnapshot;
use crate::admin::Admin;
use crate::producer::Producer;

/// What every handler shares. The `alive` token stops the background threads once the last
/// router clone is dropped.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) fleet: SharedFleet,
    pub(super) admin: Arc<Admin>,
    /// The admin client's librdkafka properties (readers of topics use them too).
    pub(super) kafka: Arc<BTreeMap<String, String>>,
    pub(super) masked: Arc<BTreeSet<String>>,
    pub(super) routes: Arc<KnownTopics>,
    pub(super) topics: Arc<WebTopics>,
    /// `None` when the UI is read-only (`web_read_only`): nothing can write.
    pub(super) writes: Option<Writes>,
    pub(super) base: Arc<str>,
    pub(super) _alive: Arc<()>,
}

/// The topics the UI reads and writes besides the cluster's.
#[derive(Debug, Clone, Default)]
pub(super) struct WebTopics {
    /// `errors_topic`: the fleet's error reports.
    pub(super) errors: String,
    /// `commands_topic`: commands to processes and their acknowledgements.
    pub(super) commands: String,
    /// `audit_topic`: what the UI wrote, who asked and from where.
    pub(super) audit: String,
    /// The app's dead-letter topics, each with the routes that send there.
    pub(super) dead_letters: BTreeMap<String, Vec<DeadLetterSource>>,
}

/// A route that dead-letters to a topic: its consumer group and source topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DeadLetterSource {
    pub(super) consumer_group: String,
    pub(super) topic: String,
}

/// What a UI that writes has: the producer of its writes and the CSRF token every write form
/// carries (one per `web` process, random, compared in constant time).
#[derive(Clone)]
pub(super) struct Writes {
    pub(super) producer: Producer,
    pub(super) csrf: Arc<str>,
}

impl Shared {
    /// The CSRF token write forms carry, or `None` when the UI is read-only (pages then show
    /// no write buttons).
    pub(super) fn csrf(&self) -> Option<&str> {
        self.writes.as_ref().map(|w| &*w.csrf)
    }

    /// The fleet as it is now.
    pub(super) fn snapshot(&self) -> FleetSnapshot {
        live::lock(&self.fleet).snapshot(crate::messages::now_ms())
    }
}

/// A page, or the response that replaces it (a bad request, a failed task).
pub(super) type Page = std::result::Result<Markup, Response>;

/// Runs blocking admin calls (and topic reads) off the async workers.
pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> std::result::Result<T, Response> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("page failed: {e}\n"),
        )
            .into_response()
    })
}
