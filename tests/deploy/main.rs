//! `admin` against the `ostree admin` oracle: the same commands on two sysroots, one driven by
//! each tool, must print the same text and leave the same files (names, modes, owners, link
//! counts, bytes, immutable flags), boot entries, origins and refs; each tool must read,
//! extend, undeploy and clean up what the other made; bad input must fail with one clear
//! error line and leave what boots untouched, even under kill -9.

#[path = "../common/mod.rs"]
mod common;
mod support;

use common::{chmod, oracle, rostree_bin, sh, write};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use support::*;

#[test]
fn init_fs_and_os_init_create_what_ostree_creates() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    for modern in [false, true] {
        let mk = |name: &str, tool: Tool| {
            let p = base.join(format!("{name}-{modern}"));
            std::fs::create_dir_all(&p).unwrap();
            let mut args = vec!["init-fs", p.to_str().unwrap()];
            if modern {
                args.push("--modern");
            }
            admin(tool, &args).ok();
            let sr = format!("--sysroot={}", p.display());
            admin(tool, &["os-init", &sr, "testos"]).ok();
            // Both refuse an existing stateroot.
            let again = admin(tool, &["os-init", &sr, "testos"]);
            assert!(
                again.fails().contains("ostree/deploy/testos"),
                "{}",
                again.stderr()
            );
            p
        };
        let theirs = mk("theirs", Tool::Ostree);
        let ours = mk("ours", Tool::Rostree);
        let diffs = snapshot_diff(&snapshot(&theirs), &snapshot(&ours));
        assert!(
            diffs.is_empty(),
            "init-fs/os-init differ:\n{}",
            diffs.join("\n")
        );
        assert_eq!(
            std::fs::read(ours.join("ostree/repo/config")).unwrap(),
            std::fs::read(theirs.join("ostree/repo/config")).unwrap()
        );
        assert_eq!(oracle_status(&ours), "No deployments.\n");
    }
    // The directory must exist, as with ostree.
    let missing = base.join("missing");
    let err = admin(Tool::Rostree, &["init-fs", missing.to_str().unwrap()]).fails();
    assert!(
        err.starts_with("error: ") && err.contains("missing"),
        "{err}"
    );
    let sr = format!("--sysroot={}", missing.display());
    let err = admin(Tool::Rostree, &["os-init", &sr, "testos"]).fails();
    let expected = format!(
        "error: opendir({}): No such file or directory\n",
        missing.display()
    );
    assert_eq!(err, expected);
    assert!(!missing.exists());
}

#[test]
fn deploy_undeploy_and_cleanup_match_ostree_byte_for_byte() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, c1) = pair(base, Tool::Rostree);
    let r = Tool::Rostree;
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    let ours_status = p.step(r, &["status"]);
    assert!(ours_status.contains(&format!("  testos {c1}.0\n    Version: 1.0\n")));

    // Local configuration changes, then an update with new defaults.
    edit_etc(&deployment_dir(&p.ours, &c1, 0).join("etc"));
    edit_etc(&deployment_dir(&p.theirs, &c1, 0).join("etc"));
    let tree2 = os_tree(base, "v2");
    let c2 = commit(&p.ours, r, &tree2, "2.0", 2);
    assert_eq!(commit(&p.theirs, Tool::Ostree, &tree2, "2.0", 2), c2);

    let out = p.step(
        r,
        &[
            "deploy",
            "--os=testos",
            "--karg=root=/dev/sda1",
            "--karg-append=console=ttyS0",
            "--karg-append=console=tty0",
            "testos/stable",
        ],
    );
    assert!(
        out.contains("Copying /etc changes: 1 modified, 1 removed, 5 added"),
        "{out}"
    );
    // Same kernel and arguments: only the bootlinks change.
    p.step(
        r,
        &[
            "deploy",
            "--os=testos",
            "--retain",
            "--karg=root=/dev/sda2",
            "testos/stable",
        ],
    );
    p.step(
        r,
        &[
            "deploy",
            "--os=testos",
            "--not-as-default",
            "--karg-none",
            &c1,
        ],
    );
    p.step(r, &["status"]);
    p.step(r, &["undeploy", "1"]);
    p.step(
        r,
        &[
            "deploy",
            "--os=testos",
            "--retain-rollback",
            "testos/stable",
        ],
    );
    p.step(
        r,
        &["deploy", "--os=testos", "--retain-pending", "testos/stable"],
    );
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    let swap = p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    assert!(
        swap.contains("Transaction complete; bootconfig swap: no"),
        "{swap}"
    );
    p.step(r, &["cleanup"]);
    p.step(r, &["undeploy", "1"]);
    p.step(r, &["undeploy", "0"]);
    p.step(r, &["status"]);
    p.step(r, &["cleanup"]);
}

