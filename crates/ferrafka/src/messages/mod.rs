//! Messages and batches as consumers see them.
//!
//! A [`Messages`] batch always comes from one topic-partition, in offset order. A [`Message`]
//! read from Kafka is librdkafka's own message, read in place; a consumer that keeps one past
//! its batch clones it, which copies it.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::error::BoxError;

mod batch;
/// Milliseconds since the Unix epoch, Kafka's unit of time (0 before the epoch).
pub(crate) fn millis_since_epoch(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis().min(i64::MAX as u128) as i64)
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    millis_since_epoch(SystemTime::now())
}

#[cfg(test)]
mod header_race;

pub use batch::{BatchMetadata, Iter, Messages};

pub(crate) use crate::sys::message::KafkaMessage;

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

/// One header of a message, read in place; the value may be null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header name (read lossily in the rare case it is not UTF-8 on the wire).
    pub key: Cow<'a, str>,
    /// Header value, `None` for a null value.
    pub value: Option<&'a [u8]>,
}

/// What a held message costs besides its bytes: the `Message` itself, its copied body (or
/// librdkafka's message and op while read in place) and the allocator's headers of each.
const MESSAGE_OVERHEAD: usize = 192;
/// The same for one header.
const HEADER_OVERHEAD: usize = 32;

/// One consumed message.
///
/// A message from Kafka is librdkafka's own message: key, payload and headers are read where
/// librdkafka put them, never copied. [`Message::detach`] copies them into memory of its own,
/// to keep the message after its batch.
pub struct Message {
    pub(crate) topic: Arc<TopicInfo>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) received_at: SystemTime,
    body: Body,
}

enum Body {
    Kafka(KafkaMessage),
    Owned(Box<OwnedBody>),
}

/// A message built by hand, or cloned from a Kafka one.
#[derive(Debug, Clone)]
struct OwnedBody {
    timestamp: Timestamp,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Message {
    /// An owned copy of the message: its key, payload and headers copied out of librdkafka's
    /// fetch buffer into memory of its own, so it may be kept after the batch, sent to
    /// another task, or outlive the server and its client. A message is not `Clone`: a
    /// message read in place is librdkafka's, and copying it is a cost to ask for by name.
    pub fn detach(&self) -> Message {
        let body = match &self.body {
            Body::Owned(owned) => owned.clone(),
            Body::Kafka(_) => self.owned_copy(),
        };
        Message {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            received_at: self.received_at,
            body: Body::Owned(body),
        }
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic())
            .field("partition", &self.partition)
            .field("offset", &self.offset)
            .field("timestamp", &self.timestamp())
            .field("key", &self.key())
            .field("payload_len", &self.payload().map(<[u8]>::len))
            .finish_non_exhaustive()
    }
}

impl Message {
    /// Builds a message by hand, for tests of consumer logic (see `ferrafka::testing`).
    pub fn builder(topic: &str, partition: i32, offset: i64) -> MessageBuilder {
        MessageBuilder {
            topic: Arc::new(TopicInfo {
                name: Arc::from(topic),
                deserializer: Arc::new(JsonDeserializer),
            }),
            partition,
            offset,
            body: OwnedBody {
                timestamp: Timestamp::NotAvailable,
                key: None,
                payload: None,
                headers: Vec::new(),
            },
        }
    }

    /// A message of the testing harness's in-memory log.
    #[cfg(feature = "testing")]
    pub(crate) fn in_memory(
        topic: Arc<TopicInfo>,
        (partition, offset): (i32, i64),
        timestamp: Timestamp,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        headers: Vec<(String, Option<Vec<u8>>)>,
    ) -> Self {
        let body = OwnedBody {
            timestamp,
            key,
            payload,
            headers,
        };
        Message {
            topic,
            partition,
            offset,
            received_at: SystemTime::now(),
            body: Body::Owned(Box::new(body)),
        }
    }

    /// A message polled from librdkafka, kept as it is.
    pub(crate) fn from_kafka(
        topic: Arc<TopicInfo>,
        message: KafkaMessage,
        received_at: SystemTime,
    ) -> Self {
        Message {
            topic,
            partition: message.partition(),
            offset: message.offset(),
            received_at,
            body: Body::Kafka(message),
        }
    }

