//! The commit metadata cache (`tmp/cache/rostree/meta/<commit>`) end to end, with real FUSE
//! mounts of repositories written by ostree: a first mount builds it, later mounts answer
//! `stat` from it (even for an object gone from disk, whose open still fails with EIO and a
//! log line naming it); damaged, foreign-version and other commits' caches are refused and
//! rebuilt; fsck, prune and ostree's own tmp cleanup leave it alone, and `rostree prune` drops
//! the caches of commits it deletes. Skipped (with a printed reason) only where /dev/fuse is
//! absent.

mod common;

use common::mount::{Mount, fuse_available, s};
use common::{ostree, rich_tree, rostree, tempdir, write};
use rostree_store::{ObjectId, Repo};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Type, mode, owner, size, blocks and link target of every entry but directories' sizes.
fn entries(root: &Path) -> String {
    let script = r"find . \( -type d -printf '%y %m %U %G - - %l %p\n' \) -o -printf '%y %m %U %G %s %b %l %p\n' | sort";
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(root)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(out.status.success(), "find in {}", root.display());
    String::from_utf8(out.stdout).unwrap()
}

fn commit_of(repo: &Path, rev: &str) -> ObjectId {
    ObjectId::from_hex(ostree(repo, &["rev-parse", rev]).ok().trim()).unwrap()
}

fn object_path(repo: &Path, rev: &str, path: &str) -> (String, PathBuf) {
    let out = ostree(repo, &["ls", "-C", rev, path]).ok();
    let id = out.split_whitespace().nth(4).unwrap().to_string();
    let objects = repo.join("objects").join(&id[..2]);
    let name = std::fs::read_dir(&objects)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with(&id[2..]))
        .unwrap();
    (id, objects.join(name))
}

fn cache_path(repo: &Path, commit: &ObjectId) -> PathBuf {
    Repo::open(repo).unwrap().meta_cache_path(commit)
}