#[test]
fn origin_file_and_json_status() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, c1) = pair(base, Tool::Rostree);
    let origin = base.join("custom.origin");
    write(
        &origin,
        b"# a comment\n[origin]\nrefspec=remote:testos/stable\nunlocked=hotfix\n\n\n[libostree-transient]\npinned=true\n",
    );
    let arg = format!("--origin-file={}", origin.display());
    p.step(
        Tool::Rostree,
        &["deploy", "--os=testos", &arg, "testos/stable"],
    );
    let status = oracle_status(&p.ours);
    assert!(
        status.contains(
            "    Unlocked: hotfix\n    Pinned: yes\n    origin refspec: remote:testos/stable\n"
        ),
        "{status}"
    );
    // A pinned deployment survives a deploy without --retain.
    p.step(Tool::Rostree, &["deploy", "--os=testos", "testos/stable"]);
    p.step(Tool::Rostree, &["deploy", "--os=testos", "testos/stable"]);

    let sr = format!("--sysroot={}", p.ours.display());
    let json = admin(Tool::Rostree, &["status", "--json", &sr]).ok();
    assert!(json.starts_with("{\"bootversion\":"), "{json}");
    assert!(
        json.contains(&format!("\"checksum\":\"{c1}\",\"serial\":0")),
        "{json}"
    );
    assert!(
        json.contains("\"pinned\":true,\"unlocked\":\"hotfix\""),
        "{json}"
    );
    assert!(
        json.contains("\"refspec\":\"remote:testos/stable\""),
        "{json}"
    );
    assert_eq!(json.matches("\"index\":").count(), 3, "{json}");
    assert!(json.trim_end().ends_with("]}"), "{json}");
}

#[test]
fn each_tool_continues_what_the_other_started() {
    if !requirements_met() {
        return;
    }
    for (a, b) in [(Tool::Rostree, Tool::Ostree), (Tool::Ostree, Tool::Rostree)] {
        let scratch = Scratch::new();
        let base = scratch.path();
        // `ours` alternates the two tools; `theirs` is ostree only.
        let (p, c1) = pair(base, a);
        let steps: [(Tool, &[&str]); 8] = [
            (a, &["deploy", "--os=testos", "testos/stable"]),
            (
                b,
                &["deploy", "--os=testos", "--karg=quiet", "testos/stable"],
            ),
            (
                a,
                &[
                    "deploy",
                    "--os=testos",
                    "--retain",
                    "--karg-append=x=1",
                    "testos/stable",
                ],
            ),
            (b, &["status"]),
            (a, &["status"]),
            (b, &["undeploy", "1"]),
            (a, &["undeploy", "1"]),
            (b, &["cleanup"]),
        ];
        for (i, (tool, args)) in steps.iter().enumerate() {
            if i == 1 {
                edit_etc(&deployment_dir(&p.ours, &c1, 0).join("etc"));
                edit_etc(&deployment_dir(&p.theirs, &c1, 0).join("etc"));
            }
            p.step(*tool, args);
        }
    }
}

