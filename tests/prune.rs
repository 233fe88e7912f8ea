//! `prune` against the `ostree` oracle: each case runs `ostree prune` on one copy of a
//! repository and `rostree prune` on an identical copy, then compares exit status, standard
//! output and error, the files left in the repository (objects, detached metadata, partial
//! marks, summary caches) and the config.

mod common;

use common::{MODES, Run, ostree, rostree, sh, tempdir, write};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn commit(repo: &Path, args: &[&str]) -> String {
    let mut all = vec!["commit", "--fsync=false"];
    all.extend_from_slice(args);
    ostree(repo, &all).ok().trim().to_string()
}

fn tree_arg(dir: &Path) -> String {
    format!("--tree=dir={}", dir.display())
}

/// A repository with history and everything prune looks at:
/// - `main`: commits dated 2020-01-01 and 2021-01-01 (with detached metadata), then now;
/// - `side`: 2019-05-05, then now; a remote ref `origin:rbranch`;
/// - an orphan commit with detached metadata, and an orphan commit marked partial;
/// - the tree and files of a commit whose commit object is gone (unreachable from anything);
/// - summary caches for the configured remote `origin` and a vanished remote `gone`.
fn history_repo(base: &Path, mode: &str) -> PathBuf {
    let repo = base.join("repo");
    ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
    ostree(
        &repo,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "origin",
            "http://example.invalid/repo",
        ],
    )
    .ok();
    let t = base.join("t");
    write(&t.join("a/one"), b"1\n");
    write(&t.join("big"), &vec![7u8; 5000]);
    commit(
        &repo,
        &[
            "-b",
            "main",
            &tree_arg(&t),
            "--timestamp=2020-01-01",
            "-s",
            "one",
        ],
    );
    write(&t.join("a/two"), b"2\n");
    commit(
        &repo,
        &[
            "-b",
            "main",
            &tree_arg(&t),
            "--timestamp=2021-01-01",
            "--add-detached-metadata-string=sig=yes",
        ],
    );
    write(&t.join("b/three"), b"3\n");
    commit(&repo, &["-b", "main", &tree_arg(&t), "-s", "three"]);
    let s = base.join("s");
    write(&s.join("side"), b"side\n");
    commit(
        &repo,
        &["-b", "side", &tree_arg(&s), "--timestamp=2019-05-05"],
    );
    write(&s.join("side2"), b"side2\n");
    commit(&repo, &["-b", "side", &tree_arg(&s)]);
    write(&s.join("remote"), b"remote\n");
    let remote = commit(&repo, &["--orphan", &tree_arg(&s)]);
    write(
        &repo.join("refs/remotes/origin/rbranch"),
        format!("{remote}\n").as_bytes(),
    );
    let o = base.join("o");
    write(&o.join("orphan"), b"orphan\n");
    commit(
        &repo,
        &[
            "--orphan",
            &tree_arg(&o),
            "--add-detached-metadata-string=k=v",
        ],
    );
    write(&o.join("partial"), b"partial\n");
    let partial = commit(&repo, &["--orphan", &tree_arg(&o)]);
    write(&repo.join(format!("state/{partial}.commitpartial")), b"");
    let g = base.join("g");
    write(&g.join("gone/deep"), b"gone\n");
    let gone = commit(&repo, &["--orphan", &tree_arg(&g)]);
    std::fs::remove_file(
        repo.join("objects")
            .join(&gone[..2])
            .join(format!("{}.commit", &gone[2..])),
    )
    .unwrap();
    for cache in ["origin", "origin.sig", "gone", "gone.sig"] {
        write(&repo.join("tmp/cache/summaries").join(cache), b"cached");
    }
    repo
}

