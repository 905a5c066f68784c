//! Compile-fail tests of `#[singleton]`'s diagnostics, one file per mistake under `tests/ui/`.
//!
//! The `.stderr` snapshots hold rustc's exact output, which changes between compiler
//! releases, so the cases run only on the toolchain the snapshots were made with. Regenerate
//! them with `TRYBUILD=overwrite cargo test --test ui` and read every diff.

use std::process::Command;

/// The `rustc --version` prefix the snapshots were made with.
const SNAPSHOT_TOOLCHAIN: &str = "rustc 1.95.";

#[test]
fn ui() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .unwrap_or_default();
    if !version.starts_with(SNAPSHOT_TOOLCHAIN) {
        eprintln!(
            "skipping the UI tests: their snapshots were made with {SNAPSHOT_TOOLCHAIN}x, \
             this is {}",
            version.trim()
        );
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
