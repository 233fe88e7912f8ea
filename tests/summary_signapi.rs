//! Summaries signed with ostree's signing framework (`summary -u --sign=KEY
//! --sign-type=ed25519|dummy`) and remotes with `sign-verify-summary`, over a real web
//! server. Debian's ostree lacks ed25519: openssl checks our ed25519 signatures, and the
//! test-only `dummy` type (which the oracle has) checks the `summary.sig` format and the
//! pull's checks and messages against ostree, both ways.

mod common;
use common::ed25519::Ed25519Key;
use common::nginx::Nginx;
use common::*;
use std::path::Path;

const DUMMY: (&str, &str) = ("OSTREE_DUMMY_SIGN_ENABLED", "1");

/// Files under `repo/objects`: what a refused pull must not have written.
fn object_count(repo: &Path) -> usize {
    files_below(&repo.join("objects")).len()
}

/// The signatures listed under `key` in a `summary.sig`.
fn summary_signatures(repo: &Path, key: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(repo.join("summary.sig")).unwrap();
    let meta = rostree_store::detached::parse_summary_sig(&bytes).unwrap();
    rostree_store::detached::signatures(Some(&meta), key)
        .unwrap_or_default()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// A published archive repository with one commit on `main` and a summary, made by `tool`
/// (with `env`); `sign` are extra `summary -u` arguments.
fn publish(tool: &str, repo: &Path, tree: &Path, sign: &[&str], env: &[(&str, &str)]) {
    tool_with_env(tool, repo, &["init", "--mode=archive"], env).ok();
    let t = tree.to_str().unwrap();
    tool_with_env(tool, repo, &["commit", "-b", "main", t], env).ok();
    let mut args = vec!["summary", "-u"];
    args.extend_from_slice(sign);
    tool_with_env(tool, repo, &args, env).ok();
}

/// Flips one bit of the first signature under `key` in `repo/summary.sig`.
fn tamper(repo: &Path, key: &str) {
    let path = repo.join("summary.sig");
    let sig = summary_signatures(repo, key).remove(0);
    let mut data = std::fs::read(&path).unwrap();
    let at = data
        .windows(sig.len())
        .position(|w| w == sig)
        .expect("signature in summary.sig");
    data[at + 5] ^= 0x10;
    std::fs::write(&path, data).unwrap();
}

#[test]
fn ed25519_signed_summaries_are_verified_and_bad_ones_refused() {
    let dir = tempdir();
    let d = dir.path();
    let (a, b) = (Ed25519Key::new(d, "a"), Ed25519Key::new(d, "b"));
    let tree = d.join("t");
    write(&tree.join("f"), b"signed summary\n");
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let me = rostree_bin();
    let sign_a = format!("--sign={}", a.secret);
    let sign_b = format!("--sign={}", b.secret);

    // Signed by both keys: each signature is the key's over the summary's bytes.
    let signed = www.join("signed");
    publish(
        me,
        &signed,
        &tree,
        &[&sign_a, &sign_b, "--sign-type=ed25519"],
        &[],
    );
    let sigs = summary_signatures(&signed, "ostree.sign.ed25519");
    assert_eq!(sigs.len(), 2);
    let summary = signed.join("summary");
    assert!(a.openssl_verifies(&summary, &sigs[0], d));
    assert!(b.openssl_verifies(&summary, &sigs[1], d));
    assert!(!a.openssl_verifies(&summary, &sigs[1], d));
    // Only b signed this one; an unsigned one; a tampered one; a stale one.
    let by_b = www.join("by-b");
    publish(me, &by_b, &tree, &[&sign_b], &[]);
    let unsigned = www.join("unsigned");
    publish(me, &unsigned, &tree, &[], &[]);
    let tampered = www.join("tampered");
    publish(me, &tampered, &tree, &[&sign_a], &[]);
    tamper(&tampered, "ostree.sign.ed25519");
    let stale = www.join("stale");
    publish(me, &stale, &tree, &[&sign_a], &[]);
    let old_sig = std::fs::read(stale.join("summary.sig")).unwrap();
    write(&tree.join("g"), b"newer\n");
    rostree(&stale, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    rostree(&stale, &["summary", "-u"]).ok();
    assert!(
        !stale.join("summary.sig").exists(),
        "summary -u drops old signatures"
    );
    std::fs::write(stale.join("summary.sig"), old_sig).unwrap();
    let server = Nginx::serve(&www, &d.join("nginx"));

    let client = |name: &str, served: &str, options: &[String]| {
        let local = d.join(format!("client-{name}"));
        rostree(&local, &["init", "--mode=bare-user"]).ok();
        let url = format!("{}/{served}", server.base);
        let mut args = vec!["remote", "add", "--no-gpg-verify"];
        args.extend(options.iter().map(String::as_str));
        args.extend([name, url.as_str()]);
        rostree(&local, &args).ok();
        local
    };
    let trust_a = vec![
        "--set=sign-verify-summary=ed25519".to_string(),
        format!("--set=verification-ed25519-key={}", a.public),
    ];

    // Accepted: pull, remote refs, remote summary (which prints what `summary --view` does).
    for (name, options) in [
        ("listed", trust_a.clone()),
        (
            "any-type",
            vec![
                "--set=sign-verify-summary=true".to_string(),
                format!("--set=verification-ed25519-key={}", b.public),
            ],
        ),
    ] {
        let local = client(name, "signed", &options);
        rostree(&local, &["pull", name, "main"]).ok();
        assert_eq!(rostree(&local, &["refs"]).ok(), format!("{name}:main\n"));
        assert_eq!(
            rostree(&local, &["remote", "refs", name]).ok(),
            format!("{name}:main\n")
        );
        assert_eq!(
            rostree(&local, &["remote", "summary", name]).ok(),
            ostree(&signed, &["summary", "--view"]).ok()
        );
        assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));
    }

    // Refused: nothing stored, no ref, and `remote refs`/`remote summary` refuse too.
    let bad_a = format!(
        "ed25519: Signature couldn't be verified with: key '{}'",
        a.hex
    );
    let cases = [
        (
            "unsigned",
            "Signatures verification enabled, but no summary.sig found (use sign-verify-summary=false in remote config to disable)",
            "Signature verification enabled, but no summary signatures found (use sign-verify-summary=false in remote config to disable)",
        ),
        ("by-b", bad_a.as_str(), bad_a.as_str()),
        ("tampered", bad_a.as_str(), bad_a.as_str()),
        ("stale", bad_a.as_str(), bad_a.as_str()),
    ];
    for (served, pull_error, fetch_error) in cases {
        let name = format!("to-{served}");
        let local = client(&name, served, &trust_a);
        let err = rostree(&local, &["pull", &name, "main"]).fails();
        assert_eq!(err, format!("error: {pull_error}\n"), "{served}");
        assert_eq!(object_count(&local), 0, "{served}: objects stored");
        assert_eq!(rostree(&local, &["refs"]).ok(), "", "{served}: a ref moved");
        for args in [
            &["remote", "refs", &name][..],
            &["remote", "summary", &name],
        ] {
            let err = rostree(&local, args).fails();
            assert_eq!(err, format!("error: {fetch_error}\n"), "{args:?}");
        }
    }

    // A summary.sig without ed25519 signatures (GPG's only, say) has none to check.
    let local = client("no-ed25519", "signed", &trust_a);
    let gpg_only = d.join("gpg-only");
    std::fs::create_dir_all(&gpg_only).unwrap();
    let key = rostree_store::gpg::GPGSIGS_KEY;
    let meta = vec![(
        key.to_string(),
        rostree_store::gvariant::Value::Array(
            rostree_store::gvariant::Type::parse("ay").unwrap(),
            vec![rostree_store::gvariant::Value::Bytes(vec![1, 2, 3])],
        ),
    )];
    std::fs::write(
        signed.join("summary.sig"),
        rostree_store::format::metadata_value(&meta).to_bytes(),
    )
    .unwrap();
    let err = rostree(&local, &["pull", "no-ed25519", "main"]).fails();
    assert_eq!(err, "error: No signatures found\n");

    // A list type without keys, and an unknown type, fail before anything is fetched.
    let local = client(
        "nokeys",
        "signed",
        &["--set=sign-verify-summary=ed25519".to_string()],
    );
    let err = rostree(&local, &["pull", "nokeys", "main"]).fails();
    assert!(
        err.contains("No keys found for required signapi type ed25519"),
        "{err}"
    );
    let local = client(
        "badtype",
        "signed",
        &["--set=sign-verify-summary=spki".to_string()],
    );
    let err = rostree(&local, &["remote", "refs", "badtype"]).fails();
    assert!(
        err.contains("Requested signature type is not implemented: 'spki'"),
        "{err}"
    );
    // A bad key fails `summary -u` before the summary is rewritten.
    let before = std::fs::read(unsigned.join("summary")).unwrap();
    let err = rostree(&unsigned, &["summary", "-u", "--sign=AAAA"]).fails();
    assert!(err.contains("Incorrect ed25519 secret key"), "{err}");
    assert_eq!(std::fs::read(unsigned.join("summary")).unwrap(), before);
}