/// `main` is a chain of twelve commits dated one year apart; refs and remote refs point into
/// it, so what a depth-limited `--refs-only` keeps depends on the order ostree walks its refs
/// in (a ref whose commit another ref's walk already reached stops there).
fn overlapping_repo(base: &Path) -> PathBuf {
    let repo = base.join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = base.join("t");
    let mut chain = Vec::new();
    for i in 0..12 {
        write(&t.join(format!("f{i}")), format!("{i}\n").as_bytes());
        let ts = format!("--timestamp={}-01-01", 2000 + i);
        chain.push(commit(&repo, &["-b", "main", &tree_arg(&t), &ts]));
    }
    for (n, idx) in [10usize, 7, 6, 3, 2, 10].iter().enumerate() {
        ostree(&repo, &["refs", &format!("--create=br-{n}"), &chain[*idx]]).ok();
    }
    write(
        &repo.join("refs/remotes/up/x"),
        format!("{}\n", chain[8]).as_bytes(),
    );
    write(
        &repo.join("refs/remotes/up/y/z"),
        format!("{}\n", chain[5]).as_bytes(),
    );
    repo
}

/// Every file below the repository except its lock and config, with the contents of
/// everything but content-addressed objects.
fn snapshot(repo: &Path) -> BTreeSet<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let md = p.symlink_metadata().unwrap();
            if md.is_dir() {
                walk(root, &p, out);
            } else if rel != ".lock" && rel != "config" {
                // Objects are named by their content, except tombstones: compare those too.
                let data = if rel.starts_with("objects") && !rel.ends_with(".tombstone-commit") {
                    Vec::new()
                } else {
                    std::fs::read(&p).unwrap_or_default()
                };
                out.insert((rel, data));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(repo, repo, &mut out);
    out
}

fn objects(snap: &BTreeSet<(String, Vec<u8>)>) -> usize {
    snap.iter()
        .filter(|(p, _)| p.starts_with("objects/"))
        .count()
}

fn show(run: &Run) -> (Option<i32>, String, String) {
    (run.out.status.code(), run.stdout(), run.stderr())
}

