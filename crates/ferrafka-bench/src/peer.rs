//! The peer rows, other clients on the same broker and topic, in the same run:
//! confluent-kafka-python's `consume(num_messages=500)` loop (`peer/confluent_consume.py`),
//! the Java client's `KafkaConsumer` poll loop (`bench-consume` of the Java peer in
//! `testing/kafka/peer`), and Confluent's pure-Rust client, the `confluent-kafka` crate
//! (`peer/pure-rust`, its own workspace, so the bench's build never compiles it).
//!
//! Each measures its own window like the Rust clients: from the assignment to the last
//! message, process CPU time of every thread (`time.process_time()`; the JVM's process CPU
//! time, JIT and GC included; `CLOCK_PROCESS_CPUTIME_ID`). The bench also reads the whole
//! child's CPU (start-up, join and close included) from `getrusage(RUSAGE_CHILDREN)` around its
//! `wait`, shown as `process` in the round's line. All are optional: without a Python that
//! imports `confluent_kafka`, or without the built Java or Rust peer, the row is skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};

use crate::alloc::Counts;
use crate::consume::{Outcome, Setup};
use crate::cpu::{self, Span};

/// The script, built into the binary so the bench runs from any directory.
const SCRIPT: &str = include_str!("../peer/confluent_consume.py");

/// The virtualenv the README's install command creates.
pub const DEFAULT_VENV_PYTHON: &str = "/var/tmp/ferrafka-peer-venv/bin/python";

/// How to install the peer, printed when it is skipped.
pub const INSTALL_HINT: &str = "python3 -m venv /var/tmp/ferrafka-peer-venv && \
     /var/tmp/ferrafka-peer-venv/bin/pip install confluent-kafka";

/// The Java peer's jar, built by `mvn -q -f testing/kafka/peer/pom.xml package`.
fn java_jar() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testing/kafka/peer/target/kafka-peer.jar")
}

/// The pure-Rust peer's binary name.
const PURE_RUST_BINARY: &str = "ferrafka-pure-rust-peer";

/// How to build the pure-Rust peer, printed when it is skipped. With the bench's
/// `CARGO_TARGET_DIR` the binary lands next to `ferrafka-bench`, where it is looked for first.
pub const PURE_RUST_BUILD_HINT: &str =
    "cargo build --release --manifest-path crates/ferrafka-bench/peer/pure-rust/Cargo.toml";

/// Where the pure-Rust peer may be, in order: next to this binary (both built into the same
/// target directory), `$CARGO_TARGET_DIR/release`, and the peer crate's own `target/release`.
fn pure_rust_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.push(dir);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("release"));
    }
    dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peer/pure-rust/target/release"));
    dirs.into_iter().map(|d| d.join(PURE_RUST_BINARY)).collect()
}

/// Another client that consumes the bench's topic in a process of its own.
#[derive(Debug)]
pub struct Peer {
    /// The row's name.
    pub name: &'static str,
    how: How,
    /// The client's (and its library's) versions, for the header.
    pub versions: String,
}

/// How to run a peer.
#[derive(Debug)]
enum How {
    /// A Python that imports `confluent_kafka`, and the script written where it can run it.
    Python { python: PathBuf, script: PathBuf },
    /// `java -jar` the Java peer.
    Java { jar: PathBuf },
    /// The pure-Rust peer's binary (`peer/pure-rust`).
    PureRust { binary: PathBuf },
}

