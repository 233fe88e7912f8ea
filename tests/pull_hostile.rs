//! Pulling from broken and hostile servers (a test server that misbehaves on chosen paths):
//! every failure names the object or URL in one `error:` line, nothing unverified is
//! stored, refs stay, both tools fsck the repository clean, and a later pull from a good
//! server completes.

mod common;
use common::hostile::{HostileServer, Misbehave};
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every object file below `dir`, as paths relative to it.
fn objects(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.insert(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, &dir.join("objects"), &mut out);
    out
}

/// An archive repository published by ostree under `www/repo`: `main` moves from a first
/// commit to a second that changes one file in a subdirectory. Returns the served root,
/// both commits and the objects only the second has.
fn published(dir: &Path) -> (PathBuf, String, String, BTreeSet<String>) {
    let tree = dir.join("tree");
    write(&tree.join("a"), b"first file\n");
    write(&tree.join("sub/b"), b"second file\n");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    write(&tree.join("sub/big"), &big);
    let www = dir.join("www");
    let repo = www.join("repo");
    std::fs::create_dir_all(&www).unwrap();
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    let first = ostree(&repo, &["commit", "-b", "main", "-s", "one", t]).ok();
    let before = objects(&repo);
    let big2: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 251) as u8).collect();
    write(&tree.join("sub/big"), &big2);
    let second = ostree(&repo, &["commit", "-b", "main", "-s", "two", t]).ok();
    ostree(&repo, &["summary", "-u"]).ok();
    let new = objects(&repo).difference(&before).cloned().collect();
    (www, first.trim().into(), second.trim().into(), new)
}

fn fsck_both(repo: &Path) {
    assert!(rostree(repo, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(repo, &["fsck"]).ok().contains("no errors found"));
}

/// The one new object with this suffix.
fn new_object<'a>(new: &'a BTreeSet<String>, suffix: &str) -> &'a str {
    new.iter().find(|p| p.ends_with(suffix)).expect(suffix)
}

/// The checksum an object path names.
fn checksum_of(rel: &str) -> String {
    let mut parts = rel.split('/').skip(1);
    let dir = parts.next().unwrap();
    let leaf = parts.next().unwrap();
    format!("{dir}{}", leaf.split('.').next().unwrap())
}

