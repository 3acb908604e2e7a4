//! The quickstart binary offers ferrafka's CLI on its app; none of these commands needs a broker.

use std::process::{Command, Output};

fn quickstart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .args(args)
        .env_remove("FERRAFKA_ENV")
        .env_remove("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("FERRAFKA_TOPICS_LOCK")
        .output()
        .expect("the quickstart binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn info_names_the_visits_topic() {
    let out = quickstart(&["info"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("topic visits"), "{stdout}");
    assert!(stdout.contains("quickstart"), "{stdout}");
}

/// `doctor --env production` re-runs the binary with `FERRAFKA_ENV=production` and reports on
/// the app as production would build it. Its exit codes: 0 when there are no errors, 1 when
/// there are (with `--strict`, warnings count too). The quickstart has warnings (no
/// `topics.lock`, replication factor 1, ...) but no errors.
#[test]
fn doctor_evaluates_the_app_for_production() {
    let out = quickstart(&["doctor", "--env", "production"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(
        stdout.starts_with("doctor: environment production: 0 error(s)"),
        "{stdout}"
    );
    assert!(stdout.contains("topic visits"), "{stdout}");
    assert!(stdout.contains("FD002 lock file"), "{stdout}");

    let strict = quickstart(&["doctor", "--env", "production", "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "warnings fail --strict");
}

#[test]
fn topics_lock_and_check_need_no_broker() {
    let lock = std::env::temp_dir().join(format!("quickstart-{}.lock", std::process::id()));
    let lock = lock.to_str().unwrap();
    let written = quickstart(&["topics", "--lock-file", lock, "lock"]);
    assert!(written.status.success(), "{written:?}");
    assert!(
        std::fs::read_to_string(lock)
            .unwrap()
            .contains("[topics.visits]")
    );
    let checked = quickstart(&["topics", "--lock-file", lock, "check"]);
    let _ = std::fs::remove_file(lock);
    assert!(checked.status.success(), "{checked:?}");
}

#[test]
fn unknown_commands_are_refused() {
    let out = quickstart(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
}