impl Peer {
    /// Finds the peer: `python` if given, else the default virtualenv's. `Err` says why the
    /// row is skipped (and how to install it).
    pub fn python(python: Option<&Path>) -> Result<Peer, String> {
        let python = python.map_or_else(|| PathBuf::from(DEFAULT_VENV_PYTHON), Path::to_path_buf);
        let probe = Command::new(&python)
            .args([
                "-c",
                // version() is a string in some releases, a (string, int) tuple in others.
                "import confluent_kafka as c; v = c.version(); \
                 print(v if isinstance(v, str) else v[0], c.libversion()[0])",
            ])
            .stderr(Stdio::null())
            .output();
        let versions = match probe {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                let mut words = text.split_whitespace();
                format!(
                    "confluent-kafka {} (librdkafka {})",
                    words.next().unwrap_or("?"),
                    words.next().unwrap_or("?")
                )
            }
            _ => {
                return Err(format!(
                    "{} cannot import confluent_kafka; install it with: {INSTALL_HINT} \
                     (or pass --peer-python)",
                    python.display()
                ));
            }
        };
        let script =
            std::env::temp_dir().join(format!("ferrafka-bench-peer-{}.py", std::process::id()));
        std::fs::write(&script, SCRIPT)
            .map_err(|e| format!("writing {}: {e}", script.display()))?;
        Ok(Peer {
            name: "confluent-kafka-python",
            how: How::Python { python, script },
            versions,
        })
    }

    /// The Java peer, when its jar was built (and `java` runs). `Err` says why the row is
    /// skipped.
    pub fn java() -> Result<Peer, String> {
        let jar = java_jar();
        if !jar.exists() {
            return Err(format!(
                "no {}; build it with `mvn -q -f testing/kafka/peer/pom.xml package`",
                jar.display()
            ));
        }
        let lib = jar.with_file_name("lib");
        let clients = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .find_map(|n| {
                Some(
                    n.strip_prefix("kafka-clients-")?
                        .strip_suffix(".jar")?
                        .to_string(),
                )
            })
            .unwrap_or_else(|| "?".into());
        Ok(Peer {
            name: "Java KafkaConsumer",
            how: How::Java { jar },
            versions: format!("Java KafkaConsumer (kafka-clients {clients})"),
        })
    }

    /// The pure-Rust peer: `binary` if given, else the first of [`pure_rust_candidates`] that
    /// exists. `Err` says why the row is skipped (and how to build it).
    pub fn pure_rust(binary: Option<&Path>) -> Result<Peer, String> {
        let binary = match binary {
            Some(b) => b.to_path_buf(),
            None => pure_rust_candidates()
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    format!(
                        "no {PURE_RUST_BINARY} next to ferrafka-bench, in $CARGO_TARGET_DIR/release \
                         or in the peer crate's target/release; build it with \
                         `{PURE_RUST_BUILD_HINT}` (or pass --peer-pure-rust)"
                    )
                })?,
        };
        let out = Command::new(&binary)
            .arg("--version")
            .stderr(Stdio::null())
            .output()
            .map_err(|e| format!("running {} --version: {e}", binary.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text
            .trim()
            .strip_prefix("confluent-kafka ")
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                format!(
                    "{} --version printed {:?}, not `confluent-kafka <version>`; rebuild it with \
                     `{PURE_RUST_BUILD_HINT}`",
                    binary.display(),
                    text.trim()
                )
            })?;
        Ok(Peer {
            name: "confluent-kafka (Rust)",
            versions: format!("confluent-kafka {version} (pure Rust)"),
            how: How::PureRust { binary },
        })
    }

    /// Consumes `setup`'s topic, given the raw loop's `properties` and `group`.
    pub fn consume(
        &self,
        setup: &Setup,
        group: &str,
        properties: &BTreeMap<String, String>,
    ) -> Result<(Outcome, Duration)> {
        let mut config = properties.clone();
        config.insert("group.id".into(), group.into());
        let mut command = match &self.how {
            How::Python { python, script } => {
                let mut c = Command::new(python);
                c.arg(script)
                    .arg(serde_json::to_string(&config)?)
                    .arg(&setup.topic)
                    .arg(setup.messages.to_string())
                    .arg(setup.max_messages.to_string());
                c
            }
            How::Java { jar } => {
                let mut c = Command::new("java");
                c.arg("-jar")
                    .arg(jar)
                    .arg("bench-consume")
                    .arg(&setup.bootstrap)
                    .arg(group)
                    .arg(&setup.topic)
                    .arg(setup.messages.to_string());
                c
            }
            How::PureRust { binary } => {
                let mut c = Command::new(binary);
                c.arg(&setup.bootstrap)
                    .arg(group)
                    .arg(&setup.topic)
                    .arg(setup.messages.to_string());
                c
            }
        };
        command.arg(setup.timeout.as_secs_f64().to_string());
        let name = self.name;
        let before = cpu::reaped_children_cpu();
        let out = command
            .stderr(Stdio::inherit())
            .output()
            .with_context(|| format!("running the {name} peer"))?;
        let process_cpu = cpu::reaped_children_cpu().saturating_sub(before);
        if !out.status.success() {
            bail!("the {name} peer failed ({})", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("result "))
            .with_context(|| format!("the {name} peer printed no result line"))?;
        Ok((parse_result(line)?, process_cpu))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let How::Python { script, .. } = &self.how {
            let _ = std::fs::remove_file(script);
        }
    }
}

/// Parses the script's `key=value` result line.
fn parse_result(line: &str) -> Result<Outcome> {
    let fields: BTreeMap<&str, &str> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |key: &str| -> Result<f64> {
        fields
            .get(key)
            .with_context(|| format!("no {key} in the peer's result {line:?}"))?
            .parse::<f64>()
            .with_context(|| format!("{key} in the peer's result {line:?}"))
    };
    let secs = |key: &str| get(key).map(|s| Duration::from_secs_f64(s.max(0.0)));
    Ok(Outcome {
        steady: Span {
            wall: secs("wall_s")?,
            cpu: secs("cpu_s")?,
            // Another process: its allocations are not ours to count.
            allocs: Counts::default(),
            instructions: None,
        },
        startup: Span {
            wall: secs("startup_s")?,
            cpu: Duration::ZERO,
            allocs: Counts::default(),
            instructions: None,
        },
        messages: get("messages")? as u64,
        bytes: get("bytes")? as u64,
        first_message: Duration::from_secs_f64(get("first_ms")?.max(0.0) / 1e3),
        stalled: get("stalled")? != 0.0,
        pauses: None,
        events: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_result_line() {
        let o = parse_result(
            "messages=10 bytes=1000 startup_s=3.5 wall_s=0.25 cpu_s=0.125 first_ms=12.0 stalled=0",
        )
        .unwrap();
        assert_eq!((o.messages, o.bytes, o.stalled), (10, 1000, false));
        assert_eq!(o.steady.wall, Duration::from_millis(250));
        assert_eq!(o.steady.cpu, Duration::from_millis(125));
        assert!(parse_result("messages=10").is_err());
    }
}
