//! The example runs to completion on the embedded broker: 19 orders processed in order, the
//! malformed one dead-lettered with its source and error.

#[test]
fn the_example_runs_on_the_embedded_broker() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_example-dead-letters"))
        .env_remove("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS")
        .output()
        .expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("dead-lettered: \"seven\""), "{stdout}");
    assert!(stdout.contains("offset 7"), "{stdout}");
}