/// Runs `prune ARGS` with both tools on identical copies of `base` and compares everything.
/// Returns ostree's standard output.
fn compare(base: &Path, args: &[&str]) -> String {
    let dir = tempdir();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    // Hard-linked copies: prune only unlinks and creates files, never rewrites one in place.
    for to in [&a, &b] {
        sh("cp", &["-al", base.to_str().unwrap(), to.to_str().unwrap()]).ok();
    }
    let mut full = vec!["prune"];
    full.extend_from_slice(args);
    let before = objects(&snapshot(&a));
    let oracle = show(&ostree(&a, &full));
    let ours = show(&rostree(&b, &full));
    assert_eq!(ours, oracle, "prune {args:?}: output");
    let (sa, sb) = (snapshot(&a), snapshot(&b));
    if sa != sb {
        let only_a: Vec<_> = sa.difference(&sb).map(|(p, _)| p).collect();
        let only_b: Vec<_> = sb.difference(&sa).map(|(p, _)| p).collect();
        panic!(
            "prune {args:?}: files differ\nonly after ostree: {only_a:?}\nonly after rostree: {only_b:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(b.join("config")).unwrap(),
        std::fs::read_to_string(a.join("config")).unwrap(),
        "prune {args:?}: config"
    );
    // The counts are real: what "Deleted N objects" says is what went away.
    if let Some(n) = oracle
        .1
        .lines()
        .find_map(|l| l.strip_prefix("Deleted "))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
    {
        let gone = before - objects(&sb);
        assert!(
            gone >= n,
            "prune {args:?}: {gone} objects gone, {n} reported"
        );
    }
    oracle.1
}

const OPTION_SETS: &[&[&str]] = &[
    &[],
    &["--no-prune"],
    &["--refs-only"],
    &["--refs-only", "--no-prune"],
    &["--depth=0"],
    &["--refs-only", "--depth=0"],
    &["--refs-only", "--depth=0", "--no-prune"],
    &["--refs-only", "--depth=1"],
    &["--keep-younger-than=2020-06-01"],
    &["--keep-younger-than=2020-06-01", "--no-prune"],
    &["--keep-younger-than=2021-06-01 00:00:00"],
    &["--keep-younger-than=@1600000000"],
    &["--keep-younger-than=2020-06-01T00:00:00Z"],
    &["--keep-younger-than=1 day ago"],
    &["--keep-younger-than=garbage"],
    &["--only-branch=main"],
    &["--only-branch=main", "--depth=0"],
    &["--only-branch=nonexistent"],
    &["--retain-branch-depth=main=0"],
    &["--retain-branch-depth=main=1", "--depth=0"],
    &["--retain-branch-depth=main"],
    &["--commit-only"],
    &["--commit-only", "--refs-only", "--depth=0"],
    &["--keep-younger-than=2020-06-01", "--commit-only"],
];

fn matches_in(mode: &str) {
    let dir = tempdir();
    let repo = history_repo(dir.path(), mode);
    let mut saw_delete = false;
    for args in OPTION_SETS {
        let out = compare(&repo, args);
        saw_delete |= out.contains("Deleted ");
    }
    assert!(saw_delete, "some option set must delete objects");
    // Deleting a commit: refused while a ref points at it; otherwise it goes (with its
    // detached metadata, leaving a tombstone) before the prune.
    let rev = |r: &str| ostree(&repo, &["rev-parse", r]).ok().trim().to_string();
    for target in [rev("main^"), rev("main"), "nonexistent".to_string()] {
        compare(&repo, &[&format!("--delete-commit={target}")]);
    }
    compare(&repo, &["--static-deltas-only"]);
}

#[test]
fn prune_bare_matches_ostree() {
    matches_in("bare");
}

#[test]
fn prune_bare_user_matches_ostree() {
    matches_in("bare-user");
}

#[test]
fn prune_bare_user_only_matches_ostree() {
    matches_in("bare-user-only");
}

#[test]
fn prune_archive_matches_ostree() {
    matches_in("archive");
}

/// Expected texts, so the comparison above cannot pass by both tools printing nothing.
#[test]
fn prune_reports_like_ostree() {
    let dir = tempdir();
    let repo = history_repo(dir.path(), "bare");
    let out = compare(&repo, &[]);
    assert!(out.starts_with("Total objects: "), "{out}");
    assert!(out.contains("Deleted 3 objects, "), "{out}");
    let out = compare(&repo, &["--refs-only", "--no-prune"]);
    assert!(out.contains("Would delete: "), "{out}");
    let dir2 = tempdir();
    let empty = dir2.path().join("empty");
    ostree(&empty, &["init", "--mode=archive"]).ok();
    assert_eq!(
        compare(&empty, &[]),
        "Total objects: 0\nNo unreachable objects\n"
    );
    let run = rostree(&repo, &["prune", "--keep-younger-than=garbage"]);
    assert_eq!(run.fails(), "error: Could not parse 'garbage'\n");
}

/// With a depth limit, refs are walked in ostree's hash-table order: a ref whose commit was
/// already reached through another stops there.
#[test]
fn refs_order_with_depth_matches_ostree() {
    let dir = tempdir();
    let repo = overlapping_repo(dir.path());
    let mut outputs = BTreeSet::new();
    for depth in 0..4 {
        let d = format!("--depth={depth}");
        outputs.insert(compare(&repo, &["--refs-only", &d]));
        compare(&repo, &["--refs-only", &d, "--commit-only"]);
    }
    assert!(
        outputs.len() > 1,
        "depths must make a difference: {outputs:?}"
    );
    compare(&repo, &["--keep-younger-than=2006-06-01"]);
    compare(&repo, &["--only-branch=br-2", "--depth=1"]);
    compare(
        &repo,
        &[
            "--retain-branch-depth=br-4=2",
            "--depth=1",
            "--keep-younger-than=2008-01-01",
        ],
    );
}

/// prune holds the repository lock exclusively, as ostree does: it gives up while another
/// process holds it, even with `--no-prune`.
#[test]
fn prune_takes_exclusive_lock() {
    for mode in MODES {
        let dir = tempdir();
        let repo = dir.path().join("repo");
        ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
        ostree(&repo, &["config", "set", "core.lock-timeout-secs", "0"]).ok();
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(repo.join(".lock"))
            .unwrap();
        rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::NonBlockingLockShared).unwrap();
        for args in [&["prune"][..], &["prune", "--no-prune"]] {
            let oracle = ostree(&repo, args).fails();
            let ours = rostree(&repo, args).fails();
            assert!(oracle.contains("Locking repo exclusive failed"), "{oracle}");
            assert!(ours.contains("Locking repo exclusive failed"), "{ours}");
        }
        drop(lock);
        assert_eq!(
            rostree(&repo, &["prune"]).ok(),
            "Total objects: 0\nNo unreachable objects\n"
        );
    }
}
