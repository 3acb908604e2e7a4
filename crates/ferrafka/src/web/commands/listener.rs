//! The commands listener of a reporting server: a [`TopicReader`] of the commands topic
//! (no consumer group, every partition, from the end offsets when the process starts, so old
//! commands never run again) and a task of the server's runtime that carries out the commands
//! addressed to this process, once per command id, and acknowledges each on the same topic.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::oneshot;

use super::schema::{Acknowledgement, Action, Command, Envelope, Handled, Outcome, Record, decode};
use crate::app::App;
use crate::instrumentation::{ErrorKind, Event, Monitor};
use crate::messages::now_ms;
use crate::processing::orders::{Answer, OrderKind};
use crate::processing::stop::StopSignal;
use crate::producer::{Producer, Record as Produced};
use crate::reader::{ReaderStream, StartAt, StopAt, TopicReader};

/// How long a pause or resume waits for the listeners' answers.
const ORDER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stop waits for its acknowledgement's delivery before it stops anyway.
const STOP_ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The wait before the commands topic is opened again after the reader failed.
const REOPEN_AFTER: Duration = Duration::from_secs(5);

/// What carries out the commands.
struct Desk {
    process_id: String,
    topic: String,
    stop: Arc<StopSignal>,
    /// How many listeners answer each order.
    listeners: usize,
    producer: Producer,
    monitor: Monitor,
    handled: Handled,
}

/// The running commands listener of a server.
#[derive(Debug)]
pub(crate) struct CommandListener {
    stop: Option<oneshot::Sender<()>>,
}

impl CommandListener {
    /// Opens the commands topic at its end now (so a command sent once the server started is
    /// seen) and listens on `runtime`. A topic that cannot be opened is logged and tried again
    /// in the background; consumption never waits for it.
    pub(crate) fn start(
        app: &App,
        process_id: &str,
        (stop, listeners): (Arc<StopSignal>, usize),
        producer: Producer,
        runtime: &tokio::runtime::Handle,
    ) -> CommandListener {
        let kafka = app.clients().admin().values();
        let monitor = app.monitor().clone();
        let topic = app.config().commands_topic.clone();
        let first = open(&topic, &kafka);
        let desk = Desk {
            process_id: process_id.to_string(),
            topic,
            stop,
            listeners,
            producer,
            monitor,
            handled: Handled::default(),
        };
        let (stop, stopped) = oneshot::channel();
        runtime.spawn(run(desk, kafka, first, stopped));
        CommandListener { stop: Some(stop) }
    }

    /// Stops listening (the server stops).
    pub(crate) fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn open(
    topic: &str,
    kafka: &std::collections::BTreeMap<String, String>,
) -> crate::Result<ReaderStream> {
    let reader = TopicReader::builder(topic)
        .start(StartAt::End)
        .stop(StopAt::Never)
        .open_with(kafka)?;
    Ok(reader.into_stream())
}

async fn run(
    mut desk: Desk,
    kafka: std::collections::BTreeMap<String, String>,
    first: crate::Result<ReaderStream>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut opened = Some(first);
    loop {
        let next = match opened.take() {
            Some(o) => o,
            None => {
                let (topic, kafka) = (desk.topic.clone(), kafka.clone());
                match tokio::task::spawn_blocking(move || open(&topic, &kafka)).await {
                    Ok(o) => o,
                    Err(e) => Err(crate::Error::Server {
                        reason: format!("the commands reader's task failed: {e}"),
                        source: None,
                    }),
                }
            }
        };
        let ended = match next {
            Ok(mut stream) => loop {
                tokio::select! {
                    _ = &mut stopped => return,
                    item = stream.next() => match item {
                        Some(Ok(message)) => desk.handle(message.payload()).await,
                        Some(Err(e)) => break crate::error::error_chain(&e),
                        None => break "the reader ended".to_string(),
                    },
                }
            },
            Err(e) => crate::error::error_chain(&e),
        };
        desk.failed(&format!(
            "reading the commands topic {} failed; opened again at its end in {REOPEN_AFTER:?} \
             (commands sent meanwhile are not seen): {ended}",
            desk.topic
        ));
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(REOPEN_AFTER) => {}
        }
    }
}

