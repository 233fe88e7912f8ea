//! Signed summaries over a real web server: `summary -u --gpg-sign` writes `summary.sig` as
//! ostree does, so `ostree pull` with `gpg-verify-summary=true` accepts our summaries and we
//! accept ostree's; a missing, stale or untrusted `summary.sig` stops the pull before
//! anything is stored, with ostree's message; `remote summary` prints what ostree prints.

mod common;
use common::gpg::GpgKey;
use common::nginx::Nginx;
use common::*;
use std::path::Path;

/// Files under `repo/objects`: what a refused pull must not have written.
fn object_count(repo: &Path) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { walk(&p) } else { 1 })
                .sum()
        })
    }
    walk(&repo.join("objects"))
}

/// A client repo of `tool` with remote `name` at `url`: commits unsigned, the summary
/// verified against `key`.
fn client(tool: &str, repo: &Path, name: &str, url: &str, key: &GpgKey) {
    if !repo.exists() {
        tool_with_env(tool, repo, &["init", "--mode=archive"], &[]).ok();
    }
    let import = format!("--gpg-import={}", key.public.display());
    let args = [
        "remote",
        "add",
        "--no-gpg-verify",
        "--set=gpg-verify-summary=true",
        &import,
        name,
        url,
    ];
    tool_with_env(tool, repo, &args, &[]).ok();
}

#[test]
fn signed_summaries_are_verified_both_ways() {
    let dir = tempdir();
    let key = GpgKey::new(dir.path(), "publisher");
    let stranger = GpgKey::new(dir.path(), "stranger");
    let homedir = format!("--gpg-homedir={}", key.home.display());
    let sign = format!("--gpg-sign={}", key.id);
    let tree = dir.path().join("t");
    write(&tree.join("a/b"), b"summary signing\n");
    let t = tree.to_str().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();

    // rostree publishes and signs; ostree publishes and signs.
    let ours = www.join("ours");
    rostree(&ours, &["init", "--mode=archive"]).ok();
    rostree(&ours, &["commit", "-b", "main", t]).ok();
    rostree(&ours, &["summary", "-u", &sign, &homedir]).ok();
    let theirs = www.join("theirs");
    ostree(&theirs, &["init", "--mode=archive"]).ok();
    ostree(&theirs, &["commit", "-b", "main", t]).ok();
    ostree(&theirs, &["summary", "-u", &sign, &homedir]).ok();
    // A summary without summary.sig, and one whose summary.sig signs an older summary.
    let unsigned = www.join("unsigned");
    ostree(&unsigned, &["init", "--mode=archive"]).ok();
    ostree(&unsigned, &["commit", "-b", "main", t]).ok();
    ostree(&unsigned, &["summary", "-u"]).ok();
    let stale = www.join("stale");
    rostree(&stale, &["init", "--mode=archive"]).ok();
    rostree(&stale, &["commit", "-b", "main", t]).ok();
    rostree(&stale, &["summary", "-u", &sign, &homedir]).ok();
    let old_sig = std::fs::read(stale.join("summary.sig")).unwrap();
    write(&tree.join("a/c"), b"newer\n");
    rostree(&stale, &["commit", "-b", "main", t]).ok();
    rostree(&stale, &["summary", "-u"]).ok();
    assert!(
        !stale.join("summary.sig").exists(),
        "summary -u drops the old signatures"
    );
    std::fs::write(stale.join("summary.sig"), old_sig).unwrap();
    let server = Nginx::serve(&www, &dir.path().join("nginx"));
    let url = |name: &str| format!("{}/{name}", server.base);

    // Each tool pulls what the other signed, and what it signed itself.
    for (tool, other) in [(rostree_bin(), "ostree"), (oracle().as_str(), "rostree")] {
        let local = dir.path().join(format!("client-of-{other}"));
        client(tool, &local, "ours", &url("ours"), &key);
        client(tool, &local, "theirs", &url("theirs"), &key);
        tool_with_env(tool, &local, &["pull", "ours", "main"], &[]).ok();
        tool_with_env(tool, &local, &["pull", "theirs", "main"], &[]).ok();
        let refs = tool_with_env(tool, &local, &["refs"], &[]).ok();
        let mut refs: Vec<&str> = refs.lines().collect();
        refs.sort();
        assert_eq!(refs, ["ours:main", "theirs:main"], "{tool}");
        ostree(&local, &["fsck"]).ok();
        rostree(&local, &["fsck"]).ok();
    }

    // Refusals: the same words as ostree, nothing stored, no ref.
    for (name, key, expected) in [
        ("unsigned", &key, "but no summary.sig found"),
        (
            "stale",
            &key,
            "BAD signature from \"publisher <publisher@example.com>\"",
        ),
        (
            "ours",
            &stranger,
            "Can't check signature: public key not found",
        ),
    ] {
        let mut errors = Vec::new();
        for tool in [rostree_bin(), oracle().as_str()] {
            let local = dir.path().join(format!("refused-{name}-{}", errors.len()));
            client(tool, &local, name, &url(name), key);
            let run = tool_with_env(tool, &local, &["pull", name, "main"], &[]);
            errors.push(run.fails());
            assert_eq!(object_count(&local), 0, "{tool} stored objects from {name}");
            assert_eq!(rostree(&local, &["refs"]).ok(), "", "{tool} moved a ref");
        }
        assert_eq!(errors[0], errors[1], "pull from {name}");
        assert!(errors[0].contains(expected), "{name}: {}", errors[0]);
        // `remote summary` and `remote refs` refuse the same way.
        let local = dir.path().join(format!("refused-{name}-0"));
        for args in [&["remote", "summary", name][..], &["remote", "refs", name]] {
            let ours = rostree(&local, args);
            let theirs = ostree(&local, args);
            assert_eq!(ours.fails(), theirs.fails(), "{args:?} on {name}");
        }
    }

    // `remote summary` (with the signature block) and `remote refs` print what ostree does.
    let local = dir.path().join("client-of-ostree");
    for name in ["ours", "theirs"] {
        for args in [
            &["remote", "summary", name][..],
            &["remote", "summary", "--raw", name],
            &["remote", "refs", name],
        ] {
            let ours = rostree(&local, args).ok();
            let theirs = ostree(&local, args).ok();
            assert_eq!(ours, theirs, "{args:?}");
        }
        let shown = rostree(&local, &["remote", "summary", name]).ok();
        let header = "\nGPG: Verification enabled, found 1 signature:\n\n  Signature made ";
        assert!(shown.contains(header), "{shown}");
        assert!(shown.contains("Good signature from \"publisher"), "{shown}");
    }
}
