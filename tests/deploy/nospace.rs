//! Running out of space or inodes: a deploy that hits ENOSPC (in the sysroot while checking
//! out or copying `/etc`, or in a small separate `/boot` while copying the kernel, the
//! initramfs or writing the entries) fails with one clear error line and leaves what boots as
//! it was; once room is made, `admin cleanup` removes what the failure left and the deploy
//! succeeds.

use crate::common::{rostree_bin, sh, write};
use crate::support::*;
use std::collections::BTreeMap;
use std::path::Path;

/// Bytes of each large file of the second tree, so free space can be set to run out in the
/// middle of one of them.
const BIG: usize = 64 * 1024;

#[test]
fn deploy_out_of_space_fails_clearly_and_keeps_what_boots() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let fs = base.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    // The sysroot's filesystem, then a small /boot of its own, as many systems have.
    let Some(_sysroot_fs) = Mounted::tmpfs_with(&fs, "size=32m") else {
        return;
    };
    let sysroot = new_sysroot(&fs, "sysroot", Tool::Rostree);
    let boot = sysroot.join("boot");
    let Some(_boot_fs) = Mounted::tmpfs_with(&boot, "size=4m") else {
        return;
    };
    let v2 = big_tree(base);
    let phases = [("sysroot", &fs, 2 * BIG), ("boot", &boot, 3 * BIG)];
    run_out_at_each_point(base, &sysroot, &v2, Resource::Bytes, &phases);
}

#[test]
fn deploy_out_of_inodes_fails_clearly_and_keeps_what_boots() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let fs = base.join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    // An ext4 sysroot (hardlinks take no inode there, unlike on tmpfs) with few inodes, and
    // a /boot of its own with few inodes.
    let Some(_sysroot_fs) = Mounted::ext4_image(&base.join("fs.img"), 64, Some(1024), &fs) else {
        return;
    };
    let sysroot = new_sysroot(&fs, "sysroot", Tool::Rostree);
    let boot = sysroot.join("boot");
    let Some(_boot_fs) = Mounted::tmpfs_with(&boot, "size=16m,nr_inodes=256") else {
        return;
    };
    let v2 = many_files_tree(base);
    let phases = [("sysroot", &fs, 400), ("boot", &boot, 100)];
    run_out_at_each_point(base, &sysroot, &v2, Resource::Inodes, &phases);
}

/// What a deploy runs out of.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Resource {
    /// Bytes: free space rises by a page per attempt.
    Bytes,
    /// Inodes: free inodes rise by one per attempt.
    Inodes,
}

impl Resource {
    fn filler(self, dir: &Path, free: usize) -> Filler {
        match self {
            Resource::Bytes => Filler::leaving(dir, free),
            Resource::Inodes => Filler::leaving_inodes(dir, free as u64),
        }
    }

    fn step(self) -> usize {
        match self {
            Resource::Bytes => 4096,
            Resource::Inodes => 1,
        }
    }
}

/// Deploys `v2` (over `os_tree` v1, deployed first) with `resource` nearly exhausted in each
/// phase's directory: from none left up to `max_free`, until a deploy gets through. Each
/// failure must be one clear error line naming the file, that leaves what boots, both tools'
/// status and both fscks as they were, and whose leftovers `admin cleanup` removes; then,
/// with room again, the deploy succeeds.
fn run_out_at_each_point(
    base: &Path,
    sysroot: &Path,
    v2: &Path,
    resource: Resource,
    phases: &[(&str, &std::path::PathBuf, usize)],
) {
    let sr = sysroot_arg(sysroot);
    commit(sysroot, Tool::Rostree, &os_tree(base, "v1"), "1.0", 1);
    deploy_stable(sysroot).ok();
    commit(sysroot, Tool::Rostree, v2, "2.0", 2);

    let mut failures = std::collections::BTreeSet::new();
    for &(where_, dir, max_free) in phases {
        let mut free = 0;
        loop {
            assert!(
                free <= max_free,
                "{where_}: no deploy got through with {max_free} {resource:?} free"
            );
            let before = boot_state(sysroot);
            let status = oracle_status(sysroot);
            let filler = resource.filler(dir, free);
            let run = admin(
                Tool::Rostree,
                &["deploy", &sr, "--os=testos", "--retain", "testos/stable"],
            );
            let switched = !run.out.status.success()
                && run
                    .stderr()
                    .contains("Deployment complete, but cleanup after it failed");
            if switched {
                // Out of space just after the switch: the new list boots, complete.
                println!("{where_} {free}: {}", run.stderr().trim());
                assert_eq!(oracle_status(sysroot).matches("  testos ").count(), 2);
                assert!(oracle_status(sysroot).contains("Version: 2.0"));
            }
            if run.out.status.success() || switched {
                // Back to one deployment (and v1's kernel alone in /boot) for the next phase.
                drop(filler);
                admin(Tool::Rostree, &["undeploy", &sr, "0"]).ok();
                admin(Tool::Rostree, &["cleanup", &sr]).ok();
                assert!(free > 0, "{where_}: a deploy with nothing left succeeded");
                break;
            }
            let err = run.fails();
            assert_eq!(err.lines().count(), 1, "{where_} {free}: one line:\n{err}");
            assert!(
                err.starts_with("error: ") && err.contains("No space left on device"),
                "{where_} {free}: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(
                err.contains(sysroot.to_str().unwrap()),
                "{where_} {free}: the error names the file: {err}"
            );
            let neutral_err = err.replace(sysroot.to_str().unwrap(), "SYSROOT");
            println!("{where_} {free}: {}", neutral_err.trim());
            failures.insert(format!("{where_}: {}", neutral_err.trim()));
            assert_eq!(oracle_status(sysroot), status, "{where_} {free}: {err}");
            let sr_status = admin(Tool::Rostree, &["status", &sr]).ok();
            assert_eq!(sr_status, status, "{where_} {free}");
            boots_as_before(&before, sysroot, &format!("{where_} {free}: {err}"));
            oracle_fsck(sysroot);
            sh(rostree_bin(), &[repo_arg(sysroot).as_str(), "fsck", "-q"]).ok();
            drop(filler);
            admin(Tool::Rostree, &["cleanup", &sr]).ok();
            no_leftovers(sysroot);
            free += resource.step();
        }
    }
    for f in &failures {
        println!("{f}");
    }
    // Room again: the deploy succeeds.
    deploy_stable(sysroot).ok();
    admin(Tool::Rostree, &["cleanup", &sr]).ok();
    no_leftovers(sysroot);
    assert!(oracle_status(sysroot).contains("2.0"));
}

