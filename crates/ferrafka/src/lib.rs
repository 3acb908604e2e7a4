//! ferrafka is a Kafka processing framework on librdkafka, in the mould of Ruby's Karafka: you
//! describe topics and consumers in code, run `server`, and get batched, ordered,
//! at-least-once processing with retries, dead-letter queues, declarative topics, an admin
//! API, a production checklist (`doctor`) and a test harness.
//!
//! # High-level features
//!
//! | feature | where |
//! |---|---|
//! | batches of one partition at a time, in offset order; partitions in parallel up to `concurrency` | [`Consumer`], [`Messages`] |
//! | a batch is marked when `consume` returns `Ok`; marks are committed periodically and on rebalance and shutdown | [`Context`] |
//! | an `Err` or a panic pauses only that partition and retries after a backoff; dead letters after `max_retries` | [`DeadLetterQueue`], [`guide::reliability`] |
//! | one route for every topic matching a regular expression, new topics included | [`routing::Router::pattern`], [`guide::strategies`] |
//! | ordered parallelism inside one partition | [`VirtualPartitions`], [`guide::virtual_partitions`] |
//! | throttling, delayed consumption, expiring messages; `tick`, `idle`, `eofed` hooks | [`filters`], [`guide::strategies`] |
//! | exactly-once consume-transform-produce: output and offsets in one Kafka transaction | [`Context::transaction`], [`guide::transactions`] |
//! | an awaitable, fire-and-forget or batched producer | [`Producer`], [`Record`] |
//! | keys on the partition the Java client (Kafka Streams, Connect, kafkajs) picks: murmur2 | [`guide::partitioning`] |
//! | topics as code: declare, plan, migrate, lock | [`declaratives`], [`guide::topics`] |
//! | cluster administration without a server | [`admin::Admin`] |
//! | reading topics without a consumer group: ranges, times, the last n, merged by timestamp, tailing | [`reader::TopicReader`], [`guide::strategies`] |
//! | the development-versus-production checklist, at boot and in CI | [`doctor`], [`guide::doctor`] |
//! | settings per environment, from code and `FERRAFKA_KAFKA_*` variables | [`Config`], [`guide::environments`] |
//! | TLS, SASL and ACLs, secrets never printed | [`guide::security`] |
//! | typed events of what the server does: batches, partitions, pauses, offsets | [`instrumentation`], [`guide::instrumentation`] |
//! | a web UI for a fleet: processes reporting through Kafka, groups and lag, topics, cluster, health | [`web`], [`guide::web`] |
//! | logs as text or JSON, partition lines with group, topic and partition, repeats summarised | [`guide::logs`] |
//! | testing consumers without a broker | `testing::Tester` (feature `testing`), [`guide::testing`] |
//! | the command line: `server`, `info`, `topics`, `doctor` | `cli` (feature `cli`, on by default) |
//!
//! # A first app
//!
//! ```no_run
//! use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};
//!
//! struct Visits;
//!
//! impl Consumer for Visits {
//!     async fn consume(&mut self, _ctx: &mut Context, messages: &Messages) -> ConsumeResult {
//!         for m in messages {
//!             println!("{} [{}] @{}", m.topic(), m.partition(), m.offset());
//!         }
//!         Ok(()) // marks the batch; an Err retries it after a pause
//!     }
//! }
//!
//! # #[cfg(feature = "cli")]
//! fn main() -> std::process::ExitCode {
//!     let app = App::builder()
//!         .setup(|c| {
//!             c.client_id("shop").kafka("bootstrap.servers", "127.0.0.1:9092");
//!         })
//!         .routes(|r| {
//!             r.topic("visits").consumer(|| Visits);
//!         })
//!         .build();
//!     ferrafka::cli::run(app) // `my-app server`, `my-app info`, `my-app doctor`, ...
//! }
//! # #[cfg(not(feature = "cli"))]
//! # fn main() {}
//! ```
//!
//! `cargo run -p quickstart` runs a complete app against an embedded broker; the
//! `examples/` directory has one small crate per topic: `basics` (hello, manual offsets,
//! virtual partitions, producer), dead letters, testing, topics, transactions.
//!
//! # Where things are
//!
//! - [`App`] and [`AppBuilder`]: settings ([`Config`]), routes ([`routing`]) and declarations;
//!   [`App::start`] runs the server in-process, `cli::run` behind a command line.
//! - [`consumer`]: the [`Consumer`] trait and what a batch can do ([`Context`]: mark, pause,
//!   seek, produce).
//! - [`messages`]: [`Message`] and [`Messages`], read in place from librdkafka.
//! - [`admin`], [`declaratives`], [`doctor`]: the cluster, its topics, the checklist.
//! - [`guide`]: the repository's guides, one page each.
//!
//! # Secrets and `unsafe`
//!
//! Secrets never reach output: every value shown (`info`, `doctor`, validation problems,
//! `Debug`) and every librdkafka error turned into an [`Error`] passes one redaction (see
//! [`config::redact`]), which also covers misspelled secret names such as `sasl.pasword`.
//!
//! `unsafe` is denied workspace-wide and allowed in one private module, `sys`, for the C calls
//! no safe wrapper offers: librdkafka admin calls rdkafka 0.39 does not wrap, a polled message
//! kept without its consumer borrow (so batches are never copied), the delivery tracker,
//! librdkafka's property table (printed only to a C `FILE*`) and `adjtimex(2)`
//! ([`guide::safety`]).
//!
//! # Cargo features
//!
//! - `cli` (on by default): the command line and what only it needs (clap, comfy-table,
//!   indicatif, tracing-subscriber).
//! - `testing` (off): `testing::Tester` and fault drills such as
//!   `RunningServer::drill_fatal_error`, which call librdkafka's test-only API.
//!
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
pub mod filters;
pub mod instrumentation;
mod kafka;
mod librdkafka;
pub mod messages;
#[cfg(any(test, feature = "testing"))]
mod noop;
#[cfg(feature = "opentelemetry")]
pub mod otel;
mod processing;
pub mod producer;
pub mod reader;
pub mod routing;
mod secrets;
mod seek;
pub mod server;
mod sys;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transaction;
pub mod web;

