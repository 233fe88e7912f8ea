//! Creating a sysroot (`admin init-fs`) and a stateroot (`admin os-init`), and the sysroot lock.

use super::dirs::mkdir_p;
use anyhow::{Context, bail};
use rostree_store::{Repo, RepoMode};
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `admin init-fs PATH`: the top-level directories of a root filesystem, then `ostree/repo`
/// (bare) and `ostree/deploy`. PATH must exist. With `modern`, only `boot` and `ostree`.
pub fn init_fs(path: &Path, modern: bool) -> anyhow::Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("opendir({}): Not a directory", path.display()),
        Err(e) => {
            return Err(e).with_context(|| format!("opendir({})", path.display()));
        }
    }
    mkdir_p(&path.join("boot"), 0o755)?;
    if !modern {
        for dir in ["boot", "dev", "home", "proc", "run", "sys"] {
            mkdir_p(&path.join(dir), 0o755)?;
        }
        mkdir_p(&path.join("root"), 0o700)?;
        let tmp = path.join("tmp");
        mkdir_p(&tmp, 0o1777)?;
        // The umask clears the sticky and world bits; /tmp needs them.
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))
            .with_context(|| format!("chmod: {}", tmp.display()))?;
    }
    ensure_initialized(path)
}

/// `ostree/repo` (a bare repository) and `ostree/deploy`, if missing.
pub fn ensure_initialized(path: &Path) -> anyhow::Result<()> {
    mkdir_p(&path.join("ostree/repo"), 0o755)?;
    mkdir_p(&path.join("ostree/deploy"), 0o755)?;
    Repo::init(&path.join("ostree/repo"), RepoMode::Bare)?;
    Ok(())
}

/// A stateroot name is one directory name: it must not lead out of `ostree/deploy`.
pub fn is_valid_osname(osname: &str) -> bool {
    !(osname.is_empty() || osname.contains('/') || osname == "." || osname == "..")
}

/// `admin os-init NAME`: the stateroot `ostree/deploy/NAME` with its shared `/var` skeleton.
/// Fails if it exists, as ostree does.
pub fn init_osname(sysroot: &Path, osname: &str) -> anyhow::Result<()> {
    if !is_valid_osname(osname) {
        bail!("Invalid OS name '{osname}'");
    }
    let rel = format!("ostree/deploy/{osname}");
    let dir = sysroot.join(&rel);
    let mk = |p: &Path, what: &str, mode: u32| -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(p)
            .with_context(|| format!("Creating {what}"))
    };
    mk(&dir, &rel, 0o777)?;
    mk(&dir.join("var"), "var", 0o777)?;
    mk(&dir.join("var/tmp"), "var/tmp", 0o777)?;
    std::fs::set_permissions(dir.join("var/tmp"), std::fs::Permissions::from_mode(0o1777))
        .context("fchmod var/tmp")?;
    mk(&dir.join("var/lib"), "var/lib", 0o777)?;
    // Early boot (journald flushing logs) needs it before tmpfiles.d runs.
    mk(&dir.join("var/log"), "var/log", 0o755)?;
    std::os::unix::fs::symlink("../run", dir.join("var/run")).context("Symlinking var/run")?;
    std::os::unix::fs::symlink("../run/lock", dir.join("var/lock"))
        .context("Symlinking var/lock")?;
    let touch = sysroot.join("ostree/deploy");
    rustix::fs::utimensat(
        rustix::fs::CWD,
        &touch,
        &now_timestamps(),
        rustix::fs::AtFlags::empty(),
    )
    .context("futimens")?;
    Ok(())
}

fn now_timestamps() -> rustix::fs::Timestamps {
    let now = rustix::fs::Timespec {
        tv_sec: 0,
        tv_nsec: rustix::fs::UTIME_NOW,
    };
    rustix::fs::Timestamps {
        last_access: now,
        last_modification: now,
    }
}

/// The exclusive sysroot lock (`ostree/lock`), the one ostree's admin commands take, so the two
/// tools never change deployments at the same time. Released (and the file removed, as
/// libglnx does for an exclusive holder) on drop.
pub struct SysrootLock {
    fd: Option<OwnedFd>,
    path: PathBuf,
}

impl SysrootLock {
    /// Takes the lock, waiting for another holder if needed.
    pub fn acquire(sysroot: &Path) -> anyhow::Result<SysrootLock> {
        let path = sysroot.join("ostree/lock");
        let fd = rustix::fs::open(
            &path,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .with_context(|| format!("Acquiring sysroot lock: {}", path.display()))?;
        if rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            println!("Waiting for sysroot lock...");
            rustix::fs::fcntl_lock(&fd, FlockOperation::LockExclusive)
                .with_context(|| format!("Acquiring sysroot lock: {}", path.display()))?;
        }
        Ok(SysrootLock { fd: Some(fd), path })
    }
}

impl Drop for SysrootLock {
    fn drop(&mut self) {
        // Still holding the lock: nobody else can be using the file, so it can go.
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != ErrorKind::NotFound
        {
            eprintln!("warning: removing {}: {e}", self.path.display());
        }
        drop(self.fd.take());
    }
}
