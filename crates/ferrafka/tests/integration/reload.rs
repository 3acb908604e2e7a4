//! `server --reload`: a replaced binary is re-executed after a graceful stop, without losing or
//! repeating a committed message; production refuses reload mode.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

const FIXTURE: &str = env!("CARGO_BIN_EXE_ferrafka-reload-fixture");

struct Run {
    dir: PathBuf,
    out: PathBuf,
}

impl Run {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("ferrafka-reload"));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out.log");
        Run { dir, out }
    }

    fn exe(&self) -> PathBuf {
        self.dir.join("app")
    }

    /// Installs the fixture as `app` the way a rebuild does: write a new file, move it over.
    fn install(&self) -> u64 {
        let staged = self.dir.join("app.new");
        std::fs::copy(FIXTURE, &staged).unwrap();
        std::fs::rename(&staged, self.exe()).unwrap();
        std::fs::metadata(self.exe()).unwrap().ino()
    }

    fn command(&self, env: &str, bootstrap: &str, topic: &str, group: &str) -> Command {
        let mut cmd = Command::new(self.exe());
        cmd.arg("server")
            .arg("--reload")
            .env("FERRAFKA_ENV", env)
            .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("RELOAD_FIXTURE_TOPIC", topic)
            .env("RELOAD_FIXTURE_GROUP", group)
            .env("RELOAD_FIXTURE_OUT", &self.out)
            .env("RUST_LOG", "info,librdkafka=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("stderr.log")).unwrap());
        cmd
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `(pid, inode)` of every start, in order.
    fn starts(&self) -> Vec<(u32, u64)> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("start "))
            .map(|rest| {
                let (pid, ino) = rest.split_once(' ').unwrap();
                (pid.parse().unwrap(), ino.parse().unwrap())
            })
            .collect()
    }

    /// How often each message number was processed.
    fn counts(&self) -> BTreeMap<u64, usize> {
        let mut counts = BTreeMap::new();
        for l in self.lines() {
            if let Some(n) = l.strip_prefix("msg ") {
                *counts.entry(n.parse().unwrap()).or_insert(0) += 1;
            }
        }
        counts
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    panic!("the server did not stop within 30 s of SIGTERM");
}

fn wait_for_counts(run: &Run, n: usize, why: &str) {
    assert!(
        wait_until(Duration::from_secs(60), || run.counts().len() >= n),
        "{why}: {} of {n} processed\nstderr:\n{}",
        run.counts().len(),
        run.stderr()
    );
}

#[test]
fn a_replaced_binary_is_re_executed_without_losing_or_repeating_a_committed_message() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("reload");
    let group = unique("reload-group");
    cluster.create_topic(&rt, &topic, 2);
    let run = Run::new();
    let first_inode = run.install();

    cluster.produce_numbered(&rt, &topic, 0, 60, 5);
    let mut child = run
        .command("development", &cluster.bootstrap(), &topic, &group)
        .spawn()
        .unwrap();
    wait_for_counts(&run, 60, "before the reload");

    // More messages, then the rebuild lands while they may still be in flight.
    cluster.produce_numbered(&rt, &topic, 60, 90, 5);
    let second_inode = run.install();
    assert_ne!(first_inode, second_inode);
    assert!(
        wait_until(Duration::from_secs(60), || run.starts().len() >= 2),
        "no re-execution\nstderr:\n{}",
        run.stderr()
    );
    cluster.produce_numbered(&rt, &topic, 90, 150, 5);
    wait_for_counts(&run, 150, "after the reload");
    std::thread::sleep(Duration::from_millis(500)); // room for a duplicate to show up

    let status = terminate(&mut child);
    assert_eq!(status.code(), Some(0), "stderr:\n{}", run.stderr());

    let starts = run.starts();
    assert_eq!(
        starts,
        [(child.id(), first_inode), (child.id(), second_inode)],
        "the same process re-executed the new binary once"
    );
    let counts = run.counts();
    assert_eq!(counts.len(), 150, "every message processed");
    let repeated: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(repeated.is_empty(), "processed twice: {repeated:?}");
    let stderr = run.stderr();
    assert!(stderr.contains("executable changed: reloading"), "{stderr}");
    std::fs::remove_dir_all(&run.dir).unwrap();
}

#[test]
fn reload_mode_is_refused_in_production() {
    let run = Run::new();
    run.install();
    let status = run
        .command("production", "127.0.0.1:1", "orders", "g")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let stderr = run.stderr();
    assert!(
        stderr.contains("ferrafka: `server --reload` is refused in production"),
        "{stderr}"
    );
    assert!(stderr.contains("--allow-reload-in-production"), "{stderr}");
    std::fs::remove_dir_all(&run.dir).unwrap();
}
