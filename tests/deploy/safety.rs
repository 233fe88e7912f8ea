//! Failure and concurrency: bad input changes nothing that boots, kill -9 never leaves a
//! half-written boot configuration, and the sysroot lock is ostree's.

use crate::common::{rostree_bin, sh, write};
use crate::support::*;
use std::path::Path;

#[test]
fn bad_input_fails_clearly_and_changes_nothing_that_boots() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let tree = os_tree(base, "v1");
    let (sysroot, _) = deployed_sysroot(base, &tree);
    let sr = sysroot_arg(&sysroot);
    let before = boot_state(&sysroot);
    let repo = repo_arg(&sysroot);
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
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let sr = sysroot_arg(&sysroot);
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
    deploy_stable(&sysroot).ok();
    let full = start.elapsed();
    let mut deployed = 1;
    let mut interrupted = 0;
    for step in 0..12u32 {
        let delay = full * step / 10;
        let before = oracle_status(&sysroot);
        let deploy = ["deploy", &sr, "--os=testos", "--retain", "testos/stable"];
        let finished = run_killed_after(&deploy, delay);
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
        oracle_fsck(&sysroot);
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
        let finished = run_killed_after(&["undeploy", &sr, &last], delay);
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
        oracle_fsck(&sysroot);
        if n == 1 {
            break;
        }
    }
    println!("{interrupted} undeploys killed before they switched the boot entries");
}

/// Runs `rostree admin ARGS...` and kills it with SIGKILL after `delay`; returns whether it
/// finished first (and succeeded).
fn run_killed_after(args: &[&str], delay: std::time::Duration) -> bool {
    let mut child = std::process::Command::new(rostree_bin())
        .arg("admin")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let _ = child.kill();
    child.wait().unwrap().success()
}

/// `/boot/loader` and `/ostree/boot.N` point at complete directories; every boot entry's
/// kernel and initramfs exist, and its `ostree=` bootlink leads to a complete deployment
/// (`/usr`, `/etc` and its origin); and `ostree admin status` reads it all.
fn entries_are_complete(sysroot: &Path) {
    let loader = std::fs::read_link(sysroot.join("boot/loader")).unwrap();
    let bootversion = loader.to_str().unwrap().strip_prefix("loader.").unwrap();
    let entries = sysroot.join("boot/loader/entries");
    assert!(entries.is_dir(), "{} is no directory", entries.display());
    let bootlinks = sysroot.join(format!("ostree/boot.{bootversion}"));
    assert!(
        bootlinks.is_dir(),
        "{} is no directory",
        bootlinks.display()
    );
    for e in std::fs::read_dir(&entries).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        for key in ["linux ", "initrd "] {
            let line = text.lines().find(|l| l.starts_with(key)).unwrap();
            let file = sysroot
                .join("boot")
                .join(line[key.len()..].trim_start_matches('/'));
            assert!(file.is_file(), "{} missing", file.display());
        }
        let options = text
            .lines()
            .find_map(|l| l.strip_prefix("options "))
            .unwrap();
        let bootlink = options
            .split(' ')
            .find_map(|a| a.strip_prefix("ostree=/"))
            .unwrap();
        let link = sysroot.join(bootlink);
        let deployment =
            std::fs::canonicalize(&link).unwrap_or_else(|err| panic!("{}: {err}", link.display()));
        for part in ["usr/bin/hello", "etc/app.conf"] {
            assert!(
                deployment.join(part).is_file(),
                "{}: no {part}",
                deployment.display()
            );
        }
        let origin = std::path::PathBuf::from(format!("{}.origin", deployment.display()));
        assert!(origin.is_file(), "{} missing", origin.display());
    }
    oracle_status(sysroot);
}

#[test]
fn the_sysroot_lock_is_shared_with_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let sysroot = new_sysroot(scratch.path(), "ours", Tool::Rostree);
    let sr = sysroot_arg(&sysroot);
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
