//! Driving a web UI's router in a test: a request in, its status and body out.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;

/// The status and body of `router`'s answer to `request`.
pub(crate) async fn respond(router: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 8 << 20)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// The status and body of a `GET` of `path`.
pub(crate) async fn fetch(router: &axum::Router, path: &str) -> (StatusCode, String) {
    respond(router, Request::get(path).body(Body::empty()).unwrap()).await
}

/// The body of a `GET` of `path`, which must answer `200`.
pub(crate) async fn page(router: &axum::Router, path: &str) -> String {
    let (status, body) = fetch(router, path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}
