//! `fsck` against the `ostree` oracle: clean repositories in every mode, and every kind of
//! corruption (flipped byte, truncation, deletion, garbage) of file, dirtree, dirmeta and
//! commit objects, with and without `--all` / `--delete`. Each case runs both tools on
//! identical copies and compares exit status, standard error and standard output exactly
//! (progress lines, which ostree rate-limits by wall-clock time, by their first and last line).

mod common;

use common::{MODES, Run, chmod, ostree, rich_tree, rostree, sh, tempdir, write};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Runs `ostree commit` and returns the new commit.
fn commit(repo: &Path, args: &[&str]) -> String {
    let mut all = vec!["commit", "--fsync=false"];
    all.extend_from_slice(args);
    ostree(repo, &all).ok().trim().to_string()
}

fn init(repo: &Path, mode: &str) {
    ostree(repo, &["init", &format!("--mode={mode}")]).ok();
}

/// A small tree with every kind of entry: files, an executable, a symlink, nested
/// directories, an empty file and directory, an xattr.
fn small_tree(base: &Path, name: &str) -> PathBuf {
    let root = base.join(name);
    write(&root.join("hello.txt"), b"Hello world!\n");
    write(&root.join("empty"), b"");
    write(&root.join("bin/tool"), b"#!/bin/sh\necho tool\n");
    chmod(&root.join("bin/tool"), 0o755);
    write(&root.join("bin/other"), b"other\n");
    write(&root.join("sub/deep/leaf"), b"leaf\n");
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    write(&root.join("sub/big.bin"), &big);
    std::fs::create_dir_all(root.join("empty-dir")).unwrap();
    std::os::unix::fs::symlink("hello.txt", root.join("link")).unwrap();
    common::set_xattr(&root.join("hello.txt"), "user.k", b"v");
    root
}

/// A repository holding `main` (two commits), `other`, and an orphan commit.
struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    main: String,
    parent: String,
}

fn fixture(mode: &str, rich: bool) -> Fixture {
    let dir = tempdir();
    let repo = dir.path().join("repo");
    init(&repo, mode);
    let tree = if rich {
        rich_tree(dir.path())
    } else {
        small_tree(dir.path(), "tree")
    };
    let t = format!("--tree=dir={}", tree.display());
    let parent = commit(&repo, &["-b", "main", &t, "-s", "one"]);
    write(&tree.join("hello.txt"), b"changed\n");
    write(&tree.join("new/file"), b"new\n");
    let main = commit(&repo, &["-b", "main", &t, "-s", "two"]);
    let other = small_tree(dir.path(), "other");
    write(&other.join("extra"), b"extra\n");
    commit(
        &repo,
        &["-b", "other", &format!("--tree=dir={}", other.display())],
    );
    let orphan = small_tree(dir.path(), "orphan");
    write(&orphan.join("o"), b"orphan\n");
    commit(
        &repo,
        &["--orphan", &format!("--tree=dir={}", orphan.display())],
    );
    Fixture {
        _dir: dir,
        repo,
        main,
        parent,
    }
}

/// Copies a repository with `cp -a` (keeping owners, modes and xattrs).
fn copy(repo: &Path, to: &Path) {
    sh("cp", &["-a", repo.to_str().unwrap(), to.to_str().unwrap()]).ok();
}

/// Copies a repository's directories, hard-linking its files: neither tool rewrites a file in
/// place (they unlink and create), so the copies stay independent; damage is done on a
/// private copy of the object (see [`unshare`]).
fn link_copy(repo: &Path, to: &Path) {
    sh("cp", &["-al", repo.to_str().unwrap(), to.to_str().unwrap()]).ok();
}

/// Replaces a hard-linked file by a private copy with the same owner, mode and xattrs.
fn unshare(path: &Path) {
    let tmp = path.with_extension("unshare-tmp");
    sh("cp", &["-a", path.to_str().unwrap(), tmp.to_str().unwrap()]).ok();
    std::fs::rename(&tmp, path).unwrap();
}