#[test]
fn etc_merge_keeps_local_changes_and_leaves_the_old_deployment_alone() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    let c1 = commit(&sysroot, Tool::Rostree, &os_tree(base, "v1"), "1.0", 1);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    let old = deployment_dir(&sysroot, &c1, 0);
    edit_etc(&old.join("etc"));
    let before = snapshot(&old);
    let c2 = commit(&sysroot, Tool::Rostree, &os_tree(base, "v2"), "2.0", 2);
    let out = admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    assert!(
        out.contains("Copying /etc changes: 1 modified, 1 removed, 5 added"),
        "{out}"
    );
    let etc = deployment_dir(&sysroot, &c2, 0).join("etc");
    let read = |name: &str| std::fs::read_to_string(etc.join(name)).unwrap();
    assert_eq!(
        read("app.conf"),
        "locally modified\n",
        "local modifications win"
    );
    assert!(
        !etc.join("remove-me.conf").exists(),
        "local deletions stay deleted"
    );
    assert_eq!(
        read("local.conf"),
        "local addition\n",
        "local additions carried over"
    );
    assert_eq!(
        std::fs::metadata(etc.join("local.conf")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(read("localdir/deep/file"), "deep local\n");
    assert_eq!(
        std::fs::read_link(etc.join("local-link")).unwrap(),
        Path::new("app.conf")
    );
    assert_eq!(
        read("keep.conf"),
        "keep v2\n",
        "untouched files take the new defaults"
    );
    assert_eq!(
        std::fs::metadata(etc.join("secret")).unwrap().mode() & 0o7777,
        0o600
    );
    // /etc is a copy, /usr is hardlinked into the repository.
    assert_eq!(std::fs::metadata(etc.join("keep.conf")).unwrap().nlink(), 1);
    let usr_keep = deployment_dir(&sysroot, &c2, 0).join("usr/etc/keep.conf");
    assert!(std::fs::metadata(usr_keep).unwrap().nlink() >= 2);
    // Link counts of /usr files grow: the new deployment shares their repository objects.
    let unlinked = |snap: BTreeMap<String, String>| -> BTreeMap<String, String> {
        snap.into_iter()
            .map(|(k, v)| {
                let v: Vec<&str> = v.split(' ').filter(|w| !w.starts_with("nlink=")).collect();
                (k, v.join(" "))
            })
            .collect()
    };
    let diffs = snapshot_diff(&unlinked(before), &unlinked(snapshot(&old)));
    assert!(
        diffs.is_empty(),
        "the merge deployment changed:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn bad_input_fails_clearly_and_changes_nothing_that_boots() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    let tree = os_tree(base, "v1");
    commit(&sysroot, Tool::Rostree, &tree, "1.0", 1);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    let before = boot_state(&sysroot);
    let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
    let bad_commit = |name: &str, change: &dyn Fn(&Path)| {
        let t = base.join(format!("bad-{name}"));
        sh("cp", &["-a", tree.to_str().unwrap(), t.to_str().unwrap()]).ok();
        change(&t);
        let branch = format!("bad/{name}");
        sh(
            rostree_bin(),
            &[repo.as_str(), "commit", "-b", &branch, t.to_str().unwrap()],
        )
        .ok();
        format!("bad/{name}")
    };
    let no_kernel = bad_commit("nokernel", &|t| {
        std::fs::remove_dir_all(t.join("usr/lib/modules")).unwrap();
    });
    let both_etc = bad_commit("bothetc", &|t| write(&t.join("etc/x.conf"), b"x\n"));
    let no_os_release = bad_commit("noosrelease", &|t| {
        std::fs::remove_file(t.join("usr/lib/os-release")).unwrap();
        std::fs::remove_file(t.join("usr/etc/os-release")).unwrap();
    });
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["deploy".into(), "--os=testos".into(), no_kernel],
            "Failed to find kernel",
        ),
        (
            vec!["deploy".into(), "--os=testos".into(), both_etc],
            "Tree contains both /etc and /usr/etc",
        ),
        (
            vec!["deploy".into(), "--os=testos".into(), no_os_release],
            "os-release",
        ),
        (
            vec!["deploy".into(), "--os=nope".into(), "testos/stable".into()],
            "ostree/deploy/nope",
        ),
        (
            vec!["deploy".into(), "--os=../..".into(), "testos/stable".into()],
            "Invalid OS name '../..'",
        ),
        (
            vec!["deploy".into(), "testos/stable".into()],
            "no --os= argument given",
        ),
        (
            vec!["deploy".into(), "--os=testos".into(), "no/such/ref".into()],
            "Refspec 'no/such/ref' not found",
        ),
        (
            vec!["undeploy".into(), "1".into()],
            "Out of range deployment index 1, expected < 1",
        ),
        (vec!["undeploy".into(), "-2".into()], "Invalid index -2"),
        (
            vec!["undeploy".into(), "first".into()],
            "Invalid index first",
        ),
    ];
    for (args, expected) in cases {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.insert(1, &sr);
        let run = admin(Tool::Rostree, &all);
        let err = run.fails();
        assert_eq!(
            err.lines().count(),
            1,
            "{all:?}: one error line, got:\n{err}"
        );
        assert!(
            err.starts_with("error: ") && err.contains(expected),
            "{all:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        let diffs = snapshot_diff(&before, &boot_state(&sysroot));
        assert!(
            diffs.is_empty(),
            "{all:?} changed the boot state:\n{}",
            diffs.join("\n")
        );
        // ostree still reads it.
        assert!(oracle_status(&sysroot).contains("testos"));
    }
}

#[test]
fn kill_9_during_deploy_or_undeploy_leaves_a_complete_boot_configuration() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    // Enough files that a deploy takes a while, so kills land at many points of it.
    let tree = os_tree(base, "v1");
    for i in 0..3000 {
        write(
            &tree.join(format!("usr/share/many/{}/f{i}", i % 30)),
            format!("{i}\n").as_bytes(),
        );
    }
    commit(&sysroot, Tool::Rostree, &tree, "1.0", 1);
    let start = std::time::Instant::now();
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    let full = start.elapsed();
    let mut deployed = 1;
    let mut interrupted = 0;
    for step in 0..12u32 {
        let delay = full * step / 10;
        let before = oracle_status(&sysroot);
        let mut child = std::process::Command::new(rostree_bin())
            .args([
                "admin",
                "deploy",
                &sr,
                "--os=testos",
                "--retain",
                "testos/stable",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        // Whatever the moment, the entries boot either the old or the new list, and each
        // entry's kernel, initramfs and deployment are complete.
        let after = oracle_status(&sysroot);
        let n = after.matches("  testos ").count();
        if finished || n != deployed {
            assert_eq!(n, deployed + 1, "{after}");
            deployed = n;
        } else {
            assert_eq!(after, before);
            interrupted += 1;
        }
        entries_are_complete(&sysroot);
        // Either tool cleans up what the kill left behind.
        admin(Tool::Ostree, &["cleanup", &sr]).ok();
        let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
        sh(&oracle(), &[repo.as_str(), "fsck", "-q"]).ok();
    }
    admin(Tool::Rostree, &["cleanup", &sr]).ok();
    println!("{interrupted} of 12 deploys killed before they switched the boot entries");

    // The same for undeploy (which also deletes the deployment, then prunes).
    let mut interrupted = 0;
    for step in 0..8u32 {
        let delay = full * step / 8;
        let before = oracle_status(&sysroot);
        let n_before = before.matches("  testos ").count();
        let last = (n_before - 1).to_string();
        let mut child = std::process::Command::new(rostree_bin())
            .args(["admin", "undeploy", &sr, &last])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let after = oracle_status(&sysroot);
        let n = after.matches("  testos ").count();
        if finished || n != n_before {
            assert_eq!(n, n_before - 1, "{after}");
        } else {
            assert_eq!(after, before);
            interrupted += 1;
        }
        entries_are_complete(&sysroot);
        admin(Tool::Rostree, &["cleanup", &sr]).ok();
        let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
        sh(&oracle(), &[repo.as_str(), "fsck", "-q"]).ok();
        if n == 1 {
            break;
        }
    }
    println!("{interrupted} undeploys killed before they switched the boot entries");
}

/// Every boot entry's kernel and initramfs exist, and `ostree admin status` reads them.
fn entries_are_complete(sysroot: &Path) {
    let entries = sysroot.join("boot/loader/entries");
    for e in std::fs::read_dir(&entries).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        for key in ["linux ", "initrd "] {
            let line = text.lines().find(|l| l.starts_with(key)).unwrap();
            let file = sysroot
                .join("boot")
                .join(line[key.len()..].trim_start_matches('/'));
            assert!(file.is_file(), "{} missing", file.display());
        }
    }
    oracle_status(sysroot);
}

#[test]
fn pin_set_origin_kargs_in_place_and_config_diff_match_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, c1) = pair(base, Tool::Rostree);
    let r = Tool::Rostree;
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(
        r,
        &["deploy", "--os=testos", "--karg=quiet", "testos/stable"],
    );
    assert_eq!(
        p.step(r, &["pin", "1"]),
        "Deployment 1 is now pinned\nrc=true"
    );
    p.step(r, &["pin", "1", "0"]);
    p.step(r, &["pin", "-u", "1"]);
    let err = p.step(r, &["pin", "5"]);
    assert!(
        err.starts_with("error: Out of range deployment index 5"),
        "{err}"
    );
    p.step(r, &["pin", "x"]);
    p.step(
        r,
        &[
            "set-origin",
            "--index=1",
            "myremote",
            "http://example.com/repo",
            "--set=gpg-verify=false",
            "--set=foo=bar",
        ],
    );
    p.step(
        r,
        &[
            "set-origin",
            "--index=1",
            "myremote",
            "http://other",
            "newbranch",
        ],
    );
    p.step(r, &["set-origin", "myremote", "http://other", "newbranch"]);
    p.step(
        r,
        &[
            "kargs",
            "edit-in-place",
            "--append-if-missing=foo=bar",
            "--append-if-missing=quiet",
        ],
    );
    p.step(
        r,
        &["kargs", "edit-in-place", "--append-if-missing=foo=baz"],
    );
    edit_etc(&deployment_dir(&p.ours, &c1, 1).join("etc"));
    edit_etc(&deployment_dir(&p.theirs, &c1, 1).join("etc"));
    // Added entries are listed in the directory's enumeration order, which differs between
    // two sysroots: both tools must agree on one sysroot, and on the set across the two.
    let theirs_sr = format!("--sysroot={}", p.theirs.display());
    let ours_sr = format!("--sysroot={}", p.ours.display());
    let expected = admin(Tool::Ostree, &["config-diff", "--os=testos", &theirs_sr]).ok();
    let diff = admin(r, &["config-diff", "--os=testos", &theirs_sr]).ok();
    assert_eq!(diff, expected);
    assert!(
        diff.starts_with("M    app.conf\nD    remove-me.conf\nA    "),
        "{diff}"
    );
    let ours = admin(r, &["config-diff", "--os=testos", &ours_sr]).ok();
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(sorted(&ours), sorted(&expected));
    p.step(r, &["config-diff", "--os=nope"]);
    p.step(r, &["config-diff"]);
    // The pinned deployment outlives a deploy without --retain; the other one goes.
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(Tool::Ostree, &["deploy", "--os=testos", "testos/stable"]);
    p.step(r, &["status"]);
}

