//! A limiter for log lines that repeat: the first occurrence of each kind is written, then at
//! most one per interval, carrying how often the kind happened since the line before. A client
//! whose cluster is down, or whose settings a broker refuses, reports the same error many times
//! a second; its log says it once per interval instead (see `kafka::log`).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// How often a repeating error is written again, with its count.
pub(crate) const REPEAT_INTERVAL: Duration = Duration::from_secs(30);

/// Most kinds remembered at once: past it, kinds not written within the interval are forgotten,
/// and a new kind is written without being remembered, so memory stays bounded whatever
/// librdkafka says.
const MAX_KINDS: usize = 256;

/// The kinds written recently, each with the occurrences held back since.
#[derive(Debug)]
pub(crate) struct Repeats {
    interval: Duration,
    kinds: HashMap<String, Seen>,
}

#[derive(Debug)]
struct Seen {
    written_at: Instant,
    held: u64,
}

/// A line to write: how many times its kind happened since the last line written for it (this
/// time included), and over how long; 1 time for a first occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Occurrences {
    pub(crate) times: u64,
    pub(crate) over: Duration,
}

impl Occurrences {
    /// The count for a `repeated` field: none for a first occurrence.
    pub(crate) fn repeated(&self) -> Option<u64> {
        (self.times > 1).then_some(self.times)
    }
}

/// ` (repeated 58 times in the last 30 s)`, nothing for a first occurrence.
impl fmt::Display for Occurrences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.times > 1 {
            write!(
                f,
                " (repeated {} times in the last {} s)",
                self.times,
                self.over.as_secs()
            )?;
        }
        Ok(())
    }
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats::new(REPEAT_INTERVAL)
    }
}

impl Repeats {
    /// A limiter that writes each kind at most once per `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Repeats {
            interval,
            kinds: HashMap::new(),
        }
    }

    /// Notes an occurrence of `kind` at `now`: what to write with it, or `None` when it is held
    /// back (its kind was written less than an interval ago).
    pub(crate) fn note(&mut self, kind: &str, now: Instant) -> Option<Occurrences> {
        if let Some(seen) = self.kinds.get_mut(kind) {
            let since = now.saturating_duration_since(seen.written_at);
            if since < self.interval {
                seen.held += 1;
                return None;
            }
            let times = seen.held + 1;
            *seen = Seen {
                written_at: now,
                held: 0,
            };
            return Some(Occurrences { times, over: since });
        }
        if self.kinds.len() >= MAX_KINDS {
            let interval = self.interval;
            self.kinds
                .retain(|_, s| now.saturating_duration_since(s.written_at) < interval);
        }
        if self.kinds.len() < MAX_KINDS {
            let seen = Seen {
                written_at: now,
                held: 0,
            };
            self.kinds.insert(kind.to_string(), seen);
        }
        Some(Occurrences {
            times: 1,
            over: Duration::ZERO,
        })
    }

    /// Forgets every kind: after an outage ends, the next error is news again.
    pub(crate) fn clear(&mut self) {
        self.kinds.clear();
    }

    /// Occurrences held back so far, of every kind.
    #[cfg(test)]
    pub(crate) fn held(&self) -> u64 {
        self.kinds.values().map(|s| s.held).sum()
    }

    /// As if every kind had last been written at `at`.
    #[cfg(test)]
    pub(crate) fn age_all(&mut self, at: Instant) {
        for seen in self.kinds.values_mut() {
            seen.written_at = at;
        }
    }
}

/// The part of a librdkafka text that stays the same when it repeats: without the thread
/// prefix of log lines (`[thrd:main]: `) and without the suffix on connection errors that says
/// how long the connection was in which state (`(after 0ms in state CONNECT, 1 identical
/// error(s) suppressed)`).
pub(crate) fn normalise(text: &str) -> &str {
    let text = match text.strip_prefix("[thrd:") {
        Some(rest) => rest.split_once("]: ").map_or(text, |(_, rest)| rest),
        None => text,
    };
    match text.rfind(" (after ") {
        Some(at) if text.ends_with(')') => &text[..at],
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// 26 occurrences a second for a minute: one line at once, then one per interval with the
    /// count of the interval; another kind is written at once, apart.
    #[test]
    fn the_first_occurrence_is_written_then_one_line_per_interval_with_the_count() {
        let start = Instant::now();
        let mut repeats = Repeats::new(30 * SECOND);
        let mut written = Vec::new();
        for tick in 0..(60 * 26) {
            let now = start + Duration::from_millis(tick * 1000 / 26);
            if let Some(o) = repeats.note("transport", now) {
                written.push((now - start, o));
            }
        }
        assert_eq!(written.len(), 2, "{written:?}");
        assert_eq!(written[0].1.times, 1);
        assert_eq!(written[0].1.to_string(), "");
        assert!(written[1].0 >= 30 * SECOND && written[1].0 < 31 * SECOND);
        assert_eq!(written[1].1.times, 30 * 26, "{written:?}");
        assert_eq!(
            written[1].1.to_string(),
            " (repeated 780 times in the last 30 s)"
        );
        assert_eq!(written[1].1.repeated(), Some(780));
        let other = repeats.note("all brokers down", start + 59 * SECOND);
        assert_eq!(other.map(|o| o.times), Some(1), "another kind is news");
    }

    /// A kind that comes back after a quiet spell is written at once, as a first occurrence.
    #[test]
    fn a_kind_that_comes_back_after_the_interval_is_written_without_a_count() {
        let start = Instant::now();
        let mut repeats = Repeats::new(10 * SECOND);
        assert!(repeats.note("k", start).is_some());
        let later = repeats.note("k", start + 600 * SECOND).unwrap();
        assert_eq!(later.times, 1);
        assert_eq!(later.repeated(), None);
        assert!(repeats.note("k", start + 601 * SECOND).is_none());
        repeats.clear();
        assert!(repeats.note("k", start + 602 * SECOND).is_some());
    }

    /// Memory stays bounded: kinds past the limit are written but not remembered.
    #[test]
    fn memory_stays_bounded_by_the_number_of_kinds() {
        let now = Instant::now();
        let mut repeats = Repeats::new(30 * SECOND);
        for n in 0..(MAX_KINDS * 4) {
            assert!(repeats.note(&format!("kind {n}"), now).is_some());
        }
        assert_eq!(repeats.kinds.len(), MAX_KINDS);
        // Once the interval passed, old kinds make room for new ones.
        assert!(repeats.note("new", now + 31 * SECOND).is_some());
        assert_eq!(repeats.kinds.len(), 1);
    }

    #[test]
    fn librdkafkas_thread_prefix_and_timing_suffix_are_not_part_of_the_kind() {
        let log = "[thrd:127.0.0.1:1/bootstrap]: 127.0.0.1:1/bootstrap: Connect to \
                   ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in state CONNECT, 1 \
                   identical error(s) suppressed)";
        let reason = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection \
                      refused (after 3ms in state CONNECT)";
        let kind = "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused";
        assert_eq!(normalise(log), kind);
        assert_eq!(normalise(reason), kind);
        assert_eq!(normalise("1/1 brokers are down"), "1/1 brokers are down");
        assert_eq!(normalise("[thrd:main]"), "[thrd:main]");
    }
}
