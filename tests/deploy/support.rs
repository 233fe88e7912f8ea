//! Helpers of the `admin` tests: the two tools, sysroots made by each, a small bootable OS
//! tree, and snapshots of sysroots to compare.

pub use crate::common::mount::{Filler, Mounted};
use crate::common::{Run, chmod, is_root, oracle, rostree_bin, sh, tempdir, write};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The kernel version of the test OS.
pub const KVER: &str = "6.1.0-test";

/// Which tool runs a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// The oracle, `/usr/bin/ostree`.
    Ostree,
    /// The binary under test.
    Rostree,
}

impl Tool {
    pub fn bin(self) -> String {
        match self {
            Tool::Ostree => oracle(),
            Tool::Rostree => rostree_bin().to_string(),
        }
    }
}

/// Runs `TOOL admin ARGS...`.
pub fn admin(tool: Tool, args: &[&str]) -> Run {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    sh(&tool.bin(), &all)
}

/// Deployments are immutable directories: a plain `rm -rf` of the temporary directory fails
/// on them, so every test holds its sysroots in one of these.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch { dir: tempdir() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        clear_immutable_flags(self.dir.path());
    }
}

/// Clears the immutable flag of every deployment below `base`.
pub fn clear_immutable_flags(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if is_immutable(&p) == Some(true) {
                set_mutable(&p);
            }
            // Deployments live at most at sysroot/ostree/deploy/<os>/deploy/<d>.
            if p.components().count() < base.components().count() + 8 {
                clear_immutable_flags(&p);
            }
        }
    }
}

/// Clears a directory's immutable flag (best effort: this runs while dropping).
pub fn set_mutable(dir: &Path) {
    if let Ok(fd) = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    ) && let Ok(flags) = rustix::fs::ioctl_getflags(&fd)
    {
        let _ = rustix::fs::ioctl_setflags(&fd, flags - rustix::fs::IFlags::IMMUTABLE);
    }
}

/// The immutable flag of a directory (`None` where the filesystem has no flags).
pub fn is_immutable(dir: &Path) -> Option<bool> {
    let fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let flags = rustix::fs::ioctl_getflags(&fd).ok()?;
    Some(flags.contains(rustix::fs::IFlags::IMMUTABLE))
}

/// How every `admin` test starts: a [`Scratch`] directory, or `None` (saying why) where the
/// test cannot run: deployments keep file owners, which needs root (CI is root).
pub fn admin_scratch() -> Option<Scratch> {
    if !is_root() {
        eprintln!("skipping: admin deploy tests need root (deployments keep file owners)");
        return None;
    }
    Some(Scratch::new())
}

/// `--sysroot=PATH`.
pub fn sysroot_arg(sysroot: &Path) -> String {
    format!("--sysroot={}", sysroot.display())
}

/// `--repo=PATH` of a sysroot's repository.
pub fn repo_arg(sysroot: &Path) -> String {
    format!("--repo={}", sysroot.join("ostree/repo").display())
}

/// `ostree fsck` of a sysroot's repository, asserting it finds nothing wrong.
pub fn oracle_fsck(sysroot: &Path) {
    sh(&oracle(), &[repo_arg(sysroot).as_str(), "fsck", "-q"]).ok();
}

/// `rostree admin deploy --os=testos testos/stable` on a sysroot.
pub fn deploy_stable(sysroot: &Path) -> Run {
    let sr = sysroot_arg(sysroot);
    admin(
        Tool::Rostree,
        &["deploy", &sr, "--os=testos", "testos/stable"],
    )
}

/// A sysroot made by rostree with `tree` committed (version 1.0) and deployed; returns the
/// sysroot and the commit.
pub fn deployed_sysroot(base: &Path, tree: &Path) -> (PathBuf, String) {
    let sysroot = new_sysroot(base, "ours", Tool::Rostree);
    let csum = commit(&sysroot, Tool::Rostree, tree, "1.0", 1);
    deploy_stable(&sysroot).ok();
    (sysroot, csum)
}

