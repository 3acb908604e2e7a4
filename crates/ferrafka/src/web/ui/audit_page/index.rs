//! The audit reader: a thread of each `web` process tails the audit topic from the beginning
//! (no consumer group) and keeps the newest [`NEWEST`] records for the audit page and, per
//! republish id, what became of it, for the republish's check.
//!
//! A republish is decided by the audit topic's order, not by this process's memory: the
//! records of one dead letter share their key (the republish id), so they share a partition,
//! and every `web` process reads them in the same order. The first `started` record (a claim)
//! of an id wins; a later claim, from this process or another, loses until a `failed` record
//! of the winner releases it. Memory: [`NEWEST`] records, one small entry per dead letter
//! republished within the topic's retention, and the claims being waited for.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::admin::Admin;
use crate::reader::client::Step;
use crate::reader::{StartAt, StopAt, TopicReader};
use crate::web::audit::{AuditRecord, decode};

/// Records the audit page shows (the newest, by their time).
pub(crate) const NEWEST: usize = 200;
/// The audit action of a republish.
pub(crate) const REPUBLISH: &str = "republish";
/// The detail naming the claim a `done` or `failed` record answers.
pub(crate) const CLAIM: &str = "claim";
/// The detail of a `failed` record saying whether nothing was written (`true`: the claim is
/// released and the dead letter can be republished again).
pub(crate) const RELEASED: &str = "released";
/// The outcome of a republish's claim, written before the record is produced.
pub(crate) const STARTED: &str = "started";
/// The outcome once the republished record is acknowledged.
pub(crate) const DONE: &str = "done";

/// Who asked for a republish, from where and when (the claim's record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub(crate) who: String,
    pub(crate) from: String,
    pub(crate) at_ms: i64,
    pub(crate) to: String,
}

/// What became of a dead letter's republish, as the audit topic says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Republished {
    /// Claimed and not answered yet: being produced, or its `web` process stopped before
    /// saying how it went.
    Started(Asked),
    /// Produced and acknowledged, at `landed` (`topic/partition/offset`).
    Done { asked: Asked, landed: String },
    /// Producing failed in a way that may have written it.
    Unsure { asked: Asked, error: String },
}

impl Republished {
    /// The claim this state is of.
    pub(crate) fn asked(&self) -> &Asked {
        match self {
            Republished::Started(a)
            | Republished::Done { asked: a, .. }
            | Republished::Unsure { asked: a, .. } => a,
        }
    }
}

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It is the first: this request produces.
    Won,
    /// Another claim came first: this is what became of it.
    Lost(Republished),
}

/// What the reader read so far.
#[derive(Debug, Default)]
pub(crate) struct AuditLog {
    /// Per partition, the next offset to read.
    positions: HashMap<i32, i64>,
    newest: BTreeMap<(i64, i32, i64), AuditRecord>,
    /// Per republish id: its state and the claim that owns it.
    republishes: HashMap<String, (Republished, String)>,
    /// Claims being waited for, by their claim id, with their verdict once read.
    awaited: HashMap<String, Option<Verdict>>,
    problem: Option<String>,
    undecodable: u64,
}

impl AuditLog {
    /// Applies the record at `offset` of `partition`; one read before is skipped (a reader
    /// that starts again reads from the beginning).
    pub(crate) fn apply(&mut self, partition: i32, offset: i64, payload: Option<&[u8]>) {
        let next = self.positions.entry(partition).or_insert(0);
        if offset < *next {
            return;
        }
        *next = offset + 1;
        let Ok(record) = decode(payload.unwrap_or_default()) else {
            self.undecodable += 1;
            return;
        };
        if record.action == REPUBLISH {
            self.republish(&record);
        }
        self.newest
            .insert((record.at_ms, partition, offset), record);
        if self.newest.len() > NEWEST {
            self.newest.pop_first();
        }
    }