#[test]
fn dummy_signed_summaries_match_ostree_both_ways() {
    let dir = tempdir();
    let d = dir.path();
    let tree = d.join("t");
    write(&tree.join("f"), b"dummy summary\n");
    let www = d.join("www");
    std::fs::create_dir_all(&www).unwrap();
    let me = rostree_bin();
    let them = oracle();
    let signing = ["--sign-type=dummy", "--sign=k1", "--sign=k2"];
    let ours = www.join("ours");
    publish(me, &ours, &tree, &signing, &[DUMMY]);
    let theirs = www.join("theirs");
    publish(&them, &theirs, &tree, &signing, &[DUMMY]);
    // A dummy signature is the key's text, whatever the data: the files are byte-equal.
    assert_eq!(
        std::fs::read(ours.join("summary.sig")).unwrap(),
        std::fs::read(theirs.join("summary.sig")).unwrap()
    );
    // Without the variable, both refuse to sign.
    for tool in [me, them.as_str()] {
        let err = tool_with_env(
            tool,
            &ours,
            &["summary", "-u", "--sign-type=dummy", "--sign=k"],
            &[],
        )
        .fails();
        assert!(
            err.contains("dummy signature type is only for ostree testing"),
            "{tool}: {err}"
        );
    }
    // ostree rewrote the summary before failing: sign it again.
    let mut again = vec!["summary", "-u"];
    again.extend_from_slice(&signing);
    tool_with_env(me, &ours, &again, &[DUMMY]).ok();
    let unsigned = www.join("unsigned");
    publish(&them, &unsigned, &tree, &[], &[]);
    let server = Nginx::serve(&www, &d.join("nginx"));

    // Each tool pulls what either signed, and refuses what it must, in the same words.
    let cases = [
        ("ours", "k2", true),
        ("theirs", "k1", true),
        ("ours", "k3", false),
        ("unsigned", "k1", false),
    ];
    for (served, key, good) in cases {
        let mut results = Vec::new();
        for tool in [me, them.as_str()] {
            let local = d.join(format!("{served}-{key}-{}", results.len()));
            tool_with_env(tool, &local, &["init", "--mode=archive"], &[]).ok();
            let url = format!("{}/{served}", server.base);
            let set_key = format!("--set=verification-dummy-key={key}");
            let args = [
                "remote",
                "add",
                "--no-gpg-verify",
                "--set=sign-verify-summary=dummy",
                &set_key,
                "origin",
                &url,
            ];
            tool_with_env(tool, &local, &args, &[]).ok();
            let pull = tool_with_env(tool, &local, &["pull", "origin", "main"], &[DUMMY]);
            let refs = tool_with_env(tool, &local, &["remote", "refs", "origin"], &[DUMMY]);
            let disabled = tool_with_env(tool, &local, &["remote", "refs", "origin"], &[]);
            if good {
                pull.ok();
                assert_eq!(rostree(&local, &["refs"]).ok(), "origin:main\n");
                assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));
            } else {
                assert_eq!(object_count(&local), 0, "{tool} stored objects");
                assert_eq!(rostree(&local, &["refs"]).ok(), "", "{tool} moved a ref");
            }
            results.push((
                pull.out.status.success(),
                pull.stderr(),
                refs.stdout(),
                refs.stderr(),
                disabled.stderr(),
            ));
        }
        assert_eq!(results[0], results[1], "{served} with key {key}");
    }
}
