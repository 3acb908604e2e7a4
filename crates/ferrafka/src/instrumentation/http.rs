//! The server's HTTP endpoint: `/metrics`, `/healthz` and `/readyz` on axum.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Health, Metrics, Verdict};

/// The routes of the endpoint:
///
/// - `GET /metrics`: [`Metrics::render`] as OpenMetrics text;
/// - `GET /healthz`: 200 while [`Health::liveness`] passes, 503 with the problems otherwise;
/// - `GET /readyz`: the same for [`Health::readiness`].
///
/// Probe answers are JSON: `{"status":"ok","problems":[]}`.
pub(crate) fn router(metrics: Metrics, health: Health) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
        .merge(
            Router::new()
                .route(
                    "/healthz",
                    get(|State(h): State<Health>| async move { probe(h.liveness()) }),
                )
                .route(
                    "/readyz",
                    get(|State(h): State<Health>| async move { probe(h.readiness()) }),
                )
                .with_state(health),
        )
}

async fn render(State(metrics): State<Metrics>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], metrics.render()).into_response()
}

fn probe(verdict: Verdict) -> Response {
    let status = if verdict.passes() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if verdict.passes() { "ok" } else { "failing" },
        "problems": verdict.problems,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Serves `router` on `listener` (already bound, so a taken port fails at boot) until the
/// runtime ends.
pub(crate) fn serve(
    listener: std::net::TcpListener,
    router: Router,
    runtime: &tokio::runtime::Handle,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let _guard = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener)?;
    runtime.spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the HTTP endpoint stopped");
        }
    });
    Ok(())
}
