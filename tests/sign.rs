//! ed25519 signatures (`sign`, `commit --sign`, remotes with `sign-verify`) in ostree
//! 2022.7's format. Debian's ostree is built without ed25519, so openssl makes the keys and
//! checks our signatures, and the oracle reads and fscks what we write.

mod common;
use common::ed25519::{Ed25519Key, parse_aay};
use common::nginx::Nginx;
use common::*;
use std::path::{Path, PathBuf};

const KEY: &str = "ostree.sign.ed25519";

/// A commit object's file in an archive or bare repository.
fn object(repo: &Path, csum: &str, ext: &str) -> PathBuf {
    repo.join(format!("objects/{}/{}.{ext}", &csum[..2], &csum[2..]))
}

/// The commit's ed25519 signatures, as the oracle reads them.
fn signatures(repo: &Path, rev: &str) -> Vec<Vec<u8>> {
    let key = format!("--print-detached-metadata-key={KEY}");
    parse_aay(&ostree(repo, &["show", &key, rev]).ok())
}

fn fsck_both(repo: &Path) {
    assert!(rostree(repo, &["fsck"]).ok().contains("no errors found"));
    assert!(ostree(repo, &["fsck"]).ok().contains("no errors found"));
}

fn verified(key: &Ed25519Key) -> String {
    format!(
        "ed25519: Signature verified successfully with key '{}'\n",
        key.hex
    )
}

/// Replaces the bytes `old` (a signature) in a file with `new`, of the same length.
fn patch(path: &Path, old: &[u8], new: &[u8]) {
    let mut data = std::fs::read(path).unwrap();
    let at = data
        .windows(old.len())
        .position(|w| w == old)
        .expect("signature in the file");
    data[at..at + old.len()].copy_from_slice(new);
    std::fs::write(path, data).unwrap();
}

#[test]
fn signatures_are_ostree_format_and_openssl_checks_them() {
    let dir = tempdir();
    let d = dir.path();
    let (a, b, c) = (
        Ed25519Key::new(d, "a"),
        Ed25519Key::new(d, "b"),
        Ed25519Key::new(d, "c"),
    );
    let tree = d.join("t");
    write(&tree.join("f"), b"signed\n");
    let t = tree.to_str().unwrap();
    for mode in ["archive", "bare-user"] {
        let repo = d.join(mode);
        rostree(&repo, &["init", &format!("--mode={mode}")]).ok();
        let csum = rostree(&repo, &["commit", "-b", "main", t]).ok();
        let csum = csum.trim();
        let commit_file = object(&repo, csum, "commit");

        assert_eq!(rostree(&repo, &["sign", "main", &a.secret]).ok(), "");
        let sigs = signatures(&repo, "main");
        assert_eq!(sigs.len(), 1);
        assert!(a.openssl_verifies(&commit_file, &sigs[0], d));
        // ed25519 is deterministic: openssl's own signature is the same bytes.
        assert_eq!(a.openssl_sign(&commit_file, d), sigs[0]);

        // The same key again adds nothing; a second key from a file is appended.
        rostree(&repo, &["sign", "main", &a.secret]).ok();
        assert_eq!(signatures(&repo, "main").len(), 1);
        let keys = d.join("secret-b");
        write(&keys, format!("{}\n", b.secret).as_bytes());
        let keys_file = format!("--keys-file={}", keys.display());
        rostree(&repo, &["sign", &keys_file, "--sign-type=ed25519", "main"]).ok();
        let sigs = signatures(&repo, "main");
        assert_eq!(sigs.len(), 2);
        assert!(b.openssl_verifies(&commit_file, &sigs[1], d));
        // The checker can say no: b's signature is not a's.
        assert!(!a.openssl_verifies(&commit_file, &sigs[1], d));

        let verify = |args: &[&str]| {
            let mut all = vec!["sign", "--verify", "main"];
            all.extend_from_slice(args);
            rostree(&repo, &all)
        };
        assert_eq!(verify(&[&a.public]).ok(), verified(&a));
        assert_eq!(verify(&[&c.public, &b.public]).ok(), verified(&b));
        let public_b = d.join("public-b");
        write(&public_b, format!("{}\n", b.public).as_bytes());
        let public_file = format!("--keys-file={}", public_b.display());
        assert_eq!(verify(&[&public_file]).ok(), verified(&b));
        let err = verify(&[&c.public]).fails();
        assert!(err.starts_with("error: No valid signatures found"), "{err}");
        // --keys-dir stands for /etc/ostree: trusted.ed25519.d/ and revoked.ed25519.
        let keys_dir = d.join(format!("keys-{mode}"));
        write(
            &keys_dir.join("trusted.ed25519.d/a"),
            format!("{}\n", a.public).as_bytes(),
        );
        let keys_dir_arg = format!("--keys-dir={}", keys_dir.display());
        assert_eq!(verify(&[&keys_dir_arg]).ok(), verified(&a));
        write(&keys_dir.join("revoked.ed25519"), a.public.as_bytes());
        let err = verify(&[&keys_dir_arg]).fails();
        assert!(err.contains("ed25519: no signatures found"), "{err}");
        fsck_both(&repo);

        // -d removes the signatures a key made (public or secret key).
        rostree(&repo, &["sign", "-d", "main", &b.public]).ok();
        assert_eq!(signatures(&repo, "main").len(), 1);
        verify(&[&b.public]).fails();
        assert_eq!(verify(&[&a.public]).ok(), verified(&a));
        let err = rostree(&repo, &["sign", "-d", "main", &b.secret]).fails();
        assert!(
            err.contains("has no ed25519 signature by the given keys"),
            "{err}"
        );

        // commit --sign signs before the ref names the commit; detached metadata given on
        // the command line stays beside the signatures.
        let sign = format!("--sign={}", a.secret);
        let signed = rostree(
            &repo,
            &[
                "commit",
                "-b",
                "signed",
                &sign,
                "--add-detached-metadata-string=note=hi",
                t,
            ],
        )
        .ok();
        let sigs = signatures(&repo, "signed");
        assert_eq!(sigs.len(), 1);
        assert!(a.openssl_verifies(&object(&repo, signed.trim(), "commit"), &sigs[0], d));
        let note = ostree(
            &repo,
            &["show", "--print-detached-metadata-key=note", "signed"],
        );
        assert_eq!(note.ok(), "'hi'\n");
        fsck_both(&repo);
    }
}

