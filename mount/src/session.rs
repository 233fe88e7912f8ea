//! Mounting and unmounting: options, the FUSE session, signals, daemon hand-off.

use crate::error::MountError;
use crate::fs::{RostreeFs, Tuning, repository_root};
use crate::inode::Kind;
use fuser::{Config, MountOption, Session, SessionACL};
use nix::sys::signal::{SigSet, Signal};
use rostree_store::{ObjectId, Repo};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to show at the mountpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// One commit's tree.
    Commit(ObjectId),
    /// The whole repository: `refs/`, `commits/`, `history/`.
    Repository,
}

/// The `-o` options rostree accepts, as `mount.fuse` spells them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountOptions {
    acl: SessionACL,
    auto_unmount: bool,
    suid: bool,
    exec: bool,
    atime: bool,
    sync: bool,
    dirsync: bool,
    fsname: String,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            acl: SessionACL::Owner,
            auto_unmount: false,
            suid: false,
            exec: true,
            atime: false,
            sync: false,
            dirsync: false,
            fsname: "rostree".into(),
        }
    }
}

impl MountOptions {
    /// Adds a comma-separated list (`allow_other,suid`). `ro`, `nodev` and
    /// `default_permissions` always hold; `rw` is refused.
    pub fn parse(&mut self, list: &str) -> Result<(), MountError> {
        let mut next = self.clone();
        next.apply(list)?;
        *self = next;
        Ok(())
    }

    fn apply(&mut self, list: &str) -> Result<(), MountError> {
        for opt in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            match opt {
                "allow_other" => self.acl = SessionACL::All,
                "allow_root" => self.acl = SessionACL::RootAndOwner,
                "auto_unmount" => self.auto_unmount = true,
                "ro" | "nodev" | "default_permissions" | "kernel_cache" | "nonempty" => {}
                "suid" => self.suid = true,
                "nosuid" => self.suid = false,
                "exec" => self.exec = true,
                "noexec" => self.exec = false,
                "atime" => self.atime = true,
                "noatime" => self.atime = false,
                "sync" => self.sync = true,
                "async" => self.sync = false,
                "dirsync" => self.dirsync = true,
                _ => match opt.split_once('=') {
                    Some(("fsname", v)) if !v.is_empty() && !v.contains(char::is_whitespace) => {
                        self.fsname = v.to_string()
                    }
                    _ => return Err(MountError::BadOption(opt.to_string())),
                },
            }
        }
        if self.auto_unmount && self.acl == SessionACL::Owner {
            return Err(MountError::BadOption(
                "auto_unmount (needs allow_other or allow_root)".into(),
            ));
        }
        Ok(())
    }

    fn mount_options(&self) -> Vec<MountOption> {
        let flag = |on: bool, yes: MountOption, no: MountOption| if on { yes } else { no };
        let mut out = vec![
            MountOption::RO,
            MountOption::NoDev,
            MountOption::DefaultPermissions,
            MountOption::FSName(self.fsname.clone()),
            MountOption::Subtype("rostree".into()),
            flag(self.suid, MountOption::Suid, MountOption::NoSuid),
            flag(self.exec, MountOption::Exec, MountOption::NoExec),
            flag(self.atime, MountOption::Atime, MountOption::NoAtime),
            flag(self.sync, MountOption::Sync, MountOption::Async),
        ];
        if self.dirsync {
            out.push(MountOption::DirSync);
        }
        if self.auto_unmount {
            out.push(MountOption::AutoUnmount);
        }
        out
    }
}

/// What to mount and how.
#[derive(Clone, Debug)]
pub struct MountSpec {
    /// What the mountpoint shows.
    pub root: Root,
    /// Check bare content objects against their checksum on first open.
    pub verify: bool,
    /// Let the kernel read uncompressed content straight from the object files (FUSE
    /// passthrough, where the kernel and privileges allow).
    pub passthrough: bool,
    /// Answer `stat` from commits' persistent metadata caches (`tmp/cache/rostree/meta/`),
    /// building them in the background when missing.
    pub meta_cache: bool,
    /// FUSE dispatch threads.
    pub threads: usize,
    /// `-o` options.
    pub options: MountOptions,
}

impl MountSpec {
    /// A spec with default options and a thread count fit for this machine.
    pub fn new(root: Root) -> Self {
        let threads = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 2)
            .clamp(4, 16);
        MountSpec {
            root,
            verify: false,
            passthrough: true,
            meta_cache: true,
            threads,
            options: MountOptions::default(),
        }
    }
}

