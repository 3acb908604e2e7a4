//! `web_auth`: who may see the UI. A secret: its `Debug` and `Display` never show it, and
//! requests are checked in constant time, so response timing does not leak it byte by byte.

use std::fmt;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::config::Problem;

/// The variable that sets `web_auth` from the environment (it wins over the setting):
/// `token:<T>` or `basic:<user>:<password>`.
pub const WEB_AUTH_VAR: &str = "FERRAFKA_WEB_AUTH";

/// How the web UI authenticates requests (the `web_auth` setting).
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebAuth {
    /// No authentication: only allowed on a loopback address.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Token(String),
    /// `Authorization: Basic …` (HTTP basic auth, which browsers ask for).
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl WebAuth {
    /// A bearer token.
    pub fn token(token: impl Into<String>) -> Self {
        WebAuth::Token(token.into())
    }

    /// A user and password for HTTP basic auth.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Self {
        WebAuth::Basic {
            user: user.into(),
            password: password.into(),
        }
    }

    /// Whether requests must authenticate.
    pub fn is_set(&self) -> bool {
        !matches!(self, WebAuth::None)
    }

    /// Parses [`WEB_AUTH_VAR`]'s value: `token:<T>` or `basic:<user>:<password>`. The problem
    /// never shows the value.
    pub fn parse(value: &str) -> Result<Self, Problem> {
        let refuse = |what: &str| {
            Problem::new(
                WEB_AUTH_VAR,
                crate::secrets::REDACTED,
                what,
                "set it to `token:<T>` or `basic:<user>:<password>`, or unset it",
            )
        };
        if let Some(token) = value.strip_prefix("token:") {
            return match token.is_empty() {
                true => Err(refuse("the token is empty")),
                false => Ok(WebAuth::token(token)),
            };
        }
        if let Some(rest) = value.strip_prefix("basic:") {
            return match rest.split_once(':') {
                Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                    Ok(WebAuth::basic(user, password))
                }
                _ => Err(refuse("basic auth needs a user and a non-empty password")),
            };
        }
        Err(refuse("starts with neither `token:` nor `basic:`"))
    }

    /// The setting when [`WEB_AUTH_VAR`] is unset, else the variable's value.
    pub(crate) fn resolve(configured: &WebAuth) -> Result<WebAuth, Problem> {
        match std::env::var(WEB_AUTH_VAR) {
            Ok(value) => WebAuth::parse(&value),
            Err(_) => Ok(configured.clone()),
        }
    }

    /// Whether an `Authorization` header value grants access, compared in constant time.
    pub(crate) fn admits(&self, authorization: Option<&[u8]>) -> bool {
        let given = authorization.unwrap_or_default();
        match self {
            WebAuth::None => true,
            WebAuth::Token(token) => {
                let expected = format!("Bearer {token}");
                bool::from(given.ct_eq(expected.as_bytes()))
            }
            WebAuth::Basic { user, password } => {
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                let expected = format!("Basic {encoded}");
                bool::from(given.ct_eq(expected.as_bytes()))
            }
        }
    }

    /// What `info` shows: the kind, never the secret.
    pub(crate) fn describe(&self) -> String {
        match self {
            WebAuth::None => "unset".into(),
            WebAuth::Token(_) => format!("token {}", crate::secrets::REDACTED),
            WebAuth::Basic { .. } => format!("basic {}", crate::secrets::REDACTED),
        }
    }
}

impl fmt::Debug for WebAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Display for WebAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The middleware: 401 with a `WWW-Authenticate` challenge unless the request authenticates.
pub(crate) async fn require(State(auth): State<WebAuth>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    if auth.admits(given) {
        return next.run(request).await;
    }
    let challenge = match auth {
        WebAuth::Basic { .. } => "Basic realm=\"ferrafka\"",
        _ => "Bearer realm=\"ferrafka\"",
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "authentication required\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_and_only_the_exact_credentials_pass() {
        let token = WebAuth::token("s3cr3t-token");
        assert_eq!(
            format!("{token:?} {token}"),
            "token [redacted] token [redacted]"
        );
        assert!(token.admits(Some(b"Bearer s3cr3t-token")));
        assert!(!token.admits(Some(b"Bearer s3cr3t-tokeN")));
        assert!(!token.admits(Some(b"Bearer s3cr3t-token ")));
        assert!(!token.admits(None));
        let basic = WebAuth::basic("ops", "pw");
        assert!(!format!("{basic:?}").contains("pw"));
        // "ops:pw" in base64.
        assert!(basic.admits(Some(b"Basic b3BzOnB3")));
        assert!(!basic.admits(Some(b"Basic b3BzOnB4")));
        assert!(WebAuth::None.admits(None));
    }

    #[test]
    fn the_variable_is_parsed_and_bad_values_are_refused_without_echoing_them() {
        assert_eq!(WebAuth::parse("token:abc").unwrap(), WebAuth::token("abc"));
        assert_eq!(
            WebAuth::parse("basic:u:p:q").unwrap(),
            WebAuth::basic("u", "p:q")
        );
        for bad in ["token:", "basic:u", "basic::p", "hunter2"] {
            let p = WebAuth::parse(bad).unwrap_err();
            assert_eq!(p.setting, WEB_AUTH_VAR);
            assert!(!p.to_string().contains("hunter2"), "{p}");
            assert!(p.fix.contains("token:<T>"), "{p}");
        }
    }
}
