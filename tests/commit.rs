//! `commit` against the oracle: the same tree and options give the same commit checksum in
//! every repo mode; ostree reads and fscks what we write; mixed histories work both ways;
//! bad trees are refused without writing a ref.

mod common;
use common::*;
use std::path::Path;

/// Commits `tree` with the same options in a fresh repo of each tool; returns both checksums.
fn commit_both(base: &Path, mode: &str, tag: &str, tree: &Path, opts: &[&str]) -> (String, String) {
    let ours = base.join(format!("r-{mode}-{tag}"));
    let theirs = base.join(format!("o-{mode}-{tag}"));
    rostree(&ours, &["init", &format!("--mode={mode}")]).ok();
    ostree(&theirs, &["init", &format!("--mode={mode}")]).ok();
    let tree_s = tree.to_str().unwrap();
    let mut args = vec!["commit", "-b", "main", "--timestamp=2021-03-04 05:06:07"];
    args.extend_from_slice(opts);
    args.push(tree_s);
    let a = rostree(&ours, &args).ok().trim().to_string();
    let b = ostree(&theirs, &args).ok().trim().to_string();
    (a, b)
}

#[test]
fn rich_tree_checksums_match_ostree_in_every_mode() {
    let dir = tempdir();
    let tree = rich_tree(dir.path());
    let option_sets: &[&[&str]] = &[
        &[],
        &[
            "-s",
            "subject",
            "-m",
            "body\nline 2\n",
            "--add-metadata-string=version=1.2",
        ],
        &["--canonical-permissions", "--no-xattrs"],
        &["--owner-uid=7", "--owner-gid=8", "--mode-ro-executables"],
        &[
            "--add-metadata=n=5",
            "--add-metadata=t=uint64 7",
            "--add-metadata=a=['x', 'y']",
            "--bind-ref=other",
        ],
        &["--no-bindings", "--add-detached-metadata-string=dk=dv"],
    ];
    for mode in MODES {
        for (i, opts) in option_sets.iter().enumerate() {
            let (a, b) = commit_both(dir.path(), mode, &i.to_string(), &tree, opts);
            assert_eq!(a, b, "mode {mode}, options {opts:?}");
            assert_eq!(a.len(), 64);
        }
        // ostree validates every object we wrote and lists the same tree.
        let ours = dir.path().join(format!("r-{mode}-0"));
        let theirs = dir.path().join(format!("o-{mode}-0"));
        let fsck = ostree(&ours, &["fsck"]).ok();
        assert!(fsck.contains("no errors found"), "{fsck}");
        assert_eq!(
            ostree(&ours, &["ls", "-R", "-C", "-X", "main"]).ok(),
            ostree(&theirs, &["ls", "-R", "-C", "-X", "main"]).ok(),
            "ls -R -C -X in {mode}"
        );
        assert_eq!(
            ostree(&ours, &["show", "--raw", "main"]).ok(),
            ostree(&theirs, &["show", "--raw", "main"]).ok()
        );
        let checkout = dir.path().join(format!("co-{mode}"));
        ostree(&ours, &["checkout", "main", checkout.to_str().unwrap()]).ok();
        assert_eq!(
            std::fs::read(checkout.join("big.bin")).unwrap(),
            std::fs::read(tree.join("big.bin")).unwrap()
        );
        assert_eq!(
            std::fs::read_link(checkout.join("long-link"))
                .unwrap()
                .to_str()
                .unwrap(),
            "x".repeat(1000)
        );
    }
}

#[test]
fn statoverride_skiplist_and_trees_match_ostree() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("a"), b"a");
    write(&tree.join("sub/b"), b"b");
    write(&tree.join("sub/c"), b"c");
    write(&tree.join("skip/me"), b"x");
    let extra = dir.path().join("extra");
    write(&extra.join("a"), b"replaced");
    write(&extra.join("sub/new"), b"new");
    let so = dir.path().join("so");
    std::fs::write(&so, "2048 /a\n=420 /sub/b\n").unwrap();
    let sl = dir.path().join("sl");
    std::fs::write(&sl, "/skip\n").unwrap();
    let so_arg = format!("--statoverride={}", so.display());
    let sl_arg = format!("--skip-list={}", sl.display());
    let t1 = format!("--tree=dir={}", tree.display());
    let t2 = format!("--tree=dir={}", extra.display());
    for mode in ["bare", "archive"] {
        let (a, b) = commit_both(dir.path(), mode, "so", &tree, &[&so_arg, &sl_arg]);
        assert_eq!(a, b, "{mode} statoverride/skip-list");
        let (a, b) = commit_both(dir.path(), mode, "trees", &tree, &[&t1, &t2]);
        assert_eq!(a, b, "{mode} overlaid trees");
        let (a, b) = commit_both(dir.path(), mode, "sizes", &tree, &["--generate-sizes"]);
        assert_eq!(a, b, "{mode} --generate-sizes");
    }
}

