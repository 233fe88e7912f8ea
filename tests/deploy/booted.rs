//! A booted system: each tool runs in a chroot of a deployment, in mount and PID namespaces of
//! its own (ostree reads `/proc/1/ns/mnt`, which this machine may hide) with the sysroot at
//! `/sysroot` (the deployment's `/ostree` links there), its `/boot` at `/boot`, the
//! stateroot's `/var` at `/var`, the host's `/usr` and `/dev` for the tools and
//! `/run/ostree-booted`; both tools then see that deployment as booted. The retention rules
//! for the booted deployment, the defaults taken from it (stateroot, `/etc`, kernel
//! arguments, origin), the refusal to undeploy it and the remotes kept in its
//! `/etc/ostree/remotes.d` must match ostree's.
//!
//! Each sysroot's `/boot` is a tmpfs of its own: a booted ostree freezes and thaws the
//! filesystem of `/boot` (FIFREEZE) after writing it, which must never be the host's.

use crate::common::mount::s;
use crate::common::{Run, rostree_bin, sh, write};
use crate::support::*;
use std::path::{Path, PathBuf};

/// Mounts the booted view of `$SR` at the deployment `$D`, then runs the rest as the command.
/// A non-recursive bind of the sysroot first, so the host's `/usr` mounted on the deployment
/// afterwards does not show through `/sysroot`.
const ENTER: &str = r#"set -e
D=$1 SR=$2 ROSTREE=$3
shift 3
mount --bind "$SR" "$D/sysroot"
mount --bind "$SR/boot" "$D/boot"
mount --bind "$SR/ostree/deploy/testos/var" "$D/var"
mount --bind /usr "$D/usr"
mount --bind /dev "$D/dev"
mount -t proc proc "$D/proc"
mount -t tmpfs tmpfs "$D/run"
touch "$D/run/ostree-booted" "$D/run/rostree"
mount --bind "$ROSTREE" "$D/run/rostree"
exec chroot "$D" "$@""#;

/// A deployment booted in chroots.
struct Booted {
    sysroot: PathBuf,
    deployment: PathBuf,
}

impl Booted {
    /// `TOOL admin ARGS...` run in the booted deployment (no `--sysroot`: `/`).
    fn admin(&self, tool: Tool, args: &[&str]) -> Run {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        self.run(tool, &all)
    }

    /// `TOOL ARGS...` run in the booted deployment.
    fn run(&self, tool: Tool, args: &[&str]) -> Run {
        let program = match tool {
            Tool::Ostree => "ostree",
            Tool::Rostree => "/run/rostree",
        };
        let mut all = vec![
            "--mount",
            "--pid",
            "--fork",
            "bash",
            "-c",
            ENTER,
            "enter",
            s(&self.deployment),
            s(&self.sysroot),
            rostree_bin(),
            program,
        ];
        all.extend_from_slice(args);
        sh("unshare", &all)
    }
}

/// Runs `args` with `ours_tool` booted in ours and ostree booted in theirs: the same output,
/// then the same sysroots.
fn step(p: &Pair, ours: &Booted, theirs: &Booted, ours_tool: Tool, args: &[&str]) -> String {
    let text = |r: Run| format!("{}{}rc={}", r.stdout(), r.stderr(), r.out.status.success());
    let expected = text(theirs.admin(Tool::Ostree, args));
    let got = text(ours.admin(ours_tool, args));
    assert_eq!(got, expected, "booted admin {args:?}: output differs");
    p.assert_same(&format!("after booted admin {args:?}"));
    got
}

