//! Reading topics without a consumer group: a range of offsets, times or the last `n`
//! messages of some or all partitions, per partition or merged by timestamp, up to the end or
//! tailing.
//!
//! A [`TopicReader`] is a librdkafka consumer that *assigns* itself the partitions (it never
//! joins a group, stores or commits an offset). At start it asks the broker for each
//! partition's oldest offset, end offset and the offsets the times given resolve to, and turns
//! them into one range per partition (`range`); it then polls until every partition's
//! position reached the end of its range. The end is a position, never a count of messages:
//! transaction markers and compaction leave gaps in the offsets, and the end-of-partition event
//! ends a partition whose last offsets hold no message. Merging by timestamp is `merge`'s
//! k-way merge; the async form is `stream`.
//!
//! ```no_run
//! use ferrafka::reader::{StartAt, TopicReader};
//!
//! # fn main() -> ferrafka::Result<()> {
//! let reader = TopicReader::builder("orders")
//!     .partitions([0])
//!     .start(StartAt::Last(10))
//!     .connect("127.0.0.1:9092")?;
//! for message in reader {
//!     let message = message?;
//!     println!("{} {:?}", message.offset(), message.payload());
//! }
//! # Ok(())
//! # }
//! ```

pub(crate) mod client;
mod context;
mod merge;
mod range;
mod stream;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::error::{Error, Result};

pub use client::TopicReader;
pub use stream::ReaderStream;

/// Where a partition's reading starts. Every start lies within the partition's retained
/// offsets: before the oldest one it starts at the oldest, past the end at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest retained message (the low watermark).
    Beginning,
    /// The end offset when the read starts: only messages written later (with
    /// [`StopAt::Never`]).
    End,
    /// This offset.
    Offset(i64),
    /// The first message with a timestamp at or after this time (the end when none is).
    Time(SystemTime),
    /// The last `n` offsets before the end offset: the end minus `n`, never before the oldest
    /// retained message. Fewer than `n` messages come back where offsets hold transaction
    /// markers or were compacted away.
    Last(u64),
}

/// Where a partition's reading ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAt {
    /// At the end offsets taken when the read starts: exactly that range, however much
    /// producers write meanwhile.
    EndOffsets,
    /// Before the first message with a timestamp at or after this time, and at the end offsets
    /// at the latest: a reader never waits for this time to come.
    Time(SystemTime),
    /// Never: after catching up, keep returning new messages as they are written (tailing).
    Never,
}

/// The order messages come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Each partition in offset order; partitions interleaved as librdkafka fetches them.
    #[default]
    PerPartition,
    /// Merged across partitions by timestamp (ties: the lower partition), each partition
    /// still in offset order. A message waits until every partition not yet at its end has
    /// shown its next message, so no partition's earlier message can follow it; while tailing,
    /// a partition that caught up holds nothing back.
    Timestamp,
}

/// The offsets read in one partition, as resolved when the read started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    /// The partition.
    pub partition: i32,
    /// The first offset read.
    pub start: i64,
    /// The first offset not read; `None` while tailing.
    pub end: Option<i64>,
}

/// What to read: built by [`TopicReader::builder`], opened with [`ReaderBuilder::open`] (an
/// app's connection settings), [`ReaderBuilder::connect`] or [`ReaderBuilder::open_with`].
///
/// | option | default |
/// |---|---|
/// | partitions | all of the topic's |
/// | start | [`StartAt::Beginning`] |
/// | stop | [`StopAt::EndOffsets`] |
/// | order | [`Order::PerPartition`] |
/// | max_messages | no limit |
/// | timeout | 30 s |
#[derive(Debug, Clone)]
#[must_use]
pub struct ReaderBuilder {
    pub(crate) topic: String,
    pub(crate) partitions: Option<Vec<i32>>,
    pub(crate) start: StartAt,
    pub(crate) stop: StopAt,
    pub(crate) order: Order,
    pub(crate) max_messages: Option<u64>,
    pub(crate) timeout: Duration,
}

impl ReaderBuilder {
    pub(crate) fn new(topic: String) -> Self {
        ReaderBuilder {
            topic,
            partitions: None,
            start: StartAt::Beginning,
            stop: StopAt::EndOffsets,
            order: Order::PerPartition,
            max_messages: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Reads only these partitions (all of the topic's by default).
    pub fn partitions(mut self, partitions: impl IntoIterator<Item = i32>) -> Self {
        let mut partitions: Vec<i32> = partitions.into_iter().collect();
        partitions.sort_unstable();
        partitions.dedup();
        self.partitions = Some(partitions);
        self
    }

    /// Where each partition starts.
    pub fn start(mut self, start: StartAt) -> Self {
        self.start = start;
        self
    }

    /// Where each partition ends.
    pub fn stop(mut self, stop: StopAt) -> Self {
        self.stop = stop;
        self
    }

    /// The order messages come in.
    pub fn order(mut self, order: Order) -> Self {
        self.order = order;
        self
    }

    /// Stops after this many messages in all.
    pub fn max_messages(mut self, count: u64) -> Self {
        self.max_messages = Some(count);
        self
    }

    /// How long each request to the broker may take, and how long a read that has an end may
    /// go without progress before it fails (a read that tails waits forever).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the reader with `app`'s connection settings (`kafka`, `FERRAFKA_KAFKA_*`: the
    /// admin client's properties).
    pub fn open(self, app: &App) -> Result<TopicReader> {
        self.open_with(&app.clients().admin().values())
    }

    /// Opens the reader on `bootstrap_servers` with default properties.
    pub fn connect(self, bootstrap_servers: &str) -> Result<TopicReader> {
        self.open_with(&BTreeMap::from([(
            "bootstrap.servers".to_string(),
            bootstrap_servers.to_string(),
        )]))
    }

    /// Opens the reader with these librdkafka properties. Group membership properties are
    /// dropped, and the ones a reader depends on (no commits, end-of-partition events) set.
    pub fn open_with(self, kafka: &BTreeMap<String, String>) -> Result<TopicReader> {
        self.check()?;
        TopicReader::open(self, &crate::kafka::reader(kafka))
    }

    /// Refuses what cannot be read, naming the value.
    fn check(&self) -> Result<()> {
        let refuse = |reason: String| {
            Err(Error::Read {
                topic: self.topic.clone(),
                reason,
                source: None,
            })
        };
        if let StartAt::Offset(offset) = self.start
            && offset < 0
        {
            return refuse(format!(
                "start offset {offset} is negative: offsets start at 0 (use StartAt::Last for \
                 the last messages)"
            ));
        }
        if let Some(&p) = self.partitions.iter().flatten().find(|p| **p < 0) {
            return refuse(format!("partition {p} is negative: partitions start at 0"));
        }
        if self.partitions.as_ref().is_some_and(Vec::is_empty) {
            return refuse("no partition given: name one, or leave partitions out for all".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_requests_are_refused_before_connecting() {
        let refused = |b: ReaderBuilder| b.check().unwrap_err().to_string();
        let text = refused(TopicReader::builder("t").start(StartAt::Offset(-1)));
        assert!(text.contains("start offset -1 is negative"), "{text}");
        let text = refused(TopicReader::builder("t").partitions([1, -2]));
        assert!(text.contains("partition -2 is negative"), "{text}");
        let text = refused(TopicReader::builder("t").partitions([]));
        assert!(text.contains("no partition given"), "{text}");
        let ok = TopicReader::builder("t").partitions([2, 0, 2]);
        assert_eq!(ok.partitions, Some(vec![0, 2]));
        assert!(ok.check().is_ok());
    }
}
