//! `ls`, `cat`, `log` and `show` against the `ostree` oracle: the same repository, the same
//! arguments, byte-identical stdout, the same exit status and `error:` line.

mod common;

use common::{
    Run, assert_no_mismatch_in_any_mode, chmod, files_below, ostree, rich_tree, rostree, set_xattr,
    sh, tempdir, write,
};
use std::path::{Path, PathBuf};

/// Runs both tools and describes any difference in stdout, stderr or exit status.
fn compare(repo: &Path, args: &[&str]) -> Option<String> {
    let ours = rostree(repo, args);
    let theirs = ostree(repo, args);
    let mut why = Vec::new();
    if ours.out.stdout != theirs.out.stdout {
        why.push(format!(
            "stdout differs:\n--- ostree\n{}\n--- rostree\n{}",
            excerpt(&theirs.out.stdout),
            excerpt(&ours.out.stdout)
        ));
    }
    if ours.out.status.code() != theirs.out.status.code() {
        why.push(format!(
            "exit status: ostree {:?}, rostree {:?}",
            theirs.out.status.code(),
            ours.out.status.code()
        ));
    }
    if ours.out.stderr != theirs.out.stderr {
        why.push(format!(
            "stderr: ostree {:?}, rostree {:?}",
            theirs.stderr(),
            ours.stderr()
        ));
    }
    (!why.is_empty()).then(|| format!("`{}`: {}", args.join(" "), why.join("\n")))
}

/// The first differing region of a long output, readable.
fn excerpt(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.len() > 3000 {
        let head: String = s.chars().take(3000).collect();
        format!("{head}… ({} bytes)", s.len())
    } else {
        s.into_owned()
    }
}

/// Asserts that both tools fail alike with one `error:` line.
fn same_error(repo: &Path, args: &[&str], failures: &mut Vec<String>) {
    let ours = rostree(repo, args);
    let stderr = ours.fails();
    let lines: Vec<&str> = stderr.lines().collect();
    if lines.len() != 1 || !lines[0].starts_with("error: ") {
        failures.push(format!(
            "`{}`: not one error line: {stderr:?}",
            args.join(" ")
        ));
    }
    failures.extend(compare(repo, args));
}

fn ok(run: Run) -> String {
    run.ok()
}

/// The second version of the rich tree: every kind of change a diff reports.
pub fn modified_tree(base: &Path, v1: &Path) -> PathBuf {
    let v2 = base.join("tree2");
    ok(sh(
        "cp",
        &["-a", &v1.display().to_string(), &v2.display().to_string()],
    ));
    write(&v2.join("hello.txt"), b"Hello changed!\n");
    std::fs::remove_file(v2.join("page")).unwrap();
    std::fs::remove_dir_all(v2.join("deep/d0/d1")).unwrap();
    std::fs::remove_dir(v2.join("empty-dir")).unwrap();
    write(&v2.join("empty-dir"), b"now a file\n");
    std::fs::remove_file(v2.join("with space")).unwrap();
    write(&v2.join("with space/inside"), b"inside\n");
    write(&v2.join("added.txt"), b"added\n");
    write(&v2.join("newdir/sub/n"), b"nested\n");
    write(&v2.join("bin/newtool"), b"#!/bin/sh\n");
    chmod(&v2.join("bin/tool"), 0o700);
    chmod(&v2.join("tmp"), 0o755);
    set_xattr(&v2.join("xattr-file"), "user.foo", b"baz");
    set_xattr(&v2.join("xattr-dir"), "user.dir", b"no");
    let tricky = v2.join("tricky");
    write(&tricky, b"tricky\n");
    set_xattr(&tricky, "user.nul", b"abc\0");
    set_xattr(&tricky, "user.quote", b"it's\0");
    set_xattr(&tricky, "user.ctl", b"\x01\n\t\x7f\xff\\\"\0");
    set_xattr(&tricky, "user.zero", b"\0");
    set_xattr(&tricky, "user.embedded", b"a\0b");
    set_xattr(&tricky, "user.it's", b"v");
    set_xattr(&tricky, "user.utf8", "é☃\0".as_bytes());
    std::fs::remove_file(v2.join("rel-link")).unwrap();
    std::os::unix::fs::symlink("empty", v2.join("rel-link")).unwrap();
    write(&v2.join("many/f00042"), b"changed\n");
    if common::is_root() {
        std::os::unix::fs::lchown(v2.join("owned"), Some(1), Some(2)).unwrap();
    }
    v2
}

