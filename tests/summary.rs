//! `summary -u` writes ostree's summary format: the same bytes as ostree for the same
//! repository (but the time stamp), which ostree reads, lists and pulls from.

mod common;
use common::nginx::Nginx;
use common::*;
use std::path::Path;

/// `summary --view --raw` by ostree, the last-modified time masked.
fn view(repo: &Path) -> String {
    let raw = ostree(repo, &["summary", "--view", "--raw"]).ok();
    let key = "'ostree.summary.last-modified': <uint64 ";
    let start = raw.find(key).expect("a last-modified time") + key.len();
    let end = start + raw[start..].find('>').unwrap();
    format!("{}T{}", &raw[..start], &raw[end..])
}

#[test]
fn summary_matches_ostree_and_ostree_pulls_with_it() {
    let dir = tempdir();
    let tree = dir.path().join("tree");
    write(&tree.join("a"), b"summary test\n");
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let ours = www.join("ours");
    let theirs = dir.path().join("theirs");
    ostree(&ours, &["init", "--mode=archive"]).ok();
    let t = tree.to_str().unwrap();
    ostree(&ours, &["commit", "-b", "main", t]).ok();
    ostree(
        &ours,
        &[
            "commit",
            "-b",
            "other/x",
            "--add-metadata-string=version=1.2",
            t,
        ],
    )
    .ok();
    ostree(&ours, &["commit", "-b", "Zed", "--orphan", t]).ok();
    ostree(&ours, &["refs", "--create=far:away", "main"]).ok();
    ostree(&ours, &["refs", "--alias", "--create=alias", "main"]).ok();
    std::fs::write(ours.join("summary.sig"), b"stale").unwrap();
    sh(
        "cp",
        &["-a", ours.to_str().unwrap(), theirs.to_str().unwrap()],
    )
    .ok();
    for tombstones in ["false", "true"] {
        for repo in [&ours, &theirs] {
            ostree(
                repo,
                &["config", "set", "core.tombstone-commits", tombstones],
            )
            .ok();
        }
        rostree(&ours, &["summary", "-u"]).ok();
        ostree(&theirs, &["summary", "-u"]).ok();
        assert_eq!(view(&ours), view(&theirs), "tombstone-commits={tombstones}");
        assert_eq!(
            std::fs::metadata(ours.join("summary")).unwrap().len(),
            std::fs::metadata(theirs.join("summary")).unwrap().len()
        );
        assert!(!ours.join("summary.sig").exists());
        // Our view of either summary is ostree's.
        for repo in [&ours, &theirs] {
            for args in [
                &["summary", "--view"][..],
                &["summary", "--view", "--raw"],
                &["summary", "--raw"],
            ] {
                assert_eq!(
                    rostree(repo, args).ok(),
                    ostree(repo, args).ok(),
                    "{args:?}"
                );
            }
        }
    }

    // ostree lists the refs and pulls through our summary; so do we.
    let server = Nginx::serve(&www, &dir.path().join("nginx"));
    let url = format!("{}/ours", server.base);
    for (run, name) in [(ostree as fn(&Path, &[&str]) -> Run, "o"), (rostree, "r")] {
        let local = dir.path().join(format!("local-{name}"));
        run(&local, &["init", "--mode=bare-user"]).ok();
        run(
            &local,
            &["remote", "add", "--no-gpg-verify", "origin", &url],
        )
        .ok();
        let refs = run(&local, &["remote", "refs", "origin"]).ok();
        let mut listed: Vec<&str> = refs.lines().collect();
        listed.sort();
        assert_eq!(
            listed,
            [
                "origin:Zed",
                "origin:alias",
                "origin:main",
                "origin:other/x"
            ]
        );
        run(&local, &["pull", "origin", "other/x"]).ok();
        assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));
    }
}
