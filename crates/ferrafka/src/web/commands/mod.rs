//! Commands to running processes through the commands topic (`commands_topic`): pause or
//! resume a partition, quiet a process, stop it. What the web UI sends; a script or a test can
//! send them too. See `docs/web.md`.
//!
//! Every server with `reporting` on reads the commands topic without a consumer group, from
//! its end when the process starts (an old command never runs again), and carries out the
//! commands addressed to it (or to all processes) once per command id; it answers each with an
//! [`Acknowledgement`] on the same topic (`done`, `refused` with a reason, or `expired`) and an
//! [`Event::CommandReceived`](crate::instrumentation::Event::CommandReceived).
//!
//! ```no_run
//! use std::time::Duration;
//! use ferrafka::web::commands::{self, Action, Command, Target};
//!
//! # async fn run(app: &ferrafka::App) -> ferrafka::Result<()> {
//! let pause = Command::new(
//!     Target::Process("host-1:4242:0a1b2c3d".into()),
//!     Action::PausePartition {
//!         consumer_group: "orders".into(),
//!         topic: "orders".into(),
//!         partition: 3,
//!         for_ms: None,
//!     },
//!     Duration::from_secs(60),
//!     "alice",
//! );
//! commands::send(app, &pause).await?;
//! # Ok(())
//! # }
//! ```

pub(crate) mod listener;
mod schema;

pub use schema::{
    Acknowledgement, Action, Command, DecodeError, Outcome, Record, SCHEMA_VERSION, Target, decode,
};

use crate::app::App;
use crate::error::Result;
use crate::producer::{Producer, Record as Produced};

/// Sends `command` to the app's `commands_topic` with the app's producer, and waits for the
/// broker's acknowledgement of the record (not for the processes': read those from the topic,
/// [`Record::Acknowledgement`] keyed `<command id>/<process id>`).
pub async fn send(app: &App, command: &Command) -> Result<()> {
    let producer = app.producer()?;
    send_with(&producer, &app.config().commands_topic, command).await
}

/// [`send`] with a producer and a topic of your own.
pub async fn send_with(producer: &Producer, topic: &str, command: &Command) -> Result<()> {
    let payload = Record::Command(command.clone()).to_json();
    let record = Produced::to(topic)
        .key(&command.command_id)
        .payload(&payload);
    producer.produce(record).await.map(|_| ())
}

#[cfg(test)]
mod tests;
