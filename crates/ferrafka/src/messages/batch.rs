//! Batches: a partition's messages as one consumer call sees them.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::Message;

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
/// [`Messages::detach`] copies its messages (see [`Message::detach`]), so a consumer may keep
/// the copy.
#[derive(Debug)]
pub struct Messages {
    // A Vec behind the Arc: the listener's buffer becomes the batch without a copy, and the
    // partition's state machine keeps the batch (to retry it) without a copy either.
    pub(crate) messages: Arc<Vec<Message>>,
    /// Which of `messages` this batch holds (ascending indices); `None` for all of them.
    pub(crate) selection: Option<Arc<[usize]>>,
    pub(crate) metadata: BatchMetadata,
}

impl Messages {
    /// An owned copy of the batch (see [`Message::detach`]): to keep after `consume`
    /// returns, or to hand to another task.
    pub fn detach(&self) -> Messages {
        Messages {
            messages: Arc::new(self.iter().map(Message::detach).collect()),
            selection: None,
            metadata: self.metadata.clone(),
        }
    }
}

impl Messages {
    pub(crate) fn new(messages: Arc<Vec<Message>>, attempt: u32) -> Self {
        debug_assert!(!messages.is_empty(), "a batch is never empty");
        let first = &messages[0];
        let last = &messages[messages.len() - 1];
        let now = SystemTime::now();
        let consumption_lag = last
            .timestamp()
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