/// The path of a loose object.
fn object(repo: &Path, csum: &str, ty: &str) -> PathBuf {
    let archive = std::fs::read_to_string(repo.join("config"))
        .unwrap()
        .contains("mode=archive");
    let suffix = if ty == "file" && archive { "filez" } else { ty };
    repo.join("objects")
        .join(&csum[..2])
        .join(format!("{}.{suffix}", &csum[2..]))
}

/// `ostree ls -C`: the content checksum of a file, or the (dirtree, dirmeta) of a directory.
fn ls_checksums(repo: &Path, rev: &str, path: &str) -> Vec<String> {
    let out = ostree(repo, &["ls", "-d", "-C", rev, path]).ok();
    let fields: Vec<&str> = out.split_whitespace().collect();
    fields[4..]
        .iter()
        .take_while(|f| f.len() == 64)
        .map(|s| s.to_string())
        .collect()
}

/// Output of one fsck, split for comparison.
#[derive(Debug)]
struct Outcome {
    code: Option<i32>,
    lines: Vec<String>,
    progress: Vec<String>,
    err: String,
}

fn outcome(run: &Run) -> Outcome {
    let out = run.stdout();
    let (progress, lines) = out
        .lines()
        .map(str::to_string)
        .partition(|l| l.starts_with("fsck objects ("));
    Outcome {
        code: run.out.status.code(),
        lines,
        progress,
        err: run.stderr(),
    }
}

fn assert_same(oracle: &Outcome, ours: &Outcome, what: &str) {
    assert!(
        !ours.err.contains("panicked"),
        "{what}: rostree panicked:\n{}",
        ours.err
    );
    assert_eq!(
        ours.code, oracle.code,
        "{what}: exit status\n{oracle:#?}\n{ours:#?}"
    );
    assert_eq!(ours.err, oracle.err, "{what}: stderr");
    assert_eq!(ours.lines, oracle.lines, "{what}: stdout");
    assert_eq!(
        ours.progress.first(),
        oracle.progress.first(),
        "{what}: first progress line"
    );
    let done = |o: &Outcome| o.progress.iter().find(|l| l.ends_with(" 100%")).cloned();
    assert_eq!(done(ours), done(oracle), "{what}: final progress line");
}

/// Every file below the repository except the lock, as (relative path, content if a file).
fn snapshot(repo: &Path) -> BTreeSet<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = p.symlink_metadata().unwrap();
            if md.is_dir() {
                walk(root, &p, out);
            } else if rel != ".lock" {
                let data = if md.is_file() && rel.starts_with("state") {
                    std::fs::read(&p).unwrap()
                } else {
                    Vec::new()
                };
                out.insert((rel, data));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(repo, repo, &mut out);
    out
}

/// A way to damage an object.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// XOR one byte at this fraction of the length.
    Flip(f64),
    /// Keep this fraction of the bytes.
    Truncate(f64),
    /// Append garbage.
    Junk,
    /// Remove the object.
    Delete,
}

fn damage(path: &Path, how: Damage) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(path).unwrap().len();
    // In place, so a bare-user object keeps its xattr and a bare object its owner.
    let open = || {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    };
    match how {
        Damage::Flip(at) => {
            let at = ((len as f64 * at) as u64).min(len - 1);
            let mut data = std::fs::read(path).unwrap();
            data[at as usize] ^= 0x55;
            let mut f = open();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&data[at as usize..at as usize + 1]).unwrap();
        }
        Damage::Truncate(keep) => open().set_len((len as f64 * keep) as u64).unwrap(),
        Damage::Junk => {
            let mut f = open();
            f.seek(SeekFrom::End(0)).unwrap();
            f.write_all(b"junkjunk\n").unwrap();
        }
        Damage::Delete => std::fs::remove_file(path).unwrap(),
    }
}

/// Runs `fsck ARGS` with both tools on two identical damaged copies and compares everything;
/// after `--delete`, also compares the repaired repositories and what the oracle's own fsck
/// says about each.
fn compare_damaged(base: &Path, victims: &[(PathBuf, Damage)], args: &[&str], what: &str) {
    compare_damaged_expect(base, victims, args, what, true);
}