#[test]
fn two_stateroots_share_the_boot_menu() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, _) = pair(base, Tool::Rostree);
    let (r, o) = (Tool::Rostree, Tool::Ostree);
    p.step(r, &["os-init", "otheros"]);
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(o, &["deploy", "--os=otheros", "--karg=x", "testos/stable"]);
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(
        r,
        &[
            "deploy",
            "--os=otheros",
            "--not-as-default",
            "testos/stable",
        ],
    );
    let status = p.step(o, &["status"]);
    assert_eq!(status.matches("  otheros ").count(), 2, "{status}");
    let entries = p.ours.join("boot/loader/entries");
    let title = std::fs::read_to_string(entries.join("ostree-4-testos.conf")).unwrap();
    assert!(
        title.starts_with("title Test OS 1.0 (ostree:testos:0)\n"),
        "{title}"
    );
    p.step(r, &["undeploy", "0"]);
    p.step(o, &["undeploy", "0"]);
    p.step(r, &["status"]);
}

#[test]
fn rollback_makes_the_previous_deployment_the_default() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    let c1 = commit(&sysroot, Tool::Rostree, &os_tree(base, "v1"), "1.0", 1);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    let err = admin(Tool::Rostree, &["rollback", &sr, "--os=testos"]).fails();
    assert_eq!(err, "error: No rollback deployment found for OS 'testos'\n");
    let c2 = commit(&sysroot, Tool::Rostree, &os_tree(base, "v2"), "2.0", 2);
    admin(
        Tool::Ostree,
        &["deploy", &sr, "--os=testos", "--karg=new", "testos/stable"],
    )
    .ok();
    let first = |s: &str| s.lines().next().unwrap_or_default().to_string();
    assert_eq!(first(&oracle_status(&sysroot)), format!("  testos {c2}.0"));
    let out = admin(Tool::Rostree, &["rollback", &sr, "--os=testos"]).ok();
    assert!(
        out.ends_with(&format!("Moving '{c1}.0' to be first deployment\n")),
        "{out}"
    );
    let status = oracle_status(&sysroot);
    assert_eq!(first(&status), format!("  testos {c1}.0"), "{status}");
    assert_eq!(status.matches("  testos ").count(), 2, "{status}");
    // The entries follow: the default entry boots the old commit with its own arguments.
    let entry =
        std::fs::read_to_string(sysroot.join("boot/loader/entries/ostree-2-testos.conf")).unwrap();
    assert!(
        entry.starts_with("title Test OS 1.0 (ostree:0)\n"),
        "{entry}"
    );
    assert!(!entry.contains(" new"), "{entry}");
    admin(Tool::Rostree, &["rollback", &sr, "--os=testos"]).ok();
    assert_eq!(first(&oracle_status(&sysroot)), format!("  testos {c2}.0"));
    admin(Tool::Ostree, &["cleanup", &sr]).ok();
    admin(Tool::Ostree, &["undeploy", &sr, "1"]).ok();
}

