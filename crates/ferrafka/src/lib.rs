//! ferrafka: a Kafka processing framework on librdkafka, in the mould of Ruby's Karafka.
//!
//! Describe topics and consumers in code, run `server`, and get batched, ordered,
//! at-least-once processing:
//!
//! * a [`Consumer`] gets [`Messages`] batches from one topic-partition at a time, in offset
//!   order; different partitions run in parallel up to `concurrency`;
//! * a batch is marked as consumed when `consume` returns `Ok`; marked offsets are committed
//!   periodically and synchronously on rebalance and shutdown, so a restart redoes nothing marked
//!   and skips nothing unmarked;
//! * an `Err` or a panic pauses only that partition and retries the unmarked rest after a
//!   backoff;
//! * the app-wide [`Producer`] is awaitable, fire-and-forget or batched.
//!
//! Start with [`App::builder`], hand the app to [`cli::run`], and see the README's quickstart.
//!
//! Secrets never reach output: every value shown (`info`, `doctor`, validation problems,
//! `Debug`) and every librdkafka error turned into an [`Error`] passes one redaction (see
//! [`config::redact`]), which also covers misspelled secret names such as `sasl.pasword`.
//!
//! `unsafe` is denied workspace-wide and allowed in one private module, `sys`, for the C calls
//! no safe wrapper offers: librdkafka admin calls rdkafka 0.39 does not wrap, a polled message
//! kept without its consumer borrow (so batches are never copied), the delivery tracker,
//! librdkafka's property table (printed only to a C `FILE*`) and `adjtimex(2)`.
//! `docs/safety.md` gives the reasons and the invariants.
//!
//! Cargo feature `testing` (off by default): fault drills such as
//! `RunningServer::drill_fatal_error`, which call librdkafka's test-only API.
//! `ferrafka` re-exports `rdkafka` rather than its items, since its `Consumer` trait would clash
//! with ours.
#![warn(unreachable_pub)]

pub mod admin;
pub mod app;
#[cfg(feature = "cli")]
pub mod cli;
pub mod config;
mod connection;
pub mod consumer;
pub mod declaratives;
pub mod doctor;
pub mod error;
mod kafka;
mod librdkafka;
pub mod messages;
#[cfg(any(test, feature = "testing"))]
mod noop;
mod processing;
pub mod producer;
pub mod routing;
mod secrets;
pub mod server;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;

pub use app::{App, AppBuilder};
pub use config::{Config, Environment, InitialOffset, Source};
pub use consumer::{ConsumeResult, Consumer, Context, SeekTo};
pub use error::{BoxError, Error, Result};
pub use messages::{Message, Messages};
pub use producer::{Producer, Record};
pub use rdkafka;
pub use routing::{DeadLetterQueue, VirtualPartitions};
pub use server::{Filters, RunningServer, ServerExit, Stopper};

/// Compiles the README's example as a doctest so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// The guides of the repository's `docs/` directory, as rustdoc pages; their Rust examples are
/// compiled (and, unless marked `no_run`, run) as doctests.
pub mod guide {
    #[doc = include_str!("../../../docs/testing.md")]
    pub mod testing {}
    #[doc = include_str!("../../../docs/environments.md")]
    pub mod environments {}
    #[doc = include_str!("../../../docs/topics.md")]
    pub mod topics {}
    #[doc = include_str!("../../../docs/doctor.md")]
    pub mod doctor {}
    #[doc = include_str!("../../../docs/security.md")]
    pub mod security {}
    #[doc = include_str!("../../../docs/reliability.md")]
    pub mod reliability {}
    #[doc = include_str!("../../../docs/virtual-partitions.md")]
    pub mod virtual_partitions {}
    #[doc = include_str!("../../../docs/kafka.md")]
    pub mod kafka {}
    #[doc = include_str!("../../../docs/embedded-broker.md")]
    pub mod embedded_broker {}
    #[doc = include_str!("../../../docs/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../../../docs/safety.md")]
    pub mod safety {}
}
