//! The repository lock, taken exactly as ostree 2022.7 takes it so both tools can share a repo:
//! an open-file-description (OFD) `fcntl` lock on `<repo>/.lock`, shared for transactions and
//! exclusive for prune, retried once a second up to `core.lock-timeout-secs` (default 30).

use crate::repo::Repo;
use crate::{Error, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::time::Duration;

/// Shared or exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// Many holders: transactions writing objects.
    Shared,
    /// One holder: prune, which deletes objects.
    Exclusive,
}

/// A held repository lock; released on drop (closing the descriptor releases an OFD lock).
#[derive(Debug)]
pub struct RepoLock {
    _fd: Option<OwnedFd>,
}

impl Repo {
    /// Takes the repo lock. Read-only repos and `core.locking=false` take none, like ostree.
    pub fn lock(&self, kind: LockKind) -> Result<RepoLock> {
        if self.config().get_bool("core", "locking").ok().flatten() == Some(false)
            || rustix::fs::accessat(
                &self.objects,
                ".",
                rustix::fs::Access::WRITE_OK,
                rustix::fs::AtFlags::empty(),
            )
            .is_err()
        {
            return Ok(RepoLock { _fd: None });
        }
        let path = self.path().join(".lock");
        let fd = rustix::fs::openat(
            &self.root,
            ".lock",
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o660),
        )
        .map_err(|e| Error::io(&path, std::io::Error::from(e)))?;
        let timeout: i64 = self
            .config()
            .get("core", "lock-timeout-secs")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(30);
        let (blocking, nonblocking) = match kind {
            LockKind::Shared => (
                FlockOperation::LockShared,
                FlockOperation::NonBlockingLockShared,
            ),
            LockKind::Exclusive => (
                FlockOperation::LockExclusive,
                FlockOperation::NonBlockingLockExclusive,
            ),
        };
        let what = match kind {
            LockKind::Shared => "shared",
            LockKind::Exclusive => "exclusive",
        };
        if timeout < 0 {
            rustix::fs::fcntl_lock(&fd, blocking)
                .map_err(|e| Error::Lock(format!("Locking repo {what} failed: {e}")))?;
            return Ok(RepoLock { _fd: Some(fd) });
        }
        let mut waited = 0;
        loop {
            match rustix::fs::fcntl_lock(&fd, nonblocking) {
                Ok(()) => return Ok(RepoLock { _fd: Some(fd) }),
                Err(Errno::AGAIN) | Err(Errno::ACCESS) if waited < timeout => {
                    std::thread::sleep(Duration::from_secs(1));
                    waited += 1;
                }
                Err(e) => return Err(Error::Lock(format!("Locking repo {what} failed: {e}"))),
            }
        }
    }
}