#[test]
fn boot_on_its_own_filesystem_gets_copies_like_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, _) = pair(base, Tool::Rostree);
    // Declared after `scratch`: unmounted before the directory goes.
    let Some(_ours) = TmpfsMount::new(&p.ours.join("boot")) else {
        return;
    };
    let Some(_theirs) = TmpfsMount::new(&p.theirs.join("boot")) else {
        return;
    };
    p.step(Tool::Rostree, &["deploy", "--os=testos", "testos/stable"]);
    p.step(
        Tool::Rostree,
        &["deploy", "--os=testos", "--karg=x", "testos/stable"],
    );
    p.step(Tool::Ostree, &["deploy", "--os=testos", "testos/stable"]);
    p.step(Tool::Rostree, &["undeploy", "1"]);
    let kernels: Vec<_> = std::fs::read_dir(p.ours.join("boot/ostree"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .collect();
    assert_eq!(kernels.len(), 2, "{kernels:?}");
    for k in kernels {
        assert_eq!(
            k.metadata().unwrap().nlink(),
            1,
            "{}: a copy",
            k.path().display()
        );
    }
}

#[test]
fn the_sysroot_lock_is_shared_with_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let sysroot = new_sysroot(scratch.path(), "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    let lock = rustix::fs::open(
        sysroot.join("ostree/lock"),
        rustix::fs::OFlags::CREATE | rustix::fs::OFlags::RDWR,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    rustix::fs::fcntl_lock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    // Both tools wait for the holder (timeout kills them with 124).
    for tool in [Tool::Rostree, Tool::Ostree] {
        let bin = tool.bin();
        let r = sh("timeout", &["1", &bin, "admin", "cleanup", &sr]);
        assert_eq!(r.out.status.code(), Some(124), "{tool:?}: {}", r.stderr());
        assert_eq!(r.stdout(), "Waiting for sysroot lock...\n");
    }
    drop(lock);
    admin(Tool::Rostree, &["cleanup", &sr]).ok();
    assert!(
        !sysroot.join("ostree/lock").exists(),
        "released and removed, as ostree does"
    );
}

#[test]
fn boot_loaders_other_than_bls_are_refused_before_any_change() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    commit(&sysroot, Tool::Rostree, &os_tree(base, "v1"), "1.0", 1);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    write(
        &sysroot.join("boot/grub2/grub.cfg"),
        b"# grub2-mkconfig output\n",
    );
    let before = boot_state(&sysroot);
    for args in [
        vec!["deploy", "--os=testos", "testos/stable"],
        vec!["deploy", "--os=testos", "--retain", "testos/stable"],
    ] {
        let mut all = args.clone();
        all.push(&sr);
        let err = admin(Tool::Rostree, &all).fails();
        assert!(
            err.starts_with("error: ") && err.contains("boot/grub2/grub.cfg: grub2 boot loader"),
            "{err}"
        );
        assert!(snapshot_diff(&before, &boot_state(&sysroot)).is_empty());
    }
    // Saying BLS entries are all that is read lets it through.
    let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
    sh(
        rostree_bin(),
        &[repo.as_str(), "config", "set", "sysroot.bootloader", "none"],
    )
    .ok();
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    assert_eq!(oracle_status(&sysroot).matches("  testos ").count(), 2);
}

