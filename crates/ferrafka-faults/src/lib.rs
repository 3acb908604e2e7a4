//! Helpers of the fault suite: running `fault-consumer` processes and reading their records.

pub mod rolling;

pub use ferrafka_testing::{unique, wait_until};

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One `fault-consumer` process.
#[derive(Debug)]
pub struct ConsumerProcess {
    child: Child,
    /// Where its log (stderr) goes.
    pub log: PathBuf,
}

/// How to start a `fault-consumer`.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    /// Path of the `fault-consumer` binary.
    pub binary: PathBuf,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic to consume.
    pub topic: String,
    /// Consumer group.
    pub group: String,
    /// The shared record file.
    pub out: PathBuf,
    /// Extra environment: `FAULT_*` settings and `FERRAFKA_KAFKA_*` properties.
    pub env: Vec<(String, String)>,
}

impl ConsumerSpec {
    /// Adds an environment variable.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_string(), value.into()));
        self
    }

    /// Starts a process; its stderr goes to `log`.
    pub fn spawn(&self, log: &Path) -> ConsumerProcess {
        let stderr = std::fs::File::create(log).expect("log file");
        let child = Command::new(&self.binary)
            .arg("server")
            .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", &self.bootstrap)
            .env("FAULT_TOPIC", &self.topic)
            .env("FAULT_GROUP", &self.group)
            .env("FAULT_OUT", &self.out)
            .env("RUST_LOG", "info,librdkafka=warn,tansu=off")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("fault-consumer starts");
        ConsumerProcess {
            child,
            log: log.to_path_buf(),
        }
    }
}

impl ConsumerProcess {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`TERM`, `KILL`, `TSTP`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// How many log lines contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        self.log_count_where(|l| l.contains(needle))
    }

    /// The revocations it logged: (ms since the epoch, revoked partitions). Needs an uncoloured
    /// log (`NO_COLOR=1`).
    pub fn revocations(&self) -> Vec<(u128, Vec<i32>)> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains("partitions revoked"))
            .filter_map(|l| {
                let at = parse_utc_ms(l.split_whitespace().next()?)?;
                let partitions = l
                    .split("\", ")
                    .skip(1)
                    .filter_map(|rest| rest.split(')').next()?.parse().ok())
                    .collect();
                Some((at, partitions))
            })
            .collect()
    }

    /// How many log lines satisfy `f`.
    pub fn log_count_where(&self, f: impl Fn(&str) -> bool) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| f(l))
            .count()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (number, partition, offset) of every message a [`Collector`] processed, in order.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<(u64, i32, i64)>>>;

/// A consumer for in-process servers: records the number in each payload with its partition
/// and offset.
pub struct Collector(pub Seen);

impl ferrafka::Consumer for Collector {
    async fn consume(
        &mut self,
        _ctx: &mut ferrafka::Context,
        messages: &ferrafka::Messages,
    ) -> ferrafka::ConsumeResult {
        let mut seen = self.0.lock().expect("not poisoned");
        for m in messages {
            let number = std::str::from_utf8(m.payload_or_empty())?.parse()?;
            seen.push((number, m.partition(), m.offset()));
        }
        Ok(())
    }
}

/// A processed message as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// When its batch finished, in ms since the epoch.
    pub at_ms: u128,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its number (payload).
    pub number: u64,
    /// The process that processed it.
    pub pid: u32,
}

/// Everything recorded in a record file.
#[derive(Debug, Default)]
pub struct Records {
    /// Processed messages in file order.
    pub processed: Vec<Processed>,
    /// Batch starts: (partition, first offset).
    pub started: Vec<(i32, i64)>,
}

