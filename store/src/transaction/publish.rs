//! Publishing written objects: `syncfs`, then a `linkat` of each anonymous object file to its
//! name in `objects/xx/`.
//!
//! Objects are published in batches on a background thread while the writers go on, so the
//! disk writes back the early objects while later ones are still being hashed and written,
//! and the final publish has only the tail left to sync. At most one batch is in flight; a
//! writer that fills the next batch waits for it, which bounds the open files.

use crate::fsutil;
use crate::{IoContext, Result};
use parking_lot::Mutex;
use rayon::prelude::*;
use rustix::fs::AtFlags;
use rustix::io::Errno;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

/// Gives an anonymous (`O_TMPFILE`) file the name `name` in `dir`: `AT_EMPTY_PATH` (allowed
/// for the file's opener since Linux 6.10, and for root), else through `/proc`, which needs
/// no capability. An existing object of that name (another writer was faster) is the same
/// object: fine.
pub(super) fn link_anonymous(fd: &OwnedFd, dir: &OwnedFd, name: &str) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    match rustix::fs::linkat(fd, "", dir, name, AtFlags::EMPTY_PATH) {
        Ok(()) | Err(Errno::EXIST) => return Ok(()),
        Err(Errno::NOENT) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let proc = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match rustix::fs::linkat(
        rustix::fs::CWD,
        proc.as_str(),
        dir,
        name,
        AtFlags::SYMLINK_FOLLOW,
    ) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A written anonymous object file and its path under `objects/`.
pub(super) struct PendingObject {
    rel: String,
    fd: OwnedFd,
}

/// Written objects held open by every transaction of this process: the fd limit is the
/// process's, so the budget is shared.
static OPEN_PENDING: AtomicUsize = AtomicUsize::new(0);

impl PendingObject {
    pub(super) fn new(rel: String, fd: OwnedFd) -> PendingObject {
        OPEN_PENDING.fetch_add(1, Ordering::Relaxed);
        PendingObject { rel, fd }
    }
}

impl Drop for PendingObject {
    fn drop(&mut self) {
        OPEN_PENDING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many written objects may stay open awaiting publication: the fd limit less room for
/// the sources being read and everything else the process holds (1024 fds, or half the
/// limit when it is small).
fn open_budget() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1 << 20);
    soft.saturating_sub(1024).max(soft / 2).clamp(16, 1 << 16) as usize
}

/// Objects per background batch: small enough that the disk starts early and that a
/// batch waiting, one in flight and the one filling stay within the fd budget.
const MAX_BATCH: usize = 4096;

/// Where and how a batch is published; shared with the background thread.
struct Target {
    /// The staging directory: `syncfs` on it syncs the repository's filesystem.
    stage: OwnedFd,
    stage_path: PathBuf,
    /// `objects/` and its path, for errors.
    objects: OwnedFd,
    objdir: PathBuf,
    fsync: bool,
}

impl Target {
    /// Makes `batch` durable, then visible (the new names are synced by the caller).
    fn publish(&self, batch: Vec<PendingObject>, parallel: bool) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.fsync {
            rustix::fs::syncfs(&self.stage).at(&self.stage_path)?;
        }
        let mut by_dir: HashMap<&str, Vec<&PendingObject>> = HashMap::new();
        for p in &batch {
            by_dir.entry(&p.rel[..2]).or_default().push(p);
        }
        let link_dir = |(name, objects): (&&str, &Vec<&PendingObject>)| -> Result<()> {
            let path = self.objdir.join(name);
            fsutil::ensure_dir_at(&self.objects, name, &path)?;
            let dest = fsutil::open_dir_at(&self.objects, name, &path)?;
            for p in objects {
                link_anonymous(&p.fd, &dest, &p.rel[3..]).at(self.objdir.join(&p.rel))?;
            }
            Ok(())
        };
        // The final publish has both cores to itself; a background batch stays on its own
        // thread so it never takes the writers' workers.
        if parallel {
            by_dir.par_iter().try_for_each(link_dir)
        } else {
            by_dir.iter().try_for_each(link_dir)
        }
    }
}

/// Queues written anonymous objects and publishes them in batches.
pub(super) struct Publisher {
    target: Arc<Target>,
    /// Objects written and not yet handed to a batch.
    pending: Mutex<Vec<PendingObject>>,
    /// The batch being published in the background.
    in_flight: Mutex<Option<JoinHandle<Result<()>>>>,
    batch: usize,
    budget: usize,
}

impl Publisher {
    /// A publisher into `objects` for objects written in `stage` (both duplicated).
    pub(super) fn new(
        stage: &OwnedFd,
        stage_path: PathBuf,
        objects: &OwnedFd,
        objdir: PathBuf,
        fsync: bool,
    ) -> Result<Publisher> {
        let budget = open_budget();
        let target = Target {
            stage: stage.try_clone().at(&stage_path)?,
            stage_path,
            objects: objects.try_clone().at(&objdir)?,
            objdir,
            fsync,
        };
        Ok(Publisher {
            target: Arc::new(target),
            pending: Mutex::new(Vec::new()),
            in_flight: Mutex::new(None),
            batch: (budget / 4).clamp(16, MAX_BATCH),
            budget,
        })
    }

    /// Queues a written object; a full batch starts publishing in the background.
    pub(super) fn push(&self, object: PendingObject) -> Result<()> {
        let mut pending = self.pending.lock();
        pending.push(object);
        // Other transactions of this process may hold most of the fd budget: then publish
        // in small batches rather than run out of descriptors.
        let crowded = OPEN_PENDING.load(Ordering::Relaxed) >= self.budget;
        if pending.len() < self.batch && !(crowded && pending.len() >= 16) {
            return Ok(());
        }
        let batch = std::mem::take(&mut *pending);
        drop(pending);
        let mut in_flight = self.in_flight.lock();
        Self::finish_in_flight(&mut in_flight)?;
        let target = Arc::clone(&self.target);
        let handle = std::thread::Builder::new()
            .name("rostree-publish".into())
            .spawn(move || target.publish(batch, false))
            .at(&self.target.stage_path)?;
        *in_flight = Some(handle);
        Ok(())
    }

    /// Waits for the background batch, if any.
    fn finish_in_flight(in_flight: &mut Option<JoinHandle<Result<()>>>) -> Result<()> {
        match in_flight.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }

    /// Publishes everything queued so far, waiting until it is durable and visible.
    pub(super) fn flush(&self) -> Result<()> {
        let mut in_flight = self.in_flight.lock();
        Self::finish_in_flight(&mut in_flight)?;
        let batch = std::mem::take(&mut *self.pending.lock());
        self.target.publish(batch, true)
    }

    /// How many written objects wait to be handed to a batch.
    pub(super) fn pending_len(&self) -> usize {
        self.pending.lock().len()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // A batch in flight holds files of this transaction: let it end before they close.
        if let Some(handle) = self.in_flight.get_mut().take() {
            let _ = handle.join();
        }
    }
}