#[test]
fn bootable_metadata_matches_ostree() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("usr/lib/modules/5.10.0/vmlinuz"), b"kernel");
    write(
        &tree.join("usr/lib/modules/5.10.0/initramfs.img"),
        b"initrd",
    );
    write(&tree.join("usr/etc/os-release"), b"ID=test\n");
    for opts in [
        &["--bootable"][..],
        &[
            "--bootable",
            "--add-metadata-string=version=1",
            "--add-metadata-string=a=b",
        ][..],
    ] {
        let (a, b) = commit_both(dir.path(), "bare", &opts.len().to_string(), &tree, opts);
        assert_eq!(a, b, "{opts:?}");
    }
}

#[test]
fn seed_hello_world_runs_verbatim() {
    let dir = tempdir();
    let repo = dir.path().join("repo");
    rostree(&repo, &["init"]).ok();
    write(&dir.path().join("tree/hello.txt"), b"Hello world!\n");
    let tree = dir.path().join("tree");
    rostree(&repo, &["commit", "--branch=foo", tree.to_str().unwrap()]).ok();
    assert_eq!(rostree(&repo, &["refs"]).ok(), "foo\n");
    let (uid, gid) = (
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    assert_eq!(
        rostree(&repo, &["ls", "foo"]).ok(),
        format!("d00755 {uid} {gid}      0 /\n-00644 {uid} {gid}     13 /hello.txt\n")
    );
    assert_eq!(
        rostree(&repo, &["cat", "foo", "/hello.txt"]).ok(),
        "Hello world!\n"
    );
    let co = dir.path().join("tree-checkout");
    rostree(&repo, &["checkout", "foo", co.to_str().unwrap()]).ok();
    assert_eq!(
        std::fs::read_to_string(co.join("hello.txt")).unwrap(),
        "Hello world!\n"
    );
}

#[test]
fn mixed_history_of_both_tools_fscks_clean_in_both() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("f"), b"1");
    for mode in MODES {
        let repo = dir.path().join(format!("mixed-{mode}"));
        rostree(&repo, &["init", &format!("--mode={mode}")]).ok();
        let t = tree.to_str().unwrap();
        let c1 = rostree(&repo, &["commit", "-b", "main", "-s", "one", t]).ok();
        write(&tree.join("f"), b"2");
        let c2 = ostree(&repo, &["commit", "-b", "main", "-s", "two", t]).ok();
        write(&tree.join("g"), b"3");
        let c3 = rostree(&repo, &["commit", "-b", "main", "-s", "three", t]).ok();
        assert_eq!(rostree(&repo, &["rev-parse", "main"]).ok(), c3);
        assert_eq!(rostree(&repo, &["rev-parse", "main^"]).ok(), c2);
        assert_eq!(ostree(&repo, &["rev-parse", "main^^"]).ok(), c1);
        assert!(ostree(&repo, &["fsck"]).ok().contains("no errors found"));
        assert!(rostree(&repo, &["fsck"]).ok().contains("no errors found"));
        assert_eq!(
            rostree(&repo, &["log", "main"]).ok(),
            ostree(&repo, &["log", "main"]).ok()
        );
        std::fs::remove_file(tree.join("g")).unwrap();
        write(&tree.join("f"), b"1");
    }
}

