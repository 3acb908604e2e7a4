//! Messages and batches as consumers see them.
//!
//! A [`Messages`] batch always comes from one topic-partition, in offset order. Each [`Message`]
//! owns its payload, key and headers, so a consumer may keep it past the batch.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::error::BoxError;

/// Turns a payload into a `serde_json::Value`, the bridge every serde type can read from.
///
/// Set one per topic with `TopicRoute::deserializer`; the default, [`JsonDeserializer`], parses
/// JSON. Consumers then call [`Message::deserialize`] to get their own type.
pub trait Deserializer: Send + Sync + 'static {
    /// Parses the payload of `message` (which may be a tombstone, with no payload).
    fn deserialize(&self, message: &Message) -> Result<serde_json::Value, BoxError>;

    /// True when the payload is JSON, so typed reads can skip the intermediate value.
    fn is_json(&self) -> bool {
        false
    }
}

/// The default deserializer: payloads are JSON documents.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonDeserializer;

impl Deserializer for JsonDeserializer {
    fn deserialize(&self, message: &Message) -> Result<serde_json::Value, BoxError> {
        Ok(serde_json::from_slice(message.payload_or_empty())?)
    }

    fn is_json(&self) -> bool {
        true
    }
}

/// What a message shares with all messages of its topic: the name and the deserializer.
pub(crate) struct TopicInfo {
    pub(crate) name: Arc<str>,
    pub(crate) deserializer: Arc<dyn Deserializer>,
}

impl std::fmt::Debug for TopicInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicInfo")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// When the broker or producer stamped a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timestamp {
    /// The producer's create time, in milliseconds since the epoch.
    CreateTime(i64),
    /// The broker's append time, in milliseconds since the epoch.
    LogAppendTime(i64),
    /// The message carries no timestamp.
    NotAvailable,
}

impl Timestamp {
    /// Milliseconds since the epoch, if known.
    pub fn millis(&self) -> Option<i64> {
        match *self {
            Timestamp::CreateTime(ms) | Timestamp::LogAppendTime(ms) => Some(ms),
            Timestamp::NotAvailable => None,
        }
    }

    pub(crate) fn from_rdkafka(ts: rdkafka::Timestamp) -> Self {
        match ts {
            rdkafka::Timestamp::CreateTime(ms) => Timestamp::CreateTime(ms),
            rdkafka::Timestamp::LogAppendTime(ms) => Timestamp::LogAppendTime(ms),
            rdkafka::Timestamp::NotAvailable => Timestamp::NotAvailable,
        }
    }
}

/// One header of a message; the value may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value, `None` for a null value.
    pub value: Option<Vec<u8>>,
}

/// One consumed message.
#[derive(Debug, Clone)]
pub struct Message {
    pub(crate) topic: Arc<TopicInfo>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: Timestamp,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) headers: Vec<Header>,
    pub(crate) received_at: SystemTime,
}

impl Message {
    /// Builds a message by hand, for tests of consumer logic (see `ferrafka::testing`).
    pub fn builder(topic: &str, partition: i32, offset: i64) -> MessageBuilder {
        MessageBuilder {
            message: Message {
                topic: Arc::new(TopicInfo {
                    name: Arc::from(topic),
                    deserializer: Arc::new(JsonDeserializer),
                }),
                partition,
                offset,
                timestamp: Timestamp::NotAvailable,
                key: None,
                payload: None,
                headers: Vec::new(),
                received_at: SystemTime::now(),
            },
        }
    }

    /// The topic the message was read from.
    pub fn topic(&self) -> &str {
        &self.topic.name
    }

    /// The partition the message was read from.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The message's offset in its partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// The message's timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// When ferrafka took the message from librdkafka.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// The key, raw.
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The key as UTF-8 text, if it is some.
    pub fn key_str(&self) -> Option<&str> {
        self.key().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The payload, raw; `None` for a tombstone.
    pub fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    /// The payload, raw, with a tombstone read as empty.
    pub fn payload_or_empty(&self) -> &[u8] {
        self.payload.as_deref().unwrap_or(&[])
    }

    /// True when the message has no payload (a tombstone on compacted topics).
    pub fn is_tombstone(&self) -> bool {
        self.payload.is_none()
    }

    /// Parses the payload as JSON into `T`, whatever the topic's deserializer.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.payload_or_empty())
    }

