//! `checkout` against the `ostree` oracle: every repo mode, user mode, subpaths, unions, and
//! the safety of writes into an existing destination.

mod common;

use common::{MODES, Run, is_root, ostree, rich_tree, rostree, tempdir, write};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Everything compared about one checked-out entry.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    /// `st_mode`, type included.
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    /// Regular file content.
    data: Option<Vec<u8>>,
    /// Symlink target.
    target: Option<PathBuf>,
    /// `user.*` xattrs, sorted.
    xattrs: Vec<(String, Vec<u8>)>,
    /// Shares its inode with an object of the repository (or its uncompressed cache).
    repo_linked: bool,
    /// More than one link.
    multi_linked: bool,
    /// Directories: whether the mtime is the epoch.
    mtime_zero: Option<bool>,
}

fn user_xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names = vec![0u8; 4096];
    let n = rustix::fs::llistxattr(path, &mut names[..]).unwrap_or(0);
    let mut out = Vec::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        if !name.starts_with("user.") {
            continue;
        }
        let mut value = vec![0u8; 65536];
        let len = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..])
            .unwrap_or_else(|e| panic!("getxattr {name} on {}: {e}", path.display()));
        value.truncate(len);
        out.push((name, value));
    }
    out.sort();
    out
}

/// (dev, ino) of every file below `objects/` and `uncompressed-objects-cache*/`.
fn repo_inodes(repo: &Path) -> HashSet<(u64, u64)> {
    fn walk(dir: &Path, out: &mut HashSet<(u64, u64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let md = e.path().symlink_metadata().unwrap();
            if md.is_dir() {
                walk(&e.path(), out);
            } else {
                out.insert((md.dev(), md.ino()));
            }
        }
    }
    let mut out = HashSet::new();
    walk(&repo.join("objects"), &mut out);
    for e in std::fs::read_dir(repo).unwrap() {
        let e = e.unwrap();
        if e.file_name()
            .to_string_lossy()
            .starts_with("uncompressed-objects-cache")
        {
            walk(&e.path(), &mut out);
        }
    }
    out
}

