//! Helpers of the fault suite: running `fault-consumer` processes and reading their records.

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
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

impl Drop for ConsumerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    /// The process that recorded it (0 when the line has no pid).
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
                [at, p, o, n, rest @ ..] => records.processed.push(Processed {
                    at_ms: at.parse().unwrap(),
                    partition: p.parse().unwrap(),
                    offset: o.parse().unwrap(),
                    number: n.parse().unwrap(),
                    pid: rest.first().and_then(|pid| pid.parse().ok()).unwrap_or(0),
                }),
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

    /// The longest time between two consecutive recorded batches of any partition, within
    /// `[from_ms, to_ms]`: how long a partition went unprocessed.
    pub fn longest_gap_ms(&self, from_ms: u128, to_ms: u128) -> u128 {
        let mut per_partition: BTreeMap<i32, Vec<u128>> = BTreeMap::new();
        for p in &self.processed {
            per_partition.entry(p.partition).or_default().push(p.at_ms);
        }
        let mut longest = 0;
        for times in per_partition.values_mut() {
            times.push(from_ms);
            times.push(to_ms);
            times.sort_unstable();
            times.dedup();
            for w in times.windows(2) {
                if w[0] >= from_ms && w[1] <= to_ms {
                    longest = longest.max(w[1] - w[0]);
                }
            }
        }
        longest
    }
}

/// Waits until `f` holds, at most `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}