/// Everything that booted is as it was; what the failure left besides (the other
/// bootversion's entries, a kernel directory) is only for `admin cleanup` to remove: no
/// deployment directory, no temporary file.
fn boots_as_before(before: &BTreeMap<String, String>, sysroot: &Path, what: &str) {
    let after: BTreeMap<String, String> = boot_state(sysroot)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("boot/filler"))
        .collect();
    for (k, v) in before {
        assert_eq!(after.get(k), Some(v), "{what}: {k} changed");
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        assert!(
            !k.starts_with("ostree/deploy") && !k.contains(".tmp"),
            "{what}: left {k}"
        );
    }
}

/// The second tree: a large `/etc` file, kernel and initramfs, each [`BIG`] bytes.
fn big_tree(base: &Path) -> std::path::PathBuf {
    let tree = os_tree(base, "v2");
    let big = |seed: u8| -> Vec<u8> { (0..BIG).map(|i| (i as u8).wrapping_mul(seed)).collect() };
    write(&tree.join("usr/etc/big.conf"), &big(3));
    let modules = tree.join(format!("usr/lib/modules/{KVER}"));
    write(&modules.join("vmlinuz"), &big(5));
    write(&modules.join("initramfs.img"), &big(7));
    tree
}

/// The second tree of the inode test: many files and directories in `/usr/etc` (copied into
/// `/etc`, an inode each) and in `/usr`.
fn many_files_tree(base: &Path) -> std::path::PathBuf {
    let tree = os_tree(base, "v2");
    for i in 0..40 {
        write(
            &tree.join(format!("usr/etc/many/d{}/f{i}", i % 8)),
            format!("{i}\n").as_bytes(),
        );
        write(
            &tree.join(format!("usr/share/many/d{}/f{i}", i % 8)),
            format!("{i}\n").as_bytes(),
        );
    }
    tree
}

/// Every deployment directory (and origin) is one a bootlink points at, and every `/boot`
/// kernel directory one an entry boots: nothing a failed deploy left survives cleanup.
fn no_leftovers(sysroot: &Path) {
    let entries = sysroot.join("boot/loader/entries");
    let mut kernel_dirs = std::collections::BTreeSet::new();
    let mut deployments = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&entries).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines() {
            if let Some(linux) = line.strip_prefix("linux ") {
                let dir = Path::new(linux.trim()).parent().unwrap();
                kernel_dirs.insert(dir.file_name().unwrap().to_string_lossy().into_owned());
            }
            if let Some(opts) = line.strip_prefix("options ") {
                let link = opts
                    .split(' ')
                    .find_map(|a| a.strip_prefix("ostree="))
                    .unwrap();
                let target =
                    std::fs::canonicalize(sysroot.join(link.trim_start_matches('/'))).unwrap();
                deployments.insert(target.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let names = |dir: &Path| -> std::collections::BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut expected: std::collections::BTreeSet<String> = deployments.clone();
    expected.extend(deployments.iter().map(|d| format!("{d}.origin")));
    assert_eq!(
        names(&sysroot.join("ostree/deploy/testos/deploy")),
        expected
    );
    assert_eq!(names(&sysroot.join("boot/ostree")), kernel_dirs);
}
