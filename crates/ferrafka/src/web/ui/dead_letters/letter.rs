//! One dead letter as the explorer shows it and the republish sends it: the `ferrafka-*`
//! headers the dead-letter queue added ([`dlq_headers`]) decoded, the original headers kept
//! apart, and the republish id derived from the dead letter's coordinates.

use crate::messages::Message;
use crate::routing::dlq_headers::{
    ATTEMPTS, ERROR, FAILED_AT, REPUBLISH_ID, SOURCE_CONSUMER_GROUP, SOURCE_OFFSET,
    SOURCE_PARTITION, SOURCE_TOPIC,
};

/// The headers the dead-letter queue adds, in the order it adds them.
const DLQ_HEADERS: [&str; 7] = [
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    SOURCE_CONSUMER_GROUP,
    ATTEMPTS,
    ERROR,
    FAILED_AT,
];

/// Where a dead letter came from and why it is here, as its `ferrafka-*` headers say. A
/// header missing or unreadable is `None` (a record someone else wrote to the topic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    pub(crate) topic: Option<String>,
    pub(crate) partition: Option<i32>,
    pub(crate) offset: Option<i64>,
    pub(crate) consumer_group: Option<String>,
    pub(crate) attempts: Option<u32>,
    pub(crate) error: Option<String>,
    pub(crate) failed_at_ms: Option<i64>,
}

/// A record of a dead-letter topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeadLetter {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp_ms: Option<i64>,
    pub(crate) key: Option<Vec<u8>>,
    /// Empty when the topic is masked: a masked payload never leaves the reader.
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) origin: Origin,
    /// The message's own headers: every header but this hop's `ferrafka-*` ones and an
    /// earlier republish id.
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
    /// The republish id it carries when it was itself republished before it failed again.
    pub(crate) republished_as: Option<String>,
    /// Whether its payload was dropped (a masked topic).
    pub(crate) masked: bool,
}

