//! Commits' persistent metadata caches (`rostree_store::meta_cache`) as the mount uses them:
//! `stat` of a file is answered from the cache of a commit being shown, without opening its
//! object.
//!
//! A commit is activated when it is mounted or its root is shown in a whole-repository mount;
//! its cache is loaded (one sequential read) when a file's metadata is first needed, not
//! when mounting, so the mount stays live at once. A missing or refused cache is rebuilt by
//! one low-priority background thread, for the next mounts (this one goes on reading objects:
//! the kernel and the mount's own caches already hold what it has read). At most
//! [`MAX_COMMITS`] caches of [`LOADED_BUDGET`] bytes in all are held.
//!
//! The cache answers `stat` only: an object missing or corrupt on disk still stats as the
//! cache says, and gives EIO (and a log line naming it) when opened.

use crate::error::log;
use parking_lot::Mutex;
use rostree_store::format::FileHeader;
use rostree_store::meta_cache::MetaCache;
use rostree_store::{ObjectId, Repo};
use std::collections::{HashSet, VecDeque};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};

/// Commits whose caches are held at once.
pub(crate) const MAX_COMMITS: usize = 8;
/// Bytes of caches held at most (a 100,000-file commit's is about 6.4 MB).
pub(crate) const LOADED_BUDGET: usize = 128 << 20;
/// The builder's niceness: it yields the CPU to whoever walks the mount.
const BUILDER_NICE: i32 = 19;

/// One activated commit; its cache is loaded once, on first need (`None`: there is none).
struct Slot {
    commit: ObjectId,
    cache: OnceLock<Option<MetaCache>>,
}

/// The caches of the commits a mount shows.
pub(crate) struct CommitCaches {
    repo: Arc<Repo>,
    enabled: bool,
    /// Most recently activated first.
    slots: Mutex<VecDeque<Arc<Slot>>>,
    /// The builder thread's queue, once started.
    builder: Mutex<Option<Sender<ObjectId>>>,
    /// Commits whose cache this mount asked to build (each at most once).
    requested: Mutex<HashSet<ObjectId>>,
}

impl CommitCaches {
    /// No commit active yet; with `enabled` false, caches are neither read nor written.
    pub(crate) fn new(repo: Arc<Repo>, enabled: bool) -> Self {
        CommitCaches {
            repo,
            enabled,
            slots: Mutex::new(VecDeque::new()),
            builder: Mutex::new(None),
            requested: Mutex::new(HashSet::new()),
        }
    }

    /// Commit `commit` is shown: its cache (loaded on first need) answers `stat` of files.
    pub(crate) fn activate(&self, commit: &ObjectId) {
        if !self.enabled {
            return;
        }
        let mut slots = self.slots.lock();
        if slots.front().is_some_and(|s| s.commit == *commit) {
            return;
        }
        let slot = match slots.iter().position(|s| s.commit == *commit) {
            Some(i) => slots.remove(i).expect("a position in range"),
            None => Arc::new(Slot {
                commit: *commit,
                cache: OnceLock::new(),
            }),
        };
        slots.push_front(slot);
        slots.truncate(MAX_COMMITS);
    }

    /// Object `id`'s header and size, if an active commit's cache has them.
    pub(crate) fn get(&self, id: &ObjectId) -> Option<(FileHeader, u64)> {
        let slots: Vec<Arc<Slot>> = self.slots.lock().iter().cloned().collect();
        slots.iter().find_map(|slot| {
            let loaded = slot.cache.get_or_init(|| self.load(&slot.commit));
            loaded.as_ref().and_then(|c| c.get(id))
        })
    }

    /// Reads `commit`'s cache; asks for it to be built when there is none or it is refused.
    fn load(&self, commit: &ObjectId) -> Option<MetaCache> {
        match self.repo.load_meta_cache(commit, LOADED_BUDGET as u64) {
            Ok(Some(cache)) => {
                self.trim(cache.byte_len());
                Some(cache)
            }
            Ok(None) => {
                self.request_build(commit);
                None
            }
            Err(e) => {
                log(format_args!("{e}; rebuilding it"));
                self.request_build(commit);
                None
            }
        }
    }

    /// Drops the least recently activated caches until `incoming` more bytes fit.
    fn trim(&self, incoming: usize) {
        let mut slots = self.slots.lock();
        let held = |s: &Slot| {
            s.cache
                .get()
                .and_then(Option::as_ref)
                .map_or(0, MetaCache::byte_len)
        };
        let mut total: usize = slots.iter().map(|s| held(s)).sum::<usize>() + incoming;
        while total > LOADED_BUDGET && slots.len() > 1 {
            if let Some(dropped) = slots.pop_back() {
                total -= held(&dropped);
            }
        }
    }

    /// Queues `commit`'s cache for the builder thread (started on the first request).
    fn request_build(&self, commit: &ObjectId) {
        if !self.requested.lock().insert(*commit) {
            return;
        }
        let mut builder = self.builder.lock();
        if builder.is_none() {
            let (send, receive) = std::sync::mpsc::channel::<ObjectId>();
            let repo = self.repo.clone();
            let spawned = std::thread::Builder::new()
                .name("rostree-metacache".into())
                .spawn(move || {
                    // Only a hint: the builder works at any priority.
                    let me = rustix::thread::gettid();
                    let _ = rustix::process::setpriority_process(Some(me), BUILDER_NICE);
                    while let Ok(commit) = receive.recv() {
                        if let Err(e) = repo.build_meta_cache(&commit) {
                            log(format_args!(
                                "metadata cache of commit {commit} not written: {e}"
                            ));
                        }
                    }
                });
            match spawned {
                Ok(_) => *builder = Some(send),
                Err(e) => {
                    log(format_args!("metadata cache builder not started: {e}"));
                    return;
                }
            }
        }
        if let Some(send) = builder.as_ref() {
            let _ = send.send(*commit);
        }
    }
}
