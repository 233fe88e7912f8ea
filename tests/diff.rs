//! `diff` against the `ostree` oracle: commit against commit, commit against a directory,
//! directory against directory, in every repo mode; byte-identical stdout and `error:` lines.

mod common;

use common::{
    assert_no_mismatch_in_any_mode, chmod, oracle, ostree, rich_tree, rostree, rostree_bin,
    set_xattr, sh, tempdir, write,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `program --repo=REPO ARGS` in `cwd`.
fn run_in(cwd: &Path, program: &str, repo: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .arg(format!("--repo={}", repo.display()))
        .args(args)
        .env_remove("OSTREE_REPO")
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Runs both tools in `cwd` and describes any difference in stdout, stderr or exit status.
fn compare_in(cwd: &Path, repo: &Path, args: &[&str]) -> Option<String> {
    let ours = run_in(cwd, rostree_bin(), repo, args);
    let theirs = run_in(cwd, &oracle(), repo, args);
    let mut why = Vec::new();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    if ours.stdout != theirs.stdout {
        why.push(format!(
            "stdout differs:\n--- ostree\n{}--- rostree\n{}",
            text(&theirs.stdout),
            text(&ours.stdout)
        ));
    }
    if ours.status.code() != theirs.status.code() {
        why.push(format!(
            "exit status: ostree {:?}, rostree {:?}",
            theirs.status.code(),
            ours.status.code()
        ));
    }
    if ours.stderr != theirs.stderr {
        why.push(format!(
            "stderr: ostree {:?}, rostree {:?}",
            text(&theirs.stderr),
            text(&ours.stderr)
        ));
    }
    (!why.is_empty()).then(|| format!("`diff {}`: {}", args[1..].join(" "), why.join("\n")))
}

/// The second version of the rich tree: modified, deleted, added, retyped, chmod-ed and
/// re-xattr-ed entries, at the top and deeper.
fn modified_tree(base: &Path, v1: &Path) -> PathBuf {
    let v2 = base.join("tree2");
    sh(
        "cp",
        &["-a", &v1.display().to_string(), &v2.display().to_string()],
    )
    .ok();
    write(&v2.join("hello.txt"), b"Hello changed!\n");
    std::fs::remove_file(v2.join("page")).unwrap();
    std::fs::remove_dir_all(v2.join("deep/d0/d1")).unwrap();
    std::fs::remove_dir(v2.join("empty-dir")).unwrap();
    write(&v2.join("empty-dir"), b"now a file\n");
    std::fs::remove_file(v2.join("with space")).unwrap();
    write(&v2.join("with space/inside"), b"inside\n");
    write(&v2.join("added.txt"), b"added\n");
    write(&v2.join("newdir/sub/n"), b"nested\n");
    write(&v2.join("newdir/sub/deeper/m"), b"nested\n");
    write(&v2.join("newdir/z"), b"z\n");
    write(&v2.join("bin/newtool"), b"#!/bin/sh\n");
    write(&v2.join("stable/s1/new"), b"new in a deep dir\n");
    chmod(&v2.join("bin/tool"), 0o700);
    chmod(&v2.join("tmp"), 0o755);
    set_xattr(&v2.join("xattr-file"), "user.foo", b"baz");
    set_xattr(&v2.join("xattr-dir"), "user.dir", b"no");
    set_xattr(&v2.join("hardlink-a"), "user.new", b"1");
    std::fs::remove_file(v2.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("empty", v2.join("rel-link")).unwrap();
    write(&v2.join("many/f00042"), b"changed\n");
    std::fs::remove_file(v2.join("many/f01000")).unwrap();
    write(&v2.join("many/g-added"), b"g\n");
    if common::is_root() {
        std::os::unix::fs::lchown(v2.join("owned"), Some(1), Some(2)).unwrap();
    }
    v2
}

/// A subtree identical in both versions, deep enough to show that diff does not read it.
fn add_unchanged_subtree(root: &Path) {
    for d in 0..5 {
        for f in 0..20 {
            write(
                &root.join(format!("same/d{d}/inner/f{f}")),
                format!("{d}/{f}\n").as_bytes(),
            );
        }
    }
    write(&root.join("stable/s1/keep"), b"keep\n");
}

/// Both versions of the tree, built once and shared by the repos of every mode.
struct Trees {
    dir: tempfile::TempDir,
    v1: PathBuf,
    v2: PathBuf,
}

fn trees() -> Trees {
    let dir = tempdir();
    let v1 = rich_tree(dir.path());
    add_unchanged_subtree(&v1);
    let v2 = modified_tree(dir.path(), &v1);
    Trees { dir, v1, v2 }
}

/// A repo of `mode` holding a commit of each version on `main`.
fn commit_both(t: &Trees, mode: &str) -> (PathBuf, String, String) {
    let repo = t.dir.path().join(format!("repo-{mode}"));
    ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
    // Durability is not under test: skip fsync to keep the suite fast.
    ostree(&repo, &["config", "set", "core.fsync", "false"]).ok();
    let commit = |tree: &Path, subject: &str| {
        ostree(
            &repo,
            &[
                "commit",
                "-b",
                "main",
                &format!("--tree=dir={}", tree.display()),
                "-s",
                subject,
            ],
        )
        .ok()
        .trim()
        .to_string()
    };
    let c1 = commit(&t.v1, "one");
    let c2 = commit(&t.v2, "two");
    (repo, c1, c2)
}

/// Every comparison in one mode; returns the mismatches.
fn check_mode(t: &Trees, mode: &str) -> Vec<String> {
    let (repo, c1, c2) = commit_both(t, mode);
    let repo = repo.as_path();
    let base = t.dir.path();
    let (v1, v2) = (t.v1.display().to_string(), t.v2.display().to_string());
    let (c1, c2) = (c1.as_str(), c2.as_str());
    let mut failures = Vec::new();
    let mut same = |args: &[&str]| {
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        failures.extend(compare_in(base, repo, &all));
    };

    // Commit against commit.
    same(&[c1, c2]);
    same(&[c2, c1]);
    same(&["main"]);
    same(&[c1, c1]);
    same(&["--stats", c1, c2]);
    // Commit against a directory.
    same(&[c1, &v2]);
    same(&[c2, &v2]);
    same(&["./tree2", c1]);
    if mode == "bare" || mode == "bare-user-only" {
        // Variants that cost a full hash of a tree: in two modes only, to keep the test short.
        same(&["main^", "main"]);
        same(&["--stats", "--fs-diff", c1, c2]);
        same(&[c2, &v1]);
        same(&[c1, "./tree2"]);
        same(&["--no-xattrs", c1, &v2]);
        same(&["--owner-uid=0", "--owner-gid=0", c2, &v2]);
        same(&["--owner-uid=5", c2, "./tree2"]);
    }
    if mode == "bare" {
        // Directories alone: the repo plays no part.
        same(&[&v1, &v2]);
        same(&["./tree2", "./tree"]);
    }
    // Errors: one `error:` line, as ostree words it.
    same(&[c1, "./nonexistent"]);
    same(&[c1, "/nonexistent/dir"]);
    same(&["nonexistent", c1]);
    same(&[c1, "tree2"]);
    same(&[c1]);
    same(&["--stats", c1, "./tree2"]);
    for args in [vec!["diff", c1], vec!["diff", c1, "./nonexistent"]] {
        let out = rostree(repo, &args);
        let stderr = out.fails();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
    }
    assert!(!rostree(repo, &["diff"]).out.status.success());

    // Unchanged subtrees are skipped by dirtree checksum: their descendants are never read.
    let same_dir = ostree(repo, &["ls", "-d", "-C", c1, "/same"]).ok();
    let same_tree = same_dir.split_whitespace().nth(4).unwrap().to_string();
    let listing = ostree(repo, &["ls", "-R", "-C", c1, "/same"]).ok();
    let mut deleted = 0;
    for line in listing.lines().skip(1) {
        for csum in line.split_whitespace().filter(|w| w.len() == 64) {
            for suffix in ["dirtree", "file", "filez"] {
                let p = repo
                    .join("objects")
                    .join(&csum[..2])
                    .join(format!("{}.{suffix}", &csum[2..]));
                if std::fs::remove_file(&p).is_ok() {
                    deleted += 1;
                }
            }
        }
    }
    assert!(
        deleted > 100,
        "deleted only {deleted} objects below /same ({same_tree})"
    );
    let mut same = |args: &[&str]| {
        let mut all = vec!["diff"];
        all.extend_from_slice(args);
        failures.extend(compare_in(base, repo, &all));
    };
    same(&[c1, c2]);
    same(&[c2, c1]);
    let ours = rostree(repo, &["diff", c1, c2]);
    ours.ok();

    failures
        .into_iter()
        .map(|f| format!("[{mode}] {f}"))
        .collect()
}

#[test]
fn all_modes_match_ostree() {
    let t = trees();
    assert_no_mismatch_in_any_mode(|mode| check_mode(&t, mode));
}

#[test]
fn expected_order_of_a_small_diff() {
    // Independent of the oracle: M, then D, then A; a removed directory once, an added one
    // with its contents; directory metadata changes reported before their children.
    let dir = tempdir();
    let a = dir.path().join("a");
    write(&a.join("keep"), b"same\n");
    write(&a.join("changed"), b"old\n");
    write(&a.join("gone/inner/f"), b"x\n");
    write(&a.join("sub/m"), b"old\n");
    let b = dir.path().join("b");
    write(&b.join("keep"), b"same\n");
    write(&b.join("changed"), b"new\n");
    write(&b.join("sub/m"), b"new\n");
    write(&b.join("newdir/n"), b"n\n");
    chmod(&b.join("sub"), 0o700);
    let repo = dir.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let commit = |t: &Path| {
        ostree(
            &repo,
            &["commit", "-b", "x", &format!("--tree=dir={}", t.display())],
        )
        .ok()
        .trim()
        .to_string()
    };
    let ca = commit(&a);
    let cb = commit(&b);
    let out = rostree(&repo, &["diff", &ca, &cb]).ok();
    assert_eq!(
        out,
        "M    /changed\nM    /sub\nM    /sub/m\nD    /gone\nA    /newdir\nA    /newdir/n\n"
    );
}