#[test]
fn openssl_signatures_are_accepted_and_tampered_ones_refused() {
    let dir = tempdir();
    let d = dir.path();
    let (a, b) = (Ed25519Key::new(d, "a"), Ed25519Key::new(d, "b"));
    let tree = d.join("t");
    write(&tree.join("f"), b"x\n");
    let repo = d.join("repo");
    rostree(&repo, &["init", "--mode=archive"]).ok();
    let csum = rostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let commit_file = object(&repo, csum.trim(), "commit");
    let meta_file = object(&repo, csum.trim(), "commitmeta");
    rostree(&repo, &["sign", "main", &a.secret]).ok();
    let ours = signatures(&repo, "main").remove(0);
    // Put b's signature, made by openssl, where a's was.
    let theirs = b.openssl_sign(&commit_file, d);
    patch(&meta_file, &ours, &theirs);
    assert_eq!(
        rostree(&repo, &["sign", "--verify", "main", &b.public]).ok(),
        verified(&b)
    );
    rostree(&repo, &["sign", "--verify", "main", &a.public]).fails();
    // One bit changed: no key verifies it, and the message names the key tried.
    let mut tampered = theirs.clone();
    tampered[10] ^= 1;
    patch(&meta_file, &theirs, &tampered);
    let keys = d.join("public-b");
    write(&keys, b.public.as_bytes());
    let keys_file = format!("--keys-file={}", keys.display());
    let err = rostree(&repo, &["sign", "--verify", "main", &keys_file]).fails();
    assert_eq!(
        err,
        format!(
            "error: ed25519: Signature couldn't be verified with: key '{}'\n",
            b.hex
        )
    );
}

