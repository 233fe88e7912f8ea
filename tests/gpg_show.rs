//! `show` and `log` on GPG-signed commits print what ostree prints, byte for byte: the
//! "Found N signature(s):" block after a signed commit (good, unknown key, two signatures,
//! bad, expired key), nothing for an unsigned one, with the keys ostree would use
//! (every remote's keyring, `--gpg-verify-remote`, `--gpg-homedir`) and dates in local time.

mod common;
use common::gpg::GpgKey;
use common::*;
use std::path::Path;

/// Runs `show`/`log` with both tools and asserts the same stdout, stderr and exit status.
fn assert_same(repo: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let ours = tool_with_env(rostree_bin(), repo, args, env);
    let theirs = tool_with_env(&oracle(), repo, args, env);
    let what = format!("{} with {env:?}", args.join(" "));
    assert_eq!(ours.stdout(), theirs.stdout(), "stdout of {what}");
    assert_eq!(ours.stderr(), theirs.stderr(), "stderr of {what}");
    assert_eq!(ours.out.status.code(), theirs.out.status.code(), "{what}");
    ours.stdout()
}

/// Copies commit `from`'s detached metadata onto commit `to`: signatures over other bytes.
fn copy_commitmeta(repo: &Path, from: &str, to: &str) {
    let path = |c: &str| repo.join(format!("objects/{}/{}.commitmeta", &c[..2], &c[2..]));
    std::fs::copy(path(from), path(to)).unwrap();
}

#[test]
fn signature_blocks_match_ostree() {
    let dir = tempdir();
    let good = GpgKey::new(dir.path(), "good");
    let other = GpgKey::new(dir.path(), "other");
    // Made in 2020, expired in 2021: its signatures are refused, with the expiry shown.
    let old = GpgKey::new_with(dir.path(), "old", "1y", Some("20200101T000000"));
    let repo = dir.path().join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let tree = dir.path().join("t");
    let t = tree.to_str().unwrap();
    let homedir = |k: &GpgKey| format!("--gpg-homedir={}", k.home.display());
    let commit = |branch: &str| {
        write(&tree.join("branch"), branch.as_bytes());
        ostree(&repo, &["commit", "-b", branch, "-s", branch, t])
            .ok()
            .trim()
            .to_string()
    };
    commit("unsigned");
    commit("known");
    ostree(&repo, &["gpg-sign", &homedir(&good), "known", &good.id]).ok();
    commit("unknown");
    ostree(&repo, &["gpg-sign", &homedir(&other), "unknown", &other.id]).ok();
    let two = commit("two");
    ostree(&repo, &["gpg-sign", &homedir(&good), "two", &good.id]).ok();
    rostree(&repo, &["gpg-sign", &homedir(&other), "two", &other.id]).ok();
    commit("expired");
    ostree(&repo, &["gpg-sign", &homedir(&old), "expired", &old.id]).ok();
    let bad = commit("bad");
    copy_commitmeta(&repo, &two, &bad);
    // Signed by rostree when committing.
    write(&tree.join("branch"), b"ours");
    let sign = format!("--gpg-sign={}", good.id);
    rostree(&repo, &["commit", "-b", "ours", &sign, &homedir(&good), t]).ok();

    // `good` is trusted for remote `origin`, `old` for `past`; `other` only in a
    // keyring directory given with --gpg-homedir.
    let import = |k: &GpgKey| format!("--gpg-import={}", k.public.display());
    ostree(
        &repo,
        &[
            "remote",
            "add",
            &import(&good),
            "origin",
            "http://example.com/r",
        ],
    )
    .ok();
    ostree(
        &repo,
        &[
            "remote",
            "add",
            &import(&old),
            "past",
            "http://example.com/p",
        ],
    )
    .ok();
    let keyring_dir = dir.path().join("keyrings");
    std::fs::create_dir_all(&keyring_dir).unwrap();
    let exported = sh(
        "gpg",
        &[
            "--homedir",
            other.home.to_str().unwrap(),
            "--export",
            &other.id,
        ],
    );
    std::fs::write(keyring_dir.join("other.gpg"), &exported.out.stdout).unwrap();
    let in_dir = format!("--gpg-homedir={}", keyring_dir.display());

    let branches = [
        "unsigned", "known", "unknown", "two", "expired", "bad", "ours",
    ];
    let option_sets: [&[&str]; 4] = [
        &[],
        &["--gpg-verify-remote=origin"],
        &["--gpg-verify-remote=past"],
        &[in_dir.as_str()],
    ];
    let envs: [&[(&str, &str)]; 3] = [
        &[("TZ", "UTC"), ("LANG", "C.UTF-8")],
        &[("TZ", "America/New_York"), ("LANG", "C.UTF-8")],
        &[("TZ", "Asia/Kolkata"), ("LANG", "C")],
    ];
    for env in envs {
        for branch in branches {
            for options in option_sets {
                let mut args = vec!["show", branch];
                args.extend_from_slice(options);
                assert_same(&repo, &args, env);
            }
            let log = assert_same(&repo, &["log", branch], env);
            assert!(
                !log.contains("signature"),
                "ostree log shows no signatures: {log}"
            );
        }
    }

    // What the blocks say, so that agreeing on nothing cannot pass.
    let utc: &[(&str, &str)] = &[("TZ", "UTC"), ("LANG", "C.UTF-8")];
    let show = |args: &[&str]| {
        let mut all = vec!["show"];
        all.extend_from_slice(args);
        assert_same(&repo, &all, utc)
    };
    assert!(!show(&["unsigned"]).contains("signature"));
    let known = show(&["known"]);
    assert!(
        known.contains("Found 1 signature:\n\n  Signature made "),
        "{known}"
    );
    assert!(
        known.contains("  Good signature from \"good <good@example.com>\"\n"),
        "{known}"
    );
    let ours = show(&["ours", "--gpg-verify-remote=origin"]);
    assert!(
        ours.contains("Good signature from \"good <good@example.com>\""),
        "{ours}"
    );
    let unknown = show(&["unknown"]);
    assert!(
        unknown.contains("Can't check signature: public key not found"),
        "{unknown}"
    );
    let known_elsewhere = show(&["unknown", &in_dir]);
    assert!(
        known_elsewhere.contains("Good signature from \"other <other"),
        "{known_elsewhere}"
    );
    let two = show(&["two"]);
    assert!(two.contains("Found 2 signatures:"), "{two}");
    assert!(
        two.contains("Good signature") && two.contains("public key not found"),
        "{two}"
    );
    let expired = show(&["expired"]);
    assert!(
        expired.contains("Signature made Wed Jan \u{2007}1 00:00:00 2020"),
        "{expired}"
    );
    assert!(
        expired.contains("Key expired Thu Dec 31 00:00:00 2020"),
        "{expired}"
    );
    assert!(show(&["bad"]).contains("BAD signature from \"good <good@example.com>\""));

    // Errors: a keyring directory that does not exist, a remote that is not configured.
    assert_same(&repo, &["show", "known", "--gpg-homedir=/nonexistent"], utc);
    assert_same(&repo, &["show", "known", "--gpg-verify-remote=nope"], utc);
    assert_same(
        &repo,
        &["show", "unsigned", "--gpg-verify-remote=nope"],
        utc,
    );
}