/// The three versions of the tree, built once and shared by the repos of every mode.
struct Trees {
    dir: tempfile::TempDir,
    versions: [PathBuf; 3],
}

fn trees() -> Trees {
    let dir = tempdir();
    let base = dir.path();
    let v1 = rich_tree(base);
    let v2 = modified_tree(base, &v1);
    let v3 = base.join("tree3");
    ok(sh(
        "cp",
        &["-a", &v2.display().to_string(), &v3.display().to_string()],
    ));
    write(&v3.join("third.txt"), b"third\n");
    write(&v3.join("bin/newtool"), b"#!/bin/sh\necho new\n");
    Trees {
        dir,
        versions: [v1, v2, v3],
    }
}

/// A repo of `mode` with three commits on `main`, one per version, with subjects, bodies,
/// metadata and detached metadata.
fn repo3(t: &Trees, mode: &str) -> (PathBuf, [String; 3]) {
    let [v1, v2, v3] = &t.versions;
    let repo = t.dir.path().join(format!("repo-{mode}"));
    ok(ostree(&repo, &["init", &format!("--mode={mode}")]));
    // Durability is not under test: skip fsync to keep the suite fast.
    ostree(&repo, &["config", "set", "core.fsync", "false"]).ok();
    let tree = |p: &Path| format!("--tree=dir={}", p.display());
    let c1 = ok(ostree(
        &repo,
        &[
            "commit",
            "-b",
            "main",
            &tree(v1),
            "-s",
            "first subject",
            "--add-metadata-string=version=1.0",
        ],
    ));
    let c2 = ok(ostree(
        &repo,
        &[
            "commit",
            "-b",
            "main",
            &tree(v2),
            "-s",
            "second",
            "-m",
            "body line one\nbody line two\n\nafter blank",
            "--add-metadata-string=version=1.2",
            "--add-metadata=num=42",
            "--add-metadata=big=uint64 7",
            "--add-metadata=strs=['a', \"it's\"]",
            "--add-metadata=text='tab\\there \u{2028} \u{378} ☃'",
            "--add-metadata=dbl=2.5",
            "--add-metadata=nested={'k': <(int16 -3, b'x')>}",
        ],
    ));
    let c3 = ok(ostree(
        &repo,
        &[
            "commit",
            "-b",
            "main",
            &tree(v3),
            "-m",
            "only body, no subject\n",
            "--add-metadata-string=version=2.0",
            "--add-detached-metadata-string=dk=dv",
        ],
    ));
    (repo, [c1, c2, c3].map(|c| c.trim().to_string()))
}

/// `ls -C` of one path: its checksums.
fn checksums(repo: &Path, path: &str) -> Vec<String> {
    let line = ok(ostree(repo, &["ls", "-d", "-C", "main", path]));
    line.split_whitespace()
        .filter(|w| w.len() == 64)
        .map(str::to_string)
        .collect()
}