#[test]
fn malformed_keys_and_usage_give_clear_errors() {
    let dir = tempdir();
    let d = dir.path();
    let a = Ed25519Key::new(d, "a");
    let tree = d.join("t");
    write(&tree.join("f"), b"x\n");
    let repo = d.join("repo");
    rostree(&repo, &["init", "--mode=archive"]).ok();
    rostree(&repo, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let fails = |args: &[&str]| rostree(&repo, args).fails();

    let err = fails(&["sign", "main", "not a key!"]);
    assert!(
        err.starts_with("error: Incorrect ed25519 secret key: not base64"),
        "{err}"
    );
    // A public key where a secret key belongs: said, and not echoed.
    let err = fails(&["sign", "main", &a.public]);
    assert_eq!(
        err,
        "error: Incorrect ed25519 secret key: 32 bytes, expected 64\n"
    );
    let bad_file = d.join("bad-keys");
    write(&bad_file, format!("{}\n\nAAAA\n", a.secret).as_bytes());
    let err = fails(&[
        "sign",
        &format!("--keys-file={}", bad_file.display()),
        "main",
    ]);
    assert!(
        err.contains(&format!(
            "{}: line 3: Incorrect ed25519 secret key",
            bad_file.display()
        )),
        "{err}"
    );
    // Nothing was signed by the command that failed.
    let key = format!("--print-detached-metadata-key={KEY}");
    ostree(&repo, &["show", &key, "main"]).fails();

    assert_eq!(
        fails(&["sign", "--sign-type=spki", "main", &a.secret]),
        "error: Requested signature type is not implemented: 'spki'\n"
    );
    assert_eq!(
        fails(&["sign", "--sign-type=dummy", "main", "k"]),
        "error: dummy signature type is only for ostree testing\n"
    );
    assert_eq!(fails(&["sign"]), "error: Need a COMMIT to sign or verify\n");
    assert_eq!(
        fails(&["sign", "main"]),
        "error: Need at least one KEY-ID to sign with\n"
    );
    assert_eq!(
        fails(&["sign", "nosuchref", &a.secret]),
        "error: Refspec 'nosuchref' not found\n"
    );
    let err = fails(&["sign", "--verify", "main", &a.public]);
    assert!(
        err.contains("ed25519: commit have no signatures of my type"),
        "{err}"
    );
    let empty = d.join("empty-keys-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let keys_dir = format!("--keys-dir={}", empty.display());
    assert_eq!(
        fails(&["sign", "--verify", &keys_dir, "main"]),
        "error: signature: ed25519: no keys loaded\n"
    );
    let err = fails(&["commit", "-b", "x", "--sign=AAAA", tree.to_str().unwrap()]);
    assert!(err.contains("Incorrect ed25519 secret key"), "{err}");
    assert!(
        rostree(&repo, &["rev-parse", "x"])
            .fails()
            .contains("not found")
    );
}

/// Whether any file of the commit (object or detached metadata) is in the repository.
fn has_commit(repo: &Path, csum: &str) -> bool {
    object(repo, csum, "commit").exists() || object(repo, csum, "commitmeta").exists()
}

#[test]
fn remotes_with_sign_verify_refuse_unsigned_and_badly_signed_commits() {
    let dir = tempdir();
    let d = dir.path();
    let (a, b) = (Ed25519Key::new(d, "a"), Ed25519Key::new(d, "b"));
    let served = d.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let origin = served.join("repo");
    rostree(&origin, &["init", "--mode=archive"]).ok();
    let tree = d.join("t");
    let commit = |branch: &str, content: &str, key: Option<&Ed25519Key>| -> String {
        write(&tree.join("f"), content.as_bytes());
        let mut args = vec!["commit", "-b", branch];
        let sign = key.map(|k| format!("--sign={}", k.secret));
        if let Some(s) = &sign {
            args.push(s);
        }
        args.push(tree.to_str().unwrap());
        rostree(&origin, &args).ok().trim().to_string()
    };
    let signed = commit("main", "one", Some(&a));
    let unsigned = commit("unsigned", "two", None);
    let wrong_key = commit("wrongkey", "three", Some(&b));
    let tampered = commit("tampered", "four", Some(&a));
    let sig = signatures(&origin, "tampered").remove(0);
    let mut bad = sig.clone();
    bad[0] ^= 0x80;
    patch(&object(&origin, &tampered, "commitmeta"), &sig, &bad);
    let unsigned_parent = commit("chain", "five", None);
    commit("chain", "six", Some(&a));
    let server = Nginx::serve(&served, &d.join("nginx"));
    let url = format!("{}/repo", server.base);

    let local = d.join("local");
    rostree(&local, &["init", "--mode=bare-user"]).ok();
    let inline = format!("--sign-verify=ed25519=inline:{}", a.public);
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", &inline, "inline", &url],
    )
    .ok();
    let config = std::fs::read_to_string(local.join("config")).unwrap();
    assert!(
        config.ends_with(&format!(
            "gpg-verify=false\nverification-ed25519-key={}\nsign-verify=ed25519\n",
            a.public
        )),
        "{config}"
    );
    rostree(&local, &["pull", "inline", "main"]).ok();
    let refused = |remote: &str, branch: &str, csum: &str, why: &str| {
        let err = rostree(&local, &["pull", remote, branch]).fails();
        let named = format!("Commit {csum} from remote \"{remote}\": {why}");
        assert!(err.contains(&named), "{err}\nexpected: {named}");
        assert!(!has_commit(&local, csum), "{branch}: {csum} was stored");
    };
    refused(
        "inline",
        "unsigned",
        &unsigned,
        "Can't verify commit without detached metadata",
    );
    let not_a = format!(
        "Can't verify commit: ed25519: Signature couldn't be verified with: key '{}'",
        a.hex
    );
    refused("inline", "wrongkey", &wrong_key, &not_a);
    refused("inline", "tampered", &tampered, &not_a);
    // Every commit pulled is checked, parents too.
    let err = rostree(&local, &["pull", "--depth=1", "inline", "chain"]).fails();
    assert!(err.contains(&format!("Commit {unsigned_parent} ")), "{err}");
    assert_eq!(rostree(&local, &["refs"]).ok(), "inline:main\n");

    // The ref does not move to an unsigned commit; once it is signed, it does.
    let next = commit("main", "seven", None);
    refused(
        "inline",
        "main",
        &next,
        "Can't verify commit without detached metadata",
    );
    let rev = rostree(&local, &["rev-parse", "inline:main"]).ok();
    assert_eq!(rev.trim(), signed);
    rostree(&origin, &["sign", "main", &a.secret]).ok();
    rostree(&local, &["pull", "inline", "main"]).ok();
    let rev = rostree(&local, &["rev-parse", "inline:main"]).ok();
    assert_eq!(rev.trim(), next);

    // Keys from a file (bad lines passed over, as ostree does); b's key is trusted there.
    let keys = d.join("trusted");
    write(
        &keys,
        format!("junk\n{}\n{}\n", a.public, b.public).as_bytes(),
    );
    let file = format!("--sign-verify=ed25519=file:{}", keys.display());
    rostree(
        &local,
        &["remote", "add", "--no-gpg-verify", &file, "file", &url],
    )
    .ok();
    rostree(&local, &["pull", "file", "wrongkey"]).ok();
    refused(
        "file",
        "unsigned",
        &unsigned,
        "Can't verify commit without detached metadata",
    );

    // sign-verify=true takes the keys it finds; a list type needs keys.
    let set_key = format!("--set=verification-ed25519-key={}", a.public);
    rostree(
        &local,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=sign-verify=true",
            &set_key,
            "any",
            &url,
        ],
    )
    .ok();
    // The failed --depth=1 pull above completed chain's head: its signature was kept too.
    rostree(&local, &["pull", "any", "chain"]).ok();
    refused("any", "tampered", &tampered, &not_a);
    rostree(
        &local,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "--set=sign-verify=ed25519",
            "nokeys",
            &url,
        ],
    )
    .ok();
    let err = rostree(&local, &["pull", "nokeys", "main"]).fails();
    assert!(
        err.contains("remote \"nokeys\": No keys found for required signapi type ed25519"),
        "{err}"
    );
    fsck_both(&local);

    // ostree (without ed25519 itself) pulls the signed repository and fscks it clean.
    let theirs = d.join("theirs");
    ostree(&theirs, &["init", "--mode=archive"]).ok();
    ostree(&theirs, &["remote", "add", "--no-gpg-verify", "o", &url]).ok();
    ostree(&theirs, &["pull", "o", "main", "chain"]).ok();
    assert_eq!(signatures(&theirs, "o:main").len(), 1);
    fsck_both(&theirs);
}

