//! Replication over HTTP from a real web server (nginx on loopback): remotes kept in the
//! config as ostree keeps them, pulls from repositories ostree published, verified objects,
//! only missing objects fetched, and refusals that leave the repository untouched.

mod common;
use common::gpg::GpgKey;
use common::nginx::Nginx;
use common::*;
use std::path::{Path, PathBuf};

/// An archive repository published by ostree: `main` with two commits, `other` with one,
/// optionally a summary.
fn published(dir: &Path, summary: bool) -> (PathBuf, String, String) {
    let tree = rich_tree(dir);
    let served = dir.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let repo = served.join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    let first = ostree(&repo, &["commit", "-b", "main", "-s", "one", t]).ok();
    write(&tree.join("changed"), b"second commit\n");
    let second = ostree(&repo, &["commit", "-b", "main", "-s", "two", t]).ok();
    ostree(&repo, &["commit", "-b", "other", "-s", "other", t]).ok();
    if summary {
        ostree(&repo, &["summary", "-u"]).ok();
    }
    (served, first.trim().into(), second.trim().into())
}

fn fsck_both(repo: &Path) {
    assert!(rostree(repo, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(repo, &["fsck"]).ok().contains("no errors found"));
}

#[test]
fn pulls_from_ostree_published_repos_into_every_mode() {
    let dir = tempdir();
    for summary in [false, true] {
        let sub = dir.path().join(format!("summary-{summary}"));
        std::fs::create_dir_all(&sub).unwrap();
        let (served, first, second) = published(&sub, summary);
        let server = Nginx::serve(&served, &sub.join("nginx"));
        let url = format!("{}/repo", server.base);
        for mode in ["bare-user", "archive", "bare"] {
            let ours = sub.join(format!("ours-{mode}"));
            let theirs = sub.join(format!("theirs-{mode}"));
            for (run, repo) in [
                (rostree as fn(&Path, &[&str]) -> Run, &ours),
                (ostree, &theirs),
            ] {
                run(repo, &["init", &format!("--mode={mode}")]).ok();
                run(
                    repo,
                    &["remote", "add", "--no-gpg-verify", "origin", &url, "main"],
                )
                .ok();
                run(repo, &["pull", "--depth=-1", "origin"]).ok();
            }
            assert_eq!(
                rostree(&ours, &["rev-parse", "origin:main"]).ok().trim(),
                second
            );
            assert_eq!(
                rostree(&ours, &["rev-parse", "origin:main^"]).ok().trim(),
                first
            );
            assert_eq!(
                rostree(&ours, &["refs"]).ok(),
                ostree(&theirs, &["refs"]).ok(),
                "{mode}"
            );
            assert_eq!(
                ostree(&ours, &["ls", "-R", "-C", "-X", "origin:main"]).ok(),
                ostree(&theirs, &["ls", "-R", "-C", "-X", "origin:main"]).ok(),
                "{mode}"
            );
            fsck_both(&ours);
        }
    }
}

#[test]
fn a_second_pull_fetches_only_what_changed() {
    let dir = tempdir();
    let (served, first, second) = published(dir.path(), true);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let repo = dir.path().join("local");
    rostree(&repo, &["init", "--mode=bare-user"]).ok();
    let url = format!("{}/repo", server.base);
    rostree(&repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
    // The first commit, then the second: only the changed file and the trees on its path.
    rostree(&repo, &["pull", "origin", &first]).ok();
    let before = server.requests_matching(".filez");
    assert!(before > 3000, "first pull fetched {before} content objects");
    let out = rostree(&repo, &["pull", "origin", "main"]).ok();
    assert!(
        out.starts_with("2 metadata, 1 content objects fetched;"),
        "second pull: {out}"
    );
    assert_eq!(server.requests_matching(".filez"), before + 1);
    assert_eq!(
        rostree(&repo, &["rev-parse", "origin:main"]).ok().trim(),
        second
    );
    // Commit metadata only: the commit is there, marked partial, and a full pull completes it.
    rostree(
        &repo,
        &["pull", "--commit-metadata-only", "origin", "other"],
    )
    .ok();
    let other = rostree(&repo, &["rev-parse", "origin:other"]).ok();
    assert!(
        repo.join(format!("state/{}.commitpartial", other.trim()))
            .exists()
    );
    rostree(&repo, &["pull", "origin", "other"]).ok();
    assert!(
        !repo
            .join(format!("state/{}.commitpartial", other.trim()))
            .exists()
    );
    fsck_both(&repo);
}

#[test]
fn ostree_pulls_what_rostree_published() {
    let dir = tempdir();
    let tree = rich_tree(dir.path());
    let served = dir.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    let repo = served.join("repo");
    rostree(&repo, &["init", "--mode=archive"]).ok();
    let id = rostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let local = dir.path().join("theirs");
    ostree(&local, &["init", "--mode=bare-user"]).ok();
    let url = format!("{}/repo", server.base);
    ostree(
        &local,
        &["remote", "add", "--no-gpg-verify", "origin", &url],
    )
    .ok();
    ostree(&local, &["pull", "origin", "main"]).ok();
    assert_eq!(ostree(&local, &["rev-parse", "origin:main"]).ok(), id);
    fsck_both(&local);
}

#[test]
fn corrupt_or_unsigned_objects_are_refused_and_refs_stay() {
    let dir = tempdir();
    let (served, first, _) = published(dir.path(), false);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let repo = dir.path().join("local");
    rostree(&repo, &["init", "--mode=archive"]).ok();
    // gpg-verify is on by default: an unsigned commit is refused, nothing is written.
    rostree(&repo, &["remote", "add", "signed", &url]).ok();
    let err = rostree(&repo, &["pull", "signed", "main"]).fails();
    assert!(
        err.contains("GPG verification enabled, but no signatures found"),
        "{err}"
    );
    assert!(rostree(&repo, &["refs"]).ok().is_empty());
    rostree(&repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
    rostree(&repo, &["pull", "origin", &first]).ok();
    rostree(&repo, &["refs", "--create=origin:main", &first]).ok();

    // Damage one content object and one dirtree of the served repo in turn.
    let objects: Vec<PathBuf> = files_below(&served.join("repo/objects"));
    let changed_file = objects
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "filez") && !local_has(&repo, p))
        .expect("a content object only the second commit has")
        .clone();
    let saved = std::fs::read(&changed_file).unwrap();
    let mut bad = saved.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    std::fs::write(&changed_file, &bad).unwrap();
    let err = rostree(&repo, &["pull", "origin", "main"]).fails();
    let name = changed_file
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(err.contains(&name), "the error names the object: {err}");
    assert_eq!(
        rostree(&repo, &["rev-parse", "origin:main"]).ok().trim(),
        first
    );
    fsck_both(&repo);
    // A body far larger than the object can be is refused as well.
    let mut huge = saved.clone();
    huge.extend(std::iter::repeat_n(0u8, 1 << 20));
    std::fs::write(&changed_file, &huge).unwrap();
    let err = rostree(&repo, &["pull", "origin", "main"]).fails();
    assert!(err.contains(&name), "{err}");
    // Once the server is right again, the pull completes.
    std::fs::write(&changed_file, &saved).unwrap();
    rostree(&repo, &["pull", "origin", "main"]).ok();
    fsck_both(&repo);
}

fn local_has(repo: &Path, served_object: &Path) -> bool {
    let dir = served_object.parent().unwrap().file_name().unwrap();
    repo.join("objects")
        .join(dir)
        .join(served_object.file_name().unwrap())
        .exists()
}

#[test]
fn remote_commands_write_and_print_what_ostree_does() {
    let dir = tempdir();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let steps: &[&[&str]] = &[
        &[
            "remote",
            "add",
            "origin",
            "http://127.0.0.1:1/repo",
            "main",
            "other",
        ],
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=foo=bar",
            "o2",
            "https://x/y",
        ],
        &["remote", "add", "--set=url=zzz", "o3", "https://q"],
        &[
            "remote",
            "add",
            "--if-not-exists",
            "origin",
            "http://elsewhere",
        ],
        &["remote", "list"],
        &["remote", "list", "-u"],
        &["remote", "show-url", "origin"],
        &["remote", "delete", "o2"],
        &["remote", "delete", "--if-exists", "nosuch"],
        &["remote", "delete", "o3"],
    ];
    rostree(&ours, &["init", "--mode=archive"]).ok();
    ostree(&theirs, &["init", "--mode=archive"]).ok();
    for step in steps {
        assert_eq!(
            rostree(&ours, step).ok(),
            ostree(&theirs, step).ok(),
            "{step:?}"
        );
        assert_eq!(
            std::fs::read_to_string(ours.join("config")).unwrap(),
            std::fs::read_to_string(theirs.join("config")).unwrap(),
            "config after {step:?}"
        );
    }
    for step in [
        &["remote", "add", "origin", "http://again"][..],
        &["remote", "add", "bad name", "http://x"],
        &["remote", "delete", "nosuch"],
        &["remote", "show-url", "nosuch"],
    ] {
        assert_eq!(
            rostree(&ours, step).fails(),
            ostree(&theirs, step).fails(),
            "{step:?}"
        );
    }
}

