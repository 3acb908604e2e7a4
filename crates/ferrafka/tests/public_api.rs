//! The public API, item by item with its signature, against the checked-in snapshot
//! `crates/ferrafka/public-api.txt`: any change to what users can name is a visible diff in
//! review. After an intended change: `UPDATE_PUBLIC_API=1 cargo test -p ferrafka --test
//! public_api`, and commit the file.
//!
//! The listing comes from rustdoc's JSON output (what cargo-semver-checks reads), produced on
//! the stable toolchain with `RUSTC_BOOTSTRAP=1`, and read by the `public-api` crate;
//! blanket, auto-trait and derived impls are left out.

use std::path::PathBuf;
use std::process::Command;

/// Builds the crate's rustdoc JSON and returns its path.
fn rustdoc_json() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../target"));
    let status = Command::new(env!("CARGO"))
        .args(["rustdoc", "-q", "-p", "ferrafka", "--lib", "--target-dir"])
        .arg(&target)
        .args(["--", "-Z", "unstable-options", "--output-format", "json"])
        .env("RUSTC_BOOTSTRAP", "1")
        .current_dir(&manifest)
        .status()
        .expect("cargo rustdoc runs");
    assert!(status.success(), "cargo rustdoc failed: {status}");
    target.join("doc/ferrafka.json")
}

#[test]
fn the_public_api_matches_its_snapshot() {
    let api = public_api::Builder::from_rustdoc_json(rustdoc_json())
        .omit_blanket_impls(true)
        .omit_auto_trait_impls(true)
        .omit_auto_derived_impls(true)
        .build()
        .expect("rustdoc JSON reads");
    let listing: String = api.items().map(|item| format!("{item}\n")).collect();
    let snapshot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("public-api.txt");
    if std::env::var_os("UPDATE_PUBLIC_API").is_some() {
        std::fs::write(&snapshot, &listing).expect("snapshot written");
        return;
    }
    let recorded = std::fs::read_to_string(&snapshot).unwrap_or_default();
    let (now, then): (Vec<&str>, Vec<&str>) =
        (listing.lines().collect(), recorded.lines().collect());
    let added: Vec<&&str> = now.iter().filter(|l| !then.contains(l)).collect();
    let removed: Vec<&&str> = then.iter().filter(|l| !now.contains(l)).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the public API changed ({} items now). Added:\n{}\nRemoved:\n{}\n\
         If intended: UPDATE_PUBLIC_API=1 cargo test -p ferrafka --test public_api",
        now.len(),
        added
            .iter()
            .map(|l| format!("+ {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        removed
            .iter()
            .map(|l| format!("- {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
