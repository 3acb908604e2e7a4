//! The commands the UI shows, read back from the commands topic by a thread of its own (no
//! consumer group), each with the acknowledgements the processes answered.
//!
//! Memory stays bounded: the reader starts [`READ_BACK`] offsets before each partition's end,
//! at most [`MAX_COMMANDS`] commands are kept (the oldest go first), each with at most
//! [`MAX_ACKS`] acknowledgements, and at most [`MAX_ORPHANS`] acknowledgements wait for a
//! command not seen yet (a command and its acknowledgements have different keys, so they may
//! sit in different partitions and arrive in either order).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crate::reader::client::Step;
use crate::reader::{StartAt, StopAt, TopicReader};
use crate::web::commands::{Acknowledgement, Command, Outcome, Record, decode};

/// Offsets read back per partition of the commands topic when the reader starts.
pub(super) const READ_BACK: u64 = 5_000;
/// Commands kept.
pub(super) const MAX_COMMANDS: usize = 1_000;
/// Acknowledgements kept per command (one per process).
pub(super) const MAX_ACKS: usize = 256;
/// Acknowledgements kept while their command has not been read.
pub(super) const MAX_ORPHANS: usize = 1_000;

/// A command and what became of it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sent {
    pub(super) command: Command,
    /// By process id.
    pub(super) acks: BTreeMap<String, Acknowledgement>,
}

/// Where a command stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// Not acknowledged yet, and not expired: a process may still take it.
    Pending,
    /// Every acknowledgement says done.
    Done,
    /// Some process refused it.
    Refused,
    /// Acknowledged `expired` by every process that answered, or no process took it before its
    /// expiry.
    Expired,
}

impl Status {
    /// Its name, as shown and in `data-status`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Done => "done",
            Status::Refused => "refused",
            Status::Expired => "expired",
        }
    }
}

impl Sent {
    /// Its status at `now_ms`: from the acknowledgements when there are any (refused wins, then
    /// done), else pending until its expiry and expired after.
    pub(super) fn status(&self, now_ms: i64) -> Status {
        let outcomes = || self.acks.values().map(|a| &a.outcome);
        if outcomes().any(|o| matches!(o, Outcome::Refused { .. })) {
            Status::Refused
        } else if outcomes().any(|o| *o == Outcome::Done) {
            Status::Done
        } else if !self.acks.is_empty() || self.command.expired_at(now_ms) {
            Status::Expired
        } else {
            Status::Pending
        }
    }

    /// Expired without any acknowledgement: no process took it.
    pub(super) fn untaken(&self, now_ms: i64) -> bool {
        self.acks.is_empty() && self.command.expired_at(now_ms)
    }

    fn acknowledge(&mut self, ack: Acknowledgement) {
        if self.acks.len() < MAX_ACKS || self.acks.contains_key(&ack.process_id) {
            self.acks.insert(ack.process_id.clone(), ack);
        }
    }
}

/// What the commands topic said so far.
#[derive(Debug, Default)]
pub(super) struct Commands {
    by_id: HashMap<String, Sent>,
    /// Command ids in the order they came, oldest first.
    order: VecDeque<String>,
    orphans: HashMap<String, Vec<Acknowledgement>>,
    orphan_order: VecDeque<String>,
    problem: Option<String>,
}

impl Commands {
    /// Applies one record of the commands topic; records that are neither commands nor
    /// acknowledgements are skipped.
    pub(super) fn apply(&mut self, payload: Option<&[u8]>) {
        match payload.map(decode) {
            Some(Ok(Record::Command(command))) => self.insert_command(command),
            Some(Ok(Record::Acknowledgement(ack))) => self.insert_ack(ack),
            Some(Err(e)) => tracing::debug!(error = %e, "skipped a record of the commands topic"),
            None => {}
        }
    }

