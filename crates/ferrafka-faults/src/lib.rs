//! Helpers of the fault suite: running `fault-consumer` processes and reading their records
//! and the events they report.

pub mod rolling;

pub use ferrafka_testing::{unique, wait_until};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ferrafka::instrumentation::{AppState, Event, PauseReason};

/// One `fault-consumer` process.
#[derive(Debug)]
pub struct ConsumerProcess {
    child: Child,
    /// Where its log (stderr) goes: for people; the suite reads [`ConsumerProcess::events`].
    pub log: PathBuf,
    /// Where it writes its events, one [`EventLine`] a line: the log's path with the
    /// extension `events`.
    pub events: PathBuf,
}

/// How to start a `fault-consumer`.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Path of the `fault-consumer` binary.
    pub binary: PathBuf,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to consume.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// The shared record file.
    pub out: PathBuf,
    /// Extra environment: `FAULT_*` settings and `FERRAFKA_KAFKA_*` properties.
    pub env: Vec<(String, String)>,
}

impl ConsumerSpec {
    /// Adds an environment variable.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    /// Starts a process; its stderr goes to `log`, its events to `log` with the extension
    /// `events` (`FAULT_EVENTS`).
    pub fn spawn(&self, log: &Path) -> ConsumerProcess {
        let stderr = std::fs::File::create(log).expect("log file");
        let events = log.with_extension("events");
        // A fresh file: an events file left by an earlier run would be counted.
        std::fs::File::create(&events).expect("events file");
        let child = Command::new(&self.binary)
            .arg("server")
            .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", &self.bootstrap)
            .env("FAULT_TOPIC", &self.topic)
            .env("FAULT_GROUP", &self.group)
            .env("FAULT_OUT", &self.out)
            .env("FAULT_EVENTS", &events)
            .env("RUST_LOG", "info,librdkafka=warn,tansu=off")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("fault-consumer starts");
        ConsumerProcess {
            child,
            log: log.to_path_buf(),
            events,
        }
    }
}

impl ConsumerProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `TSTP`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The events it reported so far, in order (none before its events file exists).
    pub fn reported(&self) -> Vec<EventLine> {
        EventLine::read(&self.events)
    }

    /// How many of the events it reported so far satisfy `f`.
    pub fn count_events(&self, f: impl Fn(&FaultEvent) -> bool) -> usize {
        self.reported().iter().filter(|l| f(&l.event)).count()
    }

    /// The revocations it reported: (ms since the epoch, revoked partitions).
    pub fn revocations(&self) -> Vec<(u128, Vec<i32>)> {
        let reported = self.reported().into_iter();
        let revocation = |line: EventLine| match line.event {
            FaultEvent::Revoked(partitions) => {
                Some((line.at_ms, partitions.into_iter().map(|(_, p)| p).collect()))
            }
            _ => None,
        };
        reported.filter_map(revocation).collect()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (number, partition, offset) of every message a [`Collector`] processed, in order.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u64, i32, i64)>>>;

/// A consumer for in-process servers: records the number in each payload with its partition
/// and offset.
pub struct Collector(pub Seen);

impl ferrafka::Consumer for Collector {
    async fn consume(
        &mut self,
        _ctx: &mut ferrafka::Context,
        messages: &ferrafka::Messages,
    ) -> ferrafka::ConsumeResult {
        let mut seen = self.0.lock().expect("not poisoned");
        for m in messages {
            let number = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            seen.push((number, m.partition(), m.offset()));
        }
        Ok(())
    }
}

/// A processed message as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// When its batch finished, in ms since the epoch.
    pub at_ms: u128,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its number (payload).
    pub number: u64,
    /// The process that processed it.
    pub pid: u32,
}

/// Everything recorded in a record file.
#[derive(Debug, Default)]
pub struct Records {
    /// Processed messages in file order.
    pub processed: Vec<Processed>,
    /// Batch starts: (partition, first offset).
    pub started: Vec<(i32, i64)>,
}