/// Waits for the builder to have (re)written the cache at `path`, until `done` holds.
fn wait_for_cache(path: &Path, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let start = Instant::now();
    loop {
        if let Ok(bytes) = std::fs::read(path)
            && done(&bytes)
        {
            return bytes;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A repository of `mode` written by ostree, holding the rich tree at `main`, and a
/// checkout of it.
fn fixture(base: &Path, mode: &str) -> (PathBuf, PathBuf) {
    let tree = rich_tree(base);
    let repo = base.join(format!("repo-{mode}"));
    ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    let co = base.join(format!("co-{mode}"));
    ostree(&repo, &["checkout", "main", s(&co)]).ok();
    (repo, co)
}

/// Mounts `rev`, walks it all (which starts the builder), waits for its cache and unmounts;
/// returns the cache's bytes.
fn build_by_mounting(base: &Path, repo: &Path, rev: &str) -> Vec<u8> {
    let commit = commit_of(repo, rev);
    let path = cache_path(repo, &commit);
    let _ = std::fs::remove_file(&path);
    let mnt = base.join(format!("mnt-build-{}", &commit.to_hex()[..8]));
    let m = Mount::daemon(repo, &[rev], &mnt);
    entries(&m.path);
    let bytes = wait_for_cache(&path, |_| true);
    drop(m);
    bytes
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

/// In each mode: the cache a mount built is what the objects say; a fresh mount answers
/// `stat` from it, so a file whose object is gone still lists with its real metadata, while
/// opening it fails with EIO and a log line naming the object. Without the cache
/// (`--no-meta-cache`) the same stat fails: the cache was what answered.
#[test]
fn a_built_cache_answers_stat_and_never_content() {
    if !fuse_available() {
        return;
    }
    for mode in ["archive", "bare-user", "bare"] {
        let tmp = tempdir();
        let (repo, co) = fixture(tmp.path(), mode);
        let expected = entries(&co);
        build_by_mounting(tmp.path(), &repo, "main");
        let commit = commit_of(&repo, "main");
        let store = Repo::open(&repo).unwrap();
        let cache = store.load_meta_cache(&commit, u64::MAX).unwrap().unwrap();
        let ids = store.commit_content_ids(&commit, usize::MAX).unwrap();
        assert_eq!(cache.len(), ids.len(), "{mode}: every object recorded");
        for id in &ids {
            assert_eq!(
                cache.get(id).unwrap(),
                store.content_meta(id).unwrap(),
                "{mode}: {id}"
            );
        }

        let (hello, hello_obj) = object_path(&repo, "main", "/hello.txt");
        std::fs::remove_file(&hello_obj).unwrap();
        let mnt = tmp.path().join("mnt");
        let log = tmp.path().join("log");
        let mut m = Mount::foreground(&repo, &["main"], &mnt, &log);
        assert_eq!(entries(&mnt), expected, "{mode}: stat from the cache");
        assert_eq!(
            errno_of(std::fs::read(mnt.join("hello.txt"))),
            Some(libc::EIO),
            "{mode}"
        );
        assert_eq!(std::fs::read(mnt.join("many/f00042")).unwrap(), b"42\n");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains(&hello),
            "{mode}: log names {hello}:\n{logged}"
        );
        rostree(&repo, &["umount", s(&mnt)]).ok();
        assert!(m.wait_exit());

        let m = Mount::foreground(&repo, &["--no-meta-cache", "main"], &mnt, &log);
        assert_eq!(
            errno_of(std::fs::symlink_metadata(mnt.join("hello.txt"))),
            Some(libc::EIO),
            "{mode}: without the cache"
        );
        drop(m);
    }
}

/// Truncated, damaged, foreign-version and another commit's caches are refused (the mount
/// shows the objects' real metadata and logs why) and rebuilt to the right one.
#[test]
fn refused_caches_are_ignored_and_rebuilt() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let (repo, co) = fixture(tmp.path(), "archive");
    let expected = entries(&co);
    let good = build_by_mounting(tmp.path(), &repo, "main");
    let commit = commit_of(&repo, "main");
    let path = cache_path(&repo, &commit);

    // A second commit: its cache is a well-formed file, for another commit.
    let tree2 = tmp.path().join("tree2");
    write(&tree2.join("only"), b"other\n");
    ostree(
        &repo,
        &[
            "commit",
            "-b",
            "other",
            &format!("--tree=dir={}", s(&tree2)),
        ],
    )
    .ok();
    let other = build_by_mounting(tmp.path(), &repo, "other");

    let mut flipped = good.clone();
    // A record's mode: trusted, it would show in `find`.
    flipped[64 + 41] ^= 0o1;
    let mut foreign = good[..good.len() - 32].to_vec();
    foreign[8..12].copy_from_slice(&2u32.to_le_bytes());
    let sum = ObjectId::digest(&foreign);
    foreign.extend_from_slice(sum.as_bytes());
    let cases = [
        (
            "cut in half",
            good[..good.len() / 2].to_vec(),
            "checksum mismatch",
        ),
        ("cut short", good[..40].to_vec(), "truncated"),
        ("flipped", flipped, "checksum mismatch"),
        ("foreign version", foreign, "version 2"),
        ("another commit's", other, "another commit"),
    ];
    for (n, (what, bytes, why)) in cases.into_iter().enumerate() {
        std::fs::write(&path, &bytes).unwrap();
        let mnt = tmp.path().join(format!("mnt-{n}"));
        let log = tmp.path().join(format!("log-{n}"));
        let m = Mount::foreground(&repo, &["main"], &mnt, &log);
        assert_eq!(entries(&mnt), expected, "{what}: real metadata");
        let rebuilt = wait_for_cache(&path, |b| b == good.as_slice());
        assert_eq!(rebuilt, good, "{what}: rebuilt");
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(
            logged.contains(why) && logged.contains(s(&path)),
            "{what}: log says why:\n{logged}"
        );
        drop(m);
    }
}

/// ostree's and rostree's fsck and prune, and ostree's tmp cleanup (which removes tmp/
/// entries older than a day, but never tmp/cache), leave the cache alone; `rostree prune`
/// drops the caches of the commits it deletes, and of those only.
#[test]
fn fsck_prune_and_tmp_cleanup_leave_caches_alone() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let (repo, _) = fixture(tmp.path(), "archive");
    let old = commit_of(&repo, "main");
    let old_cache = build_by_mounting(tmp.path(), &repo, "main");
    let tree2 = tmp.path().join("tree2");
    write(&tree2.join("only"), b"next\n");
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree2))],
    )
    .ok();
    let new = commit_of(&repo, "main");
    let new_cache = build_by_mounting(tmp.path(), &repo, "main");
    let (old_path, new_path) = (cache_path(&repo, &old), cache_path(&repo, &new));
    let unchanged = |what: &str| {
        assert_eq!(std::fs::read(&old_path).unwrap(), old_cache, "{what}");
        assert_eq!(std::fs::read(&new_path).unwrap(), new_cache, "{what}");
    };
    ostree(&repo, &["fsck"]).ok();
    rostree(&repo, &["fsck"]).ok();
    unchanged("fsck");
    // Two days old: ostree's cleanup would remove anything else in tmp/.
    let two_days_ago = "--date=@".to_string() + &(now_secs() - 2 * 86400).to_string();
    for p in ["tmp/cache", "tmp/cache/rostree", "tmp/cache/rostree/meta"] {
        let status = Command::new("touch")
            .args(["-h", &two_days_ago])
            .arg(repo.join(p))
            .status()
            .unwrap();
        assert!(status.success());
    }
    ostree(
        &repo,
        &[
            "commit",
            "-b",
            "scratch",
            &format!("--tree=dir={}", s(&tree2)),
        ],
    )
    .ok();
    ostree(&repo, &["prune", "--refs-only"]).ok();
    unchanged("ostree commit (tmp cleanup) and prune");
    rostree(&repo, &["prune", "--refs-only"]).ok();
    unchanged("rostree prune keeping both commits");
    // Only the refs' own commits kept: the old one, `main`'s parent, goes.
    rostree(&repo, &["prune", "--refs-only", "--depth=0"]).ok();
    assert!(!old_path.exists(), "the pruned commit's cache goes");
    assert_eq!(std::fs::read(&new_path).unwrap(), new_cache);
    ostree(&repo, &["fsck"]).ok();
}

/// Seconds since the epoch.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