impl Records {
    /// Reads a record file (missing file: empty).
    pub fn read(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut records = Records::default();
        for line in text.lines() {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["S", p, o] => records
                    .started
                    .push((p.parse().unwrap(), o.parse().unwrap())),
                [at, p, o, n, pid] => records.processed.extend(parse_processed(at, p, o, n, pid)),
                _ => {} // a line cut short by SIGKILL
            }
        }
        records
    }

    /// How often each number was processed.
    pub fn counts(&self) -> HashMap<u64, usize> {
        let mut counts = HashMap::new();
        for p in &self.processed {
            *counts.entry(p.number).or_insert(0) += 1;
        }
        counts
    }

    /// Numbers of `0..n` never processed.
    pub fn lost(&self, n: u64) -> Vec<u64> {
        let counts = self.counts();
        (0..n).filter(|k| !counts.contains_key(k)).collect()
    }

    /// Extra processings: each number processed k > 1 times adds k - 1.
    pub fn duplicates(&self) -> usize {
        self.counts().values().map(|c| c - 1).sum()
    }

    /// Every stretch between two consecutive recorded batches of a partition within
    /// `[from_ms, to_ms]` (the window's ends count as batches).
    pub fn gaps(&self, from_ms: u128, to_ms: u128) -> Vec<Gap> {
        let mut per_partition: BTreeMap<i32, Vec<u128>> = BTreeMap::new();
        for p in &self.processed {
            per_partition.entry(p.partition).or_default().push(p.at_ms);
        }
        let mut gaps = Vec::new();
        for (partition, times) in &mut per_partition {
            times.retain(|t| (from_ms..=to_ms).contains(t));
            times.push(from_ms);
            times.push(to_ms);
            times.sort_unstable();
            times.dedup();
            gaps.extend(times.windows(2).map(|w| Gap {
                partition: *partition,
                from_ms: w[0],
                to_ms: w[1],
            }));
        }
        gaps
    }

    /// The longest time a partition went unprocessed within `[from_ms, to_ms]`.
    pub fn longest_gap(&self, from_ms: u128, to_ms: u128) -> Gap {
        let gaps = self.gaps(from_ms, to_ms);
        gaps.into_iter().max_by_key(Gap::ms).unwrap_or_default()
    }

    /// Every number processed more than once, with where and by whom, in number order.
    pub fn duplicate_details(&self) -> Vec<Duplicate> {
        let mut by_number: BTreeMap<u64, Vec<&Processed>> = BTreeMap::new();
        for p in &self.processed {
            by_number.entry(p.number).or_default().push(p);
        }
        by_number
            .into_iter()
            .filter(|(_, ps)| ps.len() > 1)
            .map(|(number, ps)| Duplicate {
                number,
                partition: ps[0].partition,
                offsets: ps.iter().map(|p| p.offset).collect(),
                by: ps.iter().map(|p| (p.pid, p.at_ms)).collect(),
            })
            .collect()
    }
}

/// A stretch of time in which one partition processed nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Gap {
    /// The partition.
    pub partition: i32,
    /// When its previous batch finished (or the window began), ms since the epoch.
    pub from_ms: u128,
    /// When its next batch finished (or the window ended), ms since the epoch.
    pub to_ms: u128,
}

impl Gap {
    /// Its length in milliseconds.
    pub fn ms(&self) -> u128 {
        self.to_ms - self.from_ms
    }
}

/// A number processed more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// The number (payload).
    pub number: u64,
    /// Its partition (of the first processing).
    pub partition: i32,
    /// The offset of each processing (different offsets: the producer wrote it twice).
    pub offsets: Vec<i64>,
    /// Each processing's process id and time (ms since the epoch).
    pub by: Vec<(u32, u128)>,
}

/// Milliseconds since the epoch of a UTC timestamp like `2026-11-27T18:45:03.915326Z`.
pub fn parse_utc_ms(ts: &str) -> Option<u128> {
    let (date, time) = ts.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, min, sec) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    let ms: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let total = ((days * 24 + h) * 60 + min) * 60 + sec;
    u128::try_from(total * 1000 + ms).ok()
}

/// One finished-message line; `None` for a line cut short by SIGKILL.
fn parse_processed(at: &str, p: &str, o: &str, n: &str, pid: &str) -> Option<Processed> {
    Some(Processed {
        at_ms: at.parse().ok()?,
        partition: p.parse().ok()?,
        offset: o.parse().ok()?,
        number: n.parse().ok()?,
        pid: pid.parse().ok()?,
    })
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processed(at_ms: u128, partition: i32, offset: i64, pid: u32) -> Processed {
        let number = offset as u64 * 10 + partition as u64;
        Processed {
            at_ms,
            partition,
            offset,
            number,
            pid,
        }
    }

    #[test]
    fn utc_timestamps_parse_to_epoch_milliseconds() {
        assert_eq!(parse_utc_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_ms("2026-11-27T18:45:03.915326Z"),
            Some(1_795_805_103_915)
        );
        assert_eq!(
            parse_utc_ms("2024-02-29T12:00:00.5Z"),
            Some(1_709_208_000_500)
        );
        assert_eq!(parse_utc_ms("not a time"), None);
    }

    #[test]
    fn gaps_are_per_partition_and_bounded_by_the_window() {
        let records = Records {
            processed: vec![
                processed(100, 0, 0, 1),
                processed(400, 0, 1, 1),
                processed(150, 1, 0, 1),
                processed(2_000, 1, 1, 1),
            ],
            started: Vec::new(),
        };
        let longest = records.longest_gap(0, 1_000);
        assert_eq!((longest.partition, longest.ms()), (1, 850));
        assert_eq!(records.gaps(0, 1_000).len(), 5);
    }

    #[test]
    fn duplicates_name_each_processing() {
        let records = Records {
            processed: vec![
                processed(100, 2, 7, 10),
                processed(200, 2, 8, 10),
                processed(900, 2, 7, 11),
            ],
            started: Vec::new(),
        };
        assert_eq!(records.duplicates(), 1);
        let details = records.duplicate_details();
        assert_eq!(details.len(), 1);
        assert_eq!(details[0].offsets, vec![7, 7]);
        assert_eq!(details[0].by, vec![(10, 100), (11, 900)]);
        assert!(records.lost(3).contains(&0));
    }
}
