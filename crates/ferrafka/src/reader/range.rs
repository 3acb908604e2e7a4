//! The offsets a read covers in one partition, from the partition's watermarks and the offsets
//! its timestamps resolved to: pure arithmetic, no client.

use super::{StartAt, StopAt};

/// What the broker said about one partition when the read started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// The oldest retained offset (the low watermark).
    pub(crate) low: i64,
    /// The end offset: the next offset a producer writes, or under `read_committed` the last
    /// stable offset.
    pub(crate) end: i64,
    /// The first offset whose timestamp is at or after [`StartAt::Time`], if any.
    pub(crate) start_time: Option<i64>,
    /// The first offset whose timestamp is at or after [`StopAt::Time`], if any.
    pub(crate) stop_time: Option<i64>,
}

/// The offsets to read in one partition: from `start` up to, not including, `end` (`None`:
/// no end, tailing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Range {
    /// The first offset to fetch.
    pub(crate) start: i64,
    /// The first offset not to return; `None` while tailing.
    pub(crate) end: Option<i64>,
}

impl Range {
    /// Whether the range holds no offset at all: nothing to fetch.
    pub(crate) fn is_empty(&self) -> bool {
        self.end.is_some_and(|end| self.start >= end)
    }
}

/// The range of one partition. Every start lies within the retained offsets `low..=end`: an
/// offset before the oldest retained one starts there, one past the end starts at the end;
/// a time no message reached yet starts at the end. `Last(n)` is the end minus `n`, never
/// before `low`.
pub(crate) fn range(start: StartAt, stop: StopAt, bounds: Bounds) -> Range {
    let Bounds { low, end, .. } = bounds;
    let within = |offset: i64| offset.max(low).min(end.max(low));
    let start = match start {
        StartAt::Beginning => low,
        StartAt::End => end.max(low),
        StartAt::Offset(offset) => within(offset),
        StartAt::Time(_) => within(bounds.start_time.unwrap_or(end)),
        StartAt::Last(n) => within(end.saturating_sub(i64::try_from(n).unwrap_or(i64::MAX))),
    };
    let end = match stop {
        StopAt::EndOffsets => Some(end),
        // The end offsets bound it too: a reader never waits for messages written later.
        StopAt::Time(_) => Some(bounds.stop_time.unwrap_or(end).min(end)),
        StopAt::Never => None,
    };
    Range { start, end }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn bounds(low: i64, end: i64) -> Bounds {
        Bounds {
            low,
            end,
            start_time: None,
            stop_time: None,
        }
    }

    fn span(start: StartAt, stop: StopAt, b: Bounds) -> (i64, Option<i64>) {
        let r = range(start, stop, b);
        (r.start, r.end)
    }

    #[test]
    fn start_positions_are_clamped_to_the_retained_offsets() {
        let b = bounds(10, 20);
        let end = StopAt::EndOffsets;
        assert_eq!(span(StartAt::Beginning, end, b), (10, Some(20)));
        assert_eq!(span(StartAt::End, end, b), (20, Some(20)));
        assert_eq!(span(StartAt::Offset(15), end, b), (15, Some(20)));
        assert_eq!(span(StartAt::Offset(3), end, b), (10, Some(20)), "deleted");
        assert_eq!(
            span(StartAt::Offset(99), end, b),
            (20, Some(20)),
            "past the end"
        );
        assert!(range(StartAt::Offset(99), end, b).is_empty());
    }

    #[test]
    fn last_n_counts_back_from_the_end_and_stops_at_the_low_watermark() {
        let b = bounds(10, 20);
        let end = StopAt::EndOffsets;
        assert_eq!(span(StartAt::Last(3), end, b), (17, Some(20)));
        assert_eq!(span(StartAt::Last(10), end, b), (10, Some(20)));
        assert_eq!(span(StartAt::Last(11), end, b), (10, Some(20)), "clamped");
        assert_eq!(span(StartAt::Last(u64::MAX), end, b), (10, Some(20)));
        assert_eq!(span(StartAt::Last(0), end, b), (20, Some(20)));
    }

    #[test]
    fn an_empty_partition_has_an_empty_range_whatever_the_start() {
        let b = bounds(0, 0);
        for start in [
            StartAt::Beginning,
            StartAt::End,
            StartAt::Offset(5),
            StartAt::Last(5),
            StartAt::Time(SystemTime::UNIX_EPOCH),
        ] {
            let r = range(start, StopAt::EndOffsets, b);
            assert_eq!((r.start, r.end), (0, Some(0)), "{start:?}");
            assert!(r.is_empty());
        }
        // Tailing an empty partition starts at 0 and never ends.
        let tail = range(StartAt::Beginning, StopAt::Never, b);
        assert_eq!((tail.start, tail.end), (0, None));
        assert!(!tail.is_empty());
    }

    #[test]
    fn times_resolve_to_offsets_and_a_time_not_reached_yet_is_the_end() {
        let t = SystemTime::UNIX_EPOCH;
        let mut b = bounds(0, 50);
        b.start_time = Some(12);
        b.stop_time = Some(30);
        assert_eq!(span(StartAt::Time(t), StopAt::Time(t), b), (12, Some(30)));
        b.start_time = None;
        b.stop_time = None;
        assert_eq!(span(StartAt::Time(t), StopAt::Time(t), b), (50, Some(50)));
        assert_eq!(span(StartAt::Beginning, StopAt::Time(t), b), (0, Some(50)));
    }

    #[test]
    fn following_has_no_end() {
        let r = range(StartAt::Last(2), StopAt::Never, bounds(0, 7));
        assert_eq!((r.start, r.end), (5, None));
    }
}