    /// Reads the payload into `T` through the topic's deserializer.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, BoxError> {
        let deserializer = &self.topic.deserializer;
        if deserializer.is_json() {
            return Ok(self.payload_json()?);
        }
        Ok(serde_json::from_value(deserializer.deserialize(self)?)?)
    }

    /// All headers, in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the last header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }
}

/// Builds a [`Message`] by hand, for tests.
#[derive(Debug)]
pub struct MessageBuilder {
    message: Message,
}

impl MessageBuilder {
    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.message.payload = Some(payload.into());
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.message.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.message.headers.push(Header {
            key: key.to_string(),
            value: Some(value.into()),
        });
        self
    }

    /// Sets the create-time timestamp, in milliseconds since the epoch.
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.message.timestamp = Timestamp::CreateTime(millis);
        self
    }

    /// Finishes the message.
    pub fn build(self) -> Message {
        self.message
    }
}

/// Facts about a batch as a whole.
#[derive(Debug, Clone)]
pub struct BatchMetadata {
    /// Topic of every message in the batch.
    pub topic: Arc<str>,
    /// Partition of every message in the batch.
    pub partition: i32,
    /// Offset of the first message.
    pub first_offset: i64,
    /// Offset of the last message.
    pub last_offset: i64,
    /// Number of messages.
    pub size: usize,
    /// When the listener handed the batch to its partition's executor.
    pub created_at: Instant,
    /// Time from the last message's timestamp to the batch's creation (zero without timestamps,
    /// or when the clocks disagree and the message seems to come from the future).
    pub consumption_lag: Duration,
    /// Time the batch waited for a worker, from its creation to the start of `consume`.
    pub processing_lag: Duration,
    /// Which attempt at this batch this is: 1 for the first, higher after errors.
    pub attempt: u32,
}

/// A batch of messages from one topic-partition, in offset order; never empty.
///
/// With virtual partitions a consumer sees a *view* of its partition's batch: the messages of
/// its group only, still in offset order, sharing the batch's storage (no message is copied).
#[derive(Debug, Clone)]
pub struct Messages {
    // A Vec behind the Arc: the listener's buffer becomes the batch without a copy.
    pub(crate) messages: Arc<Vec<Message>>,
    /// Which of `messages` this batch holds (ascending indices); `None` for all of them.
    pub(crate) selection: Option<Arc<[usize]>>,
    pub(crate) metadata: BatchMetadata,
}

impl Messages {
    pub(crate) fn new(messages: Arc<Vec<Message>>, attempt: u32) -> Self {
        debug_assert!(!messages.is_empty(), "a batch is never empty");
        let first = &messages[0];
        let last = &messages[messages.len() - 1];
        let now = SystemTime::now();
        let consumption_lag = last
            .timestamp
            .millis()
            .and_then(|ms| {
                let stamped = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
                now.duration_since(stamped).ok()
            })
            .unwrap_or_default();
        let metadata = BatchMetadata {
            topic: first.topic.name.clone(),
            partition: first.partition,
            first_offset: first.offset,
            last_offset: last.offset,
            size: messages.len(),
            created_at: Instant::now(),
            consumption_lag,
            processing_lag: Duration::ZERO,
            attempt,
        };
        Messages {
            messages,
            selection: None,
            metadata,
        }
    }

    /// The messages of this batch at `indices` (ascending, non-empty, into the whole batch),
    /// sharing its storage. The metadata's offsets and size describe the view; its timings
    /// and attempt stay the batch's.
    pub(crate) fn select(&self, indices: Arc<[usize]>) -> Self {
        debug_assert!(!indices.is_empty(), "a view is never empty");
        debug_assert!(indices.is_sorted(), "a view keeps offset order");
        let first = &self.messages[indices[0]];
        let last = &self.messages[indices[indices.len() - 1]];
        let metadata = BatchMetadata {
            first_offset: first.offset,
            last_offset: last.offset,
            size: indices.len(),
            ..self.metadata.clone()
        };
        Messages {
            messages: self.messages.clone(),
            selection: Some(indices),
            metadata,
        }
    }

    /// Builds a batch by hand, for tests of consumer logic. Panics if `messages` is empty.
    pub fn from_messages(messages: Vec<Message>) -> Self {
        assert!(!messages.is_empty(), "a batch needs at least one message");
        Messages::new(messages.into(), 1)
    }

    /// Facts about the batch.
    pub fn metadata(&self) -> &BatchMetadata {
        &self.metadata
    }

