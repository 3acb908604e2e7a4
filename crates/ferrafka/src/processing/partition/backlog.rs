//! A partition's fetched messages waiting for their batch.

use std::collections::VecDeque;

use crate::messages::Message;

/// Emptied vectors kept for reuse beyond the batches of one run.
const SPARE: usize = 4;

/// Buffered messages in offset order, kept in chunks of one batch each: a full batch leaves as
/// the vector it was collected in, instead of moving its messages one by one, and emptied
/// batch vectors come back for reuse (a fresh one per batch is a large allocation, which makes
/// the allocator consolidate its small free chunks every time).
#[derive(Debug)]
pub(super) struct Backlog {
    /// Earlier chunks, oldest first (full ones, or messages put back for a retry).
    chunks: VecDeque<Vec<Message>>,
    /// The chunk new messages go to, after every one in `chunks`.
    filling: Vec<Message>,
    len: usize,
    /// Messages per chunk: the batch size.
    chunk: usize,
    pool: Vec<Vec<Message>>,
    /// Most vectors kept in `pool`: enough for a run in flight and the next one gathering.
    pool_max: usize,
}

impl Backlog {
    /// A backlog of `chunk`-message chunks whose pool keeps vectors for `run_batches` batches.
    pub(super) fn new(chunk: usize, run_batches: usize) -> Self {
        Backlog {
            chunks: VecDeque::new(),
            filling: Vec::new(),
            len: 0,
            chunk: chunk.max(1),
            pool: Vec::new(),
            pool_max: 2 * run_batches + SPARE,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(super) fn front(&self) -> Option<&Message> {
        match self.chunks.front() {
            Some(chunk) => chunk.first(),
            None => self.filling.first(),
        }
    }

    pub(super) fn back(&self) -> Option<&Message> {
        match self.filling.last() {
            Some(last) => Some(last),
            None => self.chunks.back().and_then(|c| c.last()),
        }
    }

    /// Copies every waiting message out of librdkafka's fetch buffers (see
    /// `Message::detach_in_place`).
    pub(super) fn detach(&mut self) {
        self.chunks
            .iter_mut()
            .flatten()
            .chain(self.filling.iter_mut())
            .for_each(Message::detach_in_place);
    }

    #[inline]
    pub(super) fn push_back(&mut self, message: Message) {
        if self.filling.len() >= self.chunk {
            let fresh = self.vector();
            let full = std::mem::replace(&mut self.filling, fresh);
            self.chunks.push_back(full);
        }
        self.filling.push(message);
        self.len += 1;
    }

    pub(super) fn pop_back(&mut self) -> Option<Message> {
        if self.filling.is_empty() {
            let last = self.chunks.pop_back()?;
            self.filling = last;
        }
        let message = self.filling.pop();
        self.len -= usize::from(message.is_some());
        message
    }

    /// Puts `messages` (in offset order, all before what is buffered) back in front.
    pub(super) fn push_front(&mut self, messages: Vec<Message>) {
        if !messages.is_empty() {
            self.len += messages.len();
            self.chunks.push_front(messages);
        }
    }

    /// Takes up to `count` messages from the front; a whole chunk leaves without a copy.
    pub(super) fn take(&mut self, count: usize) -> Vec<Message> {
        let mut taken = match self.pop_front_chunk() {
            Some(front) if front.len() <= count => front,
            Some(mut front) => {
                let mut head = self.vector();
                head.extend(front.drain(..count));
                self.chunks.push_front(front);
                head
            }
            None => return Vec::new(),
        };
        while taken.len() < count
            && let Some(mut next) = self.pop_front_chunk()
        {
            let wanted = (count - taken.len()).min(next.len());
            taken.extend(next.drain(..wanted));
            if next.is_empty() {
                self.recycle(next);
            } else {
                self.chunks.push_front(next);
            }
        }
        self.len -= taken.len();
        taken
    }

    /// The oldest chunk, the filling one once no other is left.
    fn pop_front_chunk(&mut self) -> Option<Vec<Message>> {
        if let Some(chunk) = self.chunks.pop_front() {
            return Some(chunk);
        }
        if self.filling.is_empty() {
            return None;
        }
        let fresh = self.vector();
        Some(std::mem::replace(&mut self.filling, fresh))
    }

    pub(super) fn clear(&mut self) {
        while let Some(chunk) = self.chunks.pop_front() {
            self.recycle(chunk);
        }
        self.filling.clear();
        self.len = 0;
    }

    /// Keeps an emptied (or to be emptied) vector for later chunks and batches.
    pub(super) fn recycle(&mut self, mut vector: Vec<Message>) {
        vector.clear();
        if self.pool.len() < self.pool_max && vector.capacity() > 0 {
            self.pool.push(vector);
        }
    }

    fn vector(&mut self) -> Vec<Message> {
        self.pool
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.chunk))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(v: &[Message]) -> Vec<i64> {
        v.iter().map(Message::offset).collect()
    }

    fn at(o: i64) -> Message {
        Message::builder("t", 0, o).build()
    }

    #[test]
    fn takes_keep_order_across_chunks_splits_and_put_backs() {
        let mut b = Backlog::new(3, 1);
        (0..8).for_each(|o| b.push_back(at(o)));
        assert_eq!(offsets(&b.take(3)), vec![0, 1, 2], "a whole chunk");
        assert_eq!(offsets(&b.take(1)), vec![3], "a split chunk");
        assert_eq!(offsets(&b.take(4)), vec![4, 5, 6, 7], "across chunks");
        assert!(b.is_empty());
        (8..12).for_each(|o| b.push_back(at(o)));
        b.push_front(vec![at(6), at(7)]);
        assert_eq!((b.len(), b.front().map(Message::offset)), (6, Some(6)));
        assert_eq!(b.pop_back().map(|m| m.offset()), Some(11));
        assert_eq!(offsets(&b.take(10)), vec![6, 7, 8, 9, 10]);
        assert_eq!((b.len(), b.back().map(Message::offset)), (0, None));
    }
}