impl DeadLetter {
    /// Decodes `message`; with `masked`, its payload is dropped here.
    pub(crate) fn from_message(message: &Message, masked: bool) -> Self {
        let headers: Vec<(String, Option<Vec<u8>>)> = message
            .headers()
            .map(|h| (h.key.into_owned(), h.value.map(<[u8]>::to_vec)))
            .collect();
        let mut letter = DeadLetter {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().millis(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message
                .payload()
                .map(|p| if masked { Vec::new() } else { p.to_vec() }),
            masked,
            ..DeadLetter::default()
        };
        letter.take_headers(headers);
        letter
    }

    /// Splits `headers` into the decoded origin (the *last* of each `ferrafka-*` header: a
    /// message dead-lettered twice carries the first hop's among its own) and the rest.
    fn take_headers(&mut self, headers: Vec<(String, Option<Vec<u8>>)>) {
        let last = |name: &str| headers.iter().rposition(|(k, _)| k == name);
        let hop: Vec<usize> = DLQ_HEADERS.iter().filter_map(|n| last(n)).collect();
        let text = |name: &str| {
            last(name)
                .and_then(|i| headers[i].1.as_deref())
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        self.origin = Origin {
            topic: text(SOURCE_TOPIC),
            partition: text(SOURCE_PARTITION).and_then(|v| v.parse().ok()),
            offset: text(SOURCE_OFFSET).and_then(|v| v.parse().ok()),
            consumer_group: text(SOURCE_CONSUMER_GROUP),
            attempts: text(ATTEMPTS).and_then(|v| v.parse().ok()),
            error: text(ERROR),
            failed_at_ms: text(FAILED_AT).and_then(|v| v.parse().ok()),
        };
        self.republished_as = text(REPUBLISH_ID);
        self.headers = headers
            .into_iter()
            .enumerate()
            .filter(|(i, (k, _))| !hop.contains(i) && k != REPUBLISH_ID)
            .map(|(_, h)| h)
            .collect();
    }

    /// Where this dead letter is: `<topic>/<partition>/<offset>` (the audit's subject).
    pub(crate) fn coordinates(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }

    /// The republish id: the same for every request to republish this very record, and
    /// different for another record that took its place in a topic deleted and created
    /// again (its timestamp differs).
    pub(crate) fn republish_id(&self) -> String {
        republish_id(&self.topic, self.partition, self.offset, self.timestamp_ms)
    }
}

/// `<topic>/<partition>/<offset>@<timestamp ms>` (`@-` without a timestamp). Topic names hold
/// only `[a-zA-Z0-9._-]`, so the id is unambiguous.
pub(crate) fn republish_id(
    topic: &str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
) -> String {
    match timestamp_ms {
        Some(ts) => format!("{topic}/{partition}/{offset}@{ts}"),
        None => format!("{topic}/{partition}/{offset}@-"),
    }
}

/// Whether `name` is a topic name Kafka accepts (1 to 249 of `[a-zA-Z0-9._-]`, not `.` or
/// `..`).
pub(crate) fn is_topic_name(name: &str) -> bool {
    (1..=249).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Message;

    fn letter(headers: &[(&str, &str)]) -> DeadLetter {
        let mut m = Message::builder("orders-dlq", 2, 7)
            .timestamp(1_000)
            .key("k")
            .payload("p");
        for (k, v) in headers {
            m = m.header(k, *v);
        }
        DeadLetter::from_message(&m.build(), false)
    }

    #[test]
    fn the_last_hops_headers_are_decoded_and_the_rest_kept_in_order() {
        let l = letter(&[
            ("trace", "t-1"),
            (SOURCE_TOPIC, "first-hop"),
            (REPUBLISH_ID, "orders-dlq/0/1@5"),
            (SOURCE_TOPIC, "orders"),
            (SOURCE_PARTITION, "1"),
            (SOURCE_OFFSET, "41"),
            (SOURCE_CONSUMER_GROUP, "shop"),
            (ATTEMPTS, "4"),
            (ERROR, "declined <b>"),
            (FAILED_AT, "1765000000123"),
        ]);
        assert_eq!(
            l.origin,
            Origin {
                topic: Some("orders".into()),
                partition: Some(1),
                offset: Some(41),
                consumer_group: Some("shop".into()),
                attempts: Some(4),
                error: Some("declined <b>".into()),
                failed_at_ms: Some(1_765_000_000_123),
            }
        );
        let kept: Vec<&str> = l.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kept, ["trace", SOURCE_TOPIC]);
        assert_eq!(l.headers[1].1.as_deref(), Some(&b"first-hop"[..]));
        assert_eq!(l.republished_as.as_deref(), Some("orders-dlq/0/1@5"));
        assert_eq!(
            (l.key.as_deref(), l.payload.as_deref()),
            (Some(&b"k"[..]), Some(&b"p"[..]))
        );
    }

    #[test]
    fn missing_or_unreadable_headers_are_none() {
        let l = letter(&[(SOURCE_PARTITION, "x"), (ATTEMPTS, "-1")]);
        assert_eq!(l.origin, Origin::default());
        assert!(l.headers.is_empty());
    }

    #[test]
    fn the_republish_id_is_the_records_coordinates_and_timestamp() {
        let l = letter(&[]);
        assert_eq!(l.republish_id(), "orders-dlq/2/7@1000");
        assert_eq!(l.republish_id(), letter(&[(ERROR, "other")]).republish_id());
        assert_eq!(l.coordinates(), "orders-dlq/2/7");
        assert_ne!(
            republish_id("t", 0, 1, Some(5)),
            republish_id("t", 0, 1, Some(6))
        );
        assert_ne!(
            republish_id("t", 0, 11, None),
            republish_id("t", 1, 1, None)
        );
        assert_eq!(republish_id("t", 0, 1, None), "t/0/1@-");
    }

    #[test]
    fn masked_payloads_are_dropped_at_decoding() {
        let m = Message::builder("t", 0, 0).payload("secret").build();
        assert_eq!(
            DeadLetter::from_message(&m, true).payload.as_deref(),
            Some(&b""[..])
        );
    }

    #[test]
    fn topic_names_are_checked() {
        assert!(is_topic_name("payments_dlq.v2-x"));
        for bad in ["", ".", "..", "a b", "a/b", &"x".repeat(250)] {
            assert!(!is_topic_name(bad), "{bad}");
        }
    }
}
