//! The tester's in-memory log: what `produce` appends, and the driver's [`PartitionClient`]
//! over it (a fetch position, a fetch pause and a stored offset per partition).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::consumer::SeekTo;
use crate::messages::{Message, Timestamp, TopicInfo};
use crate::processing::driver::PartitionClient;

/// A message for [`super::Tester::produce`]: a payload, and optionally a key, headers, a
/// partition and a timestamp. `&str`, `String` and `Vec<u8>` convert into one.
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    pub(super) payload: Option<Vec<u8>>,
    pub(super) key: Option<Vec<u8>>,
    pub(super) headers: Vec<(String, Option<Vec<u8>>)>,
    pub(super) partition: i32,
    pub(super) timestamp: Option<i64>,
}

impl TestRecord {
    /// A record with this payload.
    pub fn new(payload: impl Into<Vec<u8>>) -> Self {
        TestRecord {
            payload: Some(payload.into()),
            ..TestRecord::default()
        }
    }

    /// A tombstone: no payload.
    pub fn tombstone() -> Self {
        TestRecord::default()
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((key.to_string(), Some(value.into())));
        self
    }

    /// Puts it on this partition (0 by default).
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    /// Sets its create time, in milliseconds since the epoch (default: now).
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.timestamp = Some(millis);
        self
    }
}

impl From<&str> for TestRecord {
    fn from(payload: &str) -> Self {
        TestRecord::new(payload)
    }
}

impl From<String> for TestRecord {
    fn from(payload: String) -> Self {
        TestRecord::new(payload)
    }
}

impl From<Vec<u8>> for TestRecord {
    fn from(payload: Vec<u8>) -> Self {
        TestRecord::new(payload)
    }
}

/// One partition of the log.
#[derive(Default)]
struct LogPartition {
    messages: Vec<Message>,
    /// The next offset the simulated fetch delivers.
    position: i64,
    paused: bool,
    stored: Option<i64>,
    /// A fault: once armed, the next pause stays whatever the partition is told afterwards,
    /// as librdkafka's application pause survived a rebalance before issue 17's fix.
    #[cfg(test)]
    sticky_pause: (bool, bool),
}

/// (topic, partition, end offset, next fetch position, stored offset).
pub(super) type LagFigure = (Arc<str>, i32, i64, i64, Option<i64>);

/// Every partition the tester produced to.
#[derive(Default)]
pub(super) struct TestLog {
    partitions: RefCell<BTreeMap<(Arc<str>, i32), LogPartition>>,
}

impl TestLog {
    /// Appends `record` to `topic`; returns its offset.
    pub(super) fn append(&self, topic: &Arc<TopicInfo>, record: TestRecord) -> i64 {
        let mut partitions = self.partitions.borrow_mut();
        let key = (topic.name.clone(), record.partition);
        let log = partitions.entry(key).or_default();
        let offset = log.messages.len() as i64;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        log.messages.push(Message::in_memory(
            topic.clone(),
            (record.partition, offset),
            Timestamp::CreateTime(record.timestamp.unwrap_or(now_ms)),
            record.key,
            record.payload,
            record.headers,
        ));
        offset
    }

    /// Every partition of the log.
    pub(super) fn partitions(&self) -> Vec<(String, i32)> {
        let partitions = self.partitions.borrow();
        partitions
            .keys()
            .map(|(t, p)| (t.to_string(), *p))
            .collect()
    }

    /// The next message of a partition whose fetch is not paused, if any.
    pub(super) fn fetch(&self) -> Option<Message> {
        let mut partitions = self.partitions.borrow_mut();
        let log = partitions
            .values_mut()
            .find(|l| !l.paused && (l.position as usize) < l.messages.len())?;
        log.position += 1;
        Some(log.messages[log.position as usize - 1].detach())
    }

    /// How many messages the log holds.
    pub(super) fn len(&self) -> usize {
        self.partitions
            .borrow()
            .values()
            .map(|l| l.messages.len())
            .sum()
    }

    /// Some partition's fetch is not paused and has messages left.
    pub(super) fn fetchable(&self) -> bool {
        let partitions = self.partitions.borrow();
        partitions
            .values()
            .any(|l| !l.paused && (l.position as usize) < l.messages.len())
    }

    /// The stored offset of `topic`/`partition`.
    pub(super) fn stored(&self, topic: &str, partition: i32) -> Option<i64> {
        let partitions = self.partitions.borrow();
        partitions
            .get(&(topic.into(), partition))
            .and_then(|l| l.stored)
    }

    /// (topic, partition, end offset, next fetch position, stored offset) of each partition:
    /// what the server's statistics report as consumer lag.
    pub(super) fn lag_figures(&self) -> Vec<LagFigure> {
        let partitions = self.partitions.borrow();
        partitions
            .iter()
            .map(|((t, p), l)| (t.clone(), *p, l.messages.len() as i64, l.position, l.stored))
            .collect()
    }

    /// The next pause of `topic`/`partition` stays, whatever the driver says later (a fault).
    #[cfg(test)]
    pub(crate) fn stick_next_pause(&self, topic: &str, partition: i32) {
        self.with(&(topic.into(), partition), |log| log.sticky_pause.0 = true);
    }

    fn with<T>(&self, target: &(Arc<str>, i32), f: impl FnOnce(&mut LogPartition) -> T) -> T {
        let mut partitions = self.partitions.borrow_mut();
        f(partitions.entry(target.clone()).or_default())
    }
}

impl LogPartition {
    fn seek_target(&self, to: SeekTo) -> i64 {
        let end = self.messages.len() as i64;
        match to {
            SeekTo::Offset(o) => o.clamp(0, end),
            SeekTo::Earliest => 0,
            SeekTo::Latest => end,
            SeekTo::Time(t) => {
                let millis = t
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                self.messages
                    .iter()
                    .find(|m| m.timestamp().millis().is_some_and(|ms| ms >= millis))
                    .map_or(end, |m| m.offset)
            }
        }
    }
}

impl PartitionClient for TestLog {
    type Target = (Arc<str>, i32);

    fn target(&self, topic: &Arc<str>, partition: i32) -> Self::Target {
        (topic.clone(), partition)
    }

    fn set_paused(&self, target: &Self::Target, paused: bool) {
        self.with(target, |log| {
            log.paused = paused;
            #[cfg(test)]
            {
                let (armed, stuck) = &mut log.sticky_pause;
                *stuck |= *armed && paused;
                log.paused |= *stuck;
            }
        });
    }

    fn store_offset(&self, target: &mut Self::Target, next: i64) {
        self.with(target, |log| log.stored = Some(next));
    }

    fn seek(&self, target: &Self::Target, to: SeekTo) -> bool {
        self.with(target, |log| log.position = log.seek_target(to));
        true
    }

    fn commit_sync(&self, _group: &str) {}
}