/// The test OS with what a root filesystem needs to be entered: mount points and the
/// top-level links into `/usr` and to the sysroot.
fn bootable_tree(base: &Path) -> PathBuf {
    let tree = os_tree(base, "v1");
    for dir in ["sysroot", "boot", "proc", "run", "dev", "tmp", "var"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    let links = [
        ("ostree", "sysroot/ostree"),
        ("bin", "usr/bin"),
        ("sbin", "usr/sbin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
    ];
    for (name, target) in links {
        std::os::unix::fs::symlink(target, tree.join(name)).unwrap();
    }
    tree
}

#[test]
fn a_booted_deployment_is_kept_and_merged_from_as_ostree_does() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let tree = bootable_tree(base);
    let p = Pair {
        ours: new_sysroot(base, "ours", Tool::Rostree),
        theirs: new_sysroot(base, "theirs", Tool::Ostree),
    };
    // Declared after `scratch`: unmounted before the directory goes.
    let Some(_ours_boot) = Mounted::tmpfs(&p.ours.join("boot")) else {
        return;
    };
    let Some(_theirs_boot) = Mounted::tmpfs(&p.theirs.join("boot")) else {
        return;
    };
    let c1 = commit(&p.ours, Tool::Rostree, &tree, "1.0", 1);
    assert_eq!(commit(&p.theirs, Tool::Ostree, &tree, "1.0", 1), c1);
    let r = Tool::Rostree;
    p.step(
        r,
        &[
            "deploy",
            "--os=testos",
            "--karg=root=/dev/vda2",
            "testos/stable",
        ],
    );
    let booted = |sysroot: &Path| Booted {
        sysroot: sysroot.to_path_buf(),
        deployment: deployment_dir(sysroot, &c1, 0),
    };
    let (ours, theirs) = (booted(&p.ours), booted(&p.theirs));
    let status = step(&p, &ours, &theirs, r, &["status"]);
    assert!(
        status.starts_with(&format!("* testos {c1}.0\n")),
        "{status}"
    );
    for b in [&ours, &theirs] {
        edit_etc(&b.deployment.join("etc"));
    }

    // No --os: the booted stateroot; its /etc and kernel arguments are merged.
    let out = step(&p, &ours, &theirs, r, &["deploy", "testos/stable"]);
    assert!(
        out.contains("Copying /etc changes: 1 modified, 1 removed, 5 added"),
        "{out}"
    );
    let entry =
        std::fs::read_to_string(p.ours.join("boot/loader/entries/ostree-2-testos.conf")).unwrap();
    assert!(entry.contains("options root=/dev/vda2 ostree="), "{entry}");
    step(&p, &ours, &theirs, r, &["status"]);
    // Deploying again replaces the pending deployment, never the booted one.
    step(
        &p,
        &ours,
        &theirs,
        r,
        &["deploy", "--karg=x=1", "testos/stable"],
    );
    let status = step(&p, &ours, &theirs, r, &["status"]);
    assert_eq!(status.matches("  testos ").count(), 1, "{status}");
    assert!(status.contains(&format!("* testos {c1}.0\n")), "{status}");
    step(
        &p,
        &ours,
        &theirs,
        r,
        &["deploy", "--retain-pending", "testos/stable"],
    );
    step(
        &p,
        &ours,
        &theirs,
        r,
        &["deploy", "--not-as-default", "testos/stable"],
    );
    let status = step(&p, &ours, &theirs, r, &["status"]);
    let booted_index = status
        .lines()
        .filter(|l| l.starts_with("  testos ") || l.starts_with("* testos "))
        .position(|l| l.starts_with("* "))
        .unwrap()
        .to_string();
    let err = step(&p, &ours, &theirs, r, &["undeploy", &booted_index]);
    assert!(
        err.contains(&format!(
            "Cannot undeploy currently booted deployment {booted_index}"
        )),
        "{err}"
    );
    // Defaults from the booted deployment: config-diff and set-origin.
    // Added entries come in directory order, which differs between two sysroots: both tools
    // must agree on one, and on the set across the two.
    let diff = ours.admin(r, &["config-diff"]).ok();
    assert_eq!(diff, ours.admin(Tool::Ostree, &["config-diff"]).ok());
    assert!(
        diff.starts_with("M    app.conf\nD    remove-me.conf\nA    "),
        "{diff}"
    );
    let sorted = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    let expected = theirs.admin(Tool::Ostree, &["config-diff"]).ok();
    assert_eq!(sorted(&diff), sorted(&expected));
    // A new remote: a booted system adds it to /etc/ostree/remotes.d, and reads it there.
    step(
        &p,
        &ours,
        &theirs,
        r,
        &[
            "set-origin",
            "myremote",
            "http://example.com/repo",
            "next",
            "--set=gpg-verify=false",
        ],
    );
    let conf = ours.deployment.join("etc/ostree/remotes.d/myremote.conf");
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "[remote \"myremote\"]\nurl=http://example.com/repo\ngpg-verify=false\n"
    );
    let repo = "--repo=/ostree/repo";
    for args in [
        vec![repo, "remote", "list", "-u"],
        vec![repo, "remote", "show-url", "myremote"],
    ] {
        let expected = theirs.run(Tool::Ostree, &args).ok();
        assert_eq!(ours.run(r, &args).ok(), expected, "{args:?}");
        assert_eq!(ours.run(Tool::Ostree, &args).ok(), expected, "{args:?}");
    }
    let origin = std::fs::read_to_string(
        p.ours
            .join(format!("ostree/deploy/testos/deploy/{c1}.0.origin")),
    )
    .unwrap();
    assert_eq!(origin, "[origin]\nrefspec=myremote:next\n");
    let add = [repo, "remote", "add", "myremote", "http://other"];
    let err = ours.run(r, &add).fails();
    assert_eq!(err, theirs.run(Tool::Ostree, &add).fails());
    assert!(err.contains("/etc/ostree/remotes.d/myremote.conf"), "{err}");
    // Deleted with its file; the repository config never had it.
    let delete = [repo, "remote", "delete", "myremote"];
    theirs.run(Tool::Ostree, &delete).ok();
    ours.run(r, &delete).ok();
    assert!(!conf.exists());
    p.assert_same("after remote delete");
    step(&p, &ours, &theirs, r, &["cleanup"]);
    // Each tool undeploys what is not booted.
    step(&p, &ours, &theirs, Tool::Ostree, &["undeploy", "0"]);
    step(&p, &ours, &theirs, r, &["undeploy", "0"]);
}

