//! Shared helpers for end-to-end tests: run `rostree` and the `ostree` oracle side by side,
//! and build test trees.
#![allow(dead_code)]

pub mod ed25519;
pub mod gpg;
pub mod hostile;
pub mod mount;
pub mod nginx;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Output of a command, with helpers for assertions.
pub struct Run {
    /// Raw process output.
    pub out: Output,
    /// The command line, for messages.
    pub cmdline: String,
}

impl Run {
    /// Asserts success and returns stdout as a string.
    pub fn ok(&self) -> String {
        assert!(
            self.out.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.cmdline,
            self.out.status,
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr)
        );
        self.stdout()
    }

    /// Asserts failure and returns stderr as a string.
    pub fn fails(&self) -> String {
        assert!(
            !self.out.status.success(),
            "{} unexpectedly succeeded:\nstdout: {}",
            self.cmdline,
            String::from_utf8_lossy(&self.out.stdout)
        );
        self.stderr()
    }

    /// Stdout, lossily decoded.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }

    /// Stderr, lossily decoded.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

fn run(program: &str, args: &[&str], cwd: Option<&Path>) -> Run {
    run_with_env(program, args, cwd, &[])
}

fn run_with_env(program: &str, args: &[&str], cwd: Option<&Path>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove("OSTREE_REPO");
    cmd.envs(env.iter().copied());
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Run {
        out,
        cmdline: format!("{program} {}", args.join(" ")),
    }
}

/// The rostree binary under test.
pub fn rostree_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rostree")
}

/// Runs `rostree --repo=REPO ARGS...`.
pub fn rostree(repo: &Path, args: &[&str]) -> Run {
    let repo_arg = format!("--repo={}", repo.display());
    let mut all = vec![repo_arg.as_str()];
    all.extend_from_slice(args);
    run(rostree_bin(), &all, None)
}

/// Runs `ostree --repo=REPO ARGS...` (the oracle).
pub fn ostree(repo: &Path, args: &[&str]) -> Run {
    let repo_arg = format!("--repo={}", repo.display());
    let mut all = vec![repo_arg.as_str()];
    all.extend_from_slice(args);
    run(&oracle(), &all, None)
}

/// Runs `TOOL --repo=REPO ARGS...` (`tool`: [`rostree_bin`] or [`oracle`]) with extra
/// environment variables (`TZ`, `LANG`, ...).
pub fn tool_with_env(tool: &str, repo: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let repo_arg = format!("--repo={}", repo.display());
    let mut all = vec![repo_arg.as_str()];
    all.extend_from_slice(args);
    run_with_env(tool, &all, None, env)
}

/// Runs any program.
pub fn sh(program: &str, args: &[&str]) -> Run {
    run(program, args, None)
}

/// The oracle's path. The suite needs it: CI installs it, and a missing oracle is a failure,
/// not a skip.
pub fn oracle() -> String {
    let path = "/usr/bin/ostree";
    assert!(
        Path::new(path).exists(),
        "the ostree oracle is not installed: run the README's test command (it apt-get installs ostree)"
    );
    path.to_string()
}

/// A fresh temporary directory kept for the test's life.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rostree-test-")
        .tempdir()
        .expect("tempdir")
}

/// The four repo modes, as `init --mode` spells them.
pub const MODES: [&str; 4] = ["bare", "bare-user", "bare-user-only", "archive"];

/// Runs `check` for every repo mode on its own thread and fails with every mismatch it
/// reports (all modes are checked before failing, so one run shows them all).
pub fn assert_no_mismatch_in_any_mode(check: impl Fn(&str) -> Vec<String> + Sync) {
    let failures: Vec<String> = std::thread::scope(|s| {
        let runs: Vec<_> = MODES.iter().map(|m| s.spawn(|| check(m))).collect();
        runs.into_iter()
            .flat_map(|r| r.join().expect("a mode's check panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// Whether we run as root (CI does; ownership tests need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Writes a file, creating parents.
pub fn write(path: &Path, data: &[u8]) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
}

/// Sets a mode on a path.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Builds the rich sample tree the compatibility tests use: every kind of entry ostree
/// accepts (see issue 2's list). Returns its root.
pub fn rich_tree(base: &Path) -> PathBuf {
    let root = base.join("tree");
    std::fs::create_dir_all(&root).unwrap();
    write(&root.join("empty"), b"");
    write(&root.join("page"), &vec![b'p'; 4096]);
    let big: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&root.join("big.bin"), &big);
    write(&root.join("hello.txt"), b"Hello world!\n");
    write(&root.join("bin/tool"), b"#!/bin/sh\necho tool\n");
    chmod(&root.join("bin/tool"), 0o755);
    write(&root.join("bin/suid"), b"suid");
    chmod(&root.join("bin/suid"), 0o4755);
    write(&root.join("bin/sgid"), b"sgid");
    chmod(&root.join("bin/sgid"), 0o2755);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    std::os::unix::fs::symlink("hello.txt", root.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", root.join("dangling")).unwrap();
    std::os::unix::fs::symlink("bin", root.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("x".repeat(1000), root.join("long-link")).unwrap();
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    let mut deep = root.join("deep");
    for i in 0..30 {
        deep = deep.join(format!("d{i}"));
    }
    write(&deep.join("leaf"), b"leaf\n");
    for i in 0..3000 {
        write(
            &root.join("many").join(format!("f{i:05}")),
            format!("{i}\n").as_bytes(),
        );
    }
    write(&root.join("with space"), b"space\n");
    write(&root.join("new\nline"), b"newline\n");
    write(&root.join("-leading-dash"), b"dash\n");
    write(&root.join("ünïcødé-日本"), b"utf8\n");
    let xf = root.join("xattr-file");
    write(&xf, b"x\n");
    set_xattr(&xf, "user.foo", b"bar");
    set_xattr(&xf, "user.bin", &[0, 1, 2, 255]);
    let xd = root.join("xattr-dir");
    std::fs::create_dir_all(&xd).unwrap();
    set_xattr(&xd, "user.dir", b"yes");
    write(&root.join("owned"), b"owned\n");
    if is_root() {
        std::os::unix::fs::chown(root.join("owned"), Some(1234), Some(5678)).unwrap();
        std::fs::create_dir_all(root.join("owned-dir")).unwrap();
        std::os::unix::fs::chown(root.join("owned-dir"), Some(42), Some(43)).unwrap();
    }
    write(&root.join("hardlink-a"), b"linked\n");
    std::fs::hard_link(root.join("hardlink-a"), root.join("hardlink-b")).unwrap();
    root
}

/// Sets an xattr on a path (not following symlinks).
pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(path, name, value, rustix::fs::XattrFlags::empty())
        .unwrap_or_else(|e| panic!("setxattr {name} on {}: {e}", path.display()));
}

/// Every file below `dir` (not directories), recursively, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}
