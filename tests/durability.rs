//! Crash safety and concurrency: a commit killed with SIGKILL at any moment leaves a repo that
//! both tools fsck clean with every ref at its old or new commit; concurrent commits to
//! different branches both land.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn fsck_clean(repo: &std::path::Path) {
    let ours = rostree(repo, &["fsck"]);
    assert!(
        ours.ok().contains("no errors found"),
        "rostree fsck: {}",
        ours.stderr()
    );
    let theirs = ostree(repo, &["fsck"]);
    assert!(
        theirs.ok().contains("no errors found"),
        "ostree fsck: {}",
        theirs.stderr()
    );
}

#[test]
fn commit_killed_at_many_points_leaves_old_or_new_state() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    for i in 0..1500 {
        write(
            &tree.join(format!("d{}/f{i}", i % 30)),
            format!("content {i}\n").repeat(20).as_bytes(),
        );
    }
    for mode in ["bare-user", "archive"] {
        let repo = dir.path().join(format!("repo-{mode}"));
        rostree(&repo, &["init", &format!("--mode={mode}")]).ok();
        let first = rostree(
            &repo,
            &["commit", "-b", "main", "-s", "base", tree.to_str().unwrap()],
        )
        .ok();
        let mut old = first.trim().to_string();
        let mut outcomes = (0, 0);
        for round in 0..16u64 {
            // Change a few files so each round has new objects to write.
            write(
                &tree.join(format!("d{}/f{round}", round % 30)),
                format!("round {round}\n").as_bytes(),
            );
            write(
                &tree.join(format!("new/{round}")),
                format!("new {round}\n").as_bytes(),
            );
            let mut child = Command::new(rostree_bin())
                .args([
                    &format!("--repo={}", repo.display()),
                    "commit",
                    "-b",
                    "main",
                    "-s",
                    "round",
                    tree.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(round * round));
            let _ = child.kill();
            let status = child.wait().unwrap();
            let now = rostree(&repo, &["rev-parse", "main"])
                .ok()
                .trim()
                .to_string();
            if status.success() {
                assert_ne!(now, old, "a finished commit moved the ref");
                outcomes.1 += 1;
            } else if now == old {
                outcomes.0 += 1;
            } else {
                // Killed after the ref was published: the new commit must be complete.
                assert_eq!(rostree(&repo, &["rev-parse", "main^"]).ok().trim(), old);
                outcomes.1 += 1;
            }
            fsck_clean(&repo);
            old = now;
        }
        assert!(
            outcomes.0 > 0,
            "no round was killed before completing: {outcomes:?}"
        );
        // The next commit completes and removes what the killed ones left in tmp/, including
        // a lock file whose transaction died before making its directory.
        write(&repo.join("tmp/staging-dead-rostree-1-lock"), b"");
        write(&tree.join("final"), b"final");
        rostree(
            &repo,
            &[
                "commit",
                "-b",
                "main",
                "-s",
                "final",
                tree.to_str().unwrap(),
            ],
        )
        .ok();
        let leftovers: Vec<_> = std::fs::read_dir(repo.join("tmp"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("staging-"))
            .collect();
        assert!(leftovers.is_empty(), "staging leftovers: {leftovers:?}");
        fsck_clean(&repo);
    }
}

#[test]
fn concurrent_commits_to_different_branches_both_land() {
    let dir = tempdir();
    let repo = dir.path().join("repo");
    rostree(&repo, &["init", "--mode=bare-user"]).ok();
    let mut children = Vec::new();
    for b in 0..4 {
        let tree = dir.path().join(format!("t{b}"));
        for i in 0..300 {
            write(&tree.join(format!("f{i}")), format!("{b}-{i}").as_bytes());
        }
        let child = Command::new(rostree_bin())
            .args([
                &format!("--repo={}", repo.display()),
                "commit",
                "-b",
                &format!("branch{b}"),
                tree.to_str().unwrap(),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.push((b, child));
    }
    // Also run one with ostree at the same time as ours.
    let tree = dir.path().join("t0");
    let ostree_child = Command::new(oracle())
        .args([
            &format!("--repo={}", repo.display()),
            "commit",
            "-b",
            "from-ostree",
            tree.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    let ours = Command::new(rostree_bin())
        .args([
            &format!("--repo={}", repo.display()),
            "commit",
            "-b",
            "from-rostree",
            tree.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(ostree_child.wait_with_output().unwrap().status.success());
    assert!(ours.status.success());
    for (b, child) in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "branch{b}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(
            rostree(&repo, &["rev-parse", &format!("branch{b}")])
                .ok()
                .trim(),
            id
        );
    }
    fsck_clean(&repo);
}

#[test]
fn commit_under_a_low_fd_limit_publishes_in_batches_and_matches_ostree() {
    // Written objects wait open for the final sync; a low fd limit forces several early
    // publishes (sync + link) during the walk. The result must equal ostree's commit.
    let dir = tempdir();
    let tree = dir.path().join("t");
    for i in 0..400 {
        write(
            &tree.join(format!("d{}/f{i}", i % 7)),
            format!("batch {i}\n").repeat(i % 50 + 1).as_bytes(),
        );
    }
    for mode in ["bare-user", "archive"] {
        let ours = dir.path().join(format!("ours-{mode}"));
        let theirs = dir.path().join(format!("theirs-{mode}"));
        rostree(&ours, &["init", &format!("--mode={mode}")]).ok();
        ostree(&theirs, &["init", &format!("--mode={mode}")]).ok();
        let args = [
            "commit",
            "-b",
            "main",
            "--timestamp=@0",
            tree.to_str().unwrap(),
        ];
        let repo_arg = format!("--repo={}", ours.display());
        let mut limited = vec!["--nofile=300", rostree_bin(), repo_arg.as_str()];
        limited.extend_from_slice(&args);
        let ours_id = sh("prlimit", &limited).ok();
        assert_eq!(ours_id, ostree(&theirs, &args).ok(), "{mode}");
        fsck_clean(&ours);
    }
}

#[test]
fn commit_out_of_space_fails_clearly_and_keeps_the_ref() {
    // A small ext4 repository filled to leave less room than the commit needs, at many
    // levels: the write of an object, the background publish of a batch (new objects/xx
    // directories) or the final one runs out of space. Each time one clear error line naming
    // the path, the branch where it was, and a repository both tools fsck clean; with the
    // space back, the same commit succeeds.
    if !is_root() {
        eprintln!("skipping: mounting a filesystem image needs root");
        return;
    }
    let dir = tempdir();
    let fs = dir.path().join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    let Some(_mounted) = mount::Mounted::ext4_image(&dir.path().join("fs.img"), 24, None, &fs)
    else {
        return;
    };
    let tree = dir.path().join("t");
    for i in 0..600 {
        write(
            &tree.join(format!("d{}/f{i}", i % 10)),
            format!("object {i}\n").repeat(300).as_bytes(),
        );
    }
    let base = dir.path().join("base");
    write(&base.join("README"), b"base\n");
    let args = [
        "commit",
        "-b",
        "main",
        "--timestamp=@0",
        tree.to_str().unwrap(),
    ];
    for mode in ["bare-user", "archive"] {
        let repo = fs.join(format!("repo-{mode}"));
        rostree(&repo, &["init", &format!("--mode={mode}")]).ok();
        let base_args = [
            "commit",
            "-b",
            "main",
            "--timestamp=@0",
            base.to_str().unwrap(),
        ];
        let old = rostree(&repo, &base_args).ok();
        let free_before = available(&fs);
        let repo_arg = format!("--repo={}", repo.display());
        // A low fd limit makes batches small, so several publish in the background.
        let mut limited = vec!["--nofile=300", rostree_bin(), repo_arg.as_str()];
        limited.extend_from_slice(&args);
        let mut messages = std::collections::BTreeSet::new();
        let mut free = 0;
        let new = loop {
            let filler = mount::Filler::leaving(&fs, free);
            let run = sh("prlimit", &limited);
            drop(filler);
            if run.out.status.success() {
                assert!(free > 0, "{mode}: a commit with no space left succeeded");
                break run.stdout().trim().to_string();
            }
            let err = run.fails();
            assert_eq!(err.lines().count(), 1, "{mode} {free}: one line:\n{err}");
            assert!(
                err.starts_with("error: ")
                    && err.contains("No space left on device")
                    && err.contains(repo.to_str().unwrap()),
                "{mode} {free}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert_eq!(
                rostree(&repo, &["rev-parse", "main"]).ok(),
                old,
                "{mode} {free}: the ref moved"
            );
            fsck_clean(&repo);
            let staging: Vec<_> = std::fs::read_dir(repo.join("tmp"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("staging-"))
                .collect();
            assert!(staging.is_empty(), "{mode} {free}: left tmp/{staging:?}");
            // What stays used is objects published before the failure, which the next
            // commit reuses.
            let kept = free_before.saturating_sub(available(&fs));
            println!(
                "{mode}: {free} bytes free: {} ({kept} bytes kept)",
                neutral(&err, &repo)
            );
            messages.insert(neutral(&err, &repo));
            free += 32 * 1024;
        };
        assert!(messages.len() > 1, "{mode}: ENOSPC at one point only");
        assert_eq!(rostree(&repo, &["rev-parse", "main"]).ok().trim(), new);
        fsck_clean(&repo);
        let theirs = dir.path().join(format!("theirs-{mode}"));
        ostree(&theirs, &["init", &format!("--mode={mode}")]).ok();
        assert_eq!(ostree(&theirs, &base_args).ok(), old);
        assert_eq!(ostree(&theirs, &args).ok().trim(), new, "{mode}");
    }
}

/// Bytes available to root in the filesystem of `dir`.
fn available(dir: &std::path::Path) -> u64 {
    let st = rustix::fs::statvfs(dir).unwrap();
    st.f_bavail * st.f_frsize
}

/// An error with the repository's path, object names and numbers made neutral, so errors
/// at different objects of one kind read the same.
fn neutral(err: &str, repo: &std::path::Path) -> String {
    let err = err.trim().replace(repo.to_str().unwrap(), "REPO");
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let hexlike = word.len() >= 2 && word.bytes().all(|b| b.is_ascii_hexdigit());
        out.push_str(if hexlike { "X" } else { word });
        word.clear();
    };
    for c in err.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}
