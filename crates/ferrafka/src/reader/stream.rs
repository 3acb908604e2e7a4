//! [`ReaderStream`]: a [`TopicReader`] on a thread of its own, its messages as an async stream.
//!
//! librdkafka's poll blocks, and a tokio worker must not: the reader polls on a plain thread
//! and hands messages over a bounded channel, which also holds the thread back when the
//! stream's consumer is slower than the topic.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use super::TopicReader;
use super::client::Step;
use crate::error::Result;
use crate::messages::Message;

/// Messages the reader's thread may have handed over ahead of the stream's consumer.
const AHEAD: usize = 256;

/// The messages of a [`TopicReader`] as a [`futures::Stream`]: from
/// [`TopicReader::into_stream`]. The stream ends where the reader's iteration does; dropping it
/// stops the reader's thread within a poll (0.1 s) and closes its consumer.
#[derive(Debug)]
#[must_use = "a stream reads nothing unless polled"]
pub struct ReaderStream {
    messages: mpsc::Receiver<Result<Message>>,
}

impl ReaderStream {
    pub(super) fn spawn(mut reader: TopicReader) -> Self {
        let (tx, messages) = mpsc::channel(AHEAD);
        let spawned = std::thread::Builder::new()
            .name("ferrafka-reader".into())
            .spawn(move || {
                loop {
                    match reader.step() {
                        Step::Item(item) => {
                            if tx.blocking_send(item).is_err() {
                                break;
                            }
                        }
                        Step::Idle if tx.is_closed() => break,
                        Step::Idle => {}
                        Step::Done => break,
                    }
                }
            });
        if let Err(error) = spawned {
            let (tx, messages) = mpsc::channel(1);
            let _ = tx.try_send(Err(crate::Error::Server {
                reason: "cannot start the reader's thread".into(),
                source: Some(error),
            }));
            return ReaderStream { messages };
        }
        ReaderStream { messages }
    }
}

impl futures::Stream for ReaderStream {
    type Item = Result<Message>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.messages.poll_recv(cx)
    }
}
