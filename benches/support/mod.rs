//! Helpers every side-by-side benchmark uses: knobs from the environment and running the
//! tools. (A folder module: cargo does not take it for a benchmark of its own.)
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// A numeric knob from the environment, or its default.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs a command that must succeed; returns its stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `BIN --repo=REPO`, ready for its arguments.
pub fn tool(bin: &str, repo: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg(format!("--repo={}", repo.display()));
    c
}
