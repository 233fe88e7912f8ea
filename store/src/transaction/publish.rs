//! Publishing written objects: `syncfs`, then a `linkat` of each anonymous object file to its
//! name in `objects/xx/`.
//!
//! Two background threads form a pipeline, so the disk writes back continuously while the
//! writers go on:
//! - the *syncer* takes every object written so far, runs `syncfs`, and hands the batch on;
//!   it starts again at once with whatever was written meanwhile, so batches grow and shrink
//!   with the disk's pace (a group commit) and the disk never waits for a batch to fill;
//! - the *linker* gives each synced object its name, overlapping the next `syncfs`.
//!
//! An object is thus visible only once its bytes are durable. Open files are bounded: a
//! writer waits while the process holds more written objects than its fd budget allows.

use crate::fsutil;
use crate::{Error, IoContext, Result};
use parking_lot::{Condvar, Mutex};
use rayon::prelude::*;
use rustix::fs::AtFlags;
use rustix::io::Errno;
use std::collections::VecDeque;
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

    /// Its folder under `objects/`: the checksum's first two hex digits.
    fn dir(&self) -> &str {
        &self.rel[..2]
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

/// The fewest objects worth a `syncfs` of their own (each also commits the journal and
/// flushes the disk's cache), and the longest fewer wait.
const MIN_BATCH: usize = 256;
const MAX_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// Where and how objects are published.
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
    /// Makes everything written so far durable.
    fn sync(&self) -> Result<()> {
        if self.fsync {
            rustix::fs::syncfs(&self.stage).at(&self.stage_path)?;
        }
        Ok(())
    }

    /// Names every object of a synced `batch`; `parallel` when nobody else needs the cores.
    fn link(
        &self,
        dirs: &mut ObjectDirs,
        batch: &mut [PendingObject],
        parallel: bool,
    ) -> Result<()> {
        batch.sort_unstable_by(|a, b| a.rel.cmp(&b.rel));
        let runs: Vec<&[PendingObject]> = batch.chunk_by(|a, b| a.dir() == b.dir()).collect();
        if dirs.keep {
            for run in &runs {
                dirs.open(self, run[0].dir())?;
            }
        }
        let dirs = &*dirs;
        let link_run = |run: &&[PendingObject]| -> Result<()> {
            let name = run[0].dir();
            let opened;
            let dir = match dirs.cached(name) {
                Some(fd) => fd,
                None => {
                    opened = self.open_objects_dir(name)?;
                    &opened
                }
            };
            for p in *run {
                link_anonymous(&p.fd, dir, &p.rel[3..]).at(self.objdir.join(&p.rel))?;
            }
            Ok(())
        };
        if parallel {
            runs.par_iter().try_for_each(link_run)
        } else {
            runs.iter().try_for_each(link_run)
        }
    }

    /// Opens `objects/<name>`, creating it if needed.
    fn open_objects_dir(&self, name: &str) -> Result<OwnedFd> {
        fsutil::ensure_open_dir_at(&self.objects, name, &self.objdir.join(name))
    }
}

/// The `objects/xx` folders, kept open for the transaction's life where the fd budget has
/// room for all 256; else each batch opens the ones it needs, one at a time.
struct ObjectDirs {
    fds: Vec<Option<OwnedFd>>,
    keep: bool,
}

impl ObjectDirs {
    fn new(budget: usize) -> ObjectDirs {
        ObjectDirs {
            fds: (0..256).map(|_| None).collect(),
            keep: budget >= 8 * 256,
        }
    }

    fn index(name: &str) -> usize {
        usize::from_str_radix(name, 16).unwrap_or(0) & 0xff
    }

    fn open(&mut self, target: &Target, name: &str) -> Result<()> {
        let slot = &mut self.fds[Self::index(name)];
        if slot.is_none() {
            *slot = Some(target.open_objects_dir(name)?);
        }
        Ok(())
    }

    fn cached(&self, name: &str) -> Option<&OwnedFd> {
        self.fds[Self::index(name)].as_ref()
    }
}