    fn republish(&mut self, r: &AuditRecord) {
        let claim = r.details.get(CLAIM).cloned().unwrap_or_default();
        let owner = self.republishes.get(&r.id).map(|(_, c)| c.as_str());
        let answers_owner = owner == Some(claim.as_str()) && !claim.is_empty();
        let asked = || Asked {
            who: r.who.clone(),
            from: r.from.clone(),
            at_ms: r.at_ms,
            to: r.details.get("to").cloned().unwrap_or_default(),
        };
        match r.outcome.as_str() {
            STARTED => {
                let verdict = match self.republishes.get(&r.id) {
                    Some((state, _)) => Verdict::Lost(state.clone()),
                    None => {
                        let state = Republished::Started(asked());
                        self.republishes
                            .insert(r.id.clone(), (state, claim.clone()));
                        Verdict::Won
                    }
                };
                if let Some(slot) = self.awaited.get_mut(&claim) {
                    *slot = Some(verdict);
                }
            }
            DONE if answers_owner => {
                let entry = self.republishes.get_mut(&r.id).expect("owner checked");
                let asked = entry.0.asked().clone();
                let landed = r.details.get("landed").cloned().unwrap_or_default();
                entry.0 = Republished::Done { asked, landed };
            }
            failed if answers_owner && failed.starts_with("failed") => {
                if r.details.get(RELEASED).map(String::as_str) == Some("true") {
                    self.republishes.remove(&r.id);
                } else {
                    let entry = self.republishes.get_mut(&r.id).expect("owner checked");
                    let asked = entry.0.asked().clone();
                    entry.0 = Republished::Unsure {
                        asked,
                        error: failed.to_string(),
                    };
                }
            }
            // Refusals, and answers to claims that lost, change nothing.
            _ => {}
        }
    }

    /// Whether every partition was read up to its high watermark in `marks`
    /// (`(partition, low, high)`).
    pub(crate) fn caught_up(&self, marks: &[(i32, i64, i64)]) -> bool {
        marks.iter().all(|&(p, low, high)| {
            high <= low || self.positions.get(&p).is_some_and(|next| *next >= high)
        })
    }

    /// What became of republish `id`.
    pub(crate) fn state(&self, id: &str) -> Option<Republished> {
        self.republishes.get(id).map(|(s, _)| s.clone())
    }
}

/// The audit log of one `web` process, shared by its handlers and its reading thread.
#[derive(Debug, Clone)]
pub(crate) struct AuditIndex {
    log: Arc<Mutex<AuditLog>>,
    topic: String,
}

impl AuditIndex {
    /// Starts reading `topic` on a thread that stops once `stop` is dropped.
    pub(crate) fn start(
        topic: String,
        kafka: BTreeMap<String, String>,
        stop: Weak<()>,
    ) -> std::io::Result<Self> {
        let index = AuditIndex {
            log: Arc::default(),
            topic: topic.clone(),
        };
        let log = index.log.clone();
        std::thread::Builder::new()
            .name("ferrafka-web-audit".into())
            .spawn(move || read(&log, &topic, &kafka, &stop))?;
        Ok(index)
    }

    /// The log, locked; a panic elsewhere does not take the pages down with it.
    pub(crate) fn lock(&self) -> MutexGuard<'_, AuditLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest records, newest first (partition, offset, record), why the topic cannot
    /// be read, and how many records were not audit records.
    pub(crate) fn newest(&self) -> (Vec<(i32, i64, AuditRecord)>, Option<String>, u64) {
        let log = self.lock();
        let records = log
            .newest
            .iter()
            .rev()
            .map(|(&(_, p, o), r)| (p, o, r.clone()))
            .collect();
        (records, log.problem.clone(), log.undecodable)
    }

