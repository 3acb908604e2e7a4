//! Each example runs to completion on the embedded broker and prints what it verified.

/// Runs the example binary `exe` on a fresh embedded broker; returns its output after checking
/// that it succeeded.
fn run(exe: &str) -> String {
    let output = std::process::Command::new(exe)
        .env_remove("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn hello_processes_every_message_once_in_order() {
    let stdout = run(env!("CARGO_BIN_EXE_hello"));
    assert!(
        stdout
            .contains("30 messages processed exactly once, in offset order within each partition"),
        "{stdout}"
    );
    // 5 users over 3 partitions: the per-partition counts add up to 30.
    let total: usize = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("partition "))
        .filter_map(|l| {
            l.split(": ")
                .nth(1)?
                .strip_suffix(" messages")?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(total, 30, "{stdout}");
}

#[test]
fn manual_offsets_commit_exactly_what_was_marked() {
    let stdout = run(env!("CARGO_BIN_EXE_manual-offsets"));
    // Each batch finishes only its first half and seeks back to the rest.
    let finished: usize = stdout
        .lines()
        .filter_map(|l| {
            l.split("finished ")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert_eq!(finished, 20, "{stdout}");
    assert!(stdout.contains("next batch starts at"), "{stdout}");
    assert!(
        stdout.contains("committed offset Some(20) of 20"),
        "{stdout}"
    );
    assert!(
        stdout.contains("20 jobs processed exactly once, in order; committed offset 20"),
        "{stdout}"
    );
}

#[test]
fn virtual_partitions_run_groups_in_parallel_and_keep_key_order() {
    let stdout = run(env!("CARGO_BIN_EXE_virtual-partitions"));
    let keys = stdout
        .lines()
        .filter(|l| l.ends_with(": 10 messages, offsets ascending"))
        .count();
    assert_eq!(keys, 6, "{stdout}");
    assert!(
        stdout.contains("60 messages processed once by 3 consumer instances"),
        "{stdout}"
    );
    let most: usize = stdout
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .expect("the most groups running at once");
    assert!((2..=3).contains(&most), "{stdout}");
}

#[test]
fn producer_stores_every_record_once() {
    let stdout = run(env!("CARGO_BIN_EXE_producer"));
    assert_eq!(stdout.matches("produce: \"awaited").count(), 3, "{stdout}");
    assert!(stdout.contains("produce_many: 20 acknowledged"), "{stdout}");
    assert!(
        stdout.contains("read back 33 messages from 3 partitions"),
        "{stdout}"
    );
}
