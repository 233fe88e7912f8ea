//! `mount` end to end, with real FUSE mounts: what tools see through a mount equals what they
//! see in an `ostree checkout` of the same commit, in every repo mode; diffs between mounted
//! commits; parallel readers; read-only; faults; signals; the whole-repository view.
//! Skipped (with a printed reason) only where /dev/fuse is absent.

mod common;

use common::mount::{Mount, fuse_available, is_mounted, s};
use common::{ostree, rich_tree, rostree, tempdir, write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs a shell script in `dir`, asserting success; returns stdout.
fn sh_in(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Type, mode, owner, size, blocks and link target of every entry (directory sizes depend on
/// the filesystem a checkout is on, so they are left out).
fn entries(root: &Path) -> String {
    sh_in(
        root,
        r"find . \( -type d -printf '%y %m %U %G - - %l %p\n' \) -o -printf '%y %m %U %G %s %b %l %p\n' | sort",
    )
}

fn hashes(root: &Path) -> String {
    sh_in(
        root,
        "find . -type f -print0 | sort -z | xargs -0 sha256sum",
    )
}

fn xattrs(root: &Path) -> String {
    sh_in(
        root,
        "find . -print0 | sort -z | xargs -0 getfattr -h -d -m - --absolute-names",
    )
}

fn checksum_of(repo: &Path, rev: &str, path: &str) -> String {
    let out = ostree(repo, &["ls", "-C", rev, path]).ok();
    out.split_whitespace().nth(4).unwrap().to_string()
}

fn commit_of(repo: &Path, rev: &str) -> String {
    ostree(repo, &["rev-parse", rev]).ok().trim().to_string()
}

/// A pseudo-random file bigger than what the mount inflates in memory.
fn big_file(path: &Path, mib: u32) -> Vec<u8> {
    let data: Vec<u8> = (0..mib * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2246822519).rotate_left(7) >> 11) as u8)
        .collect();
    write(path, &data);
    data
}

/// A repo of `mode` holding the rich tree (plus a large file) at `main`, and its checkout.
fn fixture(base: &Path, mode: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let tree = rich_tree(base);
    let large = big_file(&tree.join("large.bin"), 9);
    // Identical directories: one dirtree and dirmeta, two paths, two inodes.
    write(&tree.join("twin-a/x"), b"twin\n");
    write(&tree.join("twin-b/x"), b"twin\n");
    let repo = base.join(format!("repo-{mode}"));
    ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    let co = base.join("checkout");
    ostree(&repo, &["checkout", "main", s(&co)]).ok();
    (repo, co, large)
}

fn errno_of(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

fn assert_read_only(mnt: &Path) {
    let erofs = Some(libc::EROFS);
    assert_eq!(errno_of(std::fs::File::create(mnt.join("new-file"))), erofs);
    assert_eq!(
        errno_of(
            std::fs::OpenOptions::new()
                .write(true)
                .open(mnt.join("hello.txt"))
        ),
        erofs
    );
    assert_eq!(errno_of(std::fs::create_dir(mnt.join("new-dir"))), erofs);
    assert_eq!(errno_of(std::fs::remove_file(mnt.join("hello.txt"))), erofs);
    assert_eq!(
        errno_of(std::fs::rename(mnt.join("hello.txt"), mnt.join("moved"))),
        erofs
    );
    assert_eq!(
        errno_of(
            rustix::fs::setxattr(
                mnt.join("hello.txt"),
                "user.x",
                b"1",
                rustix::fs::XattrFlags::empty()
            )
            .map_err(std::io::Error::from)
        ),
        erofs
    );
    let touch = Command::new("touch")
        .arg(mnt.join("hello.txt"))
        .output()
        .unwrap();
    assert!(!touch.status.success());
    assert!(String::from_utf8_lossy(&touch.stderr).contains("Read-only file system"));
}

/// Reads at scattered offsets, backwards too: every read must equal the source.
fn assert_random_reads(file: &Path, data: &[u8]) {
    let f = std::fs::File::open(file).unwrap();
    let len = data.len() as u64;
    let mut offset: u64 = len - 1;
    for i in 0..64u64 {
        let size = 1 + (i * 7919) % 200_000;
        let mut buf = vec![0u8; size as usize];
        let n = f.read_at(&mut buf, offset).unwrap();
        let end = (offset + size).min(len);
        assert_eq!(n as u64, end - offset, "short read at {offset}");
        assert_eq!(
            &buf[..n],
            &data[offset as usize..end as usize],
            "bytes at {offset}"
        );
        offset = offset
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            % len;
    }
    let mut buf = [0u8; 16];
    assert_eq!(
        f.read_at(&mut buf, len + 100).unwrap(),
        0,
        "read past the end"
    );
}

/// `extra`: more `mount` options (e.g. `--no-passthrough` to serve every read from the daemon).
fn mount_matches_checkout(mode: &str, extra: &[&str]) {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let (repo, co, large) = fixture(tmp.path(), mode);
    let mnt = tmp.path().join("mnt");
    let start = Instant::now();
    let mut args = extra.to_vec();
    args.push("main");
    let m = Mount::daemon(&repo, &args, &mnt);
    eprintln!("{mode}: mount -d live in {:?}", start.elapsed());

    assert_eq!(entries(&mnt), entries(&co), "{mode}: find -printf");
    assert_eq!(hashes(&mnt), hashes(&co), "{mode}: sha256sum");
    assert_eq!(xattrs(&mnt), xattrs(&co), "{mode}: getfattr -d");
    let readlink = |root: &Path| std::fs::read_link(root.join("long-link")).unwrap();
    assert_eq!(readlink(&mnt), readlink(&co));
    assert_random_reads(&mnt.join("large.bin"), &large);
    assert_read_only(&mnt);

    assert_inodes_stable_and_unique(&mnt, mode);

    rostree(&repo, &["umount", s(&mnt)]).ok();
    assert!(!is_mounted(&mnt));
    drop(m);
}

/// Inode numbers: one per directory path (even for identical directories), shared by
/// identical file objects (like a hardlinked checkout), and the same for the life of the
/// mount, also once the kernel has forgotten them and looks them up again.
fn assert_inodes_stable_and_unique(mnt: &Path, mode: &str) {
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::symlink_metadata(mnt.join(p)).unwrap().ino();
    assert_ne!(
        ino("twin-a"),
        ino("twin-b"),
        "{mode}: same dirtree and dirmeta, two paths"
    );
    assert_eq!(ino("twin-a/x"), ino("twin-b/x"), "{mode}: one object");
    assert_eq!(ino("hardlink-a"), ino("hardlink-b"), "{mode}");
    assert_ne!(ino("hardlink-a"), ino("hello.txt"), "{mode}");
    let dirs = sh_in(mnt, "find . -type d -printf '%i\\n' | sort | uniq -d");
    assert_eq!(dirs, "", "{mode}: directory inodes used twice");
    let numbers = || sh_in(mnt, "find . -printf '%i %p\\n' | sort");
    let before = numbers();
    if common::is_root() {
        // The kernel forgets every inode it can; the walk after looks each one up again.
        std::fs::write("/proc/sys/vm/drop_caches", "2").unwrap();
    } else {
        eprintln!("{mode}: not root, so the kernel's inodes are not dropped between walks");
    }
    assert_eq!(numbers(), before, "{mode}: inode numbers changed");
}

#[test]
fn bare_mount_matches_checkout() {
    mount_matches_checkout("bare", &[]);
}

#[test]
fn bare_user_mount_matches_checkout() {
    mount_matches_checkout("bare-user", &["--no-passthrough"]);
}

#[test]
fn bare_user_mount_with_passthrough_matches_checkout() {
    mount_matches_checkout("bare-user", &[]);
}

#[test]
fn bare_user_only_mount_matches_checkout() {
    mount_matches_checkout("bare-user-only", &[]);
}

#[test]
fn archive_mount_matches_checkout() {
    mount_matches_checkout("archive", &[]);
}

#[test]
fn parallel_readers_see_identical_bytes() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let (repo, co, _) = fixture(tmp.path(), "archive");
    let mnt = tmp.path().join("mnt");
    let _m = Mount::daemon(&repo, &["main"], &mnt);
    let expected = hashes(&co);
    let readers: Vec<_> = (0..8)
        .map(|_| {
            Command::new("bash")
                .args([
                    "-c",
                    "find . -type f -print0 | sort -z | xargs -0 sha256sum",
                ])
                .current_dir(&mnt)
                .env("LC_ALL", "C")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
}

#[test]
fn diff_of_mounted_commits_matches_checkouts() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let tree = rich_tree(tmp.path());
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=bare-user"]).ok();
    let commit = || {
        ostree(
            &repo,
            &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
        )
        .ok();
    };
    commit();
    write(&tree.join("hello.txt"), b"Hello again!\n");
    std::fs::remove_file(tree.join("page")).unwrap();
    write(&tree.join("added/new.txt"), b"new\n");
    std::fs::remove_file(tree.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("with space", tree.join("rel-link")).unwrap();
    std::fs::remove_dir_all(tree.join("deep/d0/d1")).unwrap();
    write(&tree.join("many/f00007"), b"changed\n");
    commit();

    let (m, c) = (tmp.path().join("m"), tmp.path().join("c"));
    let _a = Mount::daemon(&repo, &["main^"], &m.join("a"));
    let _b = Mount::daemon(&repo, &["-o", "allow_other,noexec", "main"], &m.join("b"));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info.lines().find(|l| l.contains(s(&m.join("b")))).unwrap();
    assert!(
        line.contains("allow_other") && line.contains("noexec"),
        "{line}"
    );
    std::fs::create_dir(&c).unwrap();
    ostree(&repo, &["checkout", "main^", s(&c.join("a"))]).ok();
    ostree(&repo, &["checkout", "main", s(&c.join("b"))]).ok();
    let diff = |dir: &Path| {
        let out = Command::new("diff")
            .args(["-r", "--no-dereference", "a", "b"])
            .current_dir(dir)
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (mounted, checked_out) = (diff(&m), diff(&c));
    assert_eq!(mounted, checked_out);
    assert_eq!(mounted.0, Some(1), "the commits differ");
    assert!(mounted.1.contains("Only in a: page"), "{}", mounted.1);
}

#[test]
fn faults_fail_that_file_only() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let tree = rich_tree(tmp.path());
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    // Corrupt big.bin's compressed payload, delete hello.txt's object and a dirtree.
    let big = checksum_of(&repo, "main", "/big.bin");
    let big_obj = repo.join(format!("objects/{}/{}.filez", &big[..2], &big[2..]));
    let bytes = std::fs::read(&big_obj).unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&big_obj)
        .unwrap();
    let at = bytes.len() as u64 - 5000;
    f.write_at(&[bytes[at as usize] ^ 0x55], at).unwrap();
    let hello = checksum_of(&repo, "main", "/hello.txt");
    std::fs::remove_file(repo.join(format!("objects/{}/{}.filez", &hello[..2], &hello[2..])))
        .unwrap();
    let deep = ostree(&repo, &["ls", "-d", "-C", "main", "/deep/d0"]).ok();
    let deep_tree = deep.split_whitespace().nth(4).unwrap().to_string();
    std::fs::remove_file(repo.join(format!(
        "objects/{}/{}.dirtree",
        &deep_tree[..2],
        &deep_tree[2..]
    )))
    .unwrap();

    let mnt = tmp.path().join("mnt");
    let log = tmp.path().join("log");
    let eio = Some(libc::EIO);
    let mut m = Mount::foreground(&repo, &["main"], &mnt, &log);
    assert_eq!(errno_of(std::fs::read(mnt.join("big.bin"))), eio);
    assert_eq!(errno_of(std::fs::read(mnt.join("big.bin"))), eio, "again");
    assert_eq!(
        errno_of(std::fs::symlink_metadata(mnt.join("hello.txt"))),
        eio
    );
    assert_eq!(errno_of(std::fs::read_dir(mnt.join("deep/d0"))), eio);
    // The rest is intact, the listing too, and the daemon alive.
    let names: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().any(|n| n == "hello.txt"), "{names:?}");
    assert_eq!(std::fs::read(mnt.join("page")).unwrap(), vec![b'p'; 4096]);
    assert_eq!(std::fs::read(mnt.join("many/f00042")).unwrap(), b"42\n");
    let logged = std::fs::read_to_string(&log).unwrap();
    for id in [&big, &hello, &deep_tree] {
        assert!(logged.contains(id.as_str()), "log names {id}:\n{logged}");
    }
    rostree(&repo, &["umount", s(&mnt)]).ok();
    assert!(m.wait_exit(), "daemon exits cleanly after umount");
}

#[test]
fn verify_catches_modified_bare_content() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("t");
    write(&tree.join("a.txt"), b"original\n");
    write(&tree.join("b.txt"), b"untouched\n");
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=bare"]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    let a = checksum_of(&repo, "main", "/a.txt");
    let obj = repo.join(format!("objects/{}/{}.file", &a[..2], &a[2..]));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&obj)
        .unwrap()
        .write_at(b"tampered\n", 0)
        .unwrap();
    let log = tmp.path().join("log");
    let mnt = tmp.path().join("mnt");
    let _m = Mount::foreground(&repo, &["--verify", "main"], &mnt, &log);
    assert_eq!(errno_of(std::fs::read(mnt.join("a.txt"))), Some(libc::EIO));
    assert_eq!(std::fs::read(mnt.join("b.txt")).unwrap(), b"untouched\n");
    assert!(std::fs::read_to_string(&log).unwrap().contains(&a));
}

