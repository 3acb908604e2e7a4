//! The web UI and what feeds it.
//!
//! Every server process with `reporting` on publishes a [`report::ProcessReport`] every
//! `report_interval` to the reports topic, and its errors to the errors topic (the
//! `tracking` side). The `web` command (or its router, mounted in an axum app of your own) reads
//! those topics and the cluster's admin API and serves its pages: one `web` process shows a whole
//! fleet, whatever machines its processes run on. Operators steer running processes through the
//! commands topic ([`commands`]) and republish dead letters; every such write is recorded on the
//! audit topic first ([`audit`]), and `web_read_only` turns writes off.

pub mod audit;
pub mod commands;
pub mod report;
pub(crate) mod tracking;
pub mod ui;

pub use ui::{Web, WebAuth, router};
