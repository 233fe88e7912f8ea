//! `pull-local` between repositories of every mode, against `ostree pull-local`: the same
//! refs and trees, fsck clean by both tools, objects hardlinked where the modes match.

mod common;
use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A small tree with the file kinds every mode stores: plain, executable, empty,
/// symlinks, nested and empty directories.
fn small_tree(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("tree");
    write(&root.join("a"), b"alpha\n");
    write(&root.join("empty"), b"");
    write(&root.join("bin/tool"), b"#!/bin/sh\n");
    chmod(&root.join("bin/tool"), 0o755);
    write(&root.join("deep/er/leaf"), &vec![b'x'; 100_000]);
    std::fs::create_dir_all(root.join("void")).unwrap();
    std::os::unix::fs::symlink("a", root.join("link")).unwrap();
    root
}

fn fsck_both(repo: &Path) {
    assert!(rostree(repo, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(repo, &["fsck"]).ok().contains("no errors found"));
}

#[test]
fn pull_local_matches_ostree_between_every_mode() {
    let dir = tempdir();
    let tree = small_tree(dir.path());
    let t = tree.to_str().unwrap();
    for src_mode in ["archive", "bare-user", "bare"] {
        let src = dir.path().join(format!("src-{src_mode}"));
        ostree(&src, &["init", &format!("--mode={src_mode}")]).ok();
        let first = ostree(&src, &["commit", "-b", "main", t]).ok();
        write(
            &tree.join("a"),
            format!("changed for {src_mode}\n").as_bytes(),
        );
        ostree(&src, &["commit", "-b", "main", t]).ok();
        ostree(&src, &["commit", "-b", "other/x", "--orphan", t]).ok();
        let s = src.to_str().unwrap();
        for dest_mode in ["archive", "bare-user", "bare"] {
            let ours = dir.path().join(format!("ours-{src_mode}-{dest_mode}"));
            let theirs = dir.path().join(format!("theirs-{src_mode}-{dest_mode}"));
            let case = format!("{src_mode} -> {dest_mode}");
            for (run, repo) in [
                (rostree as fn(&Path, &[&str]) -> Run, &ours),
                (ostree, &theirs),
            ] {
                run(repo, &["init", &format!("--mode={dest_mode}")]).ok();
                run(repo, &["pull-local", "--depth=-1", s, "main"]).ok();
                run(repo, &["pull-local", "--remote=up", s, "other/x"]).ok();
                run(repo, &["pull-local", s, first.trim()]).ok();
            }
            assert_eq!(
                rostree(&ours, &["refs"]).ok(),
                ostree(&theirs, &["refs"]).ok(),
                "{case}"
            );
            for rev in ["main", "main^", "up:other/x"] {
                assert_eq!(
                    ostree(&ours, &["ls", "-R", "-C", "-X", rev]).ok(),
                    ostree(&theirs, &["ls", "-R", "-C", "-X", rev]).ok(),
                    "{case} {rev}"
                );
            }
            fsck_both(&ours);
            // Same mode: the objects are the source's files, hardlinked.
            let commit = rostree(&ours, &["rev-parse", "main"]).ok();
            let rel = format!("objects/{}/{}.commit", &commit[..2], commit[2..].trim());
            let (a, b) = (
                std::fs::metadata(src.join(&rel)).unwrap(),
                std::fs::metadata(ours.join(&rel)).unwrap(),
            );
            assert_eq!(a.ino() == b.ino(), src_mode == dest_mode, "{case}");
        }
    }
}

#[test]
fn pull_local_untrusted_copies_and_errors_match_ostree() {
    let dir = tempdir();
    let tree = small_tree(dir.path());
    let src = dir.path().join("src");
    ostree(&src, &["init", "--mode=bare-user"]).ok();
    ostree(&src, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let s = src.to_str().unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    rostree(&ours, &["init", "--mode=bare-user"]).ok();
    ostree(&theirs, &["init", "--mode=bare-user"]).ok();
    assert_eq!(
        rostree(&ours, &["pull-local", s, "nosuch"]).fails(),
        ostree(&theirs, &["pull-local", s, "nosuch"]).fails()
    );
    // Without refs: every branch of the source.
    assert_eq!(
        rostree(&ours, &["pull-local", "--untrusted", s]).ok(),
        ostree(&theirs, &["pull-local", "--untrusted", s]).ok()
    );
    assert_eq!(rostree(&ours, &["refs"]).ok(), "main\n");
    let commit = rostree(&ours, &["rev-parse", "main"]).ok();
    let rel = format!("objects/{}/{}.commit", &commit[..2], commit[2..].trim());
    assert_ne!(
        std::fs::metadata(src.join(&rel)).unwrap().ino(),
        std::fs::metadata(ours.join(&rel)).unwrap().ino()
    );
    fsck_both(&ours);
}