/// What the writers and the two threads share.
#[derive(Default)]
struct State {
    /// Written, not yet in a `syncfs`.
    written: Vec<PendingObject>,
    /// Synced, waiting for their names.
    synced: VecDeque<Vec<PendingObject>>,
    /// Objects handed to the publisher, and those published (or dropped by a failure).
    pushed: u64,
    published: u64,
    /// The first failure, reported to the next caller, and its text for later callers: the
    /// caller given the error may lose a race to report it, so theirs must say what failed.
    error: Option<Error>,
    failure: Option<String>,
    /// How many flushes wait: sync what there is at once, and link with every core. A count,
    /// so the first flush to finish does not take the urgency from another still waiting.
    flushing: usize,
    /// The syncer has stopped: the linker stops once `synced` is empty.
    syncer_done: bool,
    closing: bool,
}

impl State {
    fn fail(&mut self, e: Error) {
        if self.failure.is_none() {
            self.failure = Some(e.to_string());
            self.error = Some(e);
        }
    }

    fn failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The failure to report, if any.
    fn check(&mut self, stage_path: &std::path::Path) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if let Some(why) = &self.failure {
            return Err(Error::io(
                stage_path,
                std::io::Error::other(format!("an object failed to publish earlier: {why}")),
            ));
        }
        Ok(())
    }
}

struct Shared {
    target: Target,
    /// Written objects the process may hold open.
    budget: usize,
    /// Objects worth a `syncfs`: [`MIN_BATCH`], or less where the budget is small.
    min_batch: usize,
    state: Mutex<State>,
    /// Something was written (the syncer waits on it), synced (the linker), published (a
    /// flush or a writer over budget). Separate, so a write wakes only the syncer.
    written: Condvar,
    synced: Condvar,
    published: Condvar,
}

impl Shared {
    fn wake_all(&self) {
        self.written.notify_all();
        self.synced.notify_all();
        self.published.notify_all();
    }

    /// The syncer thread: `syncfs` whatever was written, hand it to the linker, repeat.
    fn syncer(&self) {
        let mut state = self.state.lock();
        loop {
            // Wait for a batch worth a `syncfs`, unless a flush needs what there is, or
            // it has waited long enough (a slow pull).
            let since = std::time::Instant::now();
            while !state.closing
                && (state.written.is_empty()
                    || (state.written.len() < self.min_batch
                        && state.flushing == 0
                        && since.elapsed() < MAX_DELAY))
            {
                self.written.wait_for(&mut state, MAX_DELAY);
            }
            if state.closing {
                break;
            }
            let batch = std::mem::take(&mut state.written);
            drop(state);
            let result = self.target.sync();
            state = self.state.lock();
            match result {
                Ok(()) => {
                    state.synced.push_back(batch);
                    self.synced.notify_one();
                }
                Err(e) => {
                    state.published += batch.len() as u64;
                    state.fail(e);
                    self.published.notify_all();
                }
            }
        }
        state.syncer_done = true;
        self.synced.notify_one();
    }

    /// The linker thread: names the synced batches in order.
    fn linker(&self) {
        let mut dirs = ObjectDirs::new(self.budget);
        let mut state = self.state.lock();
        loop {
            while state.synced.is_empty() && !state.syncer_done {
                self.synced.wait(&mut state);
            }
            let Some(mut batch) = state.synced.pop_front() else {
                break;
            };
            let parallel = state.flushing > 0;
            // A transaction dropped without commit does not need its objects. After a failure
            // the transaction fails too; and a later `syncfs` can succeed although an earlier
            // one lost some of this batch's bytes (an error is reported once), so link nothing.
            let abandon = state.closing || state.failed();
            drop(state);
            let result = if abandon {
                Ok(())
            } else {
                self.target.link(&mut dirs, &mut batch, parallel)
            };
            let n = batch.len() as u64;
            drop(batch);
            state = self.state.lock();
            state.published += n;
            if let Err(e) = result {
                state.fail(e);
            }
            self.published.notify_all();
        }
    }
}