/// Every comparison in one mode; returns the mismatches.
fn check_mode(t: &Trees, mode: &str) -> Vec<String> {
    let (repo, commits) = repo3(t, mode);
    let repo = repo.as_path();
    let [c1, c2, _c3] = &commits;
    let mut failures = Vec::new();
    let mut same = |args: &[&str]| failures.extend(compare(repo, args));

    // ls
    same(&["ls", "main"]);
    same(&["ls", "-R", "-C", "-X", "main", "/"]);
    same(&["ls", "-R", "-C", "-X", "main^^"]);
    same(&["ls", "-d", "main"]);
    same(&[
        "ls",
        "-d",
        "-C",
        "-X",
        "main",
        "/bin",
        "xattr-dir",
        "/tricky",
    ]);
    same(&[
        "ls",
        "main",
        "/bin",
        "many/f00001",
        "/with space",
        "/new\nline",
        "/dir-link",
    ]);
    same(&["ls", "-R", "main", "/deep", "/newdir"]);
    same(&["ls", "-X", "main", "/tricky", "/xattr-file", "/owned"]);
    same(&["ls", "-R", "--nul-filenames-only", "main"]);
    same(&["ls", "--nul-filenames-only", "main", "/bin"]);
    same(&["ls", "-C", "main^", "/rel-link", "/long-link", "/abs-link"]);
    same(&["ls", &c2[..10], "/bin/"]);
    // cat
    same(&[
        "cat",
        "main",
        "/hello.txt",
        "bin/tool",
        "/rel-link",
        "/empty",
        "/page",
    ]);
    same(&[
        "cat",
        "main^^",
        "/big.bin",
        "/ünïcødé-日本",
        "/new\nline",
        "/rel-link",
    ]);
    same(&["cat", "main", "/dir-link/tool", "/many/f00042"]);
    // log and show
    same(&["log", "main"]);
    same(&["log", "--raw", "main"]);
    same(&["log", c1]);
    same(&["show", "main"]);
    same(&["show", "--raw", "main^"]);
    same(&["show", "-B", "main^"]);
    same(&["show", c1]);
    same(&["show", &c1[..12]]);
    same(&["show", "--print-metadata-key=version", "main"]);
    same(&["show", "--print-metadata-key=num", "main^"]);
    same(&["show", "--print-metadata-key=nested", "main^"]);
    same(&["show", "-B", "--print-metadata-key=num", "main^"]);
    same(&["show", "--print-detached-metadata-key=dk", "main"]);
    let bin = checksums(repo, "/bin");
    same(&["show", &bin[0]]);
    same(&["show", &bin[1]]);
    same(&["show", "--raw", &bin[0]]);
    same(&["show", "--raw", &bin[1]]);
    for file in ["/bin/suid", "/rel-link", "/tricky", "/owned", "/empty"] {
        same(&["show", &checksums(repo, file)[0]]);
    }

    // Errors: non-zero exit and one `error:` line, worded as ostree words it.
    for args in [
        &["ls", "nonexistent"][..],
        &["ls", "main", "/nonexistent"],
        &["ls", "main", "/hello.txt/x"],
        &["ls", "main", "/bin", "/bin/nope"],
        &["ls", "main", "./bin"],
        &["cat", "main", "/bin"],
        &["cat", "main", "/"],
        &["cat", "main", "/nonexistent"],
        &["cat", "main", "/abs-link"],
        &["cat", "main", "/dangling"],
        &["cat", "main", "/dir-link"],
        &["cat", "nonexistent", "/hello.txt"],
        &["log", "nonexistent"],
        &["show", "nonexistent"],
        &["show", "--print-metadata-key=missing", "main"],
        &["show", "--print-detached-metadata-key=dk", "main^"],
        &["show", "--print-detached-metadata-key=nope", "main"],
        &["show", &"f".repeat(64)],
        &["show", "--print-metadata-key=version", &bin[0]],
    ] {
        same_error(repo, args, &mut failures);
    }

    // History beyond a deleted parent.
    let obj = repo
        .join("objects")
        .join(&c1[..2])
        .join(format!("{}.commit", &c1[2..]));
    std::fs::remove_file(&obj).unwrap();
    let mut same = |args: &[&str]| failures.extend(compare(repo, args));
    same(&["log", "main"]);
    same(&["log", "--raw", "main"]);
    same(&["log", "main^"]);
    same_error(repo, &["log", c1], &mut failures);
    same_error(repo, &["ls", "main^^"], &mut failures);
    same_error(repo, &["show", "main^^"], &mut failures);

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
fn log_expected_format() {
    // A self-contained check of the format, independent of the oracle.
    let dir = tempdir();
    let t = dir.path().join("t");
    write(&t.join("f"), b"x");
    let repo = dir.path().join("repo");
    ok(ostree(&repo, &["init", "--mode=archive"]));
    let c = ok(ostree(
        &repo,
        &[
            "commit",
            "-b",
            "x",
            &format!("--tree=dir={}", t.display()),
            "-s",
            "subj",
            "-m",
            "a\n\nb",
            "--timestamp=2023-01-02T11:22:33Z",
            "--add-metadata-string=version=1.2",
        ],
    ));
    let out = ok(rostree(&repo, &["log", "x"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("commit {}", c.trim()));
    assert!(lines[1].starts_with("ContentChecksum:  "));
    assert_eq!(lines[2], "Date:  2023-01-02 11:22:33 +0000");
    assert_eq!(
        lines[3..],
        [
            "Version: 1.2",
            "",
            "    subj",
            "",
            "    a",
            "    ",
            "    b",
            ""
        ]
    );
}

#[test]
fn show_print_sizes_matches_ostree() {
    // Sizes recorded by ostree, then objects removed so some are "needed"; sizes above 1000
    // bytes print in kB with a no-break space, as g_format_size does.
    let dir = tempdir();
    let tree = dir.path().join("t");
    for i in 0..30 {
        write(
            &tree.join(format!("d{}/f{i}", i % 3)),
            format!("{i} sized\n").repeat(i * 40 + 1).as_bytes(),
        );
    }
    let repo = dir.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    ostree(&repo, &["commit", "-b", "sized", "--generate-sizes", t]).ok();
    ostree(&repo, &["commit", "-b", "plain", t]).ok();
    let mut failures = Vec::new();
    failures.extend(compare(&repo, &["show", "--print-sizes", "sized"]));
    let mut removed = 0;
    for entry in files_below(&repo.join("objects")) {
        if entry.extension().is_some_and(|e| e == "filez") && removed < 7 {
            std::fs::remove_file(&entry).unwrap();
            removed += 1;
        }
    }
    failures.extend(compare(&repo, &["show", "--print-sizes", "sized"]));
    same_error(&repo, &["show", "--print-sizes", "plain"], &mut failures);
    same_error(&repo, &["show", "--print-sizes", "nosuch"], &mut failures);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn non_ascii_text_prints_as_the_locale_allows() {
    // ostree's g_print converts to the locale's character set: `?` for each non-ASCII
    // character in the C locale, UTF-8 as is in C.UTF-8.
    let dir = tempdir();
    let repo = dir.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let tree = dir.path().join("t");
    write(&tree.join("f"), b"x");
    let args = [
        "commit",
        "-b",
        "utf",
        "-s",
        "héllo wörld",
        "-m",
        "bödy",
        "--add-metadata-string=version=ü1",
        tree.to_str().unwrap(),
    ];
    ostree(&repo, &args).ok();
    for lang in ["C", "C.UTF-8"] {
        for args in [
            &["show", "utf"][..],
            &["log", "utf"],
            &["show", "--raw", "utf"],
            &["show", "-B", "utf"],
        ] {
            let env = [("LANG", lang), ("LC_ALL", lang)];
            let ours = common::tool_with_env(common::rostree_bin(), &repo, args, &env).ok();
            let theirs = common::tool_with_env(&common::oracle(), &repo, args, &env).ok();
            assert_eq!(ours, theirs, "{args:?} with LANG={lang}");
            let expected = if lang == "C" { "h?llo" } else { "héllo" };
            assert!(ours.contains(expected), "{args:?} with LANG={lang}: {ours}");
        }
    }
}