#[test]
fn gpg_signatures_are_checked_both_ways() {
    let dir = tempdir();
    let good = GpgKey::new(dir.path(), "good");
    let other = GpgKey::new(dir.path(), "other");
    let served = dir.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    let tree = dir.path().join("t");
    write(&tree.join("a/b"), b"signed content\n");
    let t = tree.to_str().unwrap();
    let homedir = format!("--gpg-homedir={}", good.home.display());
    // ostree publishes: `signed` signed by ostree, `unsigned` not.
    let theirs = served.join("theirs");
    ostree(&theirs, &["init", "--mode=archive"]).ok();
    ostree(&theirs, &["commit", "-b", "signed", t]).ok();
    ostree(&theirs, &["gpg-sign", &homedir, "signed", &good.id]).ok();
    ostree(&theirs, &["commit", "-b", "unsigned", t]).ok();
    // rostree publishes: one commit signed on commit, one signed afterwards.
    let ours = served.join("ours");
    rostree(&ours, &["init", "--mode=archive"]).ok();
    let sign_arg = format!("--gpg-sign={}", good.id);
    rostree(&ours, &["commit", "-b", "signed", &sign_arg, &homedir, t]).ok();
    write(&tree.join("a/c"), b"more\n");
    rostree(&ours, &["commit", "-b", "later", t]).ok();
    rostree(&ours, &["gpg-sign", &homedir, "later", &good.id]).ok();
    let server = Nginx::serve(&served, &dir.path().join("nginx"));

    let local = dir.path().join("local");
    rostree(&local, &["init", "--mode=bare-user"]).ok();
    let url = format!("{}/theirs", server.base);
    let import = format!("--gpg-import={}", good.public.display());
    let out = rostree(&local, &["remote", "add", &import, "trusted", &url]).ok();
    assert_eq!(out, "Imported 1 GPG key to remote \"trusted\"\n");
    rostree(&local, &["pull", "trusted", "signed"]).ok();
    let err = rostree(&local, &["pull", "trusted", "unsigned"]).fails();
    assert!(err.contains("no signatures found"), "{err}");
    // Nothing of the refused commit is kept.
    let unsigned = ostree(&theirs, &["rev-parse", "unsigned"]).ok();
    let unsigned = unsigned.trim();
    assert!(err.contains(unsigned), "{err}");
    for ext in ["commit", "commitmeta"] {
        let file = format!("objects/{}/{}.{ext}", &unsigned[..2], &unsigned[2..]);
        assert!(
            !local.join(file).exists(),
            "{ext} of the refused commit stored"
        );
    }
    assert!(
        !local
            .join(format!("state/{unsigned}.commitpartial"))
            .exists()
    );
    // Signed, but by a key this remote does not trust.
    let import_other = format!("--gpg-import={}", other.public.display());
    rostree(&local, &["remote", "add", &import_other, "wrongkey", &url]).ok();
    let objects_before = files_below(&local.join("objects")).len();
    let err = rostree(&local, &["pull", "wrongkey", "signed"]).fails();
    assert!(
        err.contains("Can't check signature: public key not found"),
        "{err}"
    );
    assert_eq!(files_below(&local.join("objects")).len(), objects_before);
    assert_eq!(rostree(&local, &["refs"]).ok(), "trusted:signed\n");

    // ostree verifies what rostree signed.
    let theirs_local = dir.path().join("theirs-local");
    ostree(&theirs_local, &["init", "--mode=archive"]).ok();
    let url = format!("{}/ours", server.base);
    ostree(&theirs_local, &["remote", "add", &import, "origin", &url]).ok();
    ostree(&theirs_local, &["pull", "origin", "signed", "later"]).ok();
    fsck_both(&theirs_local);
    fsck_both(&local);
}