impl Records {
    /// Reads a record file (missing file: empty).
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut records = Records::default();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["S", p, o] => records
                    .started
                    .push((p.parse().unwrap(), o.parse().unwrap())),
                [at, p, o, n, pid] => records.processed.extend(parse_processed(at, p, o, n, pid)),
                _ => {} // a line cut short by SIGKILL
            }
        }
        records
    }

    /// How often each number was processed.
    pub fn counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for p in &self.processed {
            *counts.entry(p.number).or_insert(0) += 1;
        }
        counts
    }

    /// Numbers of `0..n` never processed.
    pub fn lost(&self, n: u64) -> Vec<u64> {
        let counts = self.counts();
        (0..n).filter(|k| !counts.contains_key(k)).collect()
    }

    /// Extra processings: each number processed k > 1 times adds k - 1.
    pub fn duplicates(&self) -> usize {
        self.counts().values().map(|c| c - 1).sum()
    }

    /// Every stretch between two consecutive recorded batches of a partition within
    /// `[from_ms, to_ms]` (the window's ends count as batches).
    pub fn gaps(&self, from_ms: u128, to_ms: u128) -> Vec<Gap> {
        let mut per_partition: BTreeMap<i32, Vec<u128>> = BTreeMap::new();
        for p in &self.processed {
            per_partition.entry(p.partition).or_default().push(p.at_ms);
        }
        let mut gaps = Vec::new();
        for (partition, times) in &mut per_partition {
            times.retain(|t| (from_ms..=to_ms).contains(t));
            times.push(from_ms);
            times.push(to_ms);
            times.sort_unstable();
            times.dedup();
            gaps.extend(times.windows(2).map(|w| Gap {
                partition: *partition,
                from_ms: w[0],
                to_ms: w[1],
            }));
        }
        gaps
    }

    /// The longest time a partition went unprocessed within `[from_ms, to_ms]`.
    pub fn longest_gap(&self, from_ms: u128, to_ms: u128) -> Gap {
        let gaps = self.gaps(from_ms, to_ms);
        gaps.into_iter().max_by_key(Gap::ms).unwrap_or_default()
    }

    /// Every number processed more than once, with where and by whom, in number order.
    pub fn duplicate_details(&self) -> Vec<Duplicate> {
        let mut by_number: BTreeMap<u64, Vec<&Processed>> = BTreeMap::new();
        for p in &self.processed {
            by_number.entry(p.number).or_default().push(p);
        }
        by_number
            .into_iter()
            .filter(|(_, ps)| ps.len() > 1)
            .map(|(number, ps)| Duplicate {
                number,
                partition: ps[0].partition,
                offsets: ps.iter().map(|p| p.offset).collect(),
                by: ps.iter().map(|p| (p.pid, p.at_ms)).collect(),
            })
            .collect()
    }
}

/// A stretch of time in which one partition processed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// The partition.
    pub partition: i32,
    /// When its previous batch finished (or the window began), ms since the epoch.
    pub from_ms: u128,
    /// When its next batch finished (or the window ended), ms since the epoch.
    pub to_ms: u128,
}

impl Gap {
    /// Its length in milliseconds.
    pub fn ms(&self) -> u128 {
        self.to_ms - self.from_ms
    }
}

/// A number processed more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The number (payload).
    pub number: u64,
    /// Its partition (of the first processing).
    pub partition: i32,
    /// The offset of each processing (different offsets: the producer wrote it twice).
    pub offsets: Vec<i64>,
    /// Each processing's process id and time (ms since the epoch).
    pub by: Vec<(u32, u128)>,
}

/// What a `fault-consumer` reports of its server's [`Event`]s: rebalances, its state, and
/// fetch pauses. Per-batch events are left out (the record file has the batches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultEvent {
    /// `PartitionsAssigned`: (topic, partition) pairs, none for an empty (incremental)
    /// assignment.
    Assigned(Vec<(String, i32)>),
    /// `PartitionsRevoked`: (topic, partition) pairs.
    Revoked(Vec<(String, i32)>),
    /// `AppState`.
    State(AppState),
    /// `Paused`.
    Paused {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why.
        reason: PauseReason,
    },
    /// `Resumed`.
    Resumed {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A line this suite cannot read: a state or pause reason newer than it (written with
    /// its `Debug` name), or anything else.
    Unknown(String),
}

/// One line of an events file: `<ms since the epoch> <what>`, where `<what>` is one of
///
/// ```text
/// assigned <topic>:<partition>,<topic>:<partition>…   (`-` for none)
/// revoked <topic>:<partition>,…                       (`-` for none)
/// state running|quieting|stopping|stopped
/// paused <topic>:<partition> retry|consumer|backlog|quiet
/// resumed <topic>:<partition>
/// ```
///
/// Topic names cannot hold `:`, `,` or spaces (Kafka allows `[a-zA-Z0-9._-]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    /// When the event happened, in ms since the epoch.
    pub at_ms: u128,
    /// What happened.
    pub event: FaultEvent,
}