#[test]
fn remote_add_sign_verify_options() {
    let dir = tempdir();
    let d = dir.path();
    let a = Ed25519Key::new(d, "a");
    let repo = d.join("repo");
    rostree(&repo, &["init", "--mode=archive"]).ok();
    let add = |args: &[&str]| {
        let mut all = vec!["remote", "add"];
        all.extend_from_slice(args);
        rostree(&repo, &all)
    };
    let inline = format!("--sign-verify=ed25519=inline:{}", a.public);
    let file = "--sign-verify=ed25519=file:/etc/keys";
    add(&[&inline, file, "r", "http://example.invalid/"]).ok();
    add(&["--no-sign-verify", "off", "http://example.invalid/"]).ok();
    let config = std::fs::read_to_string(repo.join("config")).unwrap();
    let expected = format!(
        "[remote \"r\"]\nurl=http://example.invalid/\nverification-ed25519-key={}\n\
         verification-ed25519-file=/etc/keys\nsign-verify=ed25519\n\n\
         [remote \"off\"]\nurl=http://example.invalid/\ngpg-verify=false\nsign-verify=false\n",
        a.public
    );
    assert!(config.ends_with(&expected), "{config}");
    let errors = [
        (
            vec!["--sign-verify=ed25519", "x", "u"],
            "Failed to parse KEYTYPE=[inline|file]:DATA in ed25519",
        ),
        (
            vec!["--sign-verify=ed25519=url:x", "x", "u"],
            "Invalid key reference url, expected inline|file",
        ),
        (
            vec!["--sign-verify=ed25519=inline", "x", "u"],
            "Failed to parse KEYTYPE=[inline|file]:DATA in ed25519=inline",
        ),
        (
            vec!["--sign-verify=spki=inline:x", "x", "u"],
            "Requested signature type is not implemented",
        ),
        (
            vec!["--sign-verify=ed25519=inline:AAAA", "x", "u"],
            "Incorrect ed25519 public key: 3 bytes, expected 32",
        ),
        (
            vec![&inline, "--no-sign-verify", "x", "u"],
            "Cannot specify both --sign-verify and --no-sign-verify",
        ),
    ];
    for (args, why) in errors {
        let err = add(&args).fails();
        assert!(err.contains(why), "{args:?}: {err}");
    }
    assert!(
        !std::fs::read_to_string(repo.join("config"))
            .unwrap()
            .contains("\"x\"")
    );
}

