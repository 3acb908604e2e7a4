//! [`TopicReader`]: the consumer, the partitions' ranges and positions, and the poll loop.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::context::ReaderContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::merge::Merge;
use super::range::{Bounds, Range, range};
use super::{Order, PartitionRange, ReaderBuilder, StartAt, StopAt};
use crate::error::{Error, Result};
use crate::messages::{JsonDeserializer, Message, TopicInfo};
use crate::secrets::redact_kafka_error;

/// How long an unknown topic or partition is looked for again before it is an error: metadata
/// of a topic created or grown a moment ago takes a while to reach every broker.
const METADATA_GRACE: Duration = Duration::from_secs(3);
/// How long one poll waits: the granularity of timeouts and of noticing a dropped stream.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// Messages one partition may hold waiting in a merge before its fetching pauses (it resumes
/// at half): a partition far ahead of the others does not fill memory.
const MERGE_LANE_LIMIT: usize = 10_000;

/// Reads a topic without a consumer group: see [the module](super). A blocking iterator of
/// messages (run it on a thread of its own, or use [`TopicReader::into_stream`] from async
/// code); it ends when every partition reached the end of its range or after
/// `max_messages`, and never while tailing.
///
/// An error ends the iteration: a partition that does not exist, a broker that stopped
/// answering for the `timeout` while partitions had not reached their end, a fatal client
/// error. Transient client errors (a broker restarting) are logged and retried.
pub struct TopicReader {
    consumer: BaseConsumer<ReaderContext>,
    kafka: BTreeMap<String, String>,
    topic: Arc<TopicInfo>,
    ranges: Vec<PartitionRange>,
    /// Per assigned partition: the next offset expected, or `None` once it reached its end.
    positions: BTreeMap<i32, Option<i64>>,
    order: Order,
    /// Messages ready in arrival order (per-partition order).
    ready: VecDeque<Message>,
    merge: Merge<Message>,
    paused: BTreeSet<i32>,
    remaining: Option<u64>,
    follow: bool,
    timeout: Duration,
    last_progress: Instant,
    last_error: Option<KafkaError>,
    finished: bool,
}

impl std::fmt::Debug for TopicReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicReader")
            .field("topic", &self.topic.name)
            .field("ranges", &self.ranges)
            .field("order", &self.order)
            .finish_non_exhaustive()
    }
}

/// What one poll returned, owned.
enum Polled {
    Nothing,
    Eof(i32),
    Failed(KafkaError),
    Message {
        partition: i32,
        offset: i64,
        /// `None` when the partition's range ended before this offset.
        message: Option<Message>,
    },
}

/// One turn of the poll loop.
pub(crate) enum Step {
    /// A message, or the error that ends the read.
    Item(Result<Message>),
    /// Nothing within one poll slice.
    Idle,
    /// The read is over.
    Done,
}