impl EventLine {
    /// The line (with its newline) `fault-consumer` writes for `event` at `at_ms`; `None` for
    /// the events it does not report.
    pub fn format(at_ms: u128, event: &Event<'_>) -> Option<String> {
        let what = match event {
            Event::PartitionsAssigned { partitions, .. } => {
                format!("assigned {}", partition_list(partitions))
            }
            Event::PartitionsRevoked { partitions, .. } => {
                format!("revoked {}", partition_list(partitions))
            }
            Event::AppState(state) => format!("state {}", state_name(*state)),
            Event::Paused {
                partition, reason, ..
            } => format!(
                "paused {}:{} {}",
                partition.topic,
                partition.partition,
                reason_name(*reason)
            ),
            Event::Resumed { partition, .. } => {
                format!("resumed {}:{}", partition.topic, partition.partition)
            }
            _ => return None,
        };
        Some(format!("{at_ms} {what}\n"))
    }

    /// Reads a line; `None` for one cut short (a process killed while writing it).
    pub fn parse(line: &str) -> Option<EventLine> {
        let (at, rest) = line.trim_end().split_once(' ')?;
        let at_ms = at.parse().ok()?;
        let (kind, args) = rest.split_once(' ').unwrap_or((rest, ""));
        let known = match (kind, args.split(' ').collect::<Vec<_>>().as_slice()) {
            ("assigned", [list]) => parse_list(list).map(FaultEvent::Assigned),
            ("revoked", [list]) => parse_list(list).map(FaultEvent::Revoked),
            ("state", [name]) => parse_state(name).map(FaultEvent::State),
            ("paused", [tp, reason]) => {
                let (topic, partition) = parse_partition(tp)?;
                parse_reason(reason).map(|reason| FaultEvent::Paused {
                    topic,
                    partition,
                    reason,
                })
            }
            ("resumed", [tp]) => {
                let (topic, partition) = parse_partition(tp)?;
                Some(FaultEvent::Resumed { topic, partition })
            }
            _ => None,
        };
        Some(EventLine {
            at_ms,
            event: known.unwrap_or_else(|| FaultEvent::Unknown(rest.to_string())),
        })
    }

    /// Reads an events file (missing file: nothing), skipping lines cut short.
    pub fn read(path: &Path) -> Vec<EventLine> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        // A line without its newline may be cut short: only whole lines count.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole.lines().filter_map(EventLine::parse).collect()
    }
}

fn partition_list(partitions: &[(String, i32)]) -> String {
    if partitions.is_empty() {
        return "-".into();
    }
    let each: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}:{p}")).collect();
    each.join(",")
}

fn parse_partition(text: &str) -> Option<(String, i32)> {
    let (topic, partition) = text.rsplit_once(':')?;
    Some((topic.to_string(), partition.parse().ok()?))
}

fn parse_list(text: &str) -> Option<Vec<(String, i32)>> {
    match text {
        "-" => Some(Vec::new()),
        _ => text.split(',').map(parse_partition).collect(),
    }
}

const STATES: [(AppState, &str); 4] = [
    (AppState::Running, "running"),
    (AppState::Quieting, "quieting"),
    (AppState::Stopping, "stopping"),
    (AppState::Stopped, "stopped"),
];

const REASONS: [(PauseReason, &str); 4] = [
    (PauseReason::Retry, "retry"),
    (PauseReason::Consumer, "consumer"),
    (PauseReason::Backlog, "backlog"),
    (PauseReason::Quiet, "quiet"),
];

/// The name of a state; a state newer than this suite goes by its `Debug` name.
fn state_name(state: AppState) -> String {
    let known = STATES.iter().find(|(s, _)| *s == state);
    known.map_or_else(|| format!("{state:?}"), |(_, name)| name.to_string())
}

fn parse_state(name: &str) -> Option<AppState> {
    STATES.iter().find(|(_, n)| *n == name).map(|(s, _)| *s)
}

/// The name of a pause reason; a reason newer than this suite goes by its `Debug` name.
fn reason_name(reason: PauseReason) -> String {
    let known = REASONS.iter().find(|(r, _)| *r == reason);
    known.map_or_else(|| format!("{reason:?}"), |(_, name)| name.to_string())
}