/// A small bootable OS tree: binaries, `/usr/etc` defaults, a kernel and an initramfs.
pub fn os_tree(base: &Path, variant: &str) -> PathBuf {
    let root = base.join(format!("tree-{variant}"));
    write(&root.join("usr/bin/hello"), b"#!/bin/sh\necho hello\n");
    chmod(&root.join("usr/bin/hello"), 0o755);
    write(
        &root.join("usr/lib/os-release"),
        b"NAME=TestOS\nID=testos\nPRETTY_NAME=\"Test OS\"\n",
    );
    std::fs::create_dir_all(root.join("usr/etc")).unwrap();
    std::os::unix::fs::symlink("../lib/os-release", root.join("usr/etc/os-release")).unwrap();
    write(
        &root.join("usr/etc/app.conf"),
        format!("default {variant}\n").as_bytes(),
    );
    write(&root.join("usr/etc/remove-me.conf"), b"to be removed\n");
    write(
        &root.join("usr/etc/keep.conf"),
        format!("keep {variant}\n").as_bytes(),
    );
    write(&root.join("usr/etc/sub/nested.conf"), b"nested\n");
    write(&root.join("usr/etc/secret"), b"secret\n");
    chmod(&root.join("usr/etc/secret"), 0o600);
    let modules = root.join(format!("usr/lib/modules/{KVER}"));
    write(
        &modules.join("vmlinuz"),
        format!("KERNEL {variant}\n").as_bytes(),
    );
    write(&modules.join("initramfs.img"), b"INITRAMFS\n");
    write(&root.join("usr/share/doc/readme"), b"docs\n");
    root
}

/// A sysroot made by `tool` (init-fs, os-init `testos`); returns its path.
pub fn new_sysroot(base: &Path, name: &str, tool: Tool) -> PathBuf {
    let sysroot = base.join(name);
    std::fs::create_dir_all(&sysroot).unwrap();
    admin(tool, &["init-fs", sysroot.to_str().unwrap()]).ok();
    let out = admin(tool, &["os-init", &sysroot_arg(&sysroot), "testos"]).ok();
    assert_eq!(out, "ostree/deploy/testos initialized as OSTree root\n");
    sysroot
}

/// Commits `tree` as `testos/stable` into the sysroot's repo with `tool`, at a fixed time
/// so both tools' commits have the same checksum.
pub fn commit(sysroot: &Path, tool: Tool, tree: &Path, version: &str, day: u32) -> String {
    let repo = repo_arg(sysroot);
    let version = format!("--add-metadata-string=version={version}");
    let ts = format!("--timestamp=2024-01-{day:02} 00:00:00");
    let tree = tree.to_str().unwrap();
    let args = [
        repo.as_str(),
        "commit",
        "-b",
        "testos/stable",
        "-s",
        "release",
        &version,
        &ts,
        tree,
    ];
    sh(&tool.bin(), &args).ok().trim().to_string()
}

/// Everything compared about a sysroot: every path (objects aside) with type, mode, owner,
/// link count, bytes or link target, and the immutable flag of deployment roots.
pub fn snapshot(sysroot: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(sysroot, sysroot, &mut out);
    out
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        if rel == "ostree/repo/objects" || rel == "ostree/repo/.lock" {
            continue;
        }
        let m = std::fs::symlink_metadata(&p).unwrap();
        let mut desc = format!(
            "mode={:o} uid={} gid={} nlink={}",
            m.mode(),
            m.uid(),
            m.gid(),
            if m.is_dir() { 0 } else { m.nlink() }
        );
        if m.file_type().is_symlink() {
            desc.push_str(&format!(
                " -> {}",
                std::fs::read_link(&p).unwrap().display()
            ));
        } else if m.is_file() {
            desc.push_str(&file_contents(&std::fs::read(&p).unwrap()));
        } else if m.is_dir() {
            if let Some(true) = is_immutable(&p) {
                desc.push_str(" immutable");
            }
            out.insert(rel, desc);
            walk(base, &p, out);
            continue;
        }
        out.insert(rel, desc);
    }
}

/// A file's bytes in a snapshot: small files (configuration, boot entries, origins) as text,
/// so a diff shows them; larger ones as their SHA-256, which keeps snapshots of real
/// operating systems quick to take and compare.
fn file_contents(bytes: &[u8]) -> String {
    use sha2::Digest;
    if bytes.len() <= 4096 {
        return format!(" {:?}", String::from_utf8_lossy(bytes));
    }
    let digest = sha2::Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(" {} bytes, sha256 {hex}", bytes.len())
}

/// Lists differences between two snapshots.
pub fn snapshot_diff(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => diffs.push(format!("only in ostree's: {k} {v}")),
            Some(w) if w != v => diffs.push(format!("{k}:\n  ostree:  {v}\n  rostree: {w}")),
            _ => {}
        }
    }
    for (k, v) in b {
        if !a.contains_key(k) {
            diffs.push(format!("only in rostree's: {k} {v}"));
        }
    }
    diffs
}