#[test]
fn legacy_and_initramfs_less_kernel_layouts_match_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, _) = pair(base, Tool::Rostree);
    // Legacy: /boot/vmlinuz-<ver>-<sha256>, with content in /var (ignored, with a note).
    let legacy = os_tree(base, "legacy");
    std::fs::remove_dir_all(legacy.join("usr/lib/modules")).unwrap();
    let csum = "5d93a09e0f232ad4a01eada8dad673497a99a8f846382ca41fd58d41edac62ce";
    write(&legacy.join(format!("boot/vmlinuz-5.0-{csum}")), b"K\n");
    write(
        &legacy.join(format!("boot/initramfs-5.0.img-{csum}")),
        b"I\n",
    );
    write(&legacy.join("var/lib/x/y"), b"v\n");
    // No initramfs (the kernel runs ostree-prepare-root), a devicetree and a FIPS HMAC.
    let bare = os_tree(base, "bare");
    let modules = bare.join(format!("usr/lib/modules/{KVER}"));
    std::fs::remove_file(modules.join("initramfs.img")).unwrap();
    write(&modules.join("devicetree"), b"DT\n");
    write(&modules.join(".vmlinuz.hmac"), b"HMAC\n");
    for (tree, day) in [(&legacy, 2), (&bare, 3)] {
        let c = commit(&p.ours, Tool::Rostree, tree, "x", day);
        assert_eq!(commit(&p.theirs, Tool::Ostree, tree, "x", day), c);
        let out = p.step(Tool::Rostree, &["deploy", "--os=testos", "--retain", &c]);
        if day == 2 {
            assert!(
                out.contains("content in /var/lib that will be ignored"),
                "{out}"
            );
        }
    }
    let entries = std::fs::read_dir(p.ours.join("boot/loader/entries")).unwrap();
    let text: String = entries
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(
        text.contains(&format!("/ostree/testos-{csum}/vmlinuz-5.0\n")),
        "{text}"
    );
    assert!(
        text.contains("/usr/lib/ostree/ostree-prepare-root"),
        "{text}"
    );
    assert!(text.contains("\ndevicetree /ostree/testos-"), "{text}");
}

