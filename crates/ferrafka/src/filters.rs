//! Filters: a per-topic chain that sees each batch before `consume` and may hand on only part
//! of it, drop (and mark) messages, or pause the partition.
//!
//! Each assigned partition gets its own copy of every filter of its route (a [`Throttle`]
//! counts per partition). The chain runs in the partition's state machine, in the listener,
//! when a batch is about to start: what a filter does not hand on stays buffered in offset
//! order and is offered to the chain again when the batch after it starts, so nothing is
//! lost, re-ordered or marked early. A filter's pause is a pause of the partition with reason
//! [`PauseReason::Filter`](crate::instrumentation::PauseReason::Filter): fetching stops and it
//! shows in events and metrics like any other pause.
//!
//! ```
//! use std::time::Duration;
//! use ferrafka::filters::{Delay, Expire, Throttle};
//! use ferrafka::{App, ConsumeResult, Consumer, Context, Messages};
//!
//! struct Events;
//! impl Consumer for Events {
//!     async fn consume(&mut self, _: &mut Context, _: &Messages) -> ConsumeResult {
//!         Ok(())
//!     }
//! }
//!
//! let app = App::builder()
//!     .routes(|r| {
//!         r.topic("events")
//!             .consumer(|| Events)
//!             .filter(Expire::after(Duration::from_secs(3600)))
//!             .filter(Delay::by(Duration::from_secs(5)))
//!             .filter(Throttle::new(100, Duration::from_secs(1)));
//!     })
//!     .build_with_env([]);
//! # let _ = app;
//! ```
//!
//! A filter sees a batch already cut by the filters before it. Filters run on the whole batch,
//! before a topic's [virtual partitions](crate::VirtualPartitions) split it. They must be quick:
//! they run on the listener thread, which serves every partition of its subscription group.

use std::time::{Duration, Instant, SystemTime};

use crate::messages::Message;

/// What a filter decides about the messages it was shown, in offset order: the first `skip`
/// are dropped (marked once everything before them is done, never consumed), the next `take`
/// are handed on, and the rest wait in the buffer. While some wait, `pause_until` pauses the
/// partition until then; without it the rest is offered to the chain again right after the
/// batch. A verdict that neither skips, takes nor pauses is taken as "hand on everything", so
/// a filter cannot stall a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// Messages dropped from the front.
    pub skip: usize,
    /// Messages handed on after them.
    pub take: usize,
    /// Until when the partition pauses when messages were held back.
    pub pause_until: Option<Instant>,
}

impl Verdict {
    /// Hands on all `len` messages.
    pub fn pass(len: usize) -> Self {
        Verdict {
            skip: 0,
            take: len,
            pause_until: None,
        }
    }

    /// Hands on the first `take` messages; the rest waits.
    pub fn take(take: usize) -> Self {
        Verdict {
            skip: 0,
            take,
            pause_until: None,
        }
    }

    /// Drops (and marks) the first `skip` messages; the `take` messages after them are
    /// handed on.
    pub fn skip(self, skip: usize) -> Self {
        Verdict { skip, ..self }
    }

    /// Pauses the partition until `at` when messages are held back.
    pub fn pause_until(self, at: Instant) -> Self {
        Verdict {
            pause_until: Some(at),
            ..self
        }
    }
}

/// The clock a filter decides by: the machine's monotonic `instant` (pauses are instants) and
/// the wall-clock time that goes with it (message timestamps are wall-clock times).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// Monotonic time, for [`Verdict::pause_until`].
    pub instant: Instant,
    /// Wall-clock time, for message timestamps.
    pub wall: SystemTime,
}

impl Now {
    /// How old `message` is by its timestamp; `None` without one (or from the future).
    pub fn age(&self, message: &Message) -> Option<Duration> {
        let millis = u64::try_from(message.timestamp().millis()?).ok()?;
        let created = SystemTime::UNIX_EPOCH + Duration::from_millis(millis);
        self.wall.duration_since(created).ok()
    }
}

/// A step of a topic's filter chain; see the [module docs](self).
///
/// Routes take a prototype (`.filter(f)`) and clone it for every assigned partition, so a
/// filter keeps per-partition state in `self`.
pub trait Filter: Send + 'static {
    /// A short name for logs, events and metrics, e.g. `throttle`.
    fn name(&self) -> &'static str;

    /// Decides about `messages` (never empty), the batch about to start.
    fn apply(&mut self, messages: &[Message], now: Now) -> Verdict;
}

/// At most `limit` messages per `interval` per partition; the partition pauses for the rest of
/// an interval whose budget is spent.
#[derive(Debug, Clone)]
pub struct Throttle {
    limit: usize,
    interval: Duration,
    window: Option<Instant>,
    used: usize,
}

impl Throttle {
    /// At most `limit` messages every `interval` (a `limit` of 0 is taken as 1).
    pub fn new(limit: usize, interval: Duration) -> Self {
        Throttle {
            limit: limit.max(1),
            interval,
            window: None,
            used: 0,
        }
    }
}

impl Filter for Throttle {
    fn name(&self) -> &'static str {
        "throttle"
    }

    fn apply(&mut self, messages: &[Message], now: Now) -> Verdict {
        let start = match self.window {
            Some(start) if now.instant < crate::config::later(start, self.interval) => start,
            _ => {
                self.used = 0;
                *self.window.insert(now.instant)
            }
        };
        let take = messages.len().min(self.limit - self.used);
        self.used += take;
        let verdict = Verdict::take(take);
        match take < messages.len() {
            true => verdict.pause_until(crate::config::later(start, self.interval)),
            false => verdict,
        }
    }
}

/// Hands on only messages older than `by`; the partition pauses until the first younger one
/// is old enough. Messages without a timestamp pass.
#[derive(Debug, Clone)]
pub struct Delay {
    by: Duration,
}

impl Delay {
    /// Delays consumption until messages are `by` old.
    pub fn by(by: Duration) -> Self {
        Delay { by }
    }
}

impl Filter for Delay {
    fn name(&self) -> &'static str {
        "delay"
    }

    fn apply(&mut self, messages: &[Message], now: Now) -> Verdict {
        let young = messages
            .iter()
            .position(|m| now.age(m).is_some_and(|age| age < self.by));
        let Some(first_young) = young else {
            return Verdict::pass(messages.len());
        };
        let age = now.age(&messages[first_young]).unwrap_or_default();
        Verdict::take(first_young).pause_until(crate::config::later(now.instant, self.by - age))
    }
}

/// Drops (and marks) messages older than `ttl`; they are counted in
/// [`Event::MessagesSkipped`](crate::instrumentation::Event::MessagesSkipped) and the
/// `ferrafka_messages_skipped_total` metric. Messages without a timestamp never expire.
#[derive(Debug, Clone)]
pub struct Expire {
    ttl: Duration,
}

impl Expire {
    /// Drops messages older than `ttl`.
    pub fn after(ttl: Duration) -> Self {
        Expire { ttl }
    }
}

impl Filter for Expire {
    fn name(&self) -> &'static str {
        "expire"
    }

    fn apply(&mut self, messages: &[Message], now: Now) -> Verdict {
        let expired = |m: &Message| now.age(m).is_some_and(|age| age > self.ttl);
        let skip = messages.iter().take_while(|m| expired(m)).count();
        // An expired message after a fresh one ends the batch: it is dropped at the front of
        // the next one, so only a prefix is ever dropped and marks stay contiguous.
        let take = messages[skip..].iter().take_while(|m| !expired(m)).count();
        Verdict {
            skip,
            take,
            pause_until: None,
        }
    }
}

#[cfg(test)]
mod tests;