    /// Waits (up to `timeout`) until every record written before now was read. Blocking.
    pub(crate) fn sync(&self, admin: &Admin, timeout: Duration) -> Result<(), String> {
        let cannot = |e: crate::Error| format!("cannot read the audit topic `{}`: {e}", self.topic);
        let Some(info) = admin.topic_info(&self.topic).map_err(cannot)? else {
            return Ok(()); // Nothing was ever audited.
        };
        let mut marks = Vec::with_capacity(info.partitions.len());
        for p in &info.partitions {
            let (low, high) = admin.watermarks(&self.topic, p.id).map_err(cannot)?;
            marks.push((p.id, low, high));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let problem = {
                let log = self.lock();
                if log.caught_up(&marks) {
                    return Ok(());
                }
                log.problem.clone()
            };
            if Instant::now() >= deadline {
                return Err(problem.unwrap_or_else(|| {
                    format!(
                        "the audit topic `{}` was not read up to now within {timeout:?}",
                        self.topic
                    )
                }));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Starts waiting for the verdict of `claim` (before its record is written).
    pub(crate) fn expect(&self, claim: &str) {
        self.lock().awaited.insert(claim.to_string(), None);
    }

    /// Waits (up to `timeout`) for the verdict of `claim`, and stops waiting for it.
    pub(crate) async fn verdict(&self, claim: &str, timeout: Duration) -> Option<Verdict> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let found = self.lock().awaited.get(claim).cloned().flatten();
            if found.is_some() || tokio::time::Instant::now() >= deadline {
                self.lock().awaited.remove(claim);
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Tails `topic` into `log` until `stop` is dropped; opens it again after an error.
fn read(log: &Mutex<AuditLog>, topic: &str, kafka: &BTreeMap<String, String>, stop: &Weak<()>) {
    let set_problem = |problem: Option<String>| {
        log.lock().unwrap_or_else(|p| p.into_inner()).problem = problem;
    };
    while stop.upgrade().is_some() {
        let opened = TopicReader::builder(topic)
            .start(StartAt::Beginning)
            .stop(StopAt::Never)
            .timeout(Duration::from_secs(10))
            .open_with(kafka);
        let mut reader = match opened {
            Ok(reader) => reader,
            Err(e) => {
                set_problem(Some(format!("cannot read the audit topic `{topic}`: {e}")));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        set_problem(None);
        while stop.upgrade().is_some() {
            match reader.step() {
                Step::Item(Ok(m)) => log.lock().unwrap_or_else(|p| p.into_inner()).apply(
                    m.partition(),
                    m.offset(),
                    m.payload(),
                ),
                Step::Item(Err(e)) => {
                    set_problem(Some(format!(
                        "reading the audit topic `{topic}` failed: {e}"
                    )));
                    break;
                }
                Step::Idle => {}
                Step::Done => break,
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, who: &str, outcome: &str, claim: &str) -> AuditRecord {
        AuditRecord::new(id, who, "127.0.0.1", REPUBLISH, "dlq/0/1")
            .detail(CLAIM, claim)
            .detail("to", "orders")
            .outcome(outcome)
    }

    fn apply(log: &mut AuditLog, offset: i64, r: &AuditRecord) {
        log.apply(0, offset, Some(&r.to_json()));
    }

    #[test]
    fn the_first_claim_wins_and_later_ones_see_who_republished() {
        let mut log = AuditLog::default();
        log.awaited.insert("c-a".into(), None);
        log.awaited.insert("c-b".into(), None);
        apply(&mut log, 0, &record("id", "alice", STARTED, "c-a"));
        apply(&mut log, 1, &record("id", "bob", STARTED, "c-b"));
        assert_eq!(log.awaited["c-a"], Some(Verdict::Won));
        let Some(Verdict::Lost(Republished::Started(first))) = &log.awaited["c-b"] else {
            panic!("{:?}", log.awaited);
        };
        assert_eq!((first.who.as_str(), first.to.as_str()), ("alice", "orders"));
        // Bob's answer to his lost claim changes nothing; Alice's does.
        let mut bobs = record("id", "bob", "failed: x", "c-b").detail(RELEASED, "true");
        apply(&mut log, 2, &bobs);
        assert!(matches!(log.state("id"), Some(Republished::Started(_))));
        apply(
            &mut log,
            3,
            &record("id", "alice", DONE, "c-a").detail("landed", "orders/0/9"),
        );
        let Some(Republished::Done { asked, landed }) = log.state("id") else {
            panic!("{:?}", log.state("id"));
        };
        assert_eq!(
            (asked.who.as_str(), landed.as_str()),
            ("alice", "orders/0/9")
        );
        // A record read again (the reader started over) is not applied twice.
        bobs = record("id", "carol", STARTED, "c-c");
        log.awaited.insert("c-c".into(), None);
        apply(&mut log, 1, &bobs);
        assert_eq!(log.awaited["c-c"], None);
        apply(&mut log, 4, &bobs);
        assert!(matches!(
            log.awaited["c-c"],
            Some(Verdict::Lost(Republished::Done { .. }))
        ));
    }

    #[test]
    fn a_released_failure_frees_the_dead_letter_and_an_unsure_one_keeps_it() {
        let mut log = AuditLog::default();
        apply(&mut log, 0, &record("id", "a", STARTED, "c1"));
        apply(
            &mut log,
            1,
            &record("id", "a", "failed: no such topic", "c1").detail(RELEASED, "true"),
        );
        assert_eq!(log.state("id"), None);
        apply(&mut log, 2, &record("id", "b", STARTED, "c2"));
        apply(
            &mut log,
            3,
            &record("id", "b", "failed: timed out", "c2").detail(RELEASED, "false"),
        );
        assert!(matches!(log.state("id"), Some(Republished::Unsure { .. })));
    }

    #[test]
    fn the_newest_records_are_bounded_and_catching_up_is_per_partition() {
        let mut log = AuditLog::default();
        for offset in 0..(NEWEST as i64 + 10) {
            let r = AuditRecord::new("c", "w", "f", "command pause", "x");
            log.apply(1, offset, Some(&r.to_json()));
        }
        log.apply(1, NEWEST as i64 + 10, Some(b"not json"));
        assert_eq!(log.newest.len(), NEWEST);
        assert_eq!(log.undecodable, 1);
        let next = NEWEST as i64 + 11;
        assert!(log.caught_up(&[(1, 0, next), (0, 5, 5)]));
        assert!(!log.caught_up(&[(1, 0, next + 1)]));
        assert!(!log.caught_up(&[(0, 0, 1)]));
    }
}