impl Desk {
    /// One record of the commands topic.
    async fn handle(&mut self, payload: Option<&[u8]>) {
        let Some(payload) = payload else { return };
        let command = match decode(payload) {
            Ok(Record::Command(command)) => command,
            Ok(Record::Acknowledgement(_)) => return,
            Err(e) => return self.unreadable(payload, &e.to_string()).await,
        };
        if !command.is_for(&self.process_id) {
            return;
        }
        let now = now_ms();
        let id = command.command_id.as_str();
        if !self.handled.first_time(id, command.expires_at_ms, now) {
            tracing::info!(command_id = id, "command seen before: not run again");
            self.emitted(id, command.action.name(), "duplicate");
            return;
        }
        let outcome = match command.expired_at(now) {
            true => Outcome::Expired,
            false => self.execute(&command).await,
        };
        tracing::info!(command_id = id, action = command.action.name(), issued_by = %command.issued_by, outcome = ?outcome, "command handled");
        self.emitted(id, command.action.name(), outcome.name());
        let stopping = outcome == Outcome::Done && command.action == Action::Stop;
        let ack = Acknowledgement::new(id, &self.process_id, outcome);
        if stopping {
            // Acknowledged first: the stop ends this listener.
            let _ = tokio::time::timeout(STOP_ACK_TIMEOUT, self.acknowledge(ack)).await;
            self.stop.raise();
        } else {
            self.acknowledge(ack).await;
        }
    }

    /// A record that is no command this build can read: refused when its envelope shows a
    /// command for this process (a newer writer's action), ignored otherwise.
    async fn unreadable(&mut self, payload: &[u8], error: &str) {
        let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
            tracing::debug!(%error, "a record of the commands topic that is no command: ignored");
            return;
        };
        let ours = match &envelope.target {
            super::Target::All => true,
            super::Target::Process(id) => *id == self.process_id,
        };
        let id = envelope.command_id.as_str();
        if envelope.kind != "command"
            || !ours
            || !self
                .handled
                .first_time(id, envelope.expires_at_ms, now_ms())
        {
            return;
        }
        let outcome = Outcome::Refused {
            reason: format!(
                "this process (ferrafka {}) cannot read the command: {error}",
                env!("CARGO_PKG_VERSION")
            ),
        };
        self.emitted(id, "unknown", outcome.name());
        self.acknowledge(Acknowledgement::new(id, &self.process_id, outcome))
            .await;
    }

    async fn execute(&mut self, command: &Command) -> Outcome {
        if self.stop.is_raised() {
            return refused("the process is stopping");
        }
        match &command.action {
            Action::Quiet => {
                self.stop.quiet();
                Outcome::Done
            }
            Action::Stop => Outcome::Done,
            Action::PausePartition {
                consumer_group,
                topic,
                partition,
                for_ms,
            } => {
                let until = for_ms
                    .map(|ms| crate::config::later(Instant::now(), Duration::from_millis(ms)));
                let partition = (consumer_group.clone(), topic.clone(), *partition);
                self.order(partition, OrderKind::Pause { until }).await
            }
            Action::ResumePartition {
                consumer_group,
                topic,
                partition,
            } => {
                let partition = (consumer_group.clone(), topic.clone(), *partition);
                self.order(partition, OrderKind::Resume).await
            }
        }
    }

    /// Posts a partition order and waits for the listeners' answers.
    async fn order(&self, partition: (String, String, i32), kind: OrderKind) -> Outcome {
        let name = format!("{}/{}/{}", partition.0, partition.1, partition.2);
        let mut answers = self.stop.post_order(partition, kind);
        let deadline = tokio::time::Instant::now() + ORDER_TIMEOUT;
        let mut not_here = 0;
        while not_here < self.listeners {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some(Answer::Applied)) => return Outcome::Done,
                Ok(Some(Answer::NotHere)) => not_here += 1,
                Ok(None) | Err(_) => {
                    return refused(&format!(
                        "{} of {} listeners did not answer within {ORDER_TIMEOUT:?} (stopping or rebuilding a client); partition {name} is not known to be paused or resumed",
                        self.listeners - not_here,
                        self.listeners
                    ));
                }
            }
        }
        refused(&format!("partition {name} is not assigned to this process"))
    }

    async fn acknowledge(&self, ack: Acknowledgement) {
        let key = ack.key();
        let payload = Record::Acknowledgement(ack).to_json();
        let record = Produced::to(&self.topic).key(&key).payload(&payload);
        if let Err(e) = self.producer.produce(record).await {
            self.failed(&format!(
                "acknowledging {key} on {} failed: {}",
                self.topic,
                crate::error::error_chain(&e)
            ));
        }
    }

    fn emitted(&self, command_id: &str, action: &str, outcome: &str) {
        self.monitor.emit(|| Event::CommandReceived {
            command_id,
            action,
            outcome,
        });
    }

    fn failed(&self, error: &str) {
        tracing::warn!(%error, "commands for web: consumption goes on");
        self.monitor.error(ErrorKind::Commands, None, &error);
    }
}

fn refused(reason: &str) -> Outcome {
    Outcome::Refused {
        reason: reason.to_string(),
    }
}