/// stdout and stderr of a run, with the sysroot's path made neutral.
pub fn neutral(run: &Run, sysroot: &Path) -> String {
    let s = format!(
        "{}{}rc={}",
        run.stdout(),
        run.stderr(),
        run.out.status.success()
    );
    s.replace(sysroot.to_str().unwrap(), "SYSROOT")
}

/// `ostree admin status` of a sysroot, asserting success.
pub fn oracle_status(sysroot: &Path) -> String {
    admin(Tool::Ostree, &["status", &sysroot_arg(sysroot)]).ok()
}

/// `ostree refs` of the sysroot's repository, sorted.
pub fn refs(sysroot: &Path) -> Vec<String> {
    let mut v: Vec<String> = sh(&oracle(), &[repo_arg(sysroot).as_str(), "refs"])
        .ok()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

/// The deployment directory with this serial (there is one commit per test step).
pub fn deployment_dir(sysroot: &Path, csum: &str, serial: u32) -> PathBuf {
    sysroot.join(format!("ostree/deploy/testos/deploy/{csum}.{serial}"))
}

/// Local changes an admin makes to a deployment's /etc.
pub fn edit_etc(etc: &Path) {
    write(&etc.join("app.conf"), b"locally modified\n");
    std::fs::remove_file(etc.join("remove-me.conf")).unwrap();
    write(&etc.join("local.conf"), b"local addition\n");
    chmod(&etc.join("local.conf"), 0o640);
    write(&etc.join("localdir/deep/file"), b"deep local\n");
    std::os::unix::fs::symlink("app.conf", etc.join("local-link")).unwrap();
}

/// One step of a scenario: the same admin command on both sysroots.
pub struct Pair {
    /// Our sysroot.
    pub ours: PathBuf,
    /// The oracle's sysroot.
    pub theirs: PathBuf,
}

impl Pair {
    /// Runs `args` (with `--sysroot`) with `ours_tool` on our sysroot and ostree on the
    /// oracle's; asserts identical output and files.
    pub fn step(&self, ours_tool: Tool, args: &[&str]) -> String {
        let run_on = |tool: Tool, sysroot: &Path| {
            let sr = sysroot_arg(sysroot);
            let mut all: Vec<&str> = args.to_vec();
            all.push(&sr);
            let r = admin(tool, &all);
            neutral(&r, sysroot)
        };
        let theirs = run_on(Tool::Ostree, &self.theirs);
        let ours = run_on(ours_tool, &self.ours);
        assert_eq!(ours, theirs, "admin {args:?}: output differs");
        self.assert_same(&format!("after admin {args:?}"));
        ours
    }

    /// Asserts both sysroots are the same, as files and as ostree and rostree see them.
    pub fn assert_same(&self, when: &str) {
        let diffs = snapshot_diff(&snapshot(&self.theirs), &snapshot(&self.ours));
        assert!(
            diffs.is_empty(),
            "{when}: sysroots differ:\n{}",
            diffs.join("\n")
        );
        let theirs = oracle_status(&self.theirs);
        assert_eq!(
            oracle_status(&self.ours),
            theirs,
            "{when}: ostree admin status"
        );
        let sr = sysroot_arg(&self.theirs);
        let ours_on_theirs = admin(Tool::Rostree, &["status", &sr]).ok();
        assert_eq!(
            ours_on_theirs, theirs,
            "{when}: our status of ostree's sysroot"
        );
        assert_eq!(refs(&self.ours), refs(&self.theirs), "{when}: refs");
    }
}

/// Two sysroots with the same commit: `ours` made by rostree (or `first` tool), `theirs` by
/// ostree. Returns the pair, the commit and the test OS tree's base.
pub fn pair(base: &Path, first: Tool) -> (Pair, String) {
    let tree = os_tree(base, "v1");
    let ours = new_sysroot(base, "ours", first);
    let theirs = new_sysroot(base, "theirs", Tool::Ostree);
    let c1 = commit(&ours, first, &tree, "1.0", 1);
    let c2 = commit(&theirs, Tool::Ostree, &tree, "1.0", 1);
    assert_eq!(
        c1, c2,
        "both tools commit the test tree to the same checksum"
    );
    (Pair { ours, theirs }, c1)
}

/// What boots: every entry, bootlink and deployment, with contents.
pub fn boot_state(sysroot: &Path) -> BTreeMap<String, String> {
    snapshot(sysroot)
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("boot") || k.starts_with("ostree/boot") || k.starts_with("ostree/deploy")
        })
        .collect()
}