    /// A command, sent by this UI or read back; a second copy of an id changes nothing.
    pub(super) fn insert_command(&mut self, command: Command) {
        if self.by_id.contains_key(&command.command_id) {
            return;
        }
        if self.order.len() == MAX_COMMANDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.by_id.remove(&oldest);
        }
        let id = command.command_id.clone();
        let mut sent = Sent {
            command,
            acks: BTreeMap::new(),
        };
        for ack in self.orphans.remove(&id).unwrap_or_default() {
            sent.acknowledge(ack);
        }
        self.order.push_back(id.clone());
        self.by_id.insert(id, sent);
    }

    /// An acknowledgement: to its command, or kept until the command comes.
    pub(super) fn insert_ack(&mut self, ack: Acknowledgement) {
        if let Some(sent) = self.by_id.get_mut(&ack.command_id) {
            return sent.acknowledge(ack);
        }
        let id = ack.command_id.clone();
        if !self.orphans.contains_key(&id) {
            if self.orphan_order.len() == MAX_ORPHANS
                && let Some(oldest) = self.orphan_order.pop_front()
            {
                self.orphans.remove(&oldest);
            }
            self.orphan_order.push_back(id.clone());
        }
        let waiting = self.orphans.entry(id).or_default();
        if waiting.len() < MAX_ACKS {
            waiting.push(ack);
        }
    }

    /// One command.
    pub(super) fn get(&self, id: &str) -> Option<Sent> {
        self.by_id.get(id).cloned()
    }

    /// The newest `n` commands, newest issued first.
    pub(super) fn newest(&self, n: usize) -> Vec<Sent> {
        let mut all: Vec<&Sent> = self.by_id.values().collect();
        all.sort_by(|a, b| {
            (b.command.issued_at_ms, &b.command.command_id)
                .cmp(&(a.command.issued_at_ms, &a.command.command_id))
        });
        all.into_iter().take(n).cloned().collect()
    }

    /// How many commands are kept, and how many acknowledgements wait for theirs.
    #[cfg(test)]
    pub(super) fn sizes(&self) -> (usize, usize) {
        (self.by_id.len(), self.orphans.values().map(Vec::len).sum())
    }

    /// Why the topic cannot be read right now, if it cannot.
    pub(super) fn problem(&self) -> Option<String> {
        self.problem.clone()
    }
}

/// The store shared by the reading thread and the handlers.
pub(super) type SharedCommands = Arc<Mutex<Commands>>;

/// The store's lock; a panic elsewhere does not take the pages down with it.
pub(super) fn lock(commands: &SharedCommands) -> std::sync::MutexGuard<'_, Commands> {
    commands
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The store of one router, started by the first request that needs it (its thread stops once
/// the router is dropped).
#[derive(Clone, Default)]
pub(super) struct Tail(Arc<OnceLock<SharedCommands>>);

impl Tail {
    /// The store, reading `topic` with `kafka` on a thread that lives while `alive` does.
    pub(super) fn store(
        &self,
        topic: &str,
        kafka: &BTreeMap<String, String>,
        alive: Weak<()>,
    ) -> SharedCommands {
        self.0
            .get_or_init(|| {
                let store = SharedCommands::default();
                let spawned = spawn_reader(store.clone(), topic.to_string(), kafka.clone(), alive);
                if let Err(e) = spawned {
                    lock(&store).problem = Some(format!(
                        "cannot start the reader of the commands topic `{topic}`: {e}"
                    ));
                }
                store
            })
            .clone()
    }
}

/// Reads the commands topic from [`READ_BACK`] before its end, then tails it; retries (and
/// shows why on the pages) while the topic cannot be read.
fn spawn_reader(
    store: SharedCommands,
    topic: String,
    kafka: BTreeMap<String, String>,
    alive: Weak<()>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ferrafka-web-commands".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                let opened = TopicReader::builder(topic.clone())
                    .start(StartAt::Last(READ_BACK))
                    .stop(StopAt::Never)
                    .timeout(Duration::from_secs(10))
                    .open_with(&kafka);
                let mut reader = match opened {
                    Ok(reader) => reader,
                    Err(e) => {
                        let text = format!("cannot read the commands topic `{topic}`: {e}");
                        lock(&store).problem = Some(text);
                        std::thread::sleep(Duration::from_secs(2));
                        continue;
                    }
                };
                lock(&store).problem = None;
                // Step by step: an idle topic must not keep the thread alive after the router
                // is dropped.
                while alive.upgrade().is_some() {
                    match reader.step() {
                        Step::Item(Ok(m)) => lock(&store).apply(m.payload()),
                        Step::Item(Err(e)) => {
                            let text = format!("reading the commands topic `{topic}` failed: {e}");
                            lock(&store).problem = Some(text);
                            break;
                        }
                        Step::Idle => {}
                        Step::Done => break,
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
}