#[test]
fn rollback_from_a_booted_deployment() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let Some(_boot) = Mounted::tmpfs(&sysroot.join("boot")) else {
        return;
    };
    let c1 = commit(&sysroot, Tool::Rostree, &bootable_tree(base), "1.0", 1);
    deploy_stable(&sysroot).ok();
    let b = Booted {
        deployment: deployment_dir(&sysroot, &c1, 0),
        sysroot: sysroot.clone(),
    };
    let order = || -> Vec<String> {
        let status = b.admin(Tool::Ostree, &["status"]).ok();
        status
            .lines()
            .filter(|l| l.contains(" testos "))
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    let err = b.admin(Tool::Rostree, &["rollback"]).fails();
    assert_eq!(err, "error: No rollback deployment found for OS 'testos'\n");
    // A pending deployment before the booted one: rollback makes the booted one first again.
    write(&base.join("tree-v1/usr/share/doc/readme"), b"v2\n");
    let c2 = commit(&sysroot, Tool::Rostree, &base.join("tree-v1"), "2.0", 2);
    b.admin(Tool::Ostree, &["deploy", "testos/stable"]).ok();
    assert_eq!(
        order(),
        [
            format!("  testos {c2}.0 (pending)"),
            format!("* testos {c1}.0")
        ]
    );
    let out = b.admin(Tool::Rostree, &["rollback"]).ok();
    assert!(
        out.ends_with(&format!("Moving '{c1}.0' to be first deployment\n")),
        "{out}"
    );
    assert_eq!(
        order(),
        [
            format!("* testos {c1}.0"),
            format!("  testos {c2}.0 (rollback)")
        ]
    );
    // Booted first: rollback makes the rollback deployment first.
    b.admin(Tool::Rostree, &["rollback"]).ok();
    assert_eq!(
        order(),
        [
            format!("  testos {c2}.0 (pending)"),
            format!("* testos {c1}.0")
        ]
    );
}