/// Object files of a repository, relative to it, sorted.
fn object_names(repo: &Path) -> Vec<String> {
    let mut names: Vec<String> = files_below(&repo.join("objects"))
        .iter()
        .map(|p| p.strip_prefix(repo).unwrap().display().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn subpath_and_mirror_pulls_match_ostree() {
    let dir = tempdir();
    let (served, _, second) = published(dir.path(), true);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let tools = [rostree as fn(&Path, &[&str]) -> Run, ostree];
    let repos = |name: &str| -> [PathBuf; 2] {
        [
            dir.path().join(format!("ours-{name}")),
            dir.path().join(format!("theirs-{name}")),
        ]
    };
    let partial = format!("state/{second}.commitpartial");

    // --subpath: the same objects as ostree takes (the directories on the way, everything
    // below each subpath, a file named exactly), the commit left partial, the ref written.
    let subpaths = [
        "--subpath=/deep/d0/d1",
        "--subpath=/bin",
        "--subpath=/hello.txt",
    ];
    let [ours, theirs] = repos("subpath");
    for (run, repo) in tools.iter().zip([&ours, &theirs]) {
        run(repo, &["init", "--mode=bare-user"]).ok();
        run(repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
        let mut args = vec!["pull"];
        args.extend(subpaths);
        args.extend(["origin", "main"]);
        run(repo, &args).ok();
        assert!(repo.join(&partial).exists(), "{}", repo.display());
    }
    assert_eq!(object_names(&ours), object_names(&theirs));
    assert!(object_names(&ours).len() < 100, "only part of the tree");
    assert_eq!(
        rostree(&ours, &["refs"]).ok(),
        ostree(&theirs, &["refs"]).ok()
    );
    let err = rostree(&ours, &["pull", "--subpath=bin", "origin", "main"]).fails();
    assert!(err.contains("Invalid subpath 'bin'"), "{err}");
    // A full pull completes the commit.
    rostree(&ours, &["pull", "origin", "main"]).ok();
    assert!(!ours.join(&partial).exists());
    fsck_both(&ours);

    // --mirror without refs or configured branches: every ref of the summary, as local
    // branches, and the summary itself.
    let [ours, theirs] = repos("mirror");
    for (run, repo) in tools.iter().zip([&ours, &theirs]) {
        run(repo, &["init", "--mode=archive"]).ok();
        run(repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
        run(repo, &["pull", "--mirror", "--depth=-1", "origin"]).ok();
        assert_eq!(
            std::fs::read(repo.join("summary")).unwrap(),
            std::fs::read(served.join("repo/summary")).unwrap()
        );
    }
    let refs = rostree(&ours, &["refs"]).ok();
    let mut refs: Vec<&str> = refs.lines().collect();
    refs.sort();
    assert_eq!(refs, ["main", "other"]);
    assert_eq!(
        rostree(&ours, &["refs"]).ok(),
        ostree(&theirs, &["refs"]).ok()
    );
    assert_eq!(object_names(&ours), object_names(&theirs));
    fsck_both(&ours);
    // Named refs with --mirror: local branches, the summary not copied.
    let [ours, theirs] = repos("mirror-ref");
    for (run, repo) in tools.iter().zip([&ours, &theirs]) {
        run(repo, &["init", "--mode=archive"]).ok();
        run(repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
        run(repo, &["pull", "--mirror", "origin", "other"]).ok();
        assert!(!repo.join("summary").exists());
    }
    assert_eq!(rostree(&ours, &["refs"]).ok(), "other\n");
    assert_eq!(
        rostree(&ours, &["refs"]).ok(),
        ostree(&theirs, &["refs"]).ok()
    );

    // Without a summary, mirroring every ref is refused as ostree refuses it.
    let no_summary = dir.path().join("no-summary");
    std::fs::create_dir_all(&no_summary).unwrap();
    let (served2, _, _) = published(&no_summary, false);
    let server2 = Nginx::serve(&served2, &no_summary.join("nginx"));
    let url2 = format!("{}/repo", server2.base);
    let [ours, theirs] = repos("mirror-no-summary");
    let errors: Vec<String> = tools
        .iter()
        .zip([&ours, &theirs])
        .map(|(run, repo)| {
            run(repo, &["init", "--mode=archive"]).ok();
            run(repo, &["remote", "add", "--no-gpg-verify", "origin", &url2]).ok();
            run(repo, &["pull", "--mirror", "origin"]).fails()
        })
        .collect();
    assert_eq!(errors[0], errors[1]);
}

/// How many fsync/fdatasync/syncfs calls a rostree command makes (strace counts them).
fn sync_calls(repo: &Path, args: &[&str]) -> Option<usize> {
    let mut all = vec![
        "-f",
        "-c",
        "-e",
        "trace=fsync,fdatasync,syncfs",
        rostree_bin(),
    ];
    let repo_arg = format!("--repo={}", repo.display());
    all.push(&repo_arg);
    all.extend_from_slice(args);
    let out = std::process::Command::new("strace")
        .args(&all)
        .output()
        .ok()?;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stderr).to_string();
    let total = table.lines().find(|l| l.trim_end().ends_with("total"))?;
    // "100.00 0.000330 165 2 total": the calls column is the one before "total" (no errors).
    let fields: Vec<&str> = total.split_whitespace().collect();
    fields[fields.len() - 2].parse().ok()
}

#[test]
fn disable_fsync_pulls_without_syncing() {
    if std::process::Command::new("strace")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: strace is not installed (it counts the sync calls)");
        return;
    }
    let dir = tempdir();
    let (served, _, _) = published(dir.path(), true);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let mut counts = Vec::new();
    for flags in [&["--disable-fsync"][..], &[]] {
        let repo = dir.path().join(format!("local-{}", flags.len()));
        rostree(&repo, &["init", "--mode=bare-user"]).ok();
        rostree(&repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
        let mut args = vec!["pull"];
        args.extend_from_slice(flags);
        args.extend(["origin", "main"]);
        let Some(n) = sync_calls(&repo, &args) else {
            eprintln!("skipped: strace cannot trace here");
            return;
        };
        counts.push(n);
        fsck_both(&repo);
    }
    assert_eq!(counts[0], 0, "--disable-fsync synced");
    assert!(counts[1] > 0, "a normal pull syncs");
}

#[test]
fn ref_bindings_are_checked_as_ostree_checks_them() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("a"), b"bound\n");
    let served = dir.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    let repo = served.join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    let bound = ostree(&repo, &["commit", "-b", "stable", t]).ok();
    let bound = bound.trim();
    // `hijack` names a commit bound to `stable` only.
    ostree(&repo, &["refs", "--create=hijack", "stable"]).ok();
    ostree(&repo, &["summary", "-u"]).ok();
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let mut errors = Vec::new();
    for (i, run) in [rostree as fn(&Path, &[&str]) -> Run, ostree]
        .into_iter()
        .enumerate()
    {
        let local = dir.path().join(format!("local-{i}"));
        run(&local, &["init", "--mode=archive"]).ok();
        run(
            &local,
            &["remote", "add", "--no-gpg-verify", "origin", &url],
        )
        .ok();
        errors.push(run(&local, &["pull", "origin", "hijack"]).fails());
        assert_eq!(rostree(&local, &["refs"]).ok(), "", "no ref moves");
        // The ref it is bound to, and the bare checksum (no ref to check), are pulled.
        run(&local, &["pull", "origin", "stable"]).ok();
        run(&local, &["pull", "origin", bound]).ok();
        // Once the commit is here, the binding is still checked.
        errors.push(run(&local, &["pull", "origin", "hijack"]).fails());
        assert_eq!(rostree(&local, &["refs"]).ok(), "origin:stable\n");
    }
    let expected = format!(
        "error: Commit {bound}: Commit has no requested ref ‘hijack’ in ref binding metadata (‘stable’)\n"
    );
    assert!(errors.iter().all(|e| *e == expected), "{errors:#?}");
}

#[test]
fn a_progress_bar_on_a_terminal_only() {
    if std::process::Command::new("script")
        .arg("-V")
        .output()
        .is_err()
    {
        eprintln!("skipped: script (util-linux) is not installed to give the pull a terminal");
        return;
    }
    let dir = tempdir();
    let (served, _, _) = published(dir.path(), true);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let mut outputs = Vec::new();
    for terminal in [true, false] {
        let repo = dir.path().join(format!("local-{terminal}"));
        rostree(&repo, &["init", "--mode=bare-user"]).ok();
        rostree(&repo, &["remote", "add", "--no-gpg-verify", "origin", &url]).ok();
        let pull = format!(
            "{} --repo={} pull origin main",
            rostree_bin(),
            repo.display()
        );
        let out = if terminal {
            // script runs the pull on a pseudo-terminal and copies what it shows.
            sh("script", &["-qefc", &pull, "/dev/null"]).ok()
        } else {
            let run = sh("sh", &["-c", &pull]);
            run.ok() + &run.stderr()
        };
        assert!(out.contains("content objects fetched;"), "{out}");
        outputs.push(out);
    }
    for shown in ["Receiving objects:", "ETA", "/s"] {
        assert!(
            outputs[0].contains(shown),
            "terminal: {shown}: {}",
            outputs[0]
        );
        assert!(
            !outputs[1].contains("Receiving"),
            "not a terminal: {}",
            outputs[1]
        );
    }
}

#[test]
fn remote_gpg_import_and_summary_print_what_ostree_does() {
    let dir = tempdir();
    let (a, b) = (GpgKey::new(dir.path(), "a"), GpgKey::new(dir.path(), "b"));
    let (served, _, _) = published(dir.path(), true);
    let server = Nginx::serve(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let keyring = |k: &GpgKey| format!("--keyring={}", k.public.display());
    let steps: Vec<Vec<String>> = vec![
        vec!["remote".into(), "add".into(), "origin".into(), url.clone()],
        vec![
            "remote".into(),
            "gpg-import".into(),
            keyring(&a),
            "origin".into(),
        ],
        // Again: nothing new.
        vec![
            "remote".into(),
            "gpg-import".into(),
            "-k".into(),
            a.public.display().to_string(),
            "origin".into(),
        ],
        vec![
            "remote".into(),
            "gpg-import".into(),
            keyring(&a),
            keyring(&b),
            "origin".into(),
        ],
        vec!["remote".into(), "summary".into(), "origin".into()],
        vec![
            "remote".into(),
            "summary".into(),
            "--raw".into(),
            "origin".into(),
        ],
        vec!["remote".into(), "refs".into(), "origin".into()],
    ];
    for (run, repo) in [
        (rostree as fn(&Path, &[&str]) -> Run, &ours),
        (ostree, &theirs),
    ] {
        run(repo, &["init", "--mode=archive"]).ok();
    }
    for step in &steps {
        let step: Vec<&str> = step.iter().map(String::as_str).collect();
        assert_eq!(
            rostree(&ours, &step).ok(),
            ostree(&theirs, &step).ok(),
            "{step:?}"
        );
    }
    // Keys from standard input, and the errors for a missing remote or keyring.
    let stdin_import = |tool: &str, repo: &Path| {
        let cmd = format!(
            "{tool} --repo={} remote gpg-import --stdin origin < {}",
            repo.display(),
            b.public.display()
        );
        sh("sh", &["-c", &cmd])
    };
    for (tool, repo) in [(rostree_bin().to_string(), &ours), (oracle(), &theirs)] {
        // Deleting the remote deletes its keys.
        tool_with_env(&tool, repo, &["remote", "delete", "origin"], &[]).ok();
        assert!(!repo.join("origin.trustedkeys.gpg").exists(), "{tool}");
        tool_with_env(&tool, repo, &["remote", "add", "origin", &url], &[]).ok();
        assert_eq!(
            stdin_import(&tool, repo).ok(),
            "Imported 1 GPG key to remote \"origin\"\n"
        );
    }
    for step in [
        &["remote", "gpg-import", "nosuch"][..],
        &["remote", "summary", "nosuch"],
        &["remote", "refs", "nosuch"],
    ] {
        assert_eq!(
            rostree(&ours, step).fails(),
            ostree(&theirs, step).fails(),
            "{step:?}"
        );
    }
    // The imported key is the one trusted: b signed, so the pull goes through.
    let home = format!("--gpg-homedir={}", b.home.display());
    ostree(&served.join("repo"), &["gpg-sign", &home, "main", &b.id]).ok();
    rostree(&ours, &["pull", "origin", "main"]).ok();
}

#[test]
fn pulls_over_https_with_the_remotes_certificate_authority() {
    let dir = tempdir();
    let tree = dir.path().join("t");
    write(&tree.join("a/b"), b"over TLS\n");
    let served = dir.path().join("www");
    std::fs::create_dir_all(&served).unwrap();
    let repo = served.join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let id = ostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    ostree(&repo, &["summary", "-u"]).ok();
    let server = Nginx::serve_https(&served, &dir.path().join("nginx"));
    let url = format!("{}/repo", server.base);
    assert!(url.starts_with("https://"));
    let ca = format!(
        "--set=tls-ca-path={}",
        server.ca.as_ref().unwrap().display()
    );
    // Both tools trust the test authority through the remote's tls-ca-path.
    for (i, run) in [rostree as fn(&Path, &[&str]) -> Run, ostree]
        .into_iter()
        .enumerate()
    {
        let local = dir.path().join(format!("local-{i}"));
        run(&local, &["init", "--mode=bare-user"]).ok();
        run(
            &local,
            &["remote", "add", "--no-gpg-verify", &ca, "origin", &url],
        )
        .ok();
        run(&local, &["pull", "origin", "main"]).ok();
        assert_eq!(rostree(&local, &["rev-parse", "origin:main"]).ok(), id);
        fsck_both(&local);
    }
    // Without it the certificate is unknown: refused, naming the URL, nothing stored.
    let local = dir.path().join("untrusting");
    rostree(&local, &["init", "--mode=bare-user"]).ok();
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", "origin", &url],
    )
    .ok();
    let err = rostree(&local, &["pull", "origin", "main"]).fails();
    assert!(err.starts_with(&format!("error: {url}/config: ")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(rostree(&local, &["refs"]).ok().is_empty());
    assert!(files_below(&local.join("objects")).is_empty());
    // tls-permissive accepts any certificate; a tls-ca-path that is not one is an error.
    let permissive = ["--set=tls-permissive=true", "--no-gpg-verify"];
    rostree(
        &local,
        &["remote", "add", permissive[0], permissive[1], "lax", &url],
    )
    .ok();
    rostree(&local, &["pull", "lax", "main"]).ok();
    let bad = format!("--set=tls-ca-path={}", tree.join("a/b").display());
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", &bad, "bad", &url],
    )
    .ok();
    let err = rostree(&local, &["pull", "bad", "main"]).fails();
    assert!(err.contains("tls-ca-path"), "{err}");
}
