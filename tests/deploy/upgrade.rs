//! `admin upgrade` and `admin switch` against ostree: an archive repository served by nginx,
//! twin sysroots following it (one driven by each tool), the same output, files, boot entries,
//! origins and refs after every step, each tool continuing what the other did.

use crate::common::ed25519::Ed25519Key;
use crate::common::gpg::GpgKey;
use crate::common::nginx::Nginx;
use crate::common::{oracle, sh};
use crate::support::*;
use std::path::{Path, PathBuf};

/// An archive repository published over HTTP by nginx.
struct Server {
    repo: PathBuf,
    url: String,
    _nginx: Nginx,
}

impl Server {
    fn new(base: &Path) -> Server {
        let www = base.join("www");
        let repo = www.join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let r = format!("--repo={}", repo.display());
        sh(&oracle(), &[r.as_str(), "init", "--mode=archive"]).ok();
        let nginx = Nginx::serve(&www, &base.join("nginx"));
        let url = format!("{}/repo", nginx.base);
        Server {
            repo,
            url,
            _nginx: nginx,
        }
    }

    /// Commits `tree` on `branch` (ostree, fixed time `2024-01-<day>`); returns the checksum.
    fn publish(&self, tree: &Path, branch: &str, version: &str, day: u32) -> String {
        self.publish_with(tree, branch, version, day, &[])
    }

    /// [`Server::publish`] with more `commit` options.
    fn publish_with(
        &self,
        tree: &Path,
        branch: &str,
        version: &str,
        day: u32,
        extra: &[&str],
    ) -> String {
        let r = format!("--repo={}", self.repo.display());
        let v = format!("--add-metadata-string=version={version}");
        let ts = format!("--timestamp=2024-01-{day:02} 00:00:00");
        let args = [r.as_str(), "commit", "-b", branch, "-s", "release", &v, &ts];
        let mut args = args.to_vec();
        args.extend_from_slice(extra);
        args.push(tree.to_str().unwrap());
        sh(&oracle(), &args).ok().trim().to_string()
    }

    /// Signs `rev` with `key`, as a publisher does.
    fn sign(&self, rev: &str, key: &GpgKey) {
        let r = format!("--repo={}", self.repo.display());
        let home = format!("--gpg-homedir={}", key.home.display());
        sh(&oracle(), &[r.as_str(), "gpg-sign", &home, rev, &key.id]).ok();
    }
}

/// A sysroot made by `tool` whose repository has the remote `origin` (`remote_args` added to
/// `remote add`) and `origin:testos/stable` pulled. ostree adds the remote: keyrings written by
/// `rostree remote add --gpg-import` lack GnuPG's ring-trust packets, so their bytes differ
/// (tests/pull.rs covers `remote add`).
fn following(base: &Path, name: &str, tool: Tool, url: &str, remote_args: &[&str]) -> PathBuf {
    let sysroot = new_sysroot(base, name, tool);
    let repo = repo_arg(&sysroot);
    let mut args = vec![repo.as_str(), "remote", "add"];
    args.extend_from_slice(remote_args);
    args.extend_from_slice(&["origin", url]);
    sh(&oracle(), &args).ok();
    sh(
        &tool.bin(),
        &[repo.as_str(), "pull", "origin", "testos/stable"],
    )
    .ok();
    sysroot
}

/// Twin sysroots following `server`: ours made by `first`, theirs by ostree; both deploy
/// `origin:testos/stable` with a kernel argument.
fn following_pair(base: &Path, first: Tool, server: &Server, remote_args: &[&str]) -> Pair {
    let p = Pair {
        ours: following(base, "ours", first, &server.url, remote_args),
        theirs: following(base, "theirs", Tool::Ostree, &server.url, remote_args),
    };
    let deploy = [
        "deploy",
        "--os=testos",
        "--karg=root=/dev/vda2",
        "origin:testos/stable",
    ];
    p.step(first, &deploy);
    p
}

