//! `/errors` and `/errors/{partition}/{offset}`: the fleet's errors, as every reporting
//! process publishes them to `errors_topic` ([`ErrorReport`] JSON keyed by process id).
//!
//! The list shows the newest errors first, filtered by consumer group, topic and time (the
//! filters live in the query string, so a filtered list is a link to share); it reads a bounded
//! window of the topic ([`read`]). The detail page is addressed by the coordinates of the
//! error's record on the errors topic and links to the failed message in the explorer.

mod page;
mod read;

#[cfg(test)]
mod tests;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::rfc3339;
use super::state::{Page, Shared, blocking};
use crate::web::report::ErrorReport;

/// The routes of the errors pages.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/errors", get(list))
        .route("/errors/{partition}/{offset}", get(detail))
}

/// What the list shows: each filter is optional; times are milliseconds since the epoch,
/// `since` inclusive and `until` exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Filter {
    pub(crate) group: Option<String>,
    pub(crate) topic: Option<String>,
    pub(crate) since_ms: Option<i64>,
    pub(crate) until_ms: Option<i64>,
}

/// The query string of `/errors`: `group`, `topic`, `since` and `until` (RFC 3339). Empty
/// values (an empty form field) are no filter.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ListQuery {
    group: Option<String>,
    topic: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl Filter {
    /// The filter a query asks for, or what is wrong with it (every problem, naming the field).
    pub(crate) fn parse(q: &ListQuery) -> Result<Filter, String> {
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let mut problems = Vec::new();
        let mut time = |name: &str, v: &Option<String>| {
            let v = text(v)?;
            let ms = rfc3339::to_millis(&v);
            if ms.is_none() {
                problems.push(format!(
                    "{name} {v:?}: use RFC 3339, e.g. 2026-01-01T00:00:00Z or \
                     2026-01-01T01:00:00+01:00"
                ));
            }
            ms
        };
        let filter = Filter {
            group: text(&q.group),
            topic: text(&q.topic),
            since_ms: time("since", &q.since),
            until_ms: time("until", &q.until),
        };
        if let (Some(since), Some(until)) = (filter.since_ms, filter.until_ms)
            && since >= until
        {
            problems.push("since needs to be before until".into());
        }
        match problems.is_empty() {
            true => Ok(filter),
            false => Err(problems.join("\n")),
        }
    }

    /// Whether `error` passes every filter set.
    pub(crate) fn matches(&self, error: &ErrorReport) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        same(&self.group, &error.consumer_group)
            && same(&self.topic, &error.topic)
            && self.since_ms.is_none_or(|s| error.at_ms >= s)
            && self.until_ms.is_none_or(|u| error.at_ms < u)
    }

    /// Whether any filter is set.
    pub(crate) fn is_set(&self) -> bool {
        *self != Filter::default()
    }
}

async fn list(State(s): State<Shared>, Query(q): Query<ListQuery>) -> Page {
    let filter = Filter::parse(&q).map_err(bad_request)?;
    let base = s.base.clone();
    let known = s.routes.clone();
    let view = blocking(move || read::list(&s.admin, &s.kafka, &s.topics.errors, filter)).await?;
    Ok(page::list(&base, &view, &known))
}

async fn detail(
    State(s): State<Shared>,
    Path((partition, offset)): Path<(i32, i64)>,
) -> Result<Response, Response> {
    if partition < 0 || offset < 0 {
        return Err(bad_request(format!(
            "partition {partition}, offset {offset}: use whole numbers, 0 or more"
        )));
    }
    let base = s.base.clone();
    let view =
        blocking(move || read::detail(&s.kafka, &s.topics.errors, partition, offset)).await?;
    let status = match view.report {
        Some(_) => StatusCode::OK,
        None => StatusCode::NOT_FOUND,
    };
    Ok((status, page::detail(&base, &view)).into_response())
}

fn bad_request(text: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{text}\n")).into_response()
}
