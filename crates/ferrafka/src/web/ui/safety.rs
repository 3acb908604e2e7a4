//! Writes from the UI: every state-changing request is a `POST` that passes [`guard_writes`]
//! (after the auth of `web_auth`, when set). The guard refuses every write of a read-only UI
//! (`web_read_only`), a cross-site request, and a form without the UI's CSRF token; it hands
//! the handler the [`Operator`] who asked (for the audit). Handlers of writes take
//! `Extension<Operator>` and a `Form` of their own fields (the `csrf` field is the guard's).

use std::net::SocketAddr;

use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::state::Shared;

/// The form field that carries the CSRF token.
pub(super) const CSRF_FIELD: &str = "csrf";

/// The largest write form the guard reads (a republish or a command is a few fields).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Who asked for a write, for the audit: the basic-auth user (`token` for a bearer token,
/// `anonymous` without auth) and where from (the peer address, and `X-Forwarded-For` when a
/// proxy sets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Operator {
    pub(super) who: String,
    pub(super) from: String,
}

/// A fresh CSRF token: 32 random hex digits.
pub(super) fn new_csrf_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The middleware on every route: reads pass, writes pass only as described in [the
/// module](self).
pub(super) async fn guard_writes(
    State(s): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let Some(csrf) = s.csrf().map(str::to_string) else {
        return refuse("this web UI is read-only (`web_read_only`): it makes no writes");
    };
    if is_cross_site(request.headers()) {
        return refuse("a write from another site is refused");
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_FORM_BYTES).await else {
        return refuse("the form is larger than 64 KiB");
    };
    let given = form_field(&bytes, CSRF_FIELD).unwrap_or_default();
    if !bool::from(given.as_bytes().ct_eq(csrf.as_bytes())) {
        return refuse("the form's CSRF token is missing or stale: reload the page and try again");
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let operator = operator(&parts.headers, peer);
    parts.extensions.insert(operator);
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(reason: &str) -> Response {
    (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response()
}

/// `Sec-Fetch-Site: cross-site` (browsers send it); `same-site` is refused too, since another
/// port of the same host is another site for a UI.
fn is_cross_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "cross-site" | "same-site"))
}

/// The first value of `name` in a `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Who sent the request (the auth middleware has already admitted it) and from where.
fn operator(headers: &HeaderMap, peer: Option<SocketAddr>) -> Operator {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let who = if let Some(encoded) = authorization.strip_prefix("Basic ") {
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .and_then(|d| d.split_once(':').map(|(user, _)| user.to_string()))
            .unwrap_or_else(|| "basic".into())
    } else if authorization.starts_with("Bearer ") {
        "token".into()
    } else {
        "anonymous".into()
    };
    let mut from = peer.map_or_else(|| "unknown".to_string(), |p| p.ip().to_string());
    if let Some(forwarded) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        from = format!("{from} (for {})", forwarded.trim());
    }
    Operator { who, from }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_is_the_basic_user_never_the_password() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("alice:pw-secret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        headers.insert("x-forwarded-for", "10.0.0.7".parse().unwrap());
        let who = operator(&headers, Some(([127, 0, 0, 1], 5000).into()));
        assert_eq!(who.who, "alice");
        assert_eq!(who.from, "127.0.0.1 (for 10.0.0.7)");
        assert!(!format!("{who:?}").contains("pw-secret"));
        let anonymous = operator(&HeaderMap::new(), None);
        assert_eq!(
            (anonymous.who.as_str(), anonymous.from.as_str()),
            ("anonymous", "unknown")
        );
    }

    #[test]
    fn form_fields_are_decoded_and_cross_site_writes_spotted() {
        assert_eq!(
            form_field(b"a=1&csrf=ab%2Bc&csrf=zz", "csrf").as_deref(),
            Some("ab+c")
        );
        assert_eq!(form_field(b"a=1", "csrf"), None);
        let mut headers = HeaderMap::new();
        assert!(!is_cross_site(&headers));
        headers.insert("sec-fetch-site", "same-origin".parse().unwrap());
        assert!(!is_cross_site(&headers));
        headers.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(is_cross_site(&headers));
    }
}

#[cfg(test)]
mod guard_tests {
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::http::{Request, StatusCode};
    use axum::routing::post;
    use tower::ServiceExt as _;

    use super::*;
    use crate::web::ui::Web;

    /// A UI's guard in front of one write that echoes its operator.
    fn guarded(read_only: bool) -> (Router, Option<String>) {
        let app = crate::App::builder()
            .setup(|c| {
                c.kafka("bootstrap.servers", "127.0.0.1:1");
            })
            .build();
        let shared = Web::new(&app)
            .unwrap()
            .read_only(read_only)
            .reports_topic("web-ui-unit-reports")
            .shared()
            .unwrap();
        let csrf = shared.csrf().map(str::to_string);
        let router = Router::new()
            .route(
                "/write",
                post(|Extension(o): Extension<Operator>| async move { o.who }),
            )
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                guard_writes,
            ))
            .with_state(shared);
        (router, csrf)
    }

    async fn send(router: &Router, body: &str, site: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::post("/write")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        let response = router
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn writes_need_the_token_a_same_origin_request_and_a_writing_ui() {
        let (router, csrf) = guarded(false);
        let csrf = csrf.expect("a writing UI has a token");
        assert_eq!(csrf.len(), 32);
        let (code, body) = send(&router, &format!("csrf={csrf}&x=1"), None).await;
        assert_eq!((code, body.as_str()), (StatusCode::OK, "anonymous"));
        let (code, body) = send(&router, "x=1", None).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(body.contains("CSRF token is missing or stale"), "{body}");
        let (code, _) = send(&router, "csrf=0123456789abcdef0123456789abcdef", None).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        let (code, body) = send(&router, &format!("csrf={csrf}"), Some("cross-site")).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(body.contains("another site"), "{body}");
        let (code, _) = send(&router, &format!("csrf={csrf}"), Some("same-origin")).await;
        assert_eq!(code, StatusCode::OK);

        let (router, csrf) = guarded(true);
        assert_eq!(csrf, None);
        let (code, body) = send(&router, "csrf=anything", None).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        assert!(body.contains("read-only (`web_read_only`)"), "{body}");
    }

    #[test]
    fn doctor_warns_about_a_writing_ui_without_auth() {
        let doctor = |setup: fn(&mut crate::config::Config)| {
            crate::App::builder()
                .setup(setup)
                .build()
                .doctor(&crate::doctor::DoctorOptions::default())
        };
        let flagged = doctor(|c| {
            c.reporting(true);
        });
        let finding = flagged.findings.iter().find(|f| f.id == "FD026");
        assert!(finding.is_some(), "{flagged:?}");
        for quiet in [
            doctor(|c| {
                c.reporting(true).web_read_only(true);
            }),
            doctor(|c| {
                c.reporting(true)
                    .web_auth(crate::web::WebAuth::basic("ops", "pw"));
            }),
            doctor(|c| {
                c.reporting(false);
            }),
        ] {
            assert!(!quiet.findings.iter().any(|f| f.id == "FD026"), "{quiet:?}");
        }
    }
}
