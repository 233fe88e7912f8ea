//! An interrupted pull resumes: `kill -9` of a pull midway keeps what it had fetched (the
//! commit marked partial, objects published batch by batch), and the next pull fetches
//! only the rest.

mod common;
use common::hostile::{HostileServer, Misbehave};
use common::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The objects a pull may fetch again after a kill: the batch not yet published when the
/// kill came (`PUBLISH_BATCH` in store/src/pull/mod.rs) and the fetches in flight.
const MAY_REFETCH: usize = 128 + 8 + 8;

#[test]
fn a_killed_pull_resumes_without_fetching_again() {
    let dir = tempdir();
    let tree = rich_tree(dir.path());
    let www = dir.path().join("www");
    let served = www.join("repo");
    std::fs::create_dir_all(&www).unwrap();
    ostree(&served, &["init", "--mode=archive"]).ok();
    let commit = ostree(&served, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let commit = commit.trim();
    let server = HostileServer::serve(&www);
    // Slow content, so the kill lands midway.
    server.rule(".filez", Misbehave::Delay(20));

    let local = dir.path().join("local");
    rostree(&local, &["init", "--mode=bare-user"]).ok();
    let url = format!("{}/repo", server.base);
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", "origin", &url],
    )
    .ok();
    let mut child = std::process::Command::new(rostree_bin())
        .arg(format!("--repo={}", local.display()))
        .args(["pull", "origin", "main"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.requests_matching(".filez") < 600 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before the kill"
        );
        assert!(Instant::now() < deadline, "the pull made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first_run: HashSet<String> = server
        .requests()
        .into_iter()
        .filter(|p| p.ends_with(".filez"))
        .collect();

    // Killed: no ref, the commit is partial, and the repository is sound.
    assert!(rostree(&local, &["refs"]).ok().is_empty());
    assert!(local.join(format!("state/{commit}.commitpartial")).exists());
    assert!(rostree(&local, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));

    server.clear();
    let seen = server.requests().len();
    rostree(&local, &["pull", "origin", "main"]).ok();
    let second_run: Vec<String> = server.requests()[seen..]
        .iter()
        .filter(|p| p.ends_with(".filez"))
        .cloned()
        .collect();
    let again = second_run.iter().filter(|p| first_run.contains(*p)).count();
    assert!(
        again <= MAY_REFETCH,
        "{again} of {} content objects fetched again",
        first_run.len()
    );
    assert_eq!(
        rostree(&local, &["rev-parse", "origin:main"]).ok().trim(),
        commit
    );
    assert!(!local.join(format!("state/{commit}.commitpartial")).exists());
    assert!(rostree(&local, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));
}
