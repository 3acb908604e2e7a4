//! The server's logs as a deployment ships them: stderr redirected to a file gets no colour
//! codes; `FERRAFKA_LOG_FORMAT=json` writes one JSON object per line, and lines about a
//! partition name its consumer group, topic and partition; a cluster that is down is said to be
//! unreachable in a few lines, not dozens a second.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

const FIXTURE: &str = env!("CARGO_BIN_EXE_ferrafka-reload-fixture");

/// A fixture app (`tests/fixtures/reload_app.rs`) with stderr going to a file, as under a
/// process supervisor; no `NO_COLOR`, no `RUST_LOG`: what a new user runs.
struct Server {
    dir: PathBuf,
    child: Child,
}

impl Server {
    fn start(bootstrap: &str, topic: &str, group: &str, env: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(unique("ferrafka-logs"));
        std::fs::create_dir_all(&dir).unwrap();
        let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
        let child = Command::new(FIXTURE)
            .arg("server")
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("FERRAFKA_LOG_FORMAT")
            .env("FERRAFKA_ENV", "development")
            .env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("RELOAD_FIXTURE_TOPIC", topic)
            .env("RELOAD_FIXTURE_GROUP", group)
            .env("RELOAD_FIXTURE_OUT", dir.join("out.log"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the fixture starts");
        Server { dir, child }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s); its stderr.
    fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Seconds since midnight of a text line's timestamp (`2026-12-07T09:55:12.154434Z ...`).
fn second_of(line: &str) -> Option<u32> {
    let time = line.get(11..19)?;
    let mut parts = time.split(':').map(|p| p.parse::<u32>().ok());
    Some(parts.next()?? * 3600 + parts.next()?? * 60 + parts.next()??)
}

fn no_colour_codes(stderr: &str) {
    assert!(
        !stderr.contains("\x1b["),
        "ANSI escape codes in a redirected stderr:\n{stderr}"
    );
}

/// A `server` pointed at a port nobody listens on, as a new user might: librdkafka reports the
/// down broker about 26 times a second (each a log line, a "librdkafka error" and a "consumer
/// error" before). The log says once per client that the cluster is unreachable and that
/// ferrafka keeps retrying, and writes less than a line a second after the first second,
/// through the boot check of the admin client (10 s) and the listener's first seconds.
#[test]
fn a_cluster_that_is_down_is_said_to_be_unreachable_not_flooded() {
    let topic = unique("logs-down");
    let server = Server::start("127.0.0.1:1", &topic, &unique("logs-down-group"), &[]);
    let listening = wait_until(Duration::from_secs(30), || {
        server.stderr().contains("listener started")
    });
    assert!(listening, "no listener started:\n{}", server.stderr());
    std::thread::sleep(Duration::from_secs(4));
    let stderr = server.stop();
    no_colour_codes(&stderr);
    // Up to the stop: the lines the outage wrote, over the time from the first to the stop.
    let lines: Vec<&str> = stderr.lines().collect();
    let stop = lines
        .iter()
        .position(|l| l.contains("shutdown requested"))
        .unwrap_or_else(|| panic!("no shutdown line:\n{stderr}"));
    let running = &lines[..stop];
    let seconds: Vec<u32> = running.iter().filter_map(|l| second_of(l)).collect();
    assert_eq!(
        seconds.len(),
        running.len(),
        "every line is timestamped:\n{stderr}"
    );
    // Seconds after the first line's second (a run over midnight wraps around).
    let first = seconds[0];
    let since_first = |s: u32| (s + 86_400 - first) % 86_400;
    let elapsed = since_first(second_of(lines[stop]).unwrap());
    let after_first_second = seconds.iter().filter(|s| since_first(**s) > 0).count();
    assert!(
        elapsed >= 12,
        "the run lasted {elapsed} s, too short to tell:\n{stderr}"
    );
    assert!(
        (after_first_second as u32) < elapsed,
        "{after_first_second} lines in the {} s after the first second: more than one a \
         second:\n{stderr}",
        elapsed - 1
    );
    let unreachable: Vec<&&str> = running
        .iter()
        .filter(|l| {
            l.contains("the Kafka cluster at 127.0.0.1:1 is unreachable")
                && l.contains("ferrafka keeps retrying")
        })
        .collect();
    // Once per client: the boot check's admin client, the listener (the producer connects
    // only when it has something to send).
    assert!(
        (1..=3).contains(&unreachable.len()),
        "{} unreachable lines:\n{stderr}",
        unreachable.len()
    );
    assert!(
        unreachable
            .iter()
            .any(|l| l.contains("subscription_group=")),
        "the listener says it too:\n{stderr}"
    );
    assert!(!stderr.contains("consumer error"), "{stderr}");
}

/// Lines about a partition: the fixture's consumer fails every batch, so the partition logs its
/// retries. With `FERRAFKA_LOG_FORMAT=json` every line of stderr is a JSON object with
/// timestamp, level, target and fields, and each line with a partition names its consumer group
/// and topic too.
#[test]
fn json_lines_parse_and_partition_lines_name_group_topic_and_partition() {
    let rt = runtime();
    let cluster = Cluster::start();
    let topic = unique("logs-json");
    let group = unique("logs-json-group");
    cluster.create_topic(&rt, &topic, 2);
    cluster.produce_spread(&rt, &topic, 0, 4, 2);
    let env = [
        ("FERRAFKA_LOG_FORMAT", "json"),
        ("RELOAD_FIXTURE_FAIL", "1"),
    ];
    let server = Server::start(&cluster.bootstrap(), &topic, &group, &env);
    let retried = wait_until(Duration::from_secs(60), || {
        server.stderr().matches("batch failed").count() >= 2
    });
    assert!(retried, "no failed batch logged:\n{}", server.stderr());
    let stderr = server.stop();
    no_colour_codes(&stderr);
    let mut partition_lines = 0;
    for line in stderr.lines() {
        let json: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stderr}"));
        for key in ["timestamp", "level", "target", "fields"] {
            assert!(json.get(key).is_some(), "no {key}: {line}");
        }
        let fields = &json["fields"];
        if fields.get("partition").is_some() {
            partition_lines += 1;
            assert_eq!(fields["consumer_group"], group.as_str(), "{line}");
            assert_eq!(fields["topic"], topic.as_str(), "{line}");
            assert!(fields["partition"].is_i64(), "{line}");
        }
    }
    assert!(
        partition_lines >= 2,
        "{partition_lines} partition lines:\n{stderr}"
    );
    assert!(
        stderr.contains(r#""message":"batch failed; pausing the partition before a retry""#),
        "{stderr}"
    );
}

/// A `FERRAFKA_LOG_FORMAT` that names no format stops the boot with the setting, the value,
/// what is allowed and the fix.
#[test]
fn an_unknown_log_format_stops_the_boot_naming_the_setting_value_and_fix() {
    let env = [("FERRAFKA_LOG_FORMAT", "logfmt")];
    let mut server = Server::start("127.0.0.1:1", "t", "g", &env);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = server.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    for part in [
        "log_format = \"logfmt\"",
        "needs to be `text` or `json`",
        "FERRAFKA_LOG_FORMAT=json",
    ] {
        assert!(stderr.contains(part), "{part} missing:\n{stderr}");
    }
    no_colour_codes(&stderr);
}
