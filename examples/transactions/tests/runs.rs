//! The example runs to completion: on the embedded broker it shows the boot refusal; with
//! `FERRAFKA_TEST_BROKER=kafka` it runs the pipeline on `FERRAFKA_TEST_KAFKA` and finds every
//! order exactly once.

#[test]
fn the_example_runs() {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_example-transactions"));
    let on_kafka = std::env::var("FERRAFKA_TEST_BROKER").as_deref() == Ok("kafka");
    match std::env::var("FERRAFKA_TEST_KAFKA") {
        Ok(bootstrap) if on_kafka => command.env("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS", bootstrap),
        _ => command.env_remove("FERRAFKA_KAFKA_BOOTSTRAP_SERVERS"),
    };
    let output = command.output().expect("the example runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected = if on_kafka && std::env::var_os("FERRAFKA_TEST_KAFKA").is_some() {
        "every order exactly once"
    } else {
        "refused on the embedded broker"
    };
    assert!(stdout.contains(expected), "{stdout}");
}