/// Every entry below `root` (`""` is the root itself), by relative path.
fn snapshot(root: &Path, linked: &HashSet<(u64, u64)>) -> BTreeMap<PathBuf, Entry> {
    fn walk(
        root: &Path,
        rel: &Path,
        linked: &HashSet<(u64, u64)>,
        out: &mut BTreeMap<PathBuf, Entry>,
    ) {
        let path = root.join(rel);
        let md = path.symlink_metadata().unwrap();
        let ft = md.file_type();
        out.insert(
            rel.to_path_buf(),
            Entry {
                mode: md.mode(),
                uid: md.uid(),
                gid: md.gid(),
                size: if ft.is_dir() { 0 } else { md.size() },
                data: ft.is_file().then(|| std::fs::read(&path).unwrap()),
                target: ft.is_symlink().then(|| std::fs::read_link(&path).unwrap()),
                xattrs: user_xattrs(&path),
                repo_linked: !ft.is_dir() && linked.contains(&(md.dev(), md.ino())),
                multi_linked: !ft.is_dir() && md.nlink() > 1,
                mtime_zero: ft.is_dir().then_some(md.mtime() == 0),
            },
        );
        if ft.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                walk(root, &rel.join(e.unwrap().file_name()), linked, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, Path::new(""), linked, &mut out);
    out
}

/// Asserts that two checkouts are identical entry by entry.
fn assert_same_tree(what: &str, expected: &Path, actual: &Path, linked: &HashSet<(u64, u64)>) {
    let exp = snapshot(expected, linked);
    let act = snapshot(actual, linked);
    let mut diffs = Vec::new();
    for path in exp
        .keys()
        .chain(act.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (e, a) = (exp.get(path), act.get(path));
        if e != a {
            let brief = |x: Option<&Entry>| {
                x.map(|x| {
                    format!(
                        "mode {:o} uid {} gid {} size {} target {:?} xattrs {:?} repo_linked {} multi_linked {} mtime0 {:?} data_len {:?}",
                        x.mode,
                        x.uid,
                        x.gid,
                        x.size,
                        x.target,
                        x.xattrs,
                        x.repo_linked,
                        x.multi_linked,
                        x.mtime_zero,
                        x.data.as_ref().map(Vec::len)
                    )
                })
            };
            diffs.push(format!(
                "  {}:\n    ostree:  {:?}\n    rostree: {:?}",
                path.display(),
                brief(e),
                brief(a)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} of {} entries differ:\n{}",
        diffs.len(),
        exp.len(),
        diffs[..diffs.len().min(15)].join("\n")
    );
    assert!(
        exp.len() > 1 || exp.values().any(|e| e.data.is_some()),
        "{what}: empty checkout"
    );
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A repo of `mode` holding `tree` as ref `main`, made by ostree.
fn ostree_repo(base: &Path, mode: &str, tree: &Path) -> PathBuf {
    let repo = base.join(format!("repo-{mode}"));
    ostree(&repo, &["init", &format!("--mode={mode}")]).ok();
    ostree(
        &repo,
        &["commit", "-b", "main", &format!("--tree=dir={}", s(tree))],
    )
    .ok();
    repo
}

/// Checks out with ostree then rostree (same options) and compares the results.
fn compare_checkouts(repo: &Path, base: &Path, label: &str, opts: &[&str]) {
    let o = base.join(format!("ostree-{label}"));
    let r = base.join(format!("rostree-{label}"));
    let run = |tool: fn(&Path, &[&str]) -> Run, dest: &Path| {
        let mut args = vec!["checkout"];
        args.extend_from_slice(opts);
        args.extend_from_slice(&["main", s(dest)]);
        tool(repo, &args).ok();
    };
    run(ostree, &o);
    let mut linked = repo_inodes(repo);
    // Set ostree's cache aside (its checkout keeps its links) so rostree fills its own.
    let cache = repo.join("uncompressed-objects-cache");
    if cache.exists() {
        std::fs::rename(
            &cache,
            repo.join(format!("uncompressed-objects-cache-{label}")),
        )
        .unwrap();
    }
    run(rostree, &r);
    linked.extend(repo_inodes(repo));
    assert_same_tree(
        &format!("{} checkout {}", s(repo), opts.join(" ")),
        &o,
        &r,
        &linked,
    );
}

fn mode_matches_ostree(mode: &str) {
    assert!(is_root(), "these tests compare ownership and need root");
    let tmp = tempdir();
    let tree = rich_tree(tmp.path());
    // Unreadable by its owner: user-mode checkouts copy it and add u+r.
    write(&tree.join("bin/noread"), b"secret\n");
    common::chmod(&tree.join("bin/noread"), 0o200);
    let repo = ostree_repo(tmp.path(), mode, &tree);
    let mut cases: Vec<(&str, Vec<&str>)> = vec![
        ("default", vec![]),
        ("user", vec!["-U"]),
        ("subpath", vec!["--subpath=/bin"]),
        ("subpath-user", vec!["-U", "--subpath=bin"]),
        ("subpath-file", vec!["--subpath=/bin/suid"]),
        ("force-copy", vec!["-C"]),
        ("user-nocache-dirs", vec!["-U", "--disable-cache", "-M"]),
    ];
    match mode {
        "bare" => cases.push(("hardlinks", vec!["-H"])),
        "archive" => {}
        _ => cases.push(("hardlinks", vec!["-U", "-H"])),
    }
    for (label, opts) in &cases {
        compare_checkouts(&repo, tmp.path(), label, opts);
    }
}

#[test]
fn bare_matches_ostree() {
    mode_matches_ostree(MODES[0]);
}

#[test]
fn bare_user_matches_ostree() {
    mode_matches_ostree(MODES[1]);
}

#[test]
fn bare_user_only_matches_ostree() {
    mode_matches_ostree(MODES[2]);
}

#[test]
fn archive_matches_ostree() {
    mode_matches_ostree(MODES[3]);
}

/// A small tree: a file, a symlink, a subdirectory.
fn small_tree(base: &Path) -> PathBuf {
    let t = base.join("small");
    write(&t.join("hello.txt"), b"Hello world!\n");
    write(&t.join("sub/a"), b"a\n");
    write(&t.join("sub/b"), b"b\n");
    std::os::unix::fs::symlink("hello.txt", t.join("link")).unwrap();
    t
}

/// Lays out the same pre-existing destination twice, runs a union checkout into each with
/// ostree and rostree, and compares.
fn union_case(opts: &[&str], check: impl Fn(&Path)) {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    for mode in ["bare", "archive"] {
        let repo = ostree_repo(tmp.path(), mode, &tree);
        for user in [false, true] {
            let mut opts = opts.to_vec();
            if user {
                opts.push("-U");
            }
            let prepare = |d: &Path| {
                write(&d.join("hello.txt"), b"old\n");
                write(&d.join("extra"), b"mine\n");
                write(&d.join("sub/a"), b"old a\n");
                std::os::unix::fs::symlink("elsewhere", d.join("link")).unwrap();
                std::fs::set_permissions(d.join("sub"), std::fs::Permissions::from_mode(0o700))
                    .unwrap();
            };
            let o = tmp.path().join(format!("o-{mode}-{user}"));
            let r = tmp.path().join(format!("r-{mode}-{user}"));
            prepare(&o);
            prepare(&r);
            let mut args = vec!["checkout"];
            args.extend_from_slice(&opts);
            ostree(&repo, &[&args[..], &["main", s(&o)]].concat()).ok();
            let mut linked = repo_inodes(&repo);
            rostree(&repo, &[&args[..], &["main", s(&r)]].concat()).ok();
            linked.extend(repo_inodes(&repo));
            assert_same_tree(&format!("{mode} {opts:?}"), &o, &r, &linked);
            check(&r);
            // Existing directories are left alone.
            let sub = r.join("sub").symlink_metadata().unwrap();
            assert_eq!(sub.mode() & 0o7777, 0o700);
            assert_ne!(sub.mtime(), 0);
            assert_eq!(std::fs::read(r.join("extra")).unwrap(), b"mine\n");
        }
    }
}

#[test]
fn union_overwrites_files_and_keeps_others() {
    union_case(&["--union"], |r| {
        assert_eq!(
            std::fs::read(r.join("hello.txt")).unwrap(),
            b"Hello world!\n"
        );
        assert_eq!(std::fs::read(r.join("sub/a")).unwrap(), b"a\n");
        assert_eq!(
            std::fs::read_link(r.join("link")).unwrap(),
            Path::new("hello.txt")
        );
    });
}

#[test]
fn union_add_keeps_existing_files() {
    union_case(&["--union-add"], |r| {
        assert_eq!(std::fs::read(r.join("hello.txt")).unwrap(), b"old\n");
        assert_eq!(std::fs::read(r.join("sub/a")).unwrap(), b"old a\n");
        assert_eq!(std::fs::read(r.join("sub/b")).unwrap(), b"b\n");
        assert_eq!(
            std::fs::read_link(r.join("link")).unwrap(),
            Path::new("elsewhere")
        );
    });
}

#[test]
fn existing_destination_is_an_error() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let repo = ostree_repo(tmp.path(), "bare", &tree);
    for existing in ["dir", "file"] {
        let d = tmp.path().join(existing);
        if existing == "dir" {
            std::fs::create_dir(&d).unwrap();
        } else {
            write(&d, b"x");
        }
        assert!(
            ostree(&repo, &["checkout", "main", s(&d)])
                .fails()
                .contains("File exists")
        );
        let err = rostree(&repo, &["checkout", "main", s(&d)]).fails();
        assert!(
            err.starts_with("error: ") && err.contains("File exists"),
            "{err}"
        );
        assert!(err.contains(s(&d)), "the error names the path: {err}");
    }
}

/// Symlinks planted in the destination are replaced, never written through.
#[test]
fn union_never_writes_through_planted_symlinks() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    for mode in ["bare", "bare-user", "archive"] {
        let repo = ostree_repo(tmp.path(), mode, &tree);
        for (n, extra) in [(0, None), (1, Some("-U")), (2, Some("-C"))] {
            let victim = outside.join(format!("victim-{mode}-{n}"));
            write(&victim, b"precious\n");
            let victim_link = outside.join(format!("link-victim-{mode}-{n}"));
            write(&victim_link, b"precious link\n");
            let d = tmp.path().join(format!("dest-{mode}-{n}"));
            std::fs::create_dir_all(d.join("sub")).unwrap();
            std::os::unix::fs::symlink(&victim, d.join("hello.txt")).unwrap();
            std::os::unix::fs::symlink(&victim, d.join("sub/a")).unwrap();
            std::os::unix::fs::symlink(&victim_link, d.join("link")).unwrap();
            let mut args = vec!["checkout", "--union"];
            args.extend(extra);
            args.extend(["main", s(&d)]);
            rostree(&repo, &args).ok();
            assert_eq!(
                std::fs::read(&victim).unwrap(),
                b"precious\n",
                "{mode} {extra:?}"
            );
            assert_eq!(std::fs::read(&victim_link).unwrap(), b"precious link\n");
            let hello = d.join("hello.txt").symlink_metadata().unwrap();
            assert!(
                hello.is_file(),
                "{mode} {extra:?}: hello.txt replaced by a file"
            );
            assert_eq!(
                std::fs::read(d.join("hello.txt")).unwrap(),
                b"Hello world!\n"
            );
            assert_eq!(std::fs::read(d.join("sub/a")).unwrap(), b"a\n");
            assert_eq!(
                std::fs::read_link(d.join("link")).unwrap(),
                Path::new("hello.txt")
            );
        }
        // A symlink where the tree has a directory is not followed either.
        let d = tmp.path().join(format!("dest-dir-{mode}"));
        std::fs::create_dir(&d).unwrap();
        let target_dir = outside.join(format!("dir-{mode}"));
        std::fs::create_dir(&target_dir).unwrap();
        std::os::unix::fs::symlink(&target_dir, d.join("sub")).unwrap();
        // (ostree follows it; rostree refuses, naming the entry.)
        let err = rostree(&repo, &["checkout", "--union", "main", s(&d)]).fails();
        assert!(err.contains(s(&d.join("sub"))), "{err}");
        assert_eq!(
            std::fs::read_dir(&target_dir).unwrap().count(),
            0,
            "wrote through sub"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| {
            !n.to_string_lossy().contains("victim") && !n.to_string_lossy().starts_with("dir-")
        })
        .collect();
    assert!(leftovers.is_empty(), "stray files outside: {leftovers:?}");
}

#[test]
fn require_hardlinks_errors_match_ostree() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let cases = [
        (
            "archive",
            vec!["-H"],
            "Bare repository mode cannot hardlink in user checkout mode",
        ),
        (
            "archive",
            vec!["-H", "-U"],
            "Bare repository mode cannot hardlink in user checkout mode",
        ),
        (
            "bare-user",
            vec!["-H"],
            "User repository mode requires user checkout mode to hardlink",
        ),
        (
            "bare",
            vec!["-H", "-U"],
            "Bare repository mode cannot hardlink in user checkout mode",
        ),
    ];
    for (i, (mode, opts, msg)) in cases.iter().enumerate() {
        let repo = tmp.path().join(format!("repo-{mode}"));
        if !repo.exists() {
            ostree_repo(tmp.path(), mode, &tree);
        }
        let run = |tool: fn(&Path, &[&str]) -> Run, who: &str| {
            let d = tmp.path().join(format!("{who}-{i}"));
            let mut args = vec!["checkout"];
            args.extend(opts.iter().copied());
            args.extend(["main", s(&d)]);
            tool(&repo, &args).fails()
        };
        assert!(run(ostree, "o").contains(msg), "oracle changed?");
        let err = run(rostree, "r");
        assert!(err.contains(msg), "{mode} {opts:?}: {err}");
    }
}

#[test]
fn option_conflicts_and_errors_match_ostree() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let repo = ostree_repo(tmp.path(), "bare", &tree);
    let last_line = |r: &Run| {
        r.fails()
            .trim_end()
            .lines()
            .last()
            .unwrap_or("")
            .to_string()
    };
    let d = tmp.path().join("d");
    let ds = s(&d);
    let exact: [&[&str]; 8] = [
        &["--union", "--union-add", "main", ds],
        &["--union", "--union-identical", "main", ds],
        &["--union-add", "--union-identical", "main", ds],
        &["-H", "-C", "main", ds],
        &["--union-identical", "main", ds],
        &["nonexist", ds],
        &["--subpath=/nonexist", "main", ds],
        &["--fsync=maybe", "main", ds],
    ];
    for args in exact {
        let args = [&["checkout"][..], args].concat();
        let want = last_line(&ostree(&repo, &args));
        assert_eq!(last_line(&rostree(&repo, &args)), want, "{args:?}");
        assert!(!d.exists(), "{args:?} created the destination");
    }
    // Not-a-directory and missing COMMIT: same message (rostree adds the path).
    let err = rostree(&repo, &["checkout", "--subpath=/hello.txt/x", "main", ds]).fails();
    assert!(err.starts_with("error: Not a directory"), "{err}");
    let err = rostree(&repo, &["checkout"]).fails();
    assert!(err.contains("COMMIT must be specified"), "{err}");
    // --allow-noent: nothing done, success (only without checkout_at options, like ostree).
    for tool in [ostree as fn(&Path, &[&str]) -> Run, rostree] {
        tool(
            &repo,
            &[
                "checkout",
                "--allow-noent",
                "--subpath=/nonexist",
                "main",
                ds,
            ],
        )
        .ok();
        assert!(!d.exists());
        let err = tool(
            &repo,
            &[
                "checkout",
                "--allow-noent",
                "-C",
                "--subpath=/nonexist",
                "main",
                ds,
            ],
        )
        .fails();
        assert!(
            err.contains("No such file or directory: /nonexist"),
            "{err}"
        );
    }
}

#[test]
fn destination_defaults_to_the_rev() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let repo = ostree_repo(tmp.path(), "bare-user-only", &tree);
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let out = std::process::Command::new(common::rostree_bin())
        .arg(format!("--repo={}", s(&repo)))
        .args(["checkout", "main"])
        .current_dir(&cwd)
        .env_remove("OSTREE_REPO")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(cwd.join("main/hello.txt")).unwrap(),
        b"Hello world!\n"
    );
    assert_eq!(std::fs::read(cwd.join("main/sub/b")).unwrap(), b"b\n");
}