fn millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl TopicReader {
    /// What to read from `topic`: every partition from the beginning to the end offsets, until
    /// the options say otherwise.
    pub fn builder(topic: impl Into<String>) -> ReaderBuilder {
        ReaderBuilder::new(topic.into())
    }

    pub(super) fn open(request: ReaderBuilder, kafka: &BTreeMap<String, String>) -> Result<Self> {
        crate::kafka::check_kafka("reader", kafka)?;
        let mut config = ClientConfig::new();
        for (k, v) in kafka {
            config.set(k, v);
        }
        let consumer: BaseConsumer<ReaderContext> = config
            .create_with_context(ReaderContext)
            .map_err(|source| Error::create_client("reader", &source, kafka))?;
        let mut reader = TopicReader {
            consumer,
            kafka: kafka.clone(),
            topic: Arc::new(TopicInfo {
                name: Arc::from(request.topic.as_str()),
                deserializer: Arc::new(JsonDeserializer),
            }),
            ranges: Vec::new(),
            positions: BTreeMap::new(),
            order: request.order,
            ready: VecDeque::new(),
            merge: Merge::new([]),
            paused: BTreeSet::new(),
            remaining: request.max_messages,
            follow: request.stop == StopAt::Never,
            timeout: request.timeout,
            last_progress: Instant::now(),
            last_error: None,
            finished: false,
        };
        let partitions = reader.partitions(request.partitions.as_deref())?;
        let bounds = reader.bounds(&partitions, request.start, request.stop)?;
        reader.ranges = partitions
            .iter()
            .zip(bounds)
            .map(|(&partition, b)| {
                let Range { start, end } = range(request.start, request.stop, b);
                PartitionRange {
                    partition,
                    start,
                    end,
                }
            })
            .collect();
        reader.assign()?;
        Ok(reader)
    }

    /// The ranges read, one per partition, as resolved at start.
    pub fn ranges(&self) -> &[PartitionRange] {
        &self.ranges
    }

    /// Moves the reader to a thread of its own and returns its messages as a [`futures`]
    /// stream, so async code never blocks on it; dropping the stream stops the thread.
    pub fn into_stream(self) -> super::ReaderStream {
        super::ReaderStream::spawn(self)
    }

    fn error(&self, reason: String, source: Option<&KafkaError>) -> Error {
        Error::Read {
            topic: self.topic.name.to_string(),
            reason,
            source: source.map(|e| Box::new(redact_kafka_error(e, &self.kafka))),
        }
    }

    /// The partitions to read, checked against the topic's metadata.
    fn partitions(&self, asked: Option<&[i32]>) -> Result<Vec<i32>> {
        // A topic created or grown a moment ago may not show on every broker yet.
        let settled = crate::config::later(Instant::now(), self.timeout.min(METADATA_GRACE));
        let existing = loop {
            let existing = self.existing_partitions()?;
            let all_known = existing.as_ref().is_some_and(|existing| {
                asked.is_none_or(|asked| asked.iter().all(|p| existing.contains(p)))
            });
            if all_known || Instant::now() >= settled {
                break existing;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let Some(existing) = existing else {
            return Err(self.error(
                "the topic does not exist in the cluster (check its name, or create it)".into(),
                None,
            ));
        };
        let Some(asked) = asked else {
            return Ok(existing);
        };
        let missing: Vec<String> = asked
            .iter()
            .filter(|p| !existing.contains(p))
            .map(i32::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(self.error(
                format!(
                    "partition {} does not exist: the topic has {} partition(s), 0 to {}",
                    missing.join(", "),
                    existing.len(),
                    existing.len().saturating_sub(1)
                ),
                None,
            ));
        }
        Ok(asked.to_vec())
    }

    /// The topic's partitions, sorted, from fresh metadata; `None` when it does not exist.
    fn existing_partitions(&self) -> Result<Option<Vec<i32>>> {
        let metadata = self
            .consumer
            .fetch_metadata(None, self.timeout)
            .map_err(|e| self.error("cannot fetch the cluster's metadata".into(), Some(&e)))?;
        let topic = &*self.topic.name;
        // All topics are listed and searched: asking for one by name could create it on a
        // broker with `auto.create.topics.enable`.
        Ok(metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|found| {
                let mut existing: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
                existing.sort_unstable();
                existing
            }))
    }

    /// Each partition's oldest and end offsets, and the offsets the times resolve to: one
    /// ListOffsets request per leader for each.
    fn bounds(&self, partitions: &[i32], start: StartAt, stop: StopAt) -> Result<Vec<Bounds>> {
        let low = self.list_offsets(partitions, Offset::Beginning)?;
        let end = self.list_offsets(partitions, Offset::End)?;
        let at_time = |time: Option<SystemTime>| match time {
            Some(t) => self.list_offsets(partitions, Offset::Offset(millis(t))),
            None => Ok(vec![None; partitions.len()]),
        };
        let start_time = at_time(match start {
            StartAt::Time(t) => Some(t),
            _ => None,
        })?;
        let stop_time = at_time(match stop {
            StopAt::Time(t) => Some(t),
            _ => None,
        })?;
        let mut bounds = Vec::with_capacity(partitions.len());
        for (i, p) in partitions.iter().enumerate() {
            let (Some(low), Some(end)) = (low[i], end[i]) else {
                return Err(self.error(
                    format!("the broker gave no watermarks for partition {p}"),
                    None,
                ));
            };
            bounds.push(Bounds {
                low,
                end,
                start_time: start_time[i],
                stop_time: stop_time[i],
            });
        }
        Ok(bounds)
    }

    /// ListOffsets for every partition (`Beginning`, `End`, or a timestamp), in the order of
    /// `partitions`; `None` where no offset answers (no message at or after a time).
    ///
    /// Right after a topic is created a broker may not lead its partitions yet
    /// (`NotLeaderForPartition`, `LeaderNotAvailable`, `UnknownTopicOrPartition`): those are
    /// retried until the timeout.
    fn list_offsets(&self, partitions: &[i32], what: Offset) -> Result<Vec<Option<i64>>> {
        let deadline = crate::config::later(Instant::now(), self.timeout);
        loop {
            match self.list_offsets_once(partitions, what) {
                Ok(offsets) => return Ok(offsets),
                Err((_, Some(e))) if is_settling(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err((reason, e)) => return Err(self.error(reason, e.as_ref())),
            }
        }
    }

    fn list_offsets_once(
        &self,
        partitions: &[i32],
        what: Offset,
    ) -> std::result::Result<Vec<Option<i64>>, (String, Option<KafkaError>)> {
        let topic = &*self.topic.name;
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            tpl.add_partition_offset(topic, p, what)
                .map_err(|e| (format!("partition {p}"), Some(e)))?;
        }
        let found = self
            .consumer
            .offsets_for_times(tpl, self.timeout)
            .map_err(|e| ("cannot list offsets".to_string(), Some(e)))?;
        partitions
            .iter()
            .map(|&p| {
                let Some(element) = found.find_partition(topic, p) else {
                    return Err((format!("no offsets listed for partition {p}"), None));
                };
                if let Err(e) = element.error() {
                    return Err((format!("cannot list offsets of partition {p}"), Some(e)));
                }
                Ok(crate::kafka::known_offset(element.offset()))
            })
            .collect()
    }

    /// Assigns every partition whose range is not empty, at its start.
    fn assign(&mut self) -> Result<()> {
        let topic = self.topic.name.clone();
        let mut tpl = TopicPartitionList::new();
        for r in &self.ranges {
            let range = Range {
                start: r.start,
                end: r.end,
            };
            if range.is_empty() {
                continue;
            }
            tpl.add_partition_offset(&topic, r.partition, Offset::Offset(r.start))
                .map_err(|e| self.error(format!("partition {}", r.partition), Some(&e)))?;
            self.positions.insert(r.partition, Some(r.start));
        }
        self.merge = Merge::new(self.positions.keys().copied());
        if tpl.count() > 0 {
            self.consumer
                .assign(&tpl)
                .map_err(|e| self.error("cannot assign the partitions".into(), Some(&e)))?;
        }
        Ok(())
    }

    fn end_of(&self, partition: i32) -> Option<i64> {
        self.ranges
            .iter()
            .find(|r| r.partition == partition)
            .and_then(|r| r.end)
    }

    /// One turn: hand out a ready message, or poll librdkafka once.
    pub(crate) fn step(&mut self) -> Step {
        if self.finished || self.remaining == Some(0) {
            return Step::Done;
        }
        if let Some(message) = self.next_ready() {
            if let Some(n) = &mut self.remaining {
                *n -= 1;
            }
            return Step::Item(Ok(message));
        }
        if !self.follow && self.positions.values().all(Option::is_none) {
            self.finished = true;
            return Step::Done;
        }
        // What was polled, turned into owned values first: the polled message borrows the
        // consumer, and the bookkeeping below needs the reader mutably.
        let polled = match self.consumer.poll(POLL_SLICE) {
            None => Polled::Nothing,
            Some(Err(KafkaError::PartitionEOF(partition))) => Polled::Eof(partition),
            Some(Err(e)) => Polled::Failed(e),
            Some(Ok(m)) => {
                let (partition, offset) = (m.partition(), m.offset());
                let open = matches!(self.positions.get(&partition), Some(Some(_)));
                let before_end = self.end_of(partition).is_none_or(|end| offset < end);
                Polled::Message {
                    partition,
                    offset,
                    // Past the end or after it: only offsets without a message lay between.
                    message: (open && before_end).then(|| Message::copied(self.topic.clone(), m)),
                }
            }
        };
        self.apply(polled)
    }

    /// Bookkeeping for what one poll returned.
    fn apply(&mut self, polled: Polled) -> Step {
        match polled {
            Polled::Nothing => self.idle(),
            Polled::Failed(e) => self.client_error(e),
            Polled::Eof(partition) => {
                self.last_progress = Instant::now();
                if self.follow {
                    // Caught up for now: an idle partition holds no merge back.
                    self.merge.close(partition);
                } else {
                    // Every message before the log end was delivered before this event, and
                    // the log end is at or past the end offset taken at start.
                    self.reached_end(partition);
                }
                Step::Idle
            }
            Polled::Message {
                partition,
                offset,
                message,
            } => {
                self.last_progress = Instant::now();
                let Some(message) = message else {
                    self.reached_end(partition);
                    return Step::Idle;
                };
                self.positions.insert(partition, Some(offset + 1));
                self.accept(partition, message);
                if self.end_of(partition).is_some_and(|end| offset + 1 >= end) {
                    self.reached_end(partition);
                }
                Step::Idle
            }
        }
    }

    fn next_ready(&mut self) -> Option<Message> {
        let message = match self.order {
            Order::PerPartition => self.ready.pop_front(),
            Order::Timestamp => self.merge.pop().map(|(_, m)| m),
        }?;
        let partition = message.partition();
        if self.paused.contains(&partition) && self.merge.waiting(partition) < MERGE_LANE_LIMIT / 2
        {
            self.set_paused(partition, false);
        }
        Some(message)
    }

    fn accept(&mut self, partition: i32, message: Message) {
        match self.order {
            Order::PerPartition => self.ready.push_back(message),
            Order::Timestamp => {
                let timestamp = message.timestamp().millis().unwrap_or(i64::MIN);
                self.merge.push(partition, timestamp, message);
                if self.merge.waiting(partition) >= MERGE_LANE_LIMIT {
                    self.set_paused(partition, true);
                }
            }
        }
    }

    /// Ends a partition's range: nothing more is fetched or returned from it.
    fn reached_end(&mut self, partition: i32) {
        if self.positions.get(&partition).is_some_and(Option::is_some) {
            self.positions.insert(partition, None);
            self.merge.close(partition);
            self.set_paused(partition, true);
        }
    }

    fn set_paused(&mut self, partition: i32, paused: bool) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic.name, partition);
        let done = self.positions.get(&partition).is_some_and(Option::is_none);
        let result = if paused {
            self.paused.insert(partition);
            self.consumer.pause(&tpl)
        } else if !done {
            self.paused.remove(&partition);
            self.consumer.resume(&tpl)
        } else {
            Ok(())
        };
        if let Err(e) = result {
            tracing::debug!(topic = %self.topic.name, partition, error = %e, "reader pause/resume");
        }
    }

    /// A client error: fatal and permanent ones end the read, transient ones are logged
    /// (librdkafka retries them) and kept to explain a stall.
    fn client_error(&mut self, error: KafkaError) -> Step {
        let permanent = matches!(
            error.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition
            )
        );
        if permanent || matches!(error, KafkaError::MessageConsumptionFatal(_)) {
            self.finished = true;
            return Step::Item(Err(self.error(String::new(), Some(&error))));
        }
        let shown = redact_kafka_error(&error, &self.kafka);
        tracing::warn!(topic = %self.topic.name, error = %shown, "reader: client error, retrying");
        self.last_error = Some(error);
        self.idle()
    }

    /// Nothing arrived: a read with an end fails once it made no progress for the timeout.
    fn idle(&mut self) -> Step {
        if self.follow || self.last_progress.elapsed() < self.timeout {
            return Step::Idle;
        }
        self.finished = true;
        let waiting: Vec<String> = self
            .positions
            .iter()
            .filter_map(|(p, pos)| {
                pos.map(|pos| {
                    let end = self.end_of(*p).unwrap_or(pos);
                    format!("{p} (position {pos}, end {end})")
                })
            })
            .collect();
        let reason = format!(
            "no message for {:?} while partitions had not reached their end offset: {}; check \
             that the brokers are up (`doctor --live`)",
            self.timeout,
            waiting.join(", ")
        );
        let error = self.last_error.take();
        Step::Item(Err(self.error(reason, error.as_ref())))
    }
}

/// Whether `error` is one a cluster gives while a new topic's leaders settle.
fn is_settling(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::UnknownTopicOrPartition
        )
    )
}

impl Iterator for TopicReader {
    type Item = Result<Message>;

    /// The next message; blocks while none is ready (forever while tailing an idle topic).
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.step() {
                Step::Item(item) => return Some(item),
                Step::Idle => {}
                Step::Done => return None,
            }
        }
    }
}
