//! The web UI: read-only pages over the fleet's reports and the cluster's admin API.
//!
//! [`Web`] builds it from an app: [`Web::router`] gives an axum [`Router`](axum::Router) to mount in an app
//! of your own, [`Web::serve`] runs it on `web_bind` (what `my-app web` does). A background
//! thread reads the reports topic from the beginning without a consumer group and keeps the
//! newest report per process ([`live`]); pages render plain snapshots ([`snapshot`],
//! [`pages`]) with maud, so every value is HTML-escaped. Assets are embedded in the binary.

mod auth;
pub mod data;
pub mod live;
pub mod pages;
mod server;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use auth::{WEB_AUTH_VAR, WebAuth};
pub use server::{DEFAULT_REPORTS_TOPIC, Web, router};
