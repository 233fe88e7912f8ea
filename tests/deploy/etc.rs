//! The 3-way `/etc` merge: local changes kept, the merge deployment untouched, ostree's
//! behaviour on odd changes, and no writes through symlinks of the new commit.

use crate::common::{chmod, set_xattr, sh, write};
use crate::support::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[test]
fn etc_merge_keeps_local_changes_and_leaves_the_old_deployment_alone() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (sysroot, c1) = deployed_sysroot(base, &os_tree(base, "v1"));
    let old = deployment_dir(&sysroot, &c1, 0);
    edit_etc(&old.join("etc"));
    let before = snapshot(&old);
    let c2 = commit(&sysroot, Tool::Rostree, &os_tree(base, "v2"), "2.0", 2);
    let out = deploy_stable(&sysroot).ok();
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
fn etc_merge_edge_cases_match_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
        set_xattr(&etc.join("sub/nested.conf"), "user.x", b"1"); // xattrs are ignored
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let v1 = os_tree(base, "v1");
    write(&v1.join("usr/etc/d/x"), b"x\n");
    let (sysroot, c1) = deployed_sysroot(base, &v1);
    let etc = deployment_dir(&sysroot, &c1, 0).join("etc");
    std::fs::remove_file(etc.join("d/x")).unwrap();
    write(&etc.join("d/new"), b"local\n");
    // The update turns /etc/d into a symlink to a directory of /usr.
    let v2 = os_tree(base, "v2");
    write(&v2.join("usr/share/victim/x"), b"x\n");
    std::os::unix::fs::symlink("../share/victim", v2.join("usr/etc/d")).unwrap();
    let c2 = commit(&sysroot, Tool::Rostree, &v2, "2.0", 2);
    let run = deploy_stable(&sysroot);
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
    oracle_fsck(&sysroot);
}