fn parse_reason(name: &str) -> Option<PauseReason> {
    REASONS.iter().find(|(_, n)| *n == name).map(|(r, _)| *r)
}

/// One finished-message line; `None` for a line cut short by SIGKILL.
fn parse_processed(at: &str, p: &str, o: &str, n: &str, pid: &str) -> Option<Processed> {
    Some(Processed {
        at_ms: at.parse().ok()?,
        partition: p.parse().ok()?,
        offset: o.parse().ok()?,
        number: n.parse().ok()?,
        pid: pid.parse().ok()?,
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processed(at_ms: u128, partition: i32, offset: i64, pid: u32) -> Processed {
        let number = offset as u64 * 10 + partition as u64;
        Processed {
            at_ms,
            partition,
            offset,
            number,
            pid,
        }
    }

    #[test]
    fn event_lines_read_back_what_was_written() {
        let partitions = [("orders".to_string(), 0), ("orders".to_string(), 5)];
        let assigned = Event::PartitionsAssigned {
            subscription_group: "g/default",
            partitions: &partitions,
        };
        let line = EventLine::format(17, &assigned).unwrap();
        assert_eq!(line, "17 assigned orders:0,orders:5\n");
        assert_eq!(
            EventLine::parse(&line),
            Some(EventLine {
                at_ms: 17,
                event: FaultEvent::Assigned(partitions.to_vec()),
            })
        );
        let revoked = Event::PartitionsRevoked {
            subscription_group: "g/default",
            partitions: &[],
        };
        let line = EventLine::format(18, &revoked).unwrap();
        assert_eq!(line, "18 revoked -\n");
        let parsed = EventLine::parse(&line).unwrap();
        assert_eq!(parsed.event, FaultEvent::Revoked(Vec::new()));
        for (state, name) in STATES {
            let line = EventLine::format(19, &Event::AppState(state)).unwrap();
            assert_eq!(line, format!("19 state {name}\n"));
            let parsed = EventLine::parse(&line).unwrap();
            assert_eq!(parsed.event, FaultEvent::State(state));
        }
        let parsed = EventLine::parse("20 paused orders:3 backlog").unwrap();
        let paused = FaultEvent::Paused {
            topic: "orders".into(),
            partition: 3,
            reason: PauseReason::Backlog,
        };
        assert_eq!(parsed.event, paused);
        let parsed = EventLine::parse("21 resumed my.topic-1:2").unwrap();
        let resumed = FaultEvent::Resumed {
            topic: "my.topic-1".into(),
            partition: 2,
        };
        assert_eq!(parsed.event, resumed);
        let parsed = EventLine::parse("22 state Draining").unwrap();
        assert_eq!(parsed.event, FaultEvent::Unknown("state Draining".into()));
        assert_eq!(EventLine::parse("2"), None);
    }

    #[test]
    fn an_events_file_counts_whole_lines_only() {
        let dir = std::env::temp_dir().join(unique("events-file"));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("p.events");
        std::fs::write(&path, "1 assigned t:0\n2 revoked t:0\n3 assigned t:").unwrap();
        let lines = EventLine::read(&path);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].event, FaultEvent::Revoked(vec![("t".into(), 0)]));
        assert!(EventLine::read(&dir.join("missing")).is_empty());
    }

    #[test]
    fn gaps_are_per_partition_and_bounded_by_the_window() {
        let records = Records {
            processed: vec![
                processed(100, 0, 0, 1),
                processed(400, 0, 1, 1),
                processed(150, 1, 0, 1),
                processed(2_000, 1, 1, 1),
            ],
            started: Vec::new(),
        };
        let longest = records.longest_gap(0, 1_000);
        assert_eq!((longest.partition, longest.ms()), (1, 850));
        assert_eq!(records.gaps(0, 1_000).len(), 5);
    }

    #[test]
    fn duplicates_name_each_processing() {
        let records = Records {
            processed: vec![
                processed(100, 2, 7, 10),
                processed(200, 2, 8, 10),
                processed(900, 2, 7, 11),
            ],
            started: Vec::new(),
        };
        assert_eq!(records.duplicates(), 1);
        let details = records.duplicate_details();
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].offsets, vec![7, 7]);
        assert_eq!(details[0].by, vec![(10, 100), (11, 900)]);
        assert!(records.lost(3).contains(&0));
    }
}