fn compare_damaged_expect(
    base: &Path,
    victims: &[(PathBuf, Damage)],
    args: &[&str],
    what: &str,
    must_fail: bool,
) {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    link_copy(base, &a);
    for (obj, how) in victims {
        let target = a.join(obj.strip_prefix(base).unwrap());
        unshare(&target);
        damage(&target, *how);
    }
    link_copy(&a, &b);
    let mut full = vec!["fsck"];
    full.extend_from_slice(args);
    let oracle = outcome(&ostree(&a, &full));
    let ours = outcome(&rostree(&b, &full));
    assert_same(&oracle, &ours, what);
    if must_fail {
        assert_ne!(ours.code, Some(0), "{what}: corruption must fail fsck");
    }
    assert_eq!(
        snapshot(&b),
        snapshot(&a),
        "{what}: repository after fsck (objects deleted, commits marked partial)"
    );
    if args.contains(&"--delete") {
        // The oracle judges the repository rostree repaired exactly as its own.
        let oracle_on_ours = outcome(&ostree(&b, &["fsck"]));
        let oracle_on_own = outcome(&ostree(&a, &["fsck"]));
        assert_same(
            &oracle_on_own,
            &oracle_on_ours,
            &format!("{what}, oracle fsck after"),
        );
        let ours_after = outcome(&rostree(&b, &["fsck"]));
        assert_same(&oracle_on_ours, &ours_after, &format!("{what}, fsck after"));
    }
}

fn clean_matches(mode: &str) {
    let f = fixture(mode, true);
    for args in [&["fsck"][..], &["fsck", "-q"]] {
        let oracle = ostree(&f.repo, args);
        let ours = rostree(&f.repo, args);
        let (o, r) = (outcome(&oracle), outcome(&ours));
        assert_same(&o, &r, &format!("{mode} clean {args:?}"));
        assert_eq!(r.code, Some(0));
        assert!(r.err.is_empty());
        assert!(
            r.lines
                .last()
                .unwrap()
                .starts_with("object fsck of 4 commits completed")
        );
    }
    // Many damaged objects at once: the order of the reports is ostree's hash-table order.
    let mut victims = Vec::new();
    for (i, name) in ["f00010", "f00500", "f01234", "f02999"].iter().enumerate() {
        let csum = &ls_checksums(&f.repo, "main", &format!("/many/{name}"))[0];
        let how = if i % 2 == 0 {
            Damage::Flip(0.5)
        } else {
            Damage::Delete
        };
        victims.push((object(&f.repo, csum, "file"), how));
    }
    let deep = ls_checksums(&f.repo, "main", "/deep/d0/d1/d2");
    victims.push((object(&f.repo, &deep[1], "dirmeta"), Damage::Truncate(0.5)));
    let big = &ls_checksums(&f.repo, "main", "/big.bin")[0];
    victims.push((object(&f.repo, big, "file"), Damage::Truncate(0.5)));
    compare_damaged(&f.repo, &victims, &["--all"], &format!("{mode} rich, many"));
    compare_damaged(
        &f.repo,
        &victims,
        &["--delete"],
        &format!("{mode} rich, many"),
    );
}

#[test]
fn clean_rich_bare_matches_ostree() {
    clean_matches("bare");
}

#[test]
fn clean_rich_bare_user_matches_ostree() {
    clean_matches("bare-user");
}

#[test]
fn clean_rich_bare_user_only_matches_ostree() {
    clean_matches("bare-user-only");
}

#[test]
fn clean_rich_archive_matches_ostree() {
    clean_matches("archive");
}

#[test]
fn empty_repo_matches_ostree() {
    for mode in MODES {
        let dir = tempdir();
        let repo = dir.path().join("repo");
        init(&repo, mode);
        let (o, r) = (ostree(&repo, &["fsck"]), rostree(&repo, &["fsck"]));
        assert_eq!(r.ok(), o.ok());
        assert!(
            r.stdout()
                .contains("Verifying content integrity of 0 commit objects...")
        );
    }
}

