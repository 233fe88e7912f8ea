//! The mount daemon's memory stays bounded: a 100,000-file commit walked in full three
//! times (every entry stat'ed, a sample of files read), with the kernel made to forget its
//! inodes between walks so that every walk goes through the daemon again. Its resident size
//! after the third walk is no more than after the first (give or take 10%) and under
//! 200 MiB: on a first mount, which builds the commit's metadata cache meanwhile, and on a
//! second, which answers from it. Skipped (with a printed reason) only where /dev/fuse is absent.

mod common;

use common::mount::{Mount, fuse_available};
use common::{is_root, tempdir};
use rostree_store::format::{Commit, DirMeta, DirTree, FileHeader, S_IFDIR, S_IFREG, Xattrs};
use rostree_store::{ContentSource, ObjectId, ObjectType, Repo, RepoMode, Transaction};
use std::io::Read;
use std::path::Path;

/// Files in the tree: 1,000 folders of 100.
const FILES: usize = 100_000;
const PER_DIR: usize = 100;
/// One file in this many is read whole on each walk.
const READ_EVERY: usize = 97;
/// The ceiling on the daemon's resident size, in KiB.
const MAX_RSS_KIB: u64 = 200 * 1024;

fn header(mode: u32) -> FileHeader {
    FileHeader {
        uid: 0,
        gid: 0,
        mode,
        symlink_target: String::new(),
        xattrs: Xattrs::default(),
    }
}

/// A bare-user repository whose `main` holds small files with distinct contents (so,
/// distinct objects), two folder levels deep. Written through the store, folders in
/// parallel: no source tree to create and delete first.
fn generate_repo(path: &Path) {
    let repo = Repo::init(path, RepoMode::BareUser).unwrap();
    let tx = repo.begin().unwrap();
    let dirmeta = DirMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o755,
        xattrs: Xattrs::default(),
    };
    let meta = tx
        .write_meta(ObjectType::DirMeta, &dirmeta.to_bytes())
        .unwrap();
    let file = header(S_IFREG | 0o644);
    let folders = FILES / PER_DIR;
    let threads = 4;
    let leaves: Vec<Vec<(usize, ObjectId)>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (tx, file) = (&tx, &file);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for d in (t..folders).step_by(threads) {
                        let mut tree = DirTree::default();
                        for f in 0..PER_DIR {
                            let data = format!("{d} {f}\n").repeat(f % 7 + 1);
                            let src = ContentSource::Bytes(data.as_bytes());
                            let id = Transaction::checksum_content(file, &src).unwrap();
                            let len = data.len() as u64;
                            tx.write_content(&id, file, len, ContentSource::Bytes(data.as_bytes()))
                                .unwrap();
                            tree.files.insert(format!("f{f:03}"), id);
                        }
                        let id = tx
                            .write_meta(ObjectType::DirTree, &tree.to_bytes())
                            .unwrap();
                        out.push((d, id));
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut parents: Vec<DirTree> = (0..folders.div_ceil(100))
        .map(|_| DirTree::default())
        .collect();
    for (d, id) in leaves.into_iter().flatten() {
        parents[d / 100].dirs.insert(format!("s{d:04}"), (id, meta));
    }
    let mut root = DirTree::default();
    for (p, tree) in parents.iter().enumerate() {
        let id = tx
            .write_meta(ObjectType::DirTree, &tree.to_bytes())
            .unwrap();
        root.dirs.insert(format!("d{p:02}"), (id, meta));
    }
    let root_tree = tx
        .write_meta(ObjectType::DirTree, &root.to_bytes())
        .unwrap();
    let commit = Commit {
        subject: "100,000 files".into(),
        ..Commit::of_tree(root_tree, meta)
    };
    let commit = rostree_store::commit::write_commit(&tx, &commit).unwrap();
    tx.set_ref(None, "main", Some(commit));
    tx.commit().unwrap();
}

/// Stats every entry below `root` and reads every `READ_EVERY`th file whole; returns the
/// number of files seen.
fn walk(root: &Path) -> usize {
    let mut files = 0;
    let mut stack = vec![root.to_path_buf()];
    let mut buf = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                if files % READ_EVERY == 0 {
                    buf.clear();
                    std::fs::File::open(&path)
                        .unwrap()
                        .read_to_end(&mut buf)
                        .unwrap();
                    assert_eq!(buf.len() as u64, meta.len(), "{}", path.display());
                }
            }
        }
    }
    files
}

/// The resident size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Makes the kernel forget the dentries and inodes it can (the page cache stays), so the
/// next walk looks every entry up through the daemon again.
fn forget_inodes() {
    if is_root() {
        std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    } else {
        eprintln!("not root: the kernel keeps its inodes between walks");
    }
}

#[test]
fn daemon_memory_stays_bounded_over_repeated_walks() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    generate_repo(&repo);
    // The first mount builds the commit's metadata cache while it is walked; the second
    // answers every stat from it.
    walks_stay_bounded(
        &repo,
        &tmp.path().join("mnt-1"),
        "metadata cache being built",
    );
    let store = Repo::open(&repo).unwrap();
    let commit = store.resolve_rev("main").unwrap();
    let cache = store.meta_cache_path(&commit);
    let start = std::time::Instant::now();
    while !cache.exists() {
        assert!(
            start.elapsed().as_secs() < 120,
            "{} never written",
            cache.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    walks_stay_bounded(&repo, &tmp.path().join("mnt-2"), "metadata cache loaded");
    remove_objects(&repo);
}

/// Mounts `main` at `mnt`, walks it three times and checks the daemon's resident size.
fn walks_stay_bounded(repo: &Path, mnt: &Path, what: &str) {
    let log = mnt.with_extension("log");
    let m = Mount::foreground(repo, &["main"], mnt, &log);
    let pid = m.child.as_ref().unwrap().id();
    let mut rss = Vec::new();
    for _ in 0..3 {
        forget_inodes();
        assert_eq!(walk(mnt), FILES);
        rss.push(rss_kib(pid));
    }
    eprintln!("{what}: daemon RSS after each walk (KiB): {rss:?}");
    assert!(
        rss[2] * 10 <= rss[0] * 11,
        "{what}: RSS grew from {} KiB after walk 1 to {} KiB after walk 3",
        rss[0],
        rss[2]
    );
    assert!(
        rss.iter().all(|&r| r < MAX_RSS_KIB),
        "{what}: RSS over {MAX_RSS_KIB} KiB: {rss:?}"
    );
    let errors = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(errors.is_empty(), "{what}: the daemon logged: {errors}");
    drop(m);
}

/// Deletes the repository's objects with a few threads (one at a time takes longer than
/// the rest of the test).
fn remove_objects(repo: &Path) {
    let dirs: Vec<_> = std::fs::read_dir(repo.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    std::thread::scope(|scope| {
        for chunk in dirs.chunks(dirs.len().div_ceil(4).max(1)) {
            scope.spawn(move || {
                for d in chunk {
                    let _ = std::fs::remove_dir_all(d);
                }
            });
        }
    });
}
