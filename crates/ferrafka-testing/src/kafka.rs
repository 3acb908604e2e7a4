//! An Apache Kafka cluster of the test's own, run by the repository's `scripts/kafka` (KRaft on
//! loopback ports, data in a temporary directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster started by `scripts/kafka`; stopped (by pid) and deleted when dropped.
#[derive(Debug)]
pub struct KafkaCluster {
    /// `host:port,...` of every broker.
    pub bootstrap: String,
    /// `host:port,...` of each extra listener (`--listener NAME=PROTOCOL`), by name.
    listeners: BTreeMap<String, String>,
    dir: PathBuf,
}

/// `scripts/kafka` of this repository.
fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka")
}

impl KafkaCluster {
    /// Installs Kafka when needed (Maven) and starts `brokers` combined broker/controller
    /// nodes; returns once every broker answers metadata.
    pub fn start(brokers: u32) -> Result<Self, String> {
        Self::start_with(brokers, &[])
    }

    /// [`KafkaCluster::start`] with more `scripts/kafka start` arguments, e.g.
    /// `["--controllers", "1"]` (only node 0 is a controller, so any other node can go down
    /// without the quorum) or `["--broker-config", "key=value"]`.
    pub fn start_with(brokers: u32, args: &[&str]) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "ferrafka-kafka-{}-{}",
            std::process::id(),
            next_id()
        ));
        let output = Command::new(script())
            .args(["start", "--brokers", &brokers.to_string(), "--dir"])
            .arg(&dir)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script().display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let bootstrap = stdout
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("BOOTSTRAP="))
            .map(str::to_string);
        let listeners = stdout
            .lines()
            .filter_map(|l| l.strip_prefix("LISTENER_")?.split_once('='))
            .map(|(name, addresses)| (name.to_string(), addresses.to_string()))
            .collect();
        match (output.status.success(), bootstrap) {
            (true, Some(bootstrap)) => Ok(KafkaCluster {
                bootstrap,
                listeners,
                dir,
            }),
            _ => Err(format!(
                "Apache Kafka did not start ({}): {}\n(needs Java 17+ and Maven; see docs/kafka.md)",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }

    /// `host:port,...` of the extra listener `name` (`--listener NAME=PROTOCOL`).
    pub fn listener(&self, name: &str) -> Option<&str> {
        self.listeners.get(name).map(String::as_str)
    }

    /// Runs a Kafka command-line tool (`scripts/kafka tool NAME ARGS`, e.g. `acls`, `configs`)
    /// and returns its standard output, or its standard error when it fails.
    pub fn tool(&self, name: &str, args: &[&str]) -> Result<String, String> {
        let output = Command::new(script())
            .args(["tool", name])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run scripts/kafka: {e}"))?;
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(format!(
                "scripts/kafka tool {name} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    }

    /// The `server.log` of every node (Log4j 2 writes the coordinator's group events there).
    pub fn server_logs(&self) -> Vec<PathBuf> {
        server_logs(&self.dir)
    }

    /// SIGKILLs node `index`.
    pub fn kill_broker(&self, index: u32) {
        self.run(&["kill-broker", &index.to_string()]);
    }

    /// Starts node `index` again and waits until every node lists it.
    pub fn start_broker(&self, index: u32) {
        self.run(&["start-broker", &index.to_string()]);
    }

    fn run(&self, args: &[&str]) {
        let status = Command::new(script())
            .args(args)
            .arg("--dir")
            .arg(&self.dir)
            .status()
            .unwrap_or_else(|e| panic!("cannot run scripts/kafka: {e}"));
        assert!(status.success(), "scripts/kafka {args:?} failed: {status}");
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", "--timeout", "0", "--dir"])
            .arg(&self.dir)
            .status();
    }
}

/// The `server.log` of every node of the cluster `scripts/kafka` runs in `dir`.
pub(crate) fn server_logs(dir: &Path) -> Vec<PathBuf> {
    let nodes = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let mut logs: Vec<PathBuf> = nodes
        .map(|node| node.path().join("logs/server.log"))
        .filter(|log| log.is_file())
        .collect();
    logs.sort();
    logs
}

fn next_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