#[test]
fn signals_unmount_cleanly() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("t");
    write(&tree.join("a.txt"), b"a\n");
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=bare-user"]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    for sig in ["TERM", "INT"] {
        let mnt = tmp.path().join(format!("mnt-{sig}"));
        let mut m = Mount::foreground(&repo, &["main"], &mnt, &tmp.path().join("log"));
        assert_eq!(std::fs::read(mnt.join("a.txt")).unwrap(), b"a\n");
        let pid = m.child.as_ref().unwrap().id().to_string();
        Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .unwrap();
        assert!(m.wait_exit(), "exit status after SIG{sig}");
        assert!(!is_mounted(&mnt), "unmounted after SIG{sig}");
    }
}

#[test]
fn errors_are_one_line() {
    let tmp = tempdir();
    let tree = tmp.path().join("t");
    write(&tree.join("a.txt"), b"a\n");
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=bare-user"]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(&tree))],
    )
    .ok();
    let missing = tmp.path().join("missing");
    let file = tree.join("a.txt");
    let dir = tmp.path().join("mnt");
    std::fs::create_dir(&dir).unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["mount", "main", s(&missing)], "No such file or directory"),
        (&["mount", "main", s(&file)], "Not a directory"),
        (
            &["mount", "nosuchref", s(&dir)],
            "Refspec 'nosuchref' not found",
        ),
        (
            &["mount", "-o", "rw", "main", s(&dir)],
            "invalid mount option 'rw'",
        ),
        (&["umount", s(&dir)], "not a FUSE mount point"),
        (&["umount", s(&missing)], "No such file or directory"),
    ];
    for (args, msg) in cases {
        let err = rostree(&repo, args).fails();
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    if fuse_available() {
        // -d relays the daemon's error.
        let err = rostree(&repo, &["mount", "-d", "nosuchref", s(&dir)]).fails();
        assert_eq!(err.trim(), "error: Refspec 'nosuchref' not found");
    }
}

