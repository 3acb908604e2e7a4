//! The dead-letter explorer: `/dead-letters` lists the dead-letter topics of the app's routes
//! with their counts per partition, `/dead-letters/{topic}/{partition}` pages through one
//! partition newest first with the `ferrafka-*` headers decoded, and
//! `POST /dead-letters/{topic}/{partition}/{offset}/republish` republishes one, at most once
//! ([`republish`]). Only the app's dead-letter topics are served: the explorer is no way to
//! copy any topic's records elsewhere. Payloads of masked topics (the dead-letter topic's or a
//! source's) are dropped when read.

mod letter;
mod read;
mod render;
mod republish;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use super::audit_page::{self, AuditCell, PAGE_SYNC};
use super::state::{Page, Shared, blocking};

/// The explorer's and the audit page's routes, sharing one audit reader and the republish
/// lock.
pub(super) fn routes() -> Router<Shared> {
    let cell: AuditCell = Arc::default();
    let in_flight: republish::InFlight = Arc::default();
    Router::new()
        .route("/dead-letters", get(list))
        .route("/dead-letters/{topic}/{partition}", get(partition))
        .route(
            "/dead-letters/{topic}/{partition}/{offset}/republish",
            post(republish::republish),
        )
        .merge(audit_page::routes())
        .layer(Extension(cell))
        .layer(Extension(in_flight))
}

async fn list(State(s): State<Shared>) -> Page {
    let base = s.base.clone();
    let rows = blocking(move || read::queues(&s.admin, &s.topics.dead_letters)).await?;
    Ok(render::list(&base, &rows))
}

/// `?offset=N`: the page from offset N.
#[derive(serde::Deserialize, Default)]
struct PartitionQuery {
    offset: Option<String>,
}

async fn partition(
    State(s): State<Shared>,
    Extension(cell): Extension<AuditCell>,
    Path((topic, partition)): Path<(String, i32)>,
    Query(q): Query<PartitionQuery>,
) -> Page {
    let Some(sources) = s.topics.dead_letters.get(&topic) else {
        let text = format!("{topic} is not a dead-letter topic of this app's routes\n");
        return Err((StatusCode::NOT_FOUND, text).into_response());
    };
    let from = match q.offset.as_deref().filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(o.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| {
            let text = format!("offset {o:?}: use a whole number, 0 or more\n");
            (StatusCode::BAD_REQUEST, text).into_response()
        })?),
    };
    let masked = s.masked.contains(&topic)
        || sources
            .iter()
            .any(|source| s.masked.contains(&source.topic));
    let (base, csrf) = (s.base.clone(), s.csrf().map(str::to_string));
    let masked_topics = s.masked.clone();
    let (view, index) = blocking(move || {
        let view = read::page(&s.admin, &s.kafka, &topic, partition, from, masked);
        let index = audit_page::index(&cell, &s).map(|index| {
            let synced = index.sync(&s.admin, PAGE_SYNC);
            (index, synced.err())
        });
        (view, index)
    })
    .await?;
    let mut view = view;
    let index = match index {
        Ok((index, problem)) => {
            view.problems.extend(problem);
            Some(index)
        }
        Err(problem) => {
            view.problems.push(problem);
            None
        }
    };
    // A letter masked by its own source header too (a topic routed here by another app).
    if !view.masked {
        for l in &mut view.letters {
            if l.origin
                .topic
                .as_ref()
                .is_some_and(|t| masked_topics.contains(t))
            {
                l.payload = l.payload.as_ref().map(|_| Vec::new());
                l.masked = true;
            }
        }
    }
    let state = |l: &letter::DeadLetter| {
        index
            .as_ref()
            .and_then(|i| i.lock().state(&l.republish_id()))
    };
    Ok(render::partition(&base, &view, csrf.as_deref(), &state))
}