    /// Number of messages.
    pub fn len(&self) -> usize {
        self.selection
            .as_ref()
            .map_or(self.messages.len(), |s| s.len())
    }

    /// Always false: a batch is never empty (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first message.
    pub fn first(&self) -> &Message {
        match &self.selection {
            Some(s) => &self.messages[s[0]],
            None => &self.messages[0],
        }
    }

    /// The last message.
    pub fn last(&self) -> &Message {
        match &self.selection {
            Some(s) => &self.messages[s[s.len() - 1]],
            None => &self.messages[self.messages.len() - 1],
        }
    }

    /// Iterates over the messages in offset order.
    pub fn iter(&self) -> Iter<'_> {
        let inner = match &self.selection {
            Some(s) => IterInner::Selected(s.iter()),
            None => IterInner::All(self.messages.iter()),
        };
        Iter {
            messages: &self.messages,
            inner,
        }
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = &'a Message;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Iterator over a [`Messages`] batch, in offset order.
#[derive(Debug, Clone)]
pub struct Iter<'a> {
    messages: &'a [Message],
    inner: IterInner<'a>,
}

#[derive(Debug, Clone)]
enum IterInner<'a> {
    All(std::slice::Iter<'a, Message>),
    Selected(std::slice::Iter<'a, usize>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Message;

    fn next(&mut self) -> Option<&'a Message> {
        match &mut self.inner {
            IterInner::All(it) => it.next(),
            IterInner::Selected(it) => it.next().map(|&i| &self.messages[i]),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.len();
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            IterInner::All(it) => it.next_back(),
            IterInner::Selected(it) => it.next_back().map(|&i| &self.messages[i]),
        }
    }
}

impl ExactSizeIterator for Iter<'_> {
    fn len(&self) -> usize {
        match &self.inner {
            IterInner::All(it) => it.len(),
            IterInner::Selected(it) => it.len(),
        }
    }
}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_payload_and_headers_are_readable() {
        #[derive(serde::Deserialize)]
        struct Event {
            id: u32,
        }
        let m = Message::builder("events", 2, 7)
            .payload(r#"{"id":42}"#)
            .key("k1")
            .header("trace", "a")
            .header("trace", "b")
            .build();
        assert_eq!(m.payload_json::<Event>().unwrap().id, 42);
        assert_eq!(m.deserialize::<Event>().unwrap().id, 42);
        assert_eq!(m.key_str(), Some("k1"));
        assert_eq!(
            m.header("trace"),
            Some(&b"b"[..]),
            "the last header of a name wins"
        );
        assert_eq!((m.topic(), m.partition(), m.offset()), ("events", 2, 7));
    }

    #[test]
    fn batch_metadata_spans_first_to_last_offset() {
        let batch = Messages::from_messages(vec![
            Message::builder("t", 0, 10).timestamp(1).build(),
            Message::builder("t", 0, 11).build(),
        ]);
        let meta = batch.metadata();
        assert_eq!(
            (meta.first_offset, meta.last_offset, meta.size),
            (10, 11, 2)
        );
        assert_eq!(
            meta.consumption_lag,
            Duration::ZERO,
            "last message has no timestamp"
        );
        assert_eq!(
            batch.iter().map(|m| m.offset()).collect::<Vec<_>>(),
            vec![10, 11]
        );
    }

    #[test]
    fn a_view_shows_its_selection_in_order_and_shares_storage() {
        let batch = Messages::from_messages(
            (10..15)
                .map(|o| Message::builder("t", 0, o).build())
                .collect(),
        );
        let view = batch.select(Arc::from([1, 3, 4]));
        let offsets: Vec<i64> = view.iter().map(Message::offset).collect();
        assert_eq!(offsets, vec![11, 13, 14]);
        assert_eq!(
            view.iter().rev().map(Message::offset).collect::<Vec<_>>(),
            vec![14, 13, 11]
        );
        assert_eq!(
            (view.len(), view.first().offset(), view.last().offset()),
            (3, 11, 14)
        );
        let meta = view.metadata();
        assert_eq!(
            (meta.first_offset, meta.last_offset, meta.size),
            (11, 14, 3)
        );
        assert!(
            Arc::ptr_eq(&view.messages, &batch.messages),
            "a view copies no message"
        );
        assert_eq!(batch.iter().len(), 5);
    }
}
