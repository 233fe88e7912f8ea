//! A real operating system: Debian's minbase userland (see `userland`) with Debian's kernel
//! and a real initramfs (see `bootfiles`), committed, deployed, and run: the deployment's own
//! `/bin/sh` prints its `/etc/os-release` in a chroot with the stateroot's `/var`
//! bind-mounted.

use crate::bootfiles::{Kernel, gzip_newc_names, is_bzimage, make_initramfs, real_kernel};
use crate::common::mount::{is_mounted, s};
use crate::common::{oracle, sh};
use crate::support::*;
use crate::userland::{Userland, real_userland};
use std::path::{Path, PathBuf};

#[test]
fn a_real_os_deploys_and_runs_its_own_shell_in_a_chroot() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let userland = real_userland(base);
    let os_release = std::fs::read_to_string(userland.root.join("usr/lib/os-release")).unwrap();
    if userland.kind.starts_with("debian-") {
        assert!(os_release.contains("\nID=debian\n"), "{os_release}");
    }
    let kernel = real_kernel(base);
    let tree = as_ostree_tree(&userland, &kernel, base);
    let files = count_files(&tree);
    println!(
        "{} with kernel {}: {files} files and directories",
        userland.kind, kernel.kver
    );

    // Deployed by each tool on its own sysroot: the same commit, files and boot entries.
    let p = Pair {
        ours: new_sysroot(base, "ours", Tool::Rostree),
        theirs: new_sysroot(base, "theirs", Tool::Ostree),
    };
    let csum = commit(&p.ours, Tool::Rostree, &tree, "1.0", 1);
    assert_eq!(
        commit(&p.theirs, Tool::Ostree, &tree, "1.0", 1),
        csum,
        "ostree commits the same tree to the same checksum"
    );
    let deploy = [
        "deploy",
        "--os=testos",
        "--karg=root=LABEL=root",
        "testos/stable",
    ];
    p.step(Tool::Rostree, &deploy);
    let sysroot = &p.ours;
    let ours = admin(Tool::Rostree, &["status", &sysroot_arg(sysroot)]).ok();
    assert_eq!(ours, oracle_status(sysroot), "admin status");
    assert!(ours.starts_with(&format!("  testos {csum}.0\n")), "{ours}");
    let fsck = sh(&oracle(), &[repo_arg(sysroot).as_str(), "fsck"]).ok();
    assert!(fsck.contains("no errors found"), "{fsck}");

    // The boot entry names the OS and boots its kernel and initramfs, installed in the same
    // `/boot/ostree/<os>-<bootcsum>/` as ostree installs them on the twin sysroot.
    let entry_of = |sysroot: &Path| {
        std::fs::read_to_string(sysroot.join("boot/loader/entries/ostree-1-testos.conf")).unwrap()
    };
    let entry = entry_of(sysroot);
    let pretty = os_release_field(&os_release, "PRETTY_NAME");
    assert!(
        entry.starts_with(&format!("title {pretty} 1.0 (ostree:0)\n")),
        "{entry}"
    );
    let boot_file = |entry: &str, key: &str| -> String {
        let line = entry.lines().find_map(|l| l.strip_prefix(key));
        line.unwrap_or_else(|| panic!("no {key} in:\n{entry}"))
            .trim_start_matches('/')
            .to_string()
    };
    let linux = boot_file(&entry, "linux ");
    let initrd = boot_file(&entry, "initrd ");
    let theirs = entry_of(&p.theirs);
    assert_eq!(linux, boot_file(&theirs, "linux "), "the same bootcsum");
    assert_eq!(initrd, boot_file(&theirs, "initrd "), "the same bootcsum");
    let kernel_dir = Path::new(&linux).parent().unwrap();
    let bootcsum = kernel_dir.file_name().unwrap().to_string_lossy();
    let bootcsum = bootcsum.strip_prefix("testos-").unwrap();
    assert!(
        bootcsum.len() == 64 && bootcsum.bytes().all(|b| b.is_ascii_hexdigit()),
        "{linux}"
    );
    assert_eq!(
        linux,
        format!("ostree/testos-{bootcsum}/vmlinuz-{}", kernel.kver)
    );
    assert_eq!(
        initrd,
        format!("ostree/testos-{bootcsum}/initramfs-{}.img", kernel.kver)
    );
    let image = std::fs::read(sysroot.join("boot").join(&linux)).unwrap();
    assert_eq!(image, std::fs::read(kernel.dir.join("vmlinuz")).unwrap());
    if kernel.is_real {
        assert!(is_bzimage(&image), "{linux} is not a bzImage");
    } else {
        println!("a stand-in kernel: no bzImage to check");
    }
    let names = gzip_newc_names(&sysroot.join("boot").join(&initrd)).unwrap();
    assert!(names.iter().any(|n| n == "init"), "{names:?}");

    // The deployment runs: its own shell and cat read its merged /etc, and /var is the
    // stateroot's.
    let deployment = deployment_dir(sysroot, &csum, 0);
    let var = deployment.join("var");
    {
        let stateroot_var = sysroot.join("ostree/deploy/testos/var");
        let Some(_var) = Mounted::bind(&stateroot_var, &var) else {
            return;
        };
        let chroot = |script: &str| sh("chroot", &[s(&deployment), "/bin/sh", "-c", script]).ok();
        assert_eq!(chroot("cat /etc/os-release"), os_release);
        chroot("echo written in the chroot > /var/tmp/realos");
        assert_eq!(
            std::fs::read_to_string(stateroot_var.join("tmp/realos")).unwrap(),
            "written in the chroot\n"
        );
    }
    assert!(!is_mounted(&var), "{} still mounted", var.display());
}

/// The userland as ostree wants a commit: `/etc` moved to `/usr/etc`, no device nodes in
/// `/dev` (ostree commits none) and an empty `/var` (a deployment's `/var` is its
/// stateroot's), plus the kernel and an initramfs in `usr/lib/modules/<kver>/`.
fn as_ostree_tree(userland: &Userland, kernel: &Kernel, base: &Path) -> PathBuf {
    let root = &userland.root;
    std::fs::rename(root.join("etc"), root.join("usr/etc")).unwrap();
    for dir in ["dev", "var"] {
        std::fs::remove_dir_all(root.join(dir)).unwrap();
        std::fs::create_dir(root.join(dir)).unwrap();
    }
    let modules = root.join("usr/lib/modules");
    std::fs::create_dir_all(&modules).unwrap();
    let dir = modules.join(&kernel.kver);
    sh("cp", &["-a", s(&kernel.dir), s(&dir)]).ok();
    make_initramfs(base, &dir.join("initramfs.img"));
    root.clone()
}

/// A field of an os-release file, unquoted.
fn os_release_field(text: &str, name: &str) -> String {
    let value = text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in os-release:\n{text}"));
    value.trim_matches('"').to_string()
}

/// Entries below `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            1 + if is_dir { count_files(&e.path()) } else { 0 }
        })
        .sum()
}