/// Queues written anonymous objects and publishes them in the background.
pub(super) struct Publisher {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
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
        let target = Target {
            stage: stage.try_clone().at(&stage_path)?,
            stage_path,
            objects: objects.try_clone().at(&objdir)?,
            objdir,
            fsync,
        };
        let budget = open_budget();
        Ok(Publisher {
            shared: Arc::new(Shared {
                target,
                budget,
                min_batch: MIN_BATCH.min(budget / 2).max(1),
                state: Mutex::new(State::default()),
                written: Condvar::new(),
                synced: Condvar::new(),
                published: Condvar::new(),
            }),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// Starts the two threads on first use: a transaction that writes nothing costs none.
    fn start(&self) -> Result<()> {
        let mut threads = self.threads.lock();
        if !threads.is_empty() {
            return Ok(());
        }
        for (name, run) in [
            ("rostree-sync", Shared::syncer as fn(&Shared)),
            ("rostree-link", Shared::linker as fn(&Shared)),
        ] {
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || run(&shared));
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // A syncer without its linker would never publish: fail every later
                    // call rather than let a flush wait forever.
                    let e = Error::io(&self.shared.target.stage_path, e);
                    self.shared.state.lock().failure = Some(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Queues a written object for publication; waits while the process holds too many.
    pub(super) fn push(&self, object: PendingObject) -> Result<()> {
        self.start()?;
        let shared = &self.shared;
        let mut state = shared.state.lock();
        state.check(&shared.target.stage_path)?;
        // Other transactions of this process may hold the budget: wait only while some of
        // the open objects are ours, since only those are sure to be released.
        while OPEN_PENDING.load(Ordering::Relaxed) > shared.budget
            && state.pushed > state.published
            && !state.failed()
        {
            shared.published.wait(&mut state);
        }
        state.written.push(object);
        state.pushed += 1;
        if state.written.len() == shared.min_batch {
            shared.written.notify_one();
        }
        Ok(())
    }

    /// Publishes everything queued so far, waiting until it is durable and visible.
    pub(super) fn flush(&self) -> Result<()> {
        let shared = &self.shared;
        let mut state = shared.state.lock();
        let goal = state.pushed;
        state.flushing += 1;
        shared.written.notify_one();
        while state.published < goal && !state.failed() {
            shared.published.wait(&mut state);
        }
        state.flushing -= 1;
        state.check(&shared.target.stage_path)
    }

    /// How many written objects wait for a `syncfs`.
    pub(super) fn pending_len(&self) -> usize {
        self.shared.state.lock().written.len()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shared.state.lock().closing = true;
        self.shared.wake_all();
        for handle in self.threads.get_mut().drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::{Mode, OFlags};

    /// A fresh folder under the temporary folder, removed when dropped.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An anonymous file in `stage` to publish as `objects/<rel>`; None without `O_TMPFILE`.
    fn object(stage: &OwnedFd, rel: &str) -> Option<PendingObject> {
        let flags = OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(stage, ".", flags, Mode::from_raw_mode(0o644)).ok()?;
        Some(PendingObject::new(rel.to_string(), fd))
    }

    #[test]
    fn a_failed_link_fails_the_flush_and_every_later_call() {
        let unique = format!(
            "rostree-publish-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let root = Scratch(std::env::temp_dir().join(unique));
        let (stage_path, objdir) = (root.0.join("stage"), root.0.join("objects"));
        std::fs::create_dir_all(&stage_path).unwrap();
        std::fs::create_dir_all(&objdir).unwrap();
        // A file where the folder `objects/aa` belongs: nothing can be linked into it.
        std::fs::write(objdir.join("aa"), b"").unwrap();
        let stage = fsutil::open_dir(&stage_path).unwrap();
        let objects = fsutil::open_dir(&objdir).unwrap();
        let publisher =
            Publisher::new(&stage, stage_path, &objects, objdir.clone(), false).unwrap();
        let Some(good) = object(&stage, "bb/good.file") else {
            eprintln!("skipped: the temporary folder's filesystem has no O_TMPFILE");
            return;
        };
        publisher.push(good).unwrap();
        publisher.flush().unwrap();
        assert!(objdir.join("bb/good.file").is_file());

        publisher
            .push(object(&stage, "aa/bad.file").unwrap())
            .unwrap();
        let err = publisher.flush().unwrap_err().to_string();
        assert!(err.contains("objects/aa"), "{err}");
        // Later callers are told what failed, too.
        let later = publisher.push(object(&stage, "cc/later.file").unwrap());
        let err = later.err().unwrap().to_string();
        assert!(err.contains("objects/aa"), "{err}");
        let err = publisher.flush().unwrap_err().to_string();
        assert!(err.contains("objects/aa"), "{err}");
        assert!(!objdir.join("cc").exists());
    }
}