/// Every damage to every object type, in one mode.
fn corruptions_match(mode: &str) {
    let f = fixture(mode, false);
    let repo = &f.repo;
    let hello = &ls_checksums(repo, "main", "/hello.txt")[0];
    let big = &ls_checksums(repo, "main", "/sub/big.bin")[0];
    let bin = ls_checksums(repo, "main", "/bin");
    let sub = ls_checksums(repo, "main", "/sub");
    let root = ls_checksums(repo, "main", "/");
    let file = |c: &str| object(repo, c, "file");
    // (case, object, damage, also with --all)
    let cases: Vec<(&str, PathBuf, Damage, bool)> = vec![
        ("file flipped", file(hello), Damage::Flip(0.5), true),
        ("file truncated", file(big), Damage::Truncate(0.5), false),
        ("file deleted", file(hello), Damage::Delete, false),
        (
            "dirtree flipped",
            object(repo, &bin[0], "dirtree"),
            Damage::Flip(0.3),
            true,
        ),
        (
            "dirtree flipped late",
            object(repo, &sub[0], "dirtree"),
            Damage::Flip(0.9),
            false,
        ),
        (
            "dirtree truncated",
            object(repo, &bin[0], "dirtree"),
            Damage::Truncate(0.5),
            false,
        ),
        (
            "dirtree emptied",
            object(repo, &sub[0], "dirtree"),
            Damage::Truncate(0.0),
            false,
        ),
        (
            "dirtree junk",
            object(repo, &root[0], "dirtree"),
            Damage::Junk,
            true,
        ),
        (
            "dirtree deleted",
            object(repo, &bin[0], "dirtree"),
            Damage::Delete,
            false,
        ),
        (
            "dirmeta flipped",
            object(repo, &bin[1], "dirmeta"),
            Damage::Flip(0.5),
            false,
        ),
        (
            "dirmeta truncated",
            object(repo, &bin[1], "dirmeta"),
            Damage::Truncate(0.5),
            false,
        ),
        (
            "dirmeta deleted",
            object(repo, &root[1], "dirmeta"),
            Damage::Delete,
            false,
        ),
        (
            "ref commit flipped",
            object(repo, &f.main, "commit"),
            Damage::Flip(0.5),
            true,
        ),
        (
            "ref commit truncated",
            object(repo, &f.main, "commit"),
            Damage::Truncate(0.5),
            false,
        ),
        (
            "ref commit deleted",
            object(repo, &f.main, "commit"),
            Damage::Delete,
            false,
        ),
        (
            "parent commit flipped",
            object(repo, &f.parent, "commit"),
            Damage::Flip(0.4),
            false,
        ),
        (
            "parent commit truncated",
            object(repo, &f.parent, "commit"),
            Damage::Truncate(0.6),
            true,
        ),
    ];
    for (name, path, how, with_all) in &cases {
        let mut runs = vec![&[][..], &["--delete"][..]];
        if *with_all {
            runs.push(&["--all"]);
        }
        for args in runs {
            let what = format!("{mode}: {name} {args:?}");
            compare_damaged(repo, &[(path.clone(), *how)], args, &what);
        }
    }
    // History beyond a deleted parent is simply not walked: fsck stays clean, as in ostree.
    let parent = object(repo, &f.parent, "commit");
    let what = format!("{mode}: parent commit deleted");
    compare_damaged_expect(repo, &[(parent, Damage::Delete)], &[], &what, false);
}

#[test]
fn corruptions_bare_match_ostree() {
    corruptions_match("bare");
}

#[test]
fn corruptions_bare_user_match_ostree() {
    corruptions_match("bare-user");
}

#[test]
fn corruptions_bare_user_only_match_ostree() {
    corruptions_match("bare-user-only");
}

#[test]
fn corruptions_archive_match_ostree() {
    corruptions_match("archive");
}