#[test]
fn refs_and_rev_parse_print_what_ostree_prints() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("f"), b"1");
    let repo = dir.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    for name in [
        "zeta",
        "alpha",
        "foo/bar",
        "foo/baz",
        "exampleos/x86_64/stable",
        "beta",
        "main",
    ] {
        ostree(&repo, &["commit", "-b", name, t]).ok();
    }
    rostree(&repo, &["refs", "--create=new", "main"]).ok();
    ostree(&repo, &["refs", "--alias", "--create=al", "main"]).ok();
    for args in [
        &["refs"][..],
        &["refs", "foo"],
        &["refs", "--list", "foo"],
        &["refs", "--alias"],
        &["rev-parse", "foo/bar"],
        &["rev-parse", "al"],
    ] {
        let a = rostree(&repo, args);
        let b = ostree(&repo, args);
        assert_eq!(a.ok(), b.ok(), "{args:?}");
    }
    let bad = rostree(&repo, &["rev-parse", "nonexistent"]).fails();
    assert_eq!(bad, "error: Refspec 'nonexistent' not found\n");
    let main = rostree(&repo, &["rev-parse", "main"]).ok();
    assert_eq!(rostree(&repo, &["rev-parse", &main[..10]]).ok(), main);
    rostree(&repo, &["refs", "--delete", "foo"]).ok();
    assert_eq!(rostree(&repo, &["refs", "foo"]).ok(), "");
    assert_eq!(ostree(&repo, &["refs", "foo"]).ok(), "");
}

#[test]
fn bad_trees_are_refused_naming_the_path_and_writing_no_ref() {
    let dir = tempdir();
    let repo = dir.path().join("repo");
    rostree(&repo, &["init", "--mode=bare-user"]).ok();
    type MakeEntry = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, MakeEntry)> = vec![
        (
            "fifo",
            Box::new(|p: &Path| {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    p,
                    rustix::fs::FileType::Fifo,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    0,
                )
                .unwrap();
            }),
        ),
        (
            "sock",
            Box::new(|p: &Path| {
                std::os::unix::net::UnixListener::bind(p).unwrap();
            }),
        ),
        (
            "dev",
            Box::new(|p: &Path| {
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    p,
                    rustix::fs::FileType::CharacterDevice,
                    rustix::fs::Mode::from_raw_mode(0o644),
                    rustix::fs::makedev(1, 3),
                )
                .unwrap();
            }),
        ),
        (
            "bad\u{fffd}",
            Box::new(|p: &Path| {
                use std::os::unix::ffi::OsStrExt;
                let name = std::ffi::OsStr::from_bytes(b"bad\xff\xfe");
                std::fs::write(p.parent().unwrap().join(name), b"x").unwrap();
            }),
        ),
    ];
    for (name, make) in cases {
        let tree = dir.path().join(format!("tree-{}", name.len()));
        write(&tree.join("ok"), b"fine");
        make(&tree.join(name));
        let err = rostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).fails();
        assert!(
            err.starts_with("error: ") && err.lines().count() == 1,
            "{err}"
        );
        assert!(
            err.contains(tree.to_str().unwrap()),
            "names the path: {err}"
        );
        assert!(rostree(&repo, &["refs"]).ok().is_empty());
    }
    let err = rostree(&repo, &["commit", "tree"]).fails();
    assert_eq!(
        err,
        "error: A branch must be specified with --branch, or use --orphan\n"
    );
    let missing = dir.path().join("nope");
    let err = rostree(&missing, &["refs"]).fails();
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
}

#[test]
fn tar_trees_match_ostree() {
    let dir = tempdir();
    let src = dir.path().join("src");
    write(&src.join("d/f"), b"hi\n");
    write(&src.join("d/g"), b"big".repeat(1000).as_slice());
    std::os::unix::fs::symlink("f", src.join("d/l")).unwrap();
    std::fs::hard_link(src.join("d/f"), src.join("d/hard")).unwrap();
    set_xattr(&src.join("d/f"), "user.x", b"1");
    let full = dir.path().join("full.tar");
    let partial = dir.path().join("partial.tar");
    sh(
        "tar",
        &[
            "--xattrs",
            "-cf",
            full.to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
            ".",
        ],
    )
    .ok();
    sh(
        "tar",
        &[
            "-cf",
            partial.to_str().unwrap(),
            "-C",
            src.to_str().unwrap(),
            "d/f",
        ],
    )
    .ok();
    let full_arg = format!("--tree=tar={}", full.display());
    let partial_arg = format!("--tree=tar={}", partial.display());
    for mode in ["bare", "archive"] {
        let (a, b) = commit_both(dir.path(), mode, "tar", &src, &[&full_arg]);
        assert_eq!(a, b, "{mode} tar");
        let (a, b) = commit_both(
            dir.path(),
            mode,
            "tar-auto",
            &src,
            &[&partial_arg, "--tar-autocreate-parents"],
        );
        assert_eq!(a, b, "{mode} tar with autocreated parents");
    }
    let repo = dir.path().join("r-bare-tar");
    let err = rostree(&repo, &["commit", "-b", "x", &partial_arg]).fails();
    assert_eq!(err, "error: No such file or directory: d\n");
}