fn check_mountpoint(mountpoint: &Path) -> Result<(), MountError> {
    match std::fs::metadata(mountpoint) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(MountError::NotADirectory(mountpoint.to_path_buf())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(MountError::MountpointMissing(mountpoint.to_path_buf()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            Err(MountError::MountpointMissing(mountpoint.to_path_buf()))
        }
        Err(e) => Err(MountError::Io {
            path: mountpoint.to_path_buf(),
            source: e,
        }),
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn mount_failed(mountpoint: &Path, e: std::io::Error) -> MountError {
    let path = mountpoint.to_path_buf();
    if e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(libc::EPERM)
        // Not root, and no fusermount3 to mount for us.
        || (e.kind() == std::io::ErrorKind::NotFound && !is_root())
    {
        return MountError::NotPermitted(path);
    }
    MountError::Io { path, source: e }
}

/// The signals that end a foreground mount.
fn termination_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(s);
    }
    set
}

/// Mounts `spec` at `mountpoint` and serves it until it is unmounted (by `umount`, or by
/// SIGINT, SIGTERM, SIGHUP or SIGQUIT, which unmount it). `on_ready` runs once the mount is
/// live, before requests are served (they queue meanwhile).
pub fn mount(
    repo: Repo,
    mountpoint: &Path,
    spec: &MountSpec,
    on_ready: impl FnOnce(),
) -> Result<(), MountError> {
    check_mountpoint(mountpoint)?;
    let rw = rustix::fs::Access::READ_OK | rustix::fs::Access::WRITE_OK;
    match rustix::fs::access("/dev/fuse", rw) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT) => return Err(MountError::NoFuseDevice),
        Err(_) => return Err(MountError::FuseDeviceDenied),
    }
    let root = match spec.root {
        Root::Commit(id) => {
            let commit = repo.read_commit(&id)?;
            Kind::Tree {
                tree: commit.root_tree,
                meta: commit.root_meta,
            }
        }
        Root::Repository => repository_root(),
    };
    let tuning = Tuning {
        verify_bare: spec.verify,
        passthrough: spec.passthrough,
        meta_cache: spec.meta_cache,
        ..Tuning::default()
    };
    // Block the termination signals before any thread starts (threads inherit the mask), so
    // that one thread waits for them and unmounts instead of the default action killing us.
    let signals = termination_signals();
    signals.thread_block().map_err(|e| MountError::Io {
        path: mountpoint.to_path_buf(),
        source: e.into(),
    })?;
    let fs = RostreeFs::new(repo, root, tuning);
    if let Root::Commit(id) = spec.root {
        fs.show_commit(&id);
    }

    let mut config = Config::default();
    config.mount_options = spec.options.mount_options();
    config.acl = spec.options.acl;
    config.n_threads = Some(spec.threads.max(1));
    config.clone_fd = true;
    let session = Session::new(fs, mountpoint, &config).map_err(|e| mount_failed(mountpoint, e))?;
    let target = std::path::absolute(mountpoint).unwrap_or_else(|_| mountpoint.to_path_buf());
    std::thread::Builder::new()
        .name("rostree-signals".into())
        .spawn(move || {
            if signals.wait().is_ok() {
                if let Err(e) = unmount(&target, true) {
                    crate::error::log(format_args!("{e}"));
                }
                // Files still open keep a lazily detached mount alive: don't wait for them.
                std::thread::sleep(Duration::from_secs(2));
                std::process::exit(0);
            }
        })
        .map_err(|e| MountError::Io {
            path: mountpoint.to_path_buf(),
            source: e,
        })?;
    on_ready();
    session.run().map_err(|e| MountError::Io {
        path: mountpoint.to_path_buf(),
        source: e,
    })
}