/// A corrupt object is named with its checksum and type, and the commit containing it.
#[test]
fn corrupt_object_is_named() {
    let f = fixture("bare", false);
    let hello = ls_checksums(&f.repo, "main", "/hello.txt")[0].clone();
    let dir = tempdir();
    let b = dir.path().join("b");
    copy(&f.repo, &b);
    damage(&object(&b, &hello, "file"), Damage::Flip(0.5));
    let err = rostree(&b, &["fsck"]).fails();
    assert!(
        err.starts_with(&format!(
            "error: In commits {}: fsck content object {hello}: Corrupted file object; checksum expected='{hello}' actual='",
            f.main
        )),
        "{err}"
    );
    // --delete removes it and marks the commit partial with reason `f`.
    let err = rostree(&b, &["fsck", "--delete"]).fails();
    assert!(
        err.contains(&format!("Marking commit as partial: {}", f.main)),
        "{err}"
    );
    assert!(
        err.ends_with("error: Repository corruption encountered\n"),
        "{err}"
    );
    assert!(!object(&b, &hello, "file").exists());
    let partial = b.join(format!("state/{}.commitpartial", f.main));
    assert_eq!(std::fs::read(partial).unwrap(), b"f");
    let run = rostree(&b, &["fsck"]);
    assert!(run.stdout().contains("1 partial commits not verified"));
    assert_eq!(
        run.fails(),
        "error: 1 partial commits from fsck-detected corruption\n"
    );
}

/// A ref to a missing commit fails in the refs phase, naming the ref.
#[test]
fn ref_to_missing_commit_matches_ostree() {
    let f = fixture("archive", false);
    let dir = tempdir();
    let a = dir.path().join("a");
    copy(&f.repo, &a);
    write(
        &a.join("refs/heads/dangling"),
        format!("{}\n", "ab".repeat(32)).as_bytes(),
    );
    let mut remote = "cd".repeat(32);
    remote.push('\n');
    write(&a.join("refs/remotes/origin/x"), remote.as_bytes());
    let (o, r) = (ostree(&a, &["fsck"]), rostree(&a, &["fsck"]));
    assert_same(&outcome(&o), &outcome(&r), "dangling refs");
    assert!(
        r.stderr().contains("Loading commit for ref "),
        "{}",
        r.stderr()
    );
}

/// Arbitrary bytes in place of metadata and content objects: no panic, and the oracle's
/// verdict whenever the oracle itself survives.
#[test]
fn garbage_never_panics() {
    let f = fixture("archive", false);
    let repo = &f.repo;
    let bin = ls_checksums(repo, "main", "/bin");
    let hello = ls_checksums(repo, "main", "/hello.txt")[0].clone();
    let targets = [
        object(repo, &bin[0], "dirtree"),
        object(repo, &bin[1], "dirmeta"),
        object(repo, &f.main, "commit"),
        object(repo, &f.parent, "commit"),
        object(repo, &hello, "file"),
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..12 {
        let target = &targets[round % targets.len()];
        let len = (next() % 300) as usize;
        let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let dir = tempdir();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        link_copy(repo, &a);
        let victim = a.join(target.strip_prefix(repo).unwrap());
        unshare(&victim);
        std::fs::write(&victim, &garbage).unwrap();
        link_copy(&a, &b);
        for args in [&["fsck", "--all"][..], &["fsck", "--delete"]] {
            let ours = rostree(&b, args);
            let what = format!("garbage round {round} in {}", target.display());
            assert_eq!(ours.out.status.code(), Some(1), "{what}: {}", ours.stderr());
            assert!(!ours.stderr().contains("panicked"), "{what}");
            let oracle = ostree(&a, args);
            if oracle.out.status.code().is_some() && !oracle.stderr().contains("CRITICAL") {
                assert_same(&outcome(&oracle), &outcome(&ours), &what);
            }
        }
    }
}

/// fsck takes no repository lock: it runs while another process holds it exclusively.
#[test]
fn fsck_takes_no_lock() {
    let f = fixture("bare-user", false);
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(f.repo.join(".lock"))
        .unwrap();
    rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let out = rostree(&f.repo, &["fsck"]).ok();
    assert!(
        out.ends_with("completed successfully - no errors found.\n"),
        "{out}"
    );
}