#[test]
fn etc_merge_edge_cases_match_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, c1) = pair(base, Tool::Rostree);
    p.step(Tool::Rostree, &["deploy", "--os=testos", "testos/stable"]);
    for sysroot in [&p.ours, &p.theirs] {
        let etc = deployment_dir(sysroot, &c1, 0).join("etc");
        chmod(&etc.join("sub"), 0o700); // a directory's mode
        std::os::unix::fs::chown(etc.join("app.conf"), Some(12), Some(34)).unwrap(); // owner only
        std::fs::remove_file(etc.join("remove-me.conf")).unwrap(); // a file becomes a directory
        write(&etc.join("remove-me.conf/f"), b"in\n");
        std::fs::remove_file(etc.join("os-release")).unwrap(); // a symlink's target
        std::os::unix::fs::symlink("/elsewhere", etc.join("os-release")).unwrap();
        common::set_xattr(&etc.join("sub/nested.conf"), "user.x", b"1"); // xattrs are ignored
        sh("mkfifo", &[etc.join("fifo").to_str().unwrap()]).ok(); // not carried over
    }
    let out = p.step(Tool::Rostree, &["deploy", "--os=testos", "testos/stable"]);
    assert!(
        out.contains("Copying /etc changes: 4 modified, 0 removed, 1 added"),
        "{out}"
    );
}

