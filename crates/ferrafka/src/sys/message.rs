//! librdkafka's own message, kept as it was polled: key, payload and headers are read in place.
//!
//! `rdkafka` ties a polled
//! message to a borrow of its consumer, which a batch handed to another task cannot carry;
//! copying key, payload and headers out for every message is what this module avoids. The
//! listener keeps the consumer alive until every message it polled is dropped (see
//! `connection::release`): librdkafka's `rd_kafka_destroy` waits for outstanding messages.

use std::borrow::Cow;
use std::ffi::CStr;
use std::ptr;

use rdkafka::Message as _;
use rdkafka::bindings as rdsys;
use rdkafka::message::BorrowedMessage;

/// A polled message, detached from the borrow of its consumer, with the address of its parsed
/// header list (0 without headers): parsed once on the listener thread, read from any.
pub(crate) struct KafkaMessage(BorrowedMessage<'static>, usize);

impl KafkaMessage {
    /// Keeps `message` past the borrow of the consumer that polled it.
    ///
    /// Crate-private, and called only by the listener, which owns the consumer and keeps it
    /// alive until every message it polled was dropped (`connection::release`), and by
    /// `Message::copied`, which drops it before the borrow ends. librdkafka
    /// counts outstanding messages as references to its client: its `rd_kafka_destroy` waits
    /// for them rather than freeing what they point into.
    ///
    /// Its headers are parsed here, on the listener thread, before the message can reach
    /// another thread: librdkafka parses them on first access and stores the result in the
    /// message without a lock, so two threads reading a fresh message's headers at once would
    /// race (and leak a header list). After this every access only reads.
    pub(crate) fn keep(message: BorrowedMessage<'_>) -> Self {
        // SAFETY: only the lifetime changes; see above for who keeps the consumer alive.
        let message = unsafe {
            std::mem::transmute::<BorrowedMessage<'_>, BorrowedMessage<'static>>(message)
        };
        let headers = parse_headers(&message).map_or(0, |h| h as usize);
        KafkaMessage(message, headers)
    }

    pub(crate) fn partition(&self) -> i32 {
        self.0.partition()
    }

    pub(crate) fn offset(&self) -> i64 {
        self.0.offset()
    }

    /// The address of librdkafka's topic handle: the same for every message of a topic, so
    /// the listener tells topics apart without reading the name.
    pub(crate) fn topic_handle(&self) -> usize {
        // SAFETY: the message pointer is valid while `self` lives.
        unsafe { (*self.0.ptr()).rkt as usize }
    }

    pub(crate) fn topic(&self) -> &str {
        self.0.topic()
    }

    pub(crate) fn timestamp(&self) -> rdkafka::Timestamp {
        self.0.timestamp()
    }

    pub(crate) fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }

    pub(crate) fn payload(&self) -> Option<&[u8]> {
        self.0.payload()
    }

    /// The number of headers; 0 without any.
    pub(crate) fn header_count(&self) -> usize {
        match self.headers_ptr() {
            // SAFETY: a header list of a live message.
            Some(headers) => unsafe { rdsys::rd_kafka_header_cnt(headers) },
            None => 0,
        }
    }

    /// Header `idx`, read in place. Unlike `rdkafka`'s reader this does not panic on a name
    /// that is not UTF-8 (the wire allows it): the name is then read lossily. Name and value
    /// (`None` for a null value).
    pub(crate) fn header(&self, idx: usize) -> Option<(Cow<'_, str>, Option<&[u8]>)> {
        let headers = self.headers_ptr()?;
        let mut name = ptr::null();
        let mut value = ptr::null();
        let mut size = 0;
        // SAFETY: a header list of a live message; librdkafka fills the three out-pointers.
        let err = unsafe {
            rdsys::rd_kafka_header_get_all(headers, idx, &mut name, &mut value, &mut size)
        };
        if err != rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || name.is_null() {
            return None;
        }
        // SAFETY: librdkafka's header names are NUL-terminated and values `size` bytes long;
        // both live as long as the message.
        let key = unsafe { CStr::from_ptr(name) }.to_bytes();
        let value = (!value.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(value.cast::<u8>(), size) });
        let key = match std::str::from_utf8(key) {
            Ok(key) => Cow::Borrowed(key),
            Err(_) => Cow::Owned(String::from_utf8_lossy(key).into_owned()),
        };
        Some((key, value))
    }

    /// The header list `keep` parsed; it lives as long as the message.
    fn headers_ptr(&self) -> Option<*const rdsys::rd_kafka_headers_t> {
        (self.1 != 0).then_some(self.1 as *const rdsys::rd_kafka_headers_t)
    }
}

/// Parses `message`'s headers (librdkafka does it on first access and keeps the result in the
/// message); `None` without headers.
fn parse_headers(message: &BorrowedMessage<'_>) -> Option<*const rdsys::rd_kafka_headers_t> {
    let mut headers = ptr::null_mut();
    // SAFETY: the message pointer is valid while `message` lives.
    let err = unsafe { rdsys::rd_kafka_message_headers(message.ptr(), &mut headers) };
    (err == rdsys::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !headers.is_null())
        .then_some(headers.cast_const())
}

impl std::fmt::Debug for KafkaMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaMessage")
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}