#[test]
fn whole_repository_view() {
    if !fuse_available() {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("t");
    write(&tree.join("a.txt"), b"one\n");
    let repo = tmp.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let commit = |branch: &str| {
        ostree(
            &repo,
            &["commit", "-b", branch, &format!("--tree=dir={}", s(&tree))],
        )
        .ok()
        .trim()
        .to_string()
    };
    let c1 = commit("main");
    write(&tree.join("a.txt"), b"two\n");
    let c2 = commit("main");
    let nested = commit("team/feature/x");
    write(
        &repo.join("refs/remotes/origin/main"),
        format!("{c1}\n").as_bytes(),
    );

    let mnt = tmp.path().join("mnt");
    let _m = Mount::daemon(&repo, &[], &mnt);
    let link = |p: &str| {
        std::fs::read_link(mnt.join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .to_string_lossy()
            .into_owned()
    };
    assert_eq!(link("refs/heads/main"), format!("../../commits/{c2}"));
    assert_eq!(
        link("refs/heads/team/feature/x"),
        format!("../../../../commits/{nested}")
    );
    assert_eq!(
        link("refs/remotes/origin/main"),
        format!("../../../commits/{c1}")
    );
    assert_eq!(link("history/main/0"), format!("../../commits/{c2}"));
    assert_eq!(link("history/main/1"), format!("../../commits/{c1}"));
    assert!(!mnt.join("history/main/2").exists());
    assert_eq!(link("history/origin:main/0"), format!("../../commits/{c1}"));
    assert_eq!(
        link("history/team/feature/x/0"),
        format!("../../../../commits/{nested}")
    );
    assert_eq!(
        std::fs::read(mnt.join("refs/heads/main/a.txt")).unwrap(),
        b"two\n"
    );
    assert_eq!(
        std::fs::read(mnt.join("history/main/1/a.txt")).unwrap(),
        b"one\n"
    );
    let mut commits: Vec<_> = std::fs::read_dir(mnt.join("commits"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    commits.sort();
    let mut want = vec![c1.clone(), c2.clone(), nested.clone()];
    want.sort();
    assert_eq!(commits, want);
    assert_eq!(
        sh_in(&mnt, "ls refs/heads refs/heads/team history"),
        "history:\nmain\norigin:main\nteam\n\nrefs/heads:\nmain\nteam\n\nrefs/heads/team:\nfeature\n"
    );
    assert_eq!(commit_of(&repo, "main"), c2);

    // A ref moved while mounted shows within a second, a new one too.
    write(&tree.join("a.txt"), b"three\n");
    let c3 = commit("main");
    let created = commit("later");
    let start = Instant::now();
    while link("refs/heads/main") != format!("../../commits/{c3}") {
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "ref change not seen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("moved ref seen after {:?}", start.elapsed());
    assert_eq!(
        std::fs::read(mnt.join("refs/heads/main/a.txt")).unwrap(),
        b"three\n"
    );
    assert_eq!(link("refs/heads/later"), format!("../../commits/{created}"));
    assert_eq!(link("history/main/2"), format!("../../commits/{c1}"));
}