#[test]
fn etc_merge_never_writes_through_a_symlink_of_the_new_commit() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = format!("--sysroot={}", sysroot.display());
    let v1 = os_tree(base, "v1");
    write(&v1.join("usr/etc/d/x"), b"x\n");
    let c1 = commit(&sysroot, Tool::Rostree, &v1, "1.0", 1);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    let etc = deployment_dir(&sysroot, &c1, 0).join("etc");
    std::fs::remove_file(etc.join("d/x")).unwrap();
    write(&etc.join("d/new"), b"local\n");
    // The update turns /etc/d into a symlink to a directory of /usr.
    let v2 = os_tree(base, "v2");
    write(&v2.join("usr/share/victim/x"), b"x\n");
    std::os::unix::fs::symlink("../share/victim", v2.join("usr/etc/d")).unwrap();
    let c2 = commit(&sysroot, Tool::Rostree, &v2, "2.0", 2);
    let run = admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    );
    run.ok();
    let err = run.stderr();
    assert!(
        err.contains("not following symlink /etc/d to remove /etc/d/x"),
        "{err}"
    );
    assert!(
        err.contains("not following symlink /etc/d to copy /etc/d/new"),
        "{err}"
    );
    let root = deployment_dir(&sysroot, &c2, 0);
    let victim: Vec<_> = std::fs::read_dir(root.join("usr/share/victim"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(victim, ["x"], "the new /usr is untouched");
    assert!(
        !root.join("share").exists(),
        "nothing created where the link points"
    );
    assert_eq!(
        std::fs::read_link(root.join("etc/d")).unwrap(),
        Path::new("../share/victim")
    );
    let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
    sh(&oracle(), &[repo.as_str(), "fsck", "-q"]).ok();
}

#[test]
fn a_dtb_directory_is_checksummed_and_copied_like_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let base = scratch.path();
    let (p, _) = pair(base, Tool::Rostree);
    let tree = os_tree(base, "dtb");
    let dtb = tree.join(format!("usr/lib/modules/{KVER}/dtb"));
    write(&dtb.join("a.dtb"), b"A\n");
    write(&dtb.join("vendor/b.dtb"), b"B\n");
    chmod(&dtb.join("vendor/b.dtb"), 0o600);
    write(&dtb.join("vendor/sub/c.dtb"), b"C\n");
    std::fs::create_dir_all(dtb.join("empty")).unwrap();
    let c = commit(&p.ours, Tool::Rostree, &tree, "dtb", 2);
    assert_eq!(commit(&p.theirs, Tool::Ostree, &tree, "dtb", 2), c);
    p.step(Tool::Rostree, &["deploy", "--os=testos", &c]);
    // Installed again over the existing copy.
    p.step(Tool::Rostree, &["deploy", "--os=testos", "--karg=x", &c]);
    let entries = p.ours.join("boot/loader/entries");
    let entry = std::fs::read_to_string(entries.join("ostree-2-testos.conf")).unwrap();
    assert!(entry.contains("\nfdtdir /ostree/testos-"), "{entry}");
    // ostree 2022.7 fails on the second install when the directory holds a symlink
    // ("symlinkat: File exists"); rostree replaces it.
    std::os::unix::fs::symlink("a.dtb", dtb.join("link.dtb")).unwrap();
    let c2 = commit(&p.ours, Tool::Rostree, &tree, "dtb2", 3);
    let sr = format!("--sysroot={}", p.ours.display());
    for _ in 0..2 {
        admin(
            Tool::Rostree,
            &["deploy", &sr, "--os=testos", "--retain", &c2],
        )
        .ok();
    }
    assert_eq!(oracle_status(&p.ours).matches("  testos ").count(), 4);
}

#[test]
fn karg_delete_matches_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let (p, _) = pair(scratch.path(), Tool::Rostree);
    let r = Tool::Rostree;
    let d = |extra: &[&'static str]| {
        let mut v = vec!["deploy", "--os=testos"];
        v.extend_from_slice(extra);
        v.push("testos/stable");
        v
    };
    p.step(
        r,
        &d(&["--karg=a=1", "--karg-append=c=1", "--karg-append=c=2"]),
    );
    let err = p.step(r, &d(&["--karg-delete=c"]));
    assert!(
        err.starts_with("error: Multiple values for key 'c' found"),
        "{err}"
    );
    p.step(r, &d(&["--karg-delete=c=2"]));
    p.step(r, &d(&["--karg-delete=a=2"]));
    p.step(r, &d(&["--karg-delete=nokey"]));
    p.step(r, &d(&["--karg-delete=a"]));
    // A usage error: ostree adds its usage text, rostree one line.
    let sr = format!("--sysroot={}", p.ours.display());
    let err = admin(
        r,
        &[
            "deploy",
            &sr,
            "--os=testos",
            "--karg-none",
            "--karg-delete=a",
            "testos/stable",
        ],
    )
    .fails();
    assert_eq!(
        err,
        "error: Can't specify both --karg-none and --karg-delete\n"
    );
}

#[test]
fn bls_append_except_default_matches_ostree() {
    if !requirements_met() {
        return;
    }
    let scratch = Scratch::new();
    let (p, _) = pair(scratch.path(), Tool::Rostree);
    for sysroot in [&p.ours, &p.theirs] {
        let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
        let value = "grub_users=\"\";foo=bar;zed=1;foo=baz";
        let args = [
            repo.as_str(),
            "config",
            "set",
            "sysroot.bls-append-except-default",
            value,
        ];
        sh(&oracle(), &args).ok();
    }
    let r = Tool::Rostree;
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    p.step(r, &["deploy", "--os=testos", "--retain", "testos/stable"]);
    let entry =
        std::fs::read_to_string(p.ours.join("boot/loader/entries/ostree-1-testos.conf")).unwrap();
    assert!(
        entry.ends_with("foo baz\ngrub_users \"\"\nzed 1\n"),
        "{entry}"
    );
}
