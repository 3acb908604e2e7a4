//! Passes the `confluent-kafka` version that `Cargo.lock` resolved to the binary, for
//! `--version` (the bench prints it in its header).

use std::path::PathBuf;

fn main() {
    let lock = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    // `[[package]]` blocks: `name = "…"` then `version = "…"`.
    let version = text
        .split("[[package]]")
        .find(|block| block.contains("\nname = \"confluent-kafka\"\n"))
        .and_then(|block| block.lines().find_map(|l| l.strip_prefix("version = ")))
        .map_or("?", |v| v.trim_matches('"'));
    println!("cargo::rustc-env=CONFLUENT_KAFKA_VERSION={version}");
}