#[test]
fn hostile_servers_are_refused_and_a_good_one_completes_the_pull() {
    let dir = tempdir();
    let (www, first, second, new) = published(dir.path());
    // The same repository under another path, for redirects.
    std::os::unix::fs::symlink(www.join("repo"), www.join("moved")).unwrap();
    let server = HostileServer::serve(&www);
    let url = format!("{}/repo", server.base);
    // Each case starts from its own repository holding the first commit: what a failed
    // pull keeps (verified objects, the commit marked partial) must not hide the next case.
    let fresh = |name: &str| {
        let local = dir.path().join(name);
        rostree(&local, &["init", "--mode=bare-user"]).ok();
        rostree(
            &local,
            &[
                "remote",
                "add",
                "--no-gpg-verify",
                "--set=timeout-secs=2",
                "origin",
                &url,
            ],
        )
        .ok();
        rostree(&local, &["pull", "origin", &first]).ok();
        rostree(&local, &["refs", "--create=origin:main", &first]).ok();
        local
    };

    // The changed file is the big one (in memory); the changed dirtree is `sub`'s or the
    // root's, whichever sorts first: both are new.
    let filez = new_object(&new, ".filez");
    let dirtree = new_object(&new, ".dirtree");
    let commit = format!("objects/{}/{}.commit", &second[..2], &second[2..]);
    let first_commit =
        www.join("repo")
            .join(format!("objects/{}/{}.commit", &first[..2], &first[2..]));
    let cases: Vec<(&str, Misbehave, String)> = vec![
        (filez, Misbehave::WrongBytes, checksum_of(filez)),
        (dirtree, Misbehave::WrongBytes, checksum_of(dirtree)),
        (filez, Misbehave::Truncate, checksum_of(filez)),
        (dirtree, Misbehave::Truncate, dirtree.to_string()),
        (filez, Misbehave::Pad(8 << 20), checksum_of(filez)),
        (dirtree, Misbehave::Pad(1 << 20), checksum_of(dirtree)),
        (filez, Misbehave::Stall, filez.to_string()),
        (dirtree, Misbehave::Stall, dirtree.to_string()),
        (filez, Misbehave::Status(500), filez.to_string()),
        (dirtree, Misbehave::Status(404), checksum_of(dirtree)),
        (filez, Misbehave::Status(404), checksum_of(filez)),
        // The summary names `second`; the server gives other commit bytes for it.
        (&commit, Misbehave::Replace(first_commit), second.clone()),
        ("/repo/summary", Misbehave::Stall, "summary".into()),
        ("/repo/config", Misbehave::Status(500), "config".into()),
    ];
    for (i, (path, how, named)) in cases.into_iter().enumerate() {
        server.clear();
        let local = fresh(&format!("local-{i}"));
        server.rule(path, how.clone());
        let err = rostree(&local, &["pull", "origin", "main"]).fails();
        let case = format!("{how:?} on {path}");
        assert!(err.starts_with("error: "), "{case}: {err}");
        assert_eq!(err.lines().count(), 1, "{case}: one line: {err}");
        assert!(err.contains(&named), "{case}: names {named}: {err}");
        assert_eq!(
            rostree(&local, &["rev-parse", "origin:main"]).ok().trim(),
            first,
            "{case}: the ref stays"
        );
        fsck_both(&local);
        // The server is good again: the pull completes.
        server.clear();
        rostree(&local, &["pull", "origin", "main"]).ok();
        fsck_both(&local);
    }

    // Redirects to the real path are followed.
    server.clear();
    let local = fresh("local-redirected");
    server.rule("/repo/", Misbehave::Redirect("/moved/".into()));
    rostree(&local, &["pull", "origin", "main"]).ok();
    assert!(server.requests_matching("/moved/objects/") > 0);
    assert_eq!(
        rostree(&local, &["rev-parse", "origin:main"]).ok().trim(),
        second
    );
    fsck_both(&local);
    let listing = |repo: &Path, tool: fn(&Path, &[&str]) -> Run| {
        tool(repo, &["ls", "-R", "-C", "origin:main"]).ok()
    };
    assert_eq!(listing(&local, rostree), listing(&local, ostree));
}

#[test]
fn a_bad_timeout_setting_is_an_error() {
    let dir = tempdir();
    let local = dir.path().join("local");
    rostree(&local, &["init", "--mode=archive"]).ok();
    rostree(
        &local,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=timeout-secs=soon",
            "origin",
            "http://127.0.0.1:1/repo",
        ],
    )
    .ok();
    let err = rostree(&local, &["pull", "origin", "main"]).fails();
    assert!(err.contains("timeout-secs"), "{err}");
}

#[test]
fn many_fetches_at_once_over_kept_alive_connections() {
    let dir = tempdir();
    let tree = dir.path().join("tree");
    for i in 0..300 {
        write(
            &tree.join(format!("d{}/f{i}", i % 10)),
            format!("{i}\n").as_bytes(),
        );
    }
    let www = dir.path().join("www");
    let repo = www.join("repo");
    std::fs::create_dir_all(&www).unwrap();
    ostree(&repo, &["init", "--mode=archive"]).ok();
    ostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let server = HostileServer::serve(&www);
    // Each content object takes a while, so fetches that run at once overlap.
    server.rule(".filez", Misbehave::Delay(20));
    let local = dir.path().join("local");
    rostree(&local, &["init", "--mode=bare-user"]).ok();
    let url = format!("{}/repo", server.base);
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", "origin", &url],
    )
    .ok();
    rostree(&local, &["pull", "origin", "main"]).ok();
    assert_eq!(server.requests_matching(".filez"), 300);
    let requests = server.requests().len();
    // 8 workers, each on its own kept-alive connection (and one for the first requests).
    assert!(
        server.connections() <= 9,
        "{} connections for {requests} requests",
        server.connections()
    );
    assert!(
        (2..=8).contains(&server.max_in_flight()),
        "{} requests at once",
        server.max_in_flight()
    );
    fsck_both(&local);
}
