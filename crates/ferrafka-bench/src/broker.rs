//! The embedded broker, run in a child process so its CPU time stays out of the client's
//! `getrusage` readings.
//!
//! The child is this binary re-executed with the hidden `broker` subcommand: it starts
//! [`EmbeddedBroker`], prints its bootstrap address on stdout and serves until its stdin closes
//! (the parent exits or drops [`BrokerChild`]) or it is killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use ferrafka_broker::EmbeddedBroker;

use crate::cpu;

/// Body of the hidden `broker` subcommand.
pub fn serve() -> Result<()> {
    let broker = EmbeddedBroker::start().context("starting the embedded broker")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", broker.bootstrap_servers())?;
        out.flush()?;
    }
    // Serve until the parent closes our stdin (or dies, which closes it too).
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin().lock();
    while stdin.read(&mut sink).is_ok_and(|n| n > 0) {}
    drop(broker);
    Ok(())
}

/// A broker child process; killed and reaped when dropped.
#[derive(Debug)]
pub struct BrokerChild {
    child: Child,
    stdin: Option<ChildStdin>,
    bootstrap: String,
}

impl BrokerChild {
    /// Starts the child and waits for its bootstrap address.
    pub fn spawn() -> Result<Self> {
        let exe = std::env::current_exe().context("locating the bench binary")?;
        let mut child = Command::new(exe)
            .arg("broker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning the broker child process")?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let bootstrap = line.trim().to_string();
        if read.is_err() || bootstrap.is_empty() {
            let _ = child.kill();
            let status = child.wait();
            bail!("the broker child printed no address (exit: {status:?})");
        }
        Ok(BrokerChild {
            child,
            stdin,
            bootstrap,
        })
    }

    /// The `bootstrap.servers` value for the child's broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The child's CPU time so far (10 ms resolution).
    pub fn cpu(&self) -> Option<Duration> {
        cpu::process_cpu(self.child.id())
    }
}

impl Drop for BrokerChild {
    fn drop(&mut self) {
        drop(self.stdin.take()); // asks the child to stop ...
        let _ = self.child.kill(); // ... and insists: memory storage has nothing to save
        let _ = self.child.wait();
    }
}

/// The broker: a child process, or an external cluster.
pub struct Cluster {
    /// The embedded broker's child process; `None` for an external cluster.
    pub child: Option<BrokerChild>,
    /// `bootstrap.servers`.
    pub bootstrap: String,
}

impl Cluster {
    /// Connects to `brokers`, or spawns an embedded broker child when `None`.
    pub fn start(brokers: Option<&str>) -> Result<Self> {
        Ok(match brokers {
            Some(b) => Cluster {
                child: None,
                bootstrap: b.to_string(),
            },
            None => {
                let child = BrokerChild::spawn()?;
                Cluster {
                    bootstrap: child.bootstrap().to_string(),
                    child: Some(child),
                }
            }
        })
    }

    /// The broker child's CPU time so far; `None` for an external cluster.
    pub fn broker_cpu(&self) -> Option<Duration> {
        self.child.as_ref().and_then(BrokerChild::cpu)
    }

    /// Waits (up to 30 s) until the broker child is idle, so work left over from one phase (a
    /// stalled consumer's last fetches) does not slow the next. No-op for external clusters.
    pub fn settle(&self) {
        const STEP: Duration = Duration::from_millis(250);
        let Some(mut last) = self.broker_cpu() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            std::thread::sleep(STEP);
            let Some(now) = self.broker_cpu() else { return };
            // Under 10% of a core: idle, give or take the 10 ms resolution.
            if now.saturating_sub(last) <= STEP / 10 {
                return;
            }
            last = now;
        }
        println!("  note: the broker was still busy 30 s after the previous phase");
    }

    /// Waits for an idle broker, runs `f`, and reads the broker child's CPU time around it.
    pub fn with_broker_cpu<T>(&self, f: impl FnOnce() -> T) -> (T, Option<Duration>) {
        self.settle();
        let before = self.broker_cpu();
        let out = f();
        let after = self.broker_cpu();
        (out, before.zip(after).map(|(b, a)| a.saturating_sub(b)))
    }
}
