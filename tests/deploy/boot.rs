//! Kernels and boot loaders: legacy and initramfs-less layouts, devicetree files and `dtb/`
//! directories, `/boot` on its own filesystem, and boot loaders rostree does not configure.

use crate::common::{chmod, rostree_bin, sh, write};
use crate::support::*;
use std::os::unix::fs::MetadataExt;

#[test]
fn boot_on_its_own_filesystem_gets_copies_like_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (p, _) = pair(base, Tool::Rostree);
    // Declared after `scratch`: unmounted before the directory goes.
    let Some(_ours) = Mounted::tmpfs(&p.ours.join("boot")) else {
        return;
    };
    let Some(_theirs) = Mounted::tmpfs(&p.theirs.join("boot")) else {
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
fn boot_loaders_other_than_bls_are_refused_before_any_change() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
    let base = scratch.path();
    let (sysroot, _) = deployed_sysroot(base, &os_tree(base, "v1"));
    let sr = sysroot_arg(&sysroot);
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
    let repo = repo_arg(&sysroot);
    sh(
        rostree_bin(),
        &[repo.as_str(), "config", "set", "sysroot.bootloader", "none"],
    )
    .ok();
    deploy_stable(&sysroot).ok();
    assert_eq!(oracle_status(&sysroot).matches("  testos ").count(), 2);
}

#[test]
fn legacy_and_initramfs_less_kernel_layouts_match_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
fn a_dtb_directory_is_checksummed_and_copied_like_ostree() {
    let Some(scratch) = admin_scratch() else {
        return;
    };
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
    let sr = sysroot_arg(&p.ours);
    for _ in 0..2 {
        admin(
            Tool::Rostree,
            &["deploy", &sr, "--os=testos", "--retain", &c2],
        )
        .ok();
    }
    assert_eq!(oracle_status(&p.ours).matches("  testos ").count(), 4);
}
