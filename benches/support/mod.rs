//! Helpers every side-by-side benchmark uses: knobs from the environment, running the
//! tools, and the generated tree. (A folder module: cargo does not take it for a benchmark of its own.)
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

/// The folder a benchmark works in: `$ROSTREE_BENCH_DIR/<name>` (to measure on another
/// filesystem), else under the temporary folder.
pub fn work_dir(name: &str) -> std::path::PathBuf {
    std::env::var_os("ROSTREE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(name)
}

/// The `rostree` to measure: `$ROSTREE_BENCH_BIN` (another build, e.g. an older commit's),
/// else this one.
pub fn rostree_bin() -> std::path::PathBuf {
    match std::env::var_os("ROSTREE_BENCH_BIN") {
        Some(bin) if !bin.is_empty() => bin.into(),
        _ => env!("CARGO_BIN_EXE_rostree").into(),
    }
}

/// The machine's load average, printed beside the numbers: a busy machine skews them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `BIN --repo=REPO`, ready for its arguments.
pub fn tool(bin: &str, repo: &Path) -> Command {
    let mut c = Command::new(bin);
    c.arg(format!("--repo={}", repo.display()));
    c
}

/// What varies between the benchmarks' generated trees.
pub struct TreeShape {
    /// Every tenth file executable and a symlink beside every fiftieth.
    pub modes_and_links: bool,
    /// Written into one file in a hundred (as many text-like as noise ones), so that two
    /// generations differ by 1% of their files.
    pub generation: Option<u32>,
}

/// A deterministic tree: `files` files in nested folders, ~6 KB average (~120 MB at
/// 20,000), half text-like (compressible), half noise.
pub fn generate_tree(root: &Path, files: usize, shape: &TreeShape) {
    let mut state: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..files {
        let dir = root.join(format!("usr/share/d{:03}/s{:02}", i % 400, (i / 400) % 10));
        std::fs::create_dir_all(&dir).unwrap();
        let size = (next() % 12_000) as usize;
        let mut data: Vec<u8> = if i % 2 == 0 {
            let line = format!("line {i} of a text-like file in the benchmark tree\n");
            line.as_bytes().iter().cycle().take(size).copied().collect()
        } else {
            (0..size).map(|_| next() as u8).collect()
        };
        if let Some(generation) = shape.generation
            && (i % 200 == 7 || i % 200 == 108)
        {
            data.extend_from_slice(format!("generation {generation}\n").as_bytes());
        }
        let path = dir.join(format!("f{i}"));
        std::fs::write(&path, data).unwrap();
        if shape.modes_and_links && i % 10 == 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        if shape.modes_and_links && i % 50 == 0 {
            let _ = std::os::unix::fs::symlink(format!("f{i}"), dir.join(format!("l{i}")));
        }
    }
}
