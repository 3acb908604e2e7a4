//! A topic's filter chain in the machine: it cuts the batch about to start (see
//! [`crate::filters`]); what it holds back goes back to the front of the buffer, what it drops
//! is marked with the batch it came before (or at once when nothing is handed on), and its
//! pause is a pause of the partition.

use std::panic::AssertUnwindSafe;
use std::time::{Instant, SystemTime};

use super::{Effect, Partition};
use crate::filters::{Filter, Now};
use crate::messages::Message;
use crate::routing::FilterFactory;

/// A route's filters, to build each partition's chain from.
#[derive(Clone, Default)]
pub(crate) struct FilterFactories(pub(crate) Vec<FilterFactory>);

impl std::fmt::Debug for FilterFactories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} filter(s)", self.0.len())
    }
}

/// One partition's filters, and the wall-clock time that goes with the machine's instants.
pub(crate) struct Chain {
    filters: Vec<Box<dyn Filter>>,
    anchor: (Instant, SystemTime),
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.filters.iter().map(|f| f.name()).collect();
        f.debug_struct("Chain").field("filters", &names).finish()
    }
}

/// What the whole chain decided about a batch.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Cut {
    /// Messages dropped from the front, by filter, in order.
    pub(super) skips: Vec<(&'static str, usize)>,
    pub(super) take: usize,
    /// The latest pause a filter that held messages back asked for, and its name.
    pub(super) pause: Option<(Instant, &'static str)>,
}

impl Chain {
    pub(crate) fn new(factories: &FilterFactories) -> Self {
        Chain {
            filters: factories.0.iter().map(|f| f()).collect(),
            anchor: (Instant::now(), SystemTime::now()),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    fn now(&self, instant: Instant) -> Now {
        let (at, wall) = self.anchor;
        let wall = match instant.checked_duration_since(at) {
            Some(later) => wall + later,
            None => wall - at.duration_since(instant),
        };
        Now { instant, wall }
    }

    /// Runs every filter on what the ones before it handed on. A panicking filter or one whose
    /// verdict would stall the partition hands on everything: a filter never loses or stalls
    /// messages.
    pub(super) fn cut(&mut self, messages: &[Message], instant: Instant) -> Cut {
        let now = self.now(instant);
        let mut cut = Cut {
            take: messages.len(),
            ..Cut::default()
        };
        let mut start = 0;
        for filter in &mut self.filters {
            let shown = &messages[start..start + cut.take];
            let name = filter.name();
            let verdict = match std::panic::catch_unwind(AssertUnwindSafe(|| {
                filter.apply(shown, now)
            })) {
                Ok(v) => v,
                Err(panic) => {
                    let panic = crate::error::PanicError::from_payload(panic);
                    tracing::error!(filter = name, error = %panic, "filter panicked; its batch is handed on whole");
                    continue;
                }
            };
            let skip = verdict.skip.min(shown.len());
            let take = verdict.take.min(shown.len() - skip);
            let held = skip + take < shown.len();
            if skip == 0 && take == 0 && verdict.pause_until.is_none() {
                tracing::warn!(
                    filter = name,
                    "filter neither handed on, dropped nor paused: its batch is handed on whole"
                );
                continue;
            }
            if skip > 0 {
                cut.skips.push((name, skip));
            }
            if held && let Some(until) = verdict.pause_until {
                cut.pause = cut.pause.max(Some((until, name)));
            }
            start += skip;
            cut.take = take;
            if take == 0 {
                break;
            }
        }
        cut
    }
}

impl Partition {
    /// Takes up to `count` messages and runs the chain on them: the messages handed on, or
    /// `None` when nothing is handed on now. Dropped messages come before them, so they are
    /// marked at once (everything before them is done: nothing runs while a batch starts).
    pub(super) fn take_filtered(
        &mut self,
        count: usize,
        now: Instant,
        out: &mut Vec<Effect>,
    ) -> Option<Vec<Message>> {
        self.filter_held = false;
        // Each round drops at least one message or ends: the chain never answers "nothing".
        while !self.buffer.is_empty() {
            let mut messages = self.take(count);
            let cut = self.chain.cut(&messages, now);
            let skipped: usize = cut.skips.iter().map(|(_, n)| n).sum();
            let rest = messages.split_off(skipped + cut.take);
            if !rest.is_empty() {
                self.filter_held = true;
                self.put_back(rest, now);
                if let Some(pause) = cut.pause {
                    self.filter_pause = Some(pause);
                }
            }
            let taken = messages.split_off(skipped);
            self.skipped(&messages, &cut.skips, out);
            self.buffer.recycle(messages);
            if !taken.is_empty() {
                return Some(taken);
            }
            if self.filter_pause.is_some() {
                return None;
            }
        }
        None
    }

    /// Books messages the chain dropped: an event for each filter, and their mark (with manual
    /// offset management only when everything before them is marked: the consumer may not
    /// have marked what it consumed yet, and a mark past the dropped ones would cover it).
    fn skipped(
        &mut self,
        dropped: &[Message],
        skips: &[(&'static str, usize)],
        out: &mut Vec<Effect>,
    ) {
        let Some(last) = dropped.last() else {
            return;
        };
        let mut at = 0;
        for &(filter, count) in skips {
            let offsets = (dropped[at].offset, dropped[at + count - 1].offset);
            out.push(Effect::Skipped {
                filter,
                offsets,
                count,
            });
            at += count;
        }
        let (from, end) = (dropped[0].offset, last.offset + 1);
        if self.retry.as_ref().is_some_and(|r| r.offset < end) {
            self.retry = None;
        }
        if self.isolate_until.is_some_and(|u| u < end) {
            self.isolate_until = None;
        }
        if !self.settings.manual_offsets || self.stored >= from {
            self.store(end, out);
        }
    }
}