#[test]
fn union_identical_matches_ostree() {
    let tmp = tempdir();
    let tree = small_tree(tmp.path());
    let repo = ostree_repo(tmp.path(), "bare", &tree);
    for (who, tool) in [("o", ostree as fn(&Path, &[&str]) -> Run), ("r", rostree)] {
        // Over a copy with identical content: kept as is (checksums compared).
        let d = tmp.path().join(format!("{who}-copy"));
        tool(&repo, &["checkout", "-C", "main", s(&d)]).ok();
        tool(
            &repo,
            &["checkout", "-H", "--union-identical", "main", s(&d)],
        )
        .ok();
        let md = d.join("sub/a").symlink_metadata().unwrap();
        assert_eq!(md.nlink(), 1, "{who}: identical copy kept");
        // Over a hardlinked checkout: nothing to do.
        let d = tmp.path().join(format!("{who}-linked"));
        tool(&repo, &["checkout", "-H", "main", s(&d)]).ok();
        tool(
            &repo,
            &["checkout", "-H", "--union-identical", "main", s(&d)],
        )
        .ok();
        // A different file is an error.
        std::fs::remove_file(d.join("sub/a")).unwrap();
        write(&d.join("sub/a"), b"changed\n");
        let err = tool(
            &repo,
            &["checkout", "-H", "--union-identical", "main", s(&d)],
        )
        .fails();
        assert!(err.contains("File exists"), "{who}: {err}");
        assert_eq!(std::fs::read(d.join("sub/a")).unwrap(), b"changed\n");
    }
}