pub use app::{App, AppBuilder};
pub use config::{Config, Environment, InitialOffset, Source};
pub use consumer::{ConsumeResult, Consumer, Context, SeekTo};
pub use error::{BoxError, Error, Result};
pub use messages::{Message, Messages};
pub use producer::{Producer, Record};
pub use rdkafka;
pub use routing::{DeadLetterQueue, VirtualPartitions};
pub use server::{Filters, RunningServer, ServerExit, Stopper};
pub use transaction::Transaction;

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
    #[doc = include_str!("../../../docs/transactions.md")]
    pub mod transactions {}
    #[doc = include_str!("../../../docs/reliability.md")]
    pub mod reliability {}
    #[doc = include_str!("../../../docs/virtual-partitions.md")]
    pub mod virtual_partitions {}
    #[doc = include_str!("../../../docs/strategies.md")]
    pub mod strategies {}
    #[doc = include_str!("../../../docs/kafka.md")]
    pub mod kafka {}
    #[doc = include_str!("../../../docs/embedded-broker.md")]
    pub mod embedded_broker {}
    #[doc = include_str!("../../../docs/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../../../docs/safety.md")]
    pub mod safety {}
    #[doc = include_str!("../../../docs/instrumentation.md")]
    pub mod instrumentation {}
    #[doc = include_str!("../../../docs/tracing.md")]
    pub mod tracing {}
    #[doc = include_str!("../../../docs/logs.md")]
    pub mod logs {}
    #[doc = include_str!("../../../docs/partitioning.md")]
    pub mod partitioning {}
    #[doc = include_str!("../../../docs/web.md")]
    pub mod web {}
}