    /// A polled message copied out of librdkafka at once, for readers: their messages may
    /// outlive the consumer, which a message read in place cannot.
    pub(crate) fn copied(
        topic: Arc<TopicInfo>,
        message: rdkafka::message::BorrowedMessage<'_>,
    ) -> Self {
        let mut copy = Message::from_kafka(topic, KafkaMessage::keep(message), SystemTime::now());
        // The kept message is dropped here, while the consumer's borrow still holds.
        copy.detach_in_place();
        copy
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
        match &self.body {
            Body::Kafka(m) => Timestamp::from_rdkafka(m.timestamp()),
            Body::Owned(o) => o.timestamp,
        }
    }

    /// When ferrafka took the message from librdkafka.
    pub fn received_at(&self) -> SystemTime {
        self.received_at
    }

    /// The key, raw.
    pub fn key(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Kafka(m) => m.key(),
            Body::Owned(o) => o.key.as_deref(),
        }
    }

    /// The key as UTF-8 text, if it is some.
    pub fn key_str(&self) -> Option<&str> {
        self.key().and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The payload, raw; `None` for a tombstone.
    pub fn payload(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Kafka(m) => m.payload(),
            Body::Owned(o) => o.payload.as_deref(),
        }
    }

    /// The payload, raw, with a tombstone read as empty.
    pub fn payload_or_empty(&self) -> &[u8] {
        self.payload().unwrap_or(&[])
    }

    /// True when the message has no payload (a tombstone on compacted topics).
    pub fn is_tombstone(&self) -> bool {
        self.payload().is_none()
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

    /// All headers, in order, read in place (parsed once, when the message was polled).
    pub fn headers(&self) -> impl DoubleEndedIterator<Item = Header<'_>> + ExactSizeIterator + '_ {
        let count = match &self.body {
            Body::Kafka(m) => m.header_count(),
            Body::Owned(o) => o.headers.len(),
        };
        (0..count).map(move |i| self.header_at(i))
    }

    /// The value of the last header named `key`.
    pub fn header(&self, key: &str) -> Option<&[u8]> {
        self.headers()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value)
    }

    fn header_at(&self, i: usize) -> Header<'_> {
        match &self.body {
            Body::Kafka(m) => match m.header(i) {
                Some((key, value)) => Header { key, value },
                None => Header {
                    key: Cow::Borrowed(""),
                    value: None,
                },
            },
            Body::Owned(o) => Header {
                key: Cow::Borrowed(&o.headers[i].0),
                value: o.headers[i].1.as_deref(),
            },
        }
    }

    /// What the message weighs for the partition's memory bound: key, payload and headers,
    /// plus what holding any message costs (see [`MESSAGE_OVERHEAD`]).
    pub(crate) fn weight(&self) -> usize {
        let headers: usize = self
            .headers()
            .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len) + HEADER_OVERHEAD)
            .sum();
        self.payload().map_or(0, <[u8]>::len)
            + self.key().map_or(0, <[u8]>::len)
            + headers
            + MESSAGE_OVERHEAD
    }

    /// Copies key, payload and headers out of librdkafka's fetch buffer into memory of the
    /// message's own. A message read in place keeps librdkafka's whole fetch response alive
    /// (other partitions' messages included), so one that will wait long (its partition is
    /// paused behind a retry or a full backlog) is better copied: what it then holds is what
    /// it weighs.
    pub(crate) fn detach_in_place(&mut self) {
        if let Body::Kafka(_) = self.body {
            self.body = Body::Owned(self.owned_copy());
        }
    }

    fn owned_copy(&self) -> Box<OwnedBody> {
        Box::new(OwnedBody {
            timestamp: self.timestamp(),
            key: self.key().map(<[u8]>::to_vec),
            payload: self.payload().map(<[u8]>::to_vec),
            headers: self
                .headers()
                .map(|h| (h.key.into_owned(), h.value.map(<[u8]>::to_vec)))
                .collect(),
        })
    }
}

/// Builds a [`Message`] by hand, for tests.
#[derive(Debug)]
pub struct MessageBuilder {
    topic: Arc<TopicInfo>,
    partition: i32,
    offset: i64,
    body: OwnedBody,
}

impl MessageBuilder {
    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.body.payload = Some(payload.into());
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.body.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.body
            .headers
            .push((key.to_string(), Some(value.into())));
        self
    }

    /// Adds a header with a null value.
    pub fn null_header(mut self, key: &str) -> Self {
        self.body.headers.push((key.to_string(), None));
        self
    }

    /// Sets the create-time timestamp, in milliseconds since the epoch.
    pub fn timestamp(mut self, millis: i64) -> Self {
        self.body.timestamp = Timestamp::CreateTime(millis);
        self
    }

    /// Finishes the message.
    pub fn build(self) -> Message {
        Message {
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            received_at: SystemTime::now(),
            body: Body::Owned(Box::new(self.body)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