/// Runs `args` with `ours_tool` on ours and ostree on theirs when the step fails: the same
/// output, and nothing that boots changed.
fn failing_step(p: &Pair, ours_tool: Tool, args: &[&str]) -> String {
    let before = (boot_state(&p.ours), boot_state(&p.theirs));
    let run_on = |tool: Tool, sysroot: &Path| {
        let sr = sysroot_arg(sysroot);
        let mut all = args.to_vec();
        all.push(&sr);
        neutral(&admin(tool, &all), sysroot)
    };
    let theirs = run_on(Tool::Ostree, &p.theirs);
    let ours = run_on(ours_tool, &p.ours);
    assert_eq!(ours, theirs, "admin {args:?}: output differs");
    assert!(
        ours.ends_with("rc=false"),
        "admin {args:?} succeeded: {ours}"
    );
    assert_eq!(boot_state(&p.ours), before.0, "admin {args:?} changed ours");
    assert_eq!(boot_state(&p.theirs), before.1);
    assert_eq!(refs(&p.ours), refs(&p.theirs), "admin {args:?}: refs");
    ours
}

/// The origin of the default deployment.
fn default_origin(sysroot: &Path) -> String {
    let sr = sysroot_arg(sysroot);
    let status = admin(Tool::Ostree, &["status", &sr]).ok();
    let first = status
        .lines()
        .next()
        .unwrap()
        .trim()
        .trim_start_matches("* ");
    let name = first.split_whitespace().nth(1).unwrap();
    let path = sysroot.join(format!("ostree/deploy/testos/deploy/{name}.origin"));
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn upgrade_follows_the_remote_as_ostree_does() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let server = Server::new(base);
    let r = Tool::Rostree;
    let c1 = server.publish(&os_tree(base, "v1"), "testos/stable", "1.0", 1);
    let p = following_pair(base, r, &server, &["--no-gpg-verify"]);
    for sysroot in [&p.ours, &p.theirs] {
        let sr = sysroot_arg(sysroot);
        let d = admin(Tool::Ostree, &["status", &sr]).ok();
        let name = d.lines().next().unwrap().split_whitespace().nth(1).unwrap();
        edit_etc(&sysroot.join(format!("ostree/deploy/testos/deploy/{name}/etc")));
    }

    let out = p.step(r, &["upgrade", "--os=testos"]);
    assert_eq!(out, "No update available.\nrc=true");

    // A new commit: deployed with the merged /etc and the kernel arguments kept.
    let c2 = server.publish(&os_tree(base, "v2"), "testos/stable", "2.0", 2);
    let out = p.step(r, &["upgrade", "--os=testos"]);
    assert!(
        out.contains("Copying /etc changes: 1 modified, 1 removed, 5 added"),
        "{out}"
    );
    let status = oracle_status(&p.ours);
    assert!(
        status.starts_with(&format!("  testos {c2}.0\n")),
        "{status}"
    );
    let entries = p.ours.join("boot/loader/entries");
    let default = std::fs::read_to_string(entries.join("ostree-2-testos.conf")).unwrap();
    assert!(
        default.contains("options root=/dev/vda2 ostree="),
        "{default}"
    );
    assert_eq!(
        default_origin(&p.ours),
        "[origin]\nrefspec=origin:testos/stable\n"
    );
    assert_eq!(p.step(r, &["upgrade", "--os=testos"]), out_no_update());

    // Pull first, deploy later.
    let c3 = server.publish(&os_tree(base, "v3"), "testos/stable", "3.0", 3);
    assert_eq!(
        p.step(r, &["upgrade", "--os=testos", "--pull-only"]),
        "rc=true"
    );
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c2}.0\n")));
    p.step(r, &["upgrade", "--os=testos", "--deploy-only"]);
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c3}.0\n")));
    failing_step(
        &p,
        r,
        &["upgrade", "--os=testos", "--pull-only", "--deploy-only"],
    );

    // An older commit is refused, unless asked for.
    let c4 = server.publish(&os_tree(base, "v4"), "testos/stable", "4.0", 2);
    let out = failing_step(&p, r, &["upgrade", "--os=testos"]);
    // GLib pads the day with U+2007, printed as `?` outside UTF-8 locales.
    let expected = format!(
        "error: Upgrade target revision '{c4}' with timestamp 'Tue Jan 2 00:00:00 2024' is \
         chronologically older than current revision '{c3}' with timestamp 'Wed Jan 3 \
         00:00:00 2024'; use --allow-downgrade to permit\nrc=false"
    );
    assert_eq!(
        out.replace(['\u{2007}', ' ', '?'], " ").replace("  ", " "),
        expected
    );
    p.step(r, &["upgrade", "--os=testos", "--allow-downgrade"]);
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c4}.0\n")));

    // A chosen commit: recorded as override-commit, dropped by the next upgrade.
    let over = format!("--override-commit={c3}");
    p.step(r, &["upgrade", "--os=testos", &over]);
    assert_eq!(
        default_origin(&p.ours),
        format!("[origin]\nrefspec=origin:testos/stable\noverride-commit={c3}\n")
    );
    let over = format!("--override-commit={c1}");
    failing_step(&p, r, &["upgrade", "--os=testos", &over]);
    p.step(r, &["upgrade", "--os=testos", "--allow-downgrade"]);
    assert_eq!(
        default_origin(&p.ours),
        "[origin]\nrefspec=origin:testos/stable\n"
    );
    // c4 is deployed again, next to its first deployment's directory: serial 1.
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c4}.1\n")));
}

