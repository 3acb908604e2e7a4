//! The web UI: pages over the fleet's reports and the cluster's admin API, and the operator's
//! writes (republish, commands), each guarded ([`safety`](self)) and audited.
//!
//! [`Web`] builds it from an app: [`Web::router`] gives an axum [`Router`](axum::Router) to mount in an app
//! of your own, [`Web::serve`] runs it on `web_bind` (what `my-app web` does). A background
//! thread reads the reports topic from the beginning without a consumer group and keeps the
//! newest report per process ([`live`]); pages render plain snapshots ([`snapshot`],
//! [`pages`]) with maud, so every value is HTML-escaped. Assets are embedded in the binary.

mod audit_page;
mod auth;
pub mod data;
mod dead_letters;
mod errors;
pub mod live;
mod operations;
pub mod pages;
mod rfc3339;
mod safety;
mod server;
pub mod snapshot;
mod state;

#[cfg(test)]
mod tests;

pub use auth::{WEB_AUTH_VAR, WebAuth};
pub use server::{Web, router};
