//! `admin` against the `ostree admin` oracle: the same commands on two sysroots, one driven by
//! each tool, must print the same text and leave the same files (names, modes, owners, link
//! counts, bytes, immutable flags), boot entries, origins and refs; each tool must read,
//! extend, undeploy and clean up what the other made; bad input must fail with one clear
//! error line and leave what boots untouched, even under kill -9.
//!
//! Here: the command scenarios; `etc` the `/etc` merge, `boot` kernels and boot loaders,
//! `booted` a booted deployment (in a chroot),
//! `safety` failures, kills and locking; `nospace` running out of space; `upgrade` upgrade and
//! switch from an HTTP remote; `realos` a real Debian userland deployed and run in a chroot
//! (`userland` makes and caches it, `bootfiles` its kernel and initramfs); `support` the
//! sysroot helpers.

mod boot;
mod booted;
mod bootfiles;
#[path = "../common/mod.rs"]
mod common;
mod etc;
mod nospace;
mod realos;
mod safety;
mod support;
mod upgrade;
mod userland;

use common::{oracle, sh, write};
use support::*;

#[test]
fn init_fs_and_os_init_create_what_ostree_creates() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
            let sr = sysroot_arg(&p);
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
    let sr = sysroot_arg(&missing);
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (p, c1) = pair(base, Tool::Rostree);
    let r = Tool::Rostree;
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    match is_immutable(&deployment_dir(&p.ours, &c1, 0)) {
        Some(flag) => assert!(flag, "the deployment root is immutable"),
        None => println!("no inode flags on this filesystem: immutability not checked"),
    }
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
    // c1 is no branch's tip now: only its deployment refs keep a depth-0 prune of either
    // tool from deleting it.
    let repo = repo_arg(&p.ours);
    for tool in [Tool::Rostree, Tool::Ostree] {
        let prune = [repo.as_str(), "prune", "--refs-only", "--depth=0"];
        sh(&tool.bin(), &prune).ok();
        sh(&oracle(), &[repo.as_str(), "ls", &c1, "/usr/bin/hello"]).ok();
    }
    oracle_fsck(&p.ours);
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
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

    let sr = sysroot_arg(&p.ours);
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
    for (a, b) in [(Tool::Rostree, Tool::Ostree), (Tool::Ostree, Tool::Rostree)] {
        let Some(scratch) = admin_scratch() else {
            return;
        };
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
fn pin_set_origin_kargs_in_place_and_config_diff_match_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
    p.step(r, &["pin", "0"]);
    p.step(r, &["pin", "--unpin", "0"]);
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
    let theirs_sr = sysroot_arg(&p.theirs);
    let ours_sr = sysroot_arg(&p.ours);
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (sysroot, c1) = deployed_sysroot(base, &os_tree(base, "v1"));
    let sr = sysroot_arg(&sysroot);
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
fn karg_delete_and_proc_cmdline_match_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
    // This machine's own command line, less what the boot loader adds, then a replacement.
    let out = p.step(r, &d(&["--karg-proc-cmdline", "--karg=root=/dev/sda1"]));
    assert!(out.ends_with("rc=true"), "{out}");
    let entry =
        std::fs::read_to_string(p.ours.join("boot/loader/entries/ostree-2-testos.conf")).unwrap();
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap();
    let first = cmdline.split(' ').find(|a| !a.starts_with("BOOT_IMAGE="));
    assert!(
        entry.contains(&format!("options {}", first.unwrap())),
        "{entry}"
    );
    // A usage error: ostree adds its usage text, rostree one line.
    let sr = sysroot_arg(&p.ours);
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let (p, _) = pair(scratch.path(), Tool::Rostree);
    for sysroot in [&p.ours, &p.theirs] {
        let repo = repo_arg(sysroot);
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

#[test]
fn kargs_edit_in_place_appends_replaces_and_deletes_in_every_entry() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let (p, _) = pair(scratch.path(), Tool::Rostree);
    let r = Tool::Rostree;
    let deploy = [
        "deploy",
        "--os=testos",
        "--karg=root=/dev/sda1",
        "--karg-append=console=ttyS0",
        "--karg-append=console=tty0",
        "testos/stable",
    ];
    p.step(r, &deploy);
    // The second inherits the first's arguments.
    p.step(r, &["deploy", "--os=testos", "testos/stable"]);
    let sr = sysroot_arg(&p.ours);
    let options = || -> Vec<String> {
        let entries = p.ours.join("boot/loader/entries");
        let mut v: Vec<String> = std::fs::read_dir(entries)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .map(|text| {
                let line = text.lines().find_map(|l| l.strip_prefix("options "));
                let args = line.unwrap().split(' ');
                args.filter(|a| !a.starts_with("ostree="))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        v.dedup();
        v
    };
    assert_eq!(options(), ["root=/dev/sda1 console=ttyS0 console=tty0"]);
    // Not in ostree 2022.7 (rostree's, as rpm-ostree's `kargs`); a failing edit changes no entry.
    let before = boot_state(&p.ours);
    for (arg, expected) in [
        ("--delete=nokey", "No key 'nokey' found"),
        (
            "--delete=console",
            "Multiple values for key 'console' found",
        ),
        (
            "--replace=console=hvc0",
            "Multiple values for key 'console' found",
        ),
        (
            "--replace=console=tty9=hvc0",
            "No karg 'console=tty9' found",
        ),
        ("--replace=nokey=1", "No key 'nokey' found"),
    ] {
        let err = admin(r, &["kargs", "edit-in-place", &sr, "--append=x", arg]).fails();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: Deployment ") && err.ends_with(&format!("{expected}\n")),
            "{err}"
        );
        assert_eq!(boot_state(&p.ours), before, "{arg}");
    }
    let edit = [
        "kargs",
        "edit-in-place",
        &sr,
        "--append=quiet",
        "--replace=console=tty0=tty1",
        "--delete=console=ttyS0",
        "--replace=root=/dev/sda2",
        "--append-if-missing=root=/dev/nope",
    ];
    admin(r, &edit).ok();
    assert_eq!(options(), ["root=/dev/sda2 console=tty1 quiet"]);
    // ostree reads the edited entries and carries the arguments into its next deployment.
    admin(
        Tool::Ostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
    .ok();
    assert_eq!(options(), ["root=/dev/sda2 console=tty1 quiet"]);
    assert_eq!(oracle_status(&p.ours).matches("  testos ").count(), 2);
}