fn out_no_update() -> String {
    "No update available.\nrc=true".to_string()
}

#[test]
fn switch_moves_the_origin_to_another_branch_as_ostree_does() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let server = Server::new(base);
    let r = Tool::Rostree;
    server.publish(&os_tree(base, "v1"), "testos/stable", "1.0", 2);
    // Older than what is deployed: switch never refuses a branch for its age.
    let next = server.publish(&os_tree(base, "next"), "testos/next", "0.9", 1);
    let p = following_pair(base, r, &server, &["--no-gpg-verify"]);

    let out = p.step(r, &["switch", "--os=testos", "testos/next"]);
    assert!(
        out.contains("Deleting ref 'origin:testos/stable'\nrc=true"),
        "{out}"
    );
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {next}.0\n")));
    assert_eq!(
        default_origin(&p.ours),
        "[origin]\nrefspec=origin:testos/next\n"
    );
    assert!(!refs(&p.ours).contains(&"origin:testos/stable".to_string()));
    failing_step(&p, r, &["switch", "--os=testos", "origin:"]);
    failing_step(&p, r, &["switch", "--os=testos", "origin:testos/next"]);
    failing_step(&p, r, &["switch", "--os=testos", "nosuch:testos/next"]);
    failing_step(&p, r, &["upgrade", "--os=nosuch"]);
    failing_step(&p, r, &["upgrade"]);

    // Back, naming the remote with --remote (rostree only, as REMOTE:REF for ostree).
    let sr = sysroot_arg(&p.ours);
    let ours = admin(
        r,
        &[
            "switch",
            "--os=testos",
            "--remote=origin",
            "testos/stable",
            &sr,
        ],
    );
    let sr = sysroot_arg(&p.theirs);
    let theirs = admin(
        Tool::Ostree,
        &["switch", "--os=testos", "origin:testos/stable", &sr],
    );
    assert_eq!(ours.ok(), theirs.ok());
    p.assert_same("after switching back");

    // An end-of-life branch sends its followers to its successor.
    let next = server.publish(&os_tree(base, "next2"), "testos/next", "5.0", 5);
    let eol = ["--add-metadata-string=ostree.endoflife-rebase=testos/next"];
    server.publish_with(&os_tree(base, "eol"), "testos/stable", "4.0", 4, &eol);
    p.step(r, &["upgrade", "--os=testos"]);
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {next}.0\n")));
    assert_eq!(
        default_origin(&p.ours),
        "[origin]\nrefspec=origin:testos/next\n"
    );
    let err = admin(
        r,
        &[
            "switch",
            "--os=testos",
            "--remote=other",
            "origin:testos/next",
        ],
    )
    .fails();
    assert!(err.starts_with("error: --remote=other conflicts"), "{err}");
    for unsupported in [
        vec!["upgrade", "--os=testos", "--reboot"],
        vec!["upgrade", "--os=testos", "--stage"],
        vec!["switch", "--os=testos", "-r", "testos/next"],
    ] {
        let before = boot_state(&p.ours);
        let mut args = unsupported.clone();
        let sr = sysroot_arg(&p.ours);
        args.push(&sr);
        let err = admin(r, &args).fails();
        assert!(
            err.starts_with("error: --") && err.lines().count() == 1,
            "{err}"
        );
        assert_eq!(boot_state(&p.ours), before);
    }
}