/// ostree adds a signature through a `GVariantDict`, which writes the keys back in GLib
/// hash-table order; our shared append must give the same bytes. ostree's test-only `dummy`
/// type (a signature is the key's text) lets the oracle append deterministically.
#[test]
fn signatures_are_added_as_ostree_adds_them() {
    use rostree_store::format::{metadata_value, parse_detached};
    let dir = tempdir();
    let d = dir.path();
    let tree = d.join("t");
    write(&tree.join("f"), b"x\n");
    let repo = d.join("repo");
    ostree(&repo, &["init", "--mode=archive"]).ok();
    let mut args = vec!["commit".to_string(), "-b".into(), "main".into()];
    for i in 0..12 {
        args.push(format!("--add-detached-metadata-string=key{i}=value {i}"));
    }
    args.push(tree.to_str().unwrap().into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let csum = ostree(&repo, &args).ok();
    let meta_file = object(&repo, csum.trim(), "commitmeta");
    let mut expected = parse_detached(&std::fs::read(&meta_file).unwrap()).unwrap();
    for key in ["first", "second"] {
        let out = std::process::Command::new(oracle())
            .env("OSTREE_DUMMY_SIGN_ENABLED", "1")
            .arg(format!("--repo={}", repo.display()))
            .args(["sign", "--sign-type=dummy", "main", key])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let added = rostree_store::detached::add_signatures(
            &mut expected,
            "ostree.sign.dummy",
            &[key.as_bytes().to_vec()],
        );
        assert!(added);
        assert_eq!(
            metadata_value(&expected).to_bytes(),
            std::fs::read(&meta_file).unwrap(),
            "after signing with {key}"
        );
    }
}

/// ostree's test-only `dummy` type (a signature is the key's text), which the oracle has:
/// the same detached metadata, messages and pull checks as ostree's.
#[test]
fn dummy_signatures_match_ostree() {
    let dir = tempdir();
    let d = dir.path();
    let env = [("OSTREE_DUMMY_SIGN_ENABLED", "1")];
    let tree = d.join("t");
    write(&tree.join("f"), b"dummy\n");
    let served = d.join("www");
    std::fs::create_dir_all(&served).unwrap();
    let theirs = served.join("theirs");
    ostree(&theirs, &["init", "--mode=archive"]).ok();
    let csum = ostree(&theirs, &["commit", "-b", "main", tree.to_str().unwrap()]).ok();
    let csum = csum.trim();
    let ours = served.join("ours");
    sh(
        "cp",
        &["-a", theirs.to_str().unwrap(), ours.to_str().unwrap()],
    )
    .ok();
    let both = |args: &[&str], env: &[(&str, &str)]| -> [Run; 2] {
        [
            tool_with_env(rostree_bin(), &ours, args, env),
            tool_with_env(&oracle(), &theirs, args, env),
        ]
    };
    let same = |runs: [Run; 2], what: &str| {
        assert_eq!(
            runs[0].out.status.success(),
            runs[1].out.status.success(),
            "{what}"
        );
        assert_eq!(runs[0].stdout(), runs[1].stdout(), "{what}");
        // Ours may add why (`No valid signatures found: <the last key's failure>`).
        let theirs = runs[1].stderr();
        assert!(
            runs[0].stderr().starts_with(theirs.trim_end()),
            "{what}: {} vs {theirs}",
            runs[0].stderr()
        );
    };
    for key in ["k1", "k2"] {
        same(both(&["sign", "--sign-type=dummy", "main", key], &env), key);
        assert_eq!(
            std::fs::read(object(&ours, csum, "commitmeta")).unwrap(),
            std::fs::read(object(&theirs, csum, "commitmeta")).unwrap(),
            "after signing with {key}"
        );
    }
    for (args, env) in [
        (
            &["sign", "--verify", "--sign-type=dummy", "main", "k2"][..],
            &env[..],
        ),
        (
            &["sign", "--verify", "--sign-type=dummy", "main", "k3"],
            &env,
        ),
        (
            &["sign", "--verify", "-s", "dummy", "main", "k3", "k1"],
            &env,
        ),
        (
            &["sign", "--verify", "--sign-type=dummy", "main", "k1"],
            &[],
        ),
        (&["sign", "--sign-type=dummy", "main", "k9"], &[]),
    ] {
        same(both(args, env), &format!("{args:?} {env:?}"));
    }
    assert_eq!(
        tool_with_env(
            rostree_bin(),
            &ours,
            &["sign", "--verify", "-s", "dummy", "main", "k1"],
            &env
        )
        .ok(),
        "dummy: Signature verified\n"
    );
    // commit --sign: the same signatures.
    let key = "--print-detached-metadata-key=ostree.sign.dummy";
    let signed = tool_with_env(
        rostree_bin(),
        &ours,
        &[
            "commit",
            "-b",
            "signed",
            "--sign-type=dummy",
            "--sign=k5",
            tree.to_str().unwrap(),
        ],
        &env,
    )
    .ok();
    let shown = ostree(&ours, &["show", key, signed.trim()]).ok();
    assert_eq!(parse_aay(&shown), [b"k5".to_vec()]);

    // Remotes with sign-verify=dummy: each tool accepts the right key and refuses another.
    let server = Nginx::serve(&served, &d.join("nginx"));
    let url = format!("{}/theirs", server.base);
    for (key, good) in [("k2", true), ("k3", false)] {
        let mut errors = Vec::new();
        for (i, tool) in [rostree_bin(), oracle().as_str()].into_iter().enumerate() {
            let local = d.join(format!("local-{key}-{i}"));
            tool_with_env(tool, &local, &["init", "--mode=archive"], &[]).ok();
            let verify = format!("--sign-verify=dummy=inline:{key}");
            tool_with_env(
                tool,
                &local,
                &["remote", "add", "--no-gpg-verify", &verify, "o", &url],
                &[],
            )
            .ok();
            let config = std::fs::read_to_string(local.join("config")).unwrap();
            assert!(
                config.ends_with(&format!(
                    "verification-dummy-key={key}\nsign-verify=dummy\n"
                )),
                "{tool}: {config}"
            );
            let pull = tool_with_env(tool, &local, &["pull", "o", "main"], &env);
            if good {
                pull.ok();
                assert!(ostree(&local, &["fsck"]).ok().contains("no errors found"));
            } else {
                errors.push(pull.fails());
                assert!(
                    !has_commit(&local, csum),
                    "{tool} stored the refused commit"
                );
                assert_eq!(rostree(&local, &["refs"]).ok(), "");
            }
        }
        if let Some(ours) = errors.first() {
            assert!(
                ours.contains(&format!("Commit {csum} from remote \"o\"")),
                "{ours}"
            );
        }
        for err in errors {
            assert!(
                err.contains("signature: dummy: incorrect signatures found: 2"),
                "{err}"
            );
        }
    }
}