/// For a mount run as a daemon: called once the mount is live, it points stderr at `log`
/// (or /dev/null), tells the waiting parent by writing `ready` on stdout, then points stdout
/// at /dev/null and leaves the working directory.
pub fn daemon_ready(log: Option<&Path>) {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null");
    let log = log.and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    if let Some(err) = log.or_else(|| null.as_ref().ok().and_then(|n| n.try_clone().ok())) {
        let _ = rustix::stdio::dup2_stderr(&err);
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    if let Ok(null) = &null {
        let _ = rustix::stdio::dup2_stdout(null);
    }
    let _ = std::env::set_current_dir("/");
}

/// Starts a new session, detached from the terminal (for daemons).
pub fn detach_from_terminal() {
    let _ = rustix::process::setsid();
}

/// One line of `/proc/self/mountinfo`: mount point and filesystem type.
fn mount_entry(line: &str) -> Option<(PathBuf, String)> {
    let (before, after) = line.split_once(" - ")?;
    let point = before.split(' ').nth(4)?;
    let fstype = after.split(' ').next()?;
    Some((PathBuf::from(unescape_mountinfo(point)), fstype.to_string()))
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An absolute path for `p` without resolving `p` itself (a dead FUSE mount can't be
/// stat'ed): its parent is resolved, its last component kept.
fn mount_path(p: &Path) -> PathBuf {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => parent
            .canonicalize()
            .map(|p| p.join(name))
            .unwrap_or(abs.clone()),
        _ => abs,
    }
}

/// Unmounts a FUSE filesystem (refusing anything else); `lazy` detaches it even while files
/// are open. Without the privilege, falls back to `fusermount3 -u`.
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<(), MountError> {
    let path = mount_path(mountpoint);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| MountError::Io {
        path: "/proc/self/mountinfo".into(),
        source: e,
    })?;
    let fstype = mounts
        .lines()
        .filter_map(mount_entry)
        .filter(|(p, _)| *p == path)
        .map(|(_, t)| t)
        .next_back();
    match fstype {
        Some(t) if t == "fuse" || t.starts_with("fuse.") => {}
        _ if std::fs::symlink_metadata(&path).is_err() => {
            return Err(MountError::MountpointMissing(mountpoint.to_path_buf()));
        }
        _ => return Err(MountError::NotMounted(mountpoint.to_path_buf())),
    }
    let flags = if lazy {
        rustix::mount::UnmountFlags::DETACH
    } else {
        rustix::mount::UnmountFlags::empty()
    };
    match rustix::mount::unmount(&path, flags) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::PERM) if !is_root() => fusermount_unmount(&path, lazy),
        Err(rustix::io::Errno::BUSY) => Err(MountError::Busy(mountpoint.to_path_buf())),
        Err(rustix::io::Errno::INVAL) => Err(MountError::NotMounted(mountpoint.to_path_buf())),
        Err(rustix::io::Errno::PERM) => Err(MountError::NotPermitted(mountpoint.to_path_buf())),
        Err(e) => Err(MountError::Io {
            path: mountpoint.to_path_buf(),
            source: e.into(),
        }),
    }
}

fn fusermount_unmount(path: &Path, lazy: bool) -> Result<(), MountError> {
    let mut last = None;
    for tool in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(tool);
        cmd.arg("-u").arg("-q");
        if lazy {
            cmd.arg("-z");
        }
        match cmd.arg("--").arg(path).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
                return Err(if msg.contains("busy") {
                    MountError::Busy(path.to_path_buf())
                } else {
                    MountError::NotPermitted(path.to_path_buf())
                });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(MountError::Io {
        path: path.to_path_buf(),
        source: last.unwrap_or_else(|| std::io::Error::other("fusermount3 not found")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_and_refuse() {
        let mut o = MountOptions::default();
        o.parse("allow_other,suid,ro,,noatime").unwrap();
        assert_eq!(o.acl, SessionACL::All);
        let opts = o.mount_options();
        assert!(opts.contains(&MountOption::RO));
        assert!(opts.contains(&MountOption::Suid));
        assert!(opts.contains(&MountOption::DefaultPermissions));
        let mut o = MountOptions::default();
        assert!(o.mount_options().contains(&MountOption::NoSuid));
        for bad in ["rw", "bogus", "fsname=", "uid=0"] {
            let err = MountOptions::default().parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid mount option"), "{err}");
        }
        assert!(o.parse("auto_unmount").is_err());
        o.parse("fsname=myrepo").unwrap();
        assert!(
            o.mount_options()
                .contains(&MountOption::FSName("myrepo".into()))
        );
    }

    #[test]
    fn mountinfo_lines() {
        let line = "36 35 0:52 / /tmp/a\\040b rw,nosuid - fuse rostree rw,user_id=0";
        assert_eq!(
            mount_entry(line),
            Some((PathBuf::from("/tmp/a b"), "fuse".to_string()))
        );
        assert_eq!(unescape_mountinfo("x\\134y\\012"), "x\\y\n");
        assert_eq!(unescape_mountinfo("tail\\04"), "tail\\04");
    }
}