#[test]
fn each_tool_upgrades_what_the_other_deployed() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let server = Server::new(scratch.path());
    server.publish(&os_tree(scratch.path(), "v1"), "testos/stable", "1.0", 1);
    for (first, then) in [(Tool::Ostree, Tool::Rostree), (Tool::Rostree, Tool::Ostree)] {
        let base = scratch.path().join(format!("{first:?}"));
        std::fs::create_dir_all(&base).unwrap();
        let p = following_pair(&base, first, &server, &["--no-gpg-verify"]);
        let day = if first == Tool::Ostree { 2 } else { 3 };
        let tree = os_tree(&base, "v2");
        server.publish(&tree, "testos/stable", &format!("{day}.0"), day);
        server.publish(&tree, "testos/copy", &format!("{day}.1"), day);
        p.step(then, &["upgrade", "--os=testos"]);
        p.step(first, &["upgrade", "--os=testos"]);
        p.step(then, &["switch", "--os=testos", "testos/copy"]);
        p.step(first, &["switch", "--os=testos", "origin:testos/stable"]);
    }
}

#[test]
fn upgrade_checks_signatures_of_a_gpg_verified_remote() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let key = GpgKey::new(base, "publisher");
    let server = Server::new(base);
    let r = Tool::Rostree;
    let c1 = server.publish(&os_tree(base, "v1"), "testos/stable", "1.0", 1);
    server.sign(&c1, &key);
    let import = format!("--gpg-import={}", key.public.display());
    let p = following_pair(base, r, &server, &[&import]);

    let c2 = server.publish(&os_tree(base, "v2"), "testos/stable", "2.0", 2);
    server.sign(&c2, &key);
    p.step(r, &["upgrade", "--os=testos"]);
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c2}.0\n")));

    // An unsigned commit is refused by both; nothing that boots changes.
    let c3 = server.publish(&os_tree(base, "v3"), "testos/stable", "3.0", 3);
    let before = boot_state(&p.ours);
    for (tool, sysroot) in [(r, &p.ours), (Tool::Ostree, &p.theirs)] {
        let sr = sysroot_arg(sysroot);
        let err = admin(tool, &["upgrade", "--os=testos", &sr]).fails();
        assert!(
            err.starts_with("error: ") && err.contains(&c3),
            "{tool:?}: {err}"
        );
    }
    assert_eq!(boot_state(&p.ours), before);
    assert_eq!(refs(&p.ours), refs(&p.theirs));
}

#[test]
fn a_local_origin_upgrades_and_switches_without_pulling() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let r = Tool::Rostree;
    let (p, _) = pair(base, r);
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    assert_eq!(p.step(r, &["upgrade", "--os=testos"]), out_no_update());
    let tree = os_tree(base, "v2");
    let c2 = commit(&p.ours, r, &tree, "2.0", 2);
    assert_eq!(commit(&p.theirs, Tool::Ostree, &tree, "2.0", 2), c2);
    p.step(r, &["upgrade", "--os=testos"]);
    assert!(oracle_status(&p.ours).starts_with(&format!("  testos {c2}.0\n")));
    for sysroot in [&p.ours, &p.theirs] {
        let repo = repo_arg(sysroot);
        sh(
            &oracle(),
            &[
                repo.as_str(),
                "refs",
                "--create=testos/next",
                "testos/stable",
            ],
        )
        .ok();
    }
    let out = p.step(r, &["switch", "--os=testos", "testos/next"]);
    assert!(out.contains("Deleting ref '(null):testos/stable'"), "{out}");
}

/// A remote with ed25519 `sign-verify` and `sign-verify-summary` (Debian's ostree lacks
/// ed25519, so only rostree runs): upgrades go through when commit and summary are signed by
/// the trusted key, and an unsigned commit or a summary signed by another key stops the
/// upgrade with nothing that boots changed.
#[test]
fn upgrade_checks_ed25519_signed_commits_and_summaries() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (a, b) = (Ed25519Key::new(base, "a"), Ed25519Key::new(base, "b"));
    let server = Server::new(base);
    let r = format!("--repo={}", server.repo.display());
    let me = crate::common::rostree_bin();
    let release =
        |variant: &str, day: u32, commit_key: Option<&Ed25519Key>, summary_key: &Ed25519Key| {
            let c = server.publish(&os_tree(base, variant), "testos/stable", variant, day);
            if let Some(k) = commit_key {
                sh(me, &[r.as_str(), "sign", &c, &k.secret]).ok();
            }
            let sign = format!("--sign={}", summary_key.secret);
            sh(me, &[r.as_str(), "summary", "-u", &sign]).ok();
            c
        };
    let c1 = release("v1", 1, Some(&a), &a);
    let trust = format!("--set=verification-ed25519-key={}", a.public);
    let remote_args = [
        "--no-gpg-verify",
        "--set=sign-verify=ed25519",
        "--set=sign-verify-summary=ed25519",
        trust.as_str(),
    ];
    let sysroot = following(base, "ours", Tool::Rostree, &server.url, &remote_args);
    let sr = sysroot_arg(&sysroot);
    let deploy = [
        "deploy",
        "--os=testos",
        "--karg=root=/dev/vda2",
        "origin:testos/stable",
        &sr,
    ];
    admin(Tool::Rostree, &deploy).ok();
    assert!(oracle_status(&sysroot).starts_with(&format!("  testos {c1}.0\n")));

    let c2 = release("v2", 2, Some(&a), &a);
    admin(Tool::Rostree, &["upgrade", "--os=testos", &sr]).ok();
    assert!(oracle_status(&sysroot).starts_with(&format!("  testos {c2}.0\n")));

    let refused = |why: &str| {
        let before = (boot_state(&sysroot), refs(&sysroot));
        let err = admin(Tool::Rostree, &["upgrade", "--os=testos", &sr]).fails();
        assert!(err.starts_with("error: ") && err.contains(why), "{err}");
        assert_eq!((boot_state(&sysroot), refs(&sysroot)), before);
    };
    let c3 = release("v3", 3, None, &a);
    refused(&format!(
        "Commit {c3} from remote \"origin\": Can't verify commit without detached metadata"
    ));
    release("v4", 4, Some(&a), &b);
    refused(&format!(
        "ed25519: Signature couldn't be verified with: key '{}'",
        a.hex
    ));
    // Signed by the trusted key again: the upgrade goes through.
    let c5 = release("v5", 5, Some(&a), &a);
    admin(Tool::Rostree, &["upgrade", "--os=testos", &sr]).ok();
    assert!(oracle_status(&sysroot).starts_with(&format!("  testos {c5}.0\n")));
    assert!(
        sh(&oracle(), &[repo_arg(&sysroot).as_str(), "fsck"])
            .ok()
            .contains("no errors found")
    );
}
