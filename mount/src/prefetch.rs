//! Reading ahead, so that a walk over a tree waits for the disk as little as a native one.
//!
//! Metadata: when a directory is opened, its entries' metadata (and that of its
//! subdirectories' entries, one level down) is read by a few threads, so the kernel's
//! READDIRPLUS finds it cached instead of waiting for the disk one object at a time (archive
//! headers a batch per job, their reads queued together).
//!
//! Content: when files of one directory are opened one after another (`diff -r`, `grep -r`,
//! `tar`), the next small files' object files are handed to the kernel's readahead
//! (`posix_fadvise(WILLNEED)`, which starts the reads without waiting for them), so their
//! bytes are in the page cache by the time they are opened.

use crate::inode::Kind;
use crate::tree::{Listing, Objects};
use parking_lot::{Condvar, Mutex};
use rostree_store::{ObjectType, RepoMode};
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU64;
use std::sync::Arc;

/// Entries of a directory whose metadata is read ahead when it is opened.
const PREFETCH_MAX: usize = 4096;
/// Entries one metadata job reads. Bare objects' metadata is read one object after another
/// (a stat, an xattr): small jobs, so that more threads share a directory.
const PREFETCH_CHUNK: usize = 16;
/// The same for archive objects, whose headers one job reads together (see
/// `Repo::content_meta_many`): enough for a deep queue.
const PREFETCH_CHUNK_ARCHIVE: usize = 64;
/// Metadata jobs waiting at most; more are dropped (the kernel's requests read on demand).
const PREFETCH_QUEUE: usize = 1024;
/// Files whose content is read ahead of the one being opened.
const CONTENT_AHEAD: usize = 32;
/// Files one content job advises.
const CONTENT_CHUNK: usize = 8;
/// Content jobs waiting at most.
const CONTENT_QUEUE: usize = 256;
/// Larger files are left to the kernel's own readahead once opened.
const CONTENT_MAX_SIZE: u64 = 1 << 20;
/// Directories whose reading position is remembered; past this the record starts over.
const CONTENT_DIRS: usize = 1024;

/// Work for the prefetch threads.
enum Job {
    /// One chunk of a listing's entries, from `start`; `depth` more levels to queue.
    Meta(Arc<Listing>, usize, u8),
    /// Content of the small files among entries `start..end` of a listing.
    Content(Arc<Listing>, usize, usize),
}

/// The two queues: content first (someone is reading now), then metadata.
#[derive(Default)]
struct Queues {
    content: VecDeque<Job>,
    meta: VecDeque<Job>,
    stop: bool,
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    objects: Arc<Objects>,
}

impl Shared {
    /// Entries per metadata job.
    fn chunk(&self) -> usize {
        match self.objects.repo.mode() {
            RepoMode::Archive => PREFETCH_CHUNK_ARCHIVE,
            _ => PREFETCH_CHUNK,
        }
    }

    /// Queues a listing's entries for metadata, dropping what doesn't fit.
    fn queue_meta(&self, listing: &Arc<Listing>, depth: u8) {
        let n = listing.entries.len().min(PREFETCH_MAX);
        let mut q = self.queues.lock();
        let mut pushed = 0;
        for start in (0..n).step_by(self.chunk()) {
            if q.meta.len() >= PREFETCH_QUEUE {
                break;
            }
            q.meta.push_back(Job::Meta(listing.clone(), start, depth));
            pushed += 1;
        }
        drop(q);
        self.wake(pushed);
    }

    /// Wakes as many idle threads as there are new jobs, not all of them: a walk queues a
    /// job or two per directory, and every needless wake-up costs CPU the walk needs.
    fn wake(&self, jobs: usize) {
        for _ in 0..jobs {
            if !self.ready.notify_one() {
                break;
            }
        }
    }

    fn next_job(&self) -> Option<Job> {
        let mut q = self.queues.lock();
        loop {
            if q.stop {
                return None;
            }
            if let Some(job) = q.content.pop_front().or_else(|| q.meta.pop_front()) {
                return Some(job);
            }
            self.ready.wait(&mut q);
        }
    }

    fn run(&self, job: Job) {
        match job {
            Job::Meta(listing, start, depth) => {
                let end = (start + self.chunk()).min(listing.entries.len());
                let entries = &listing.entries[start..end];
                self.objects.warm(entries);
                for (_, kind) in entries {
                    if let (Kind::Tree { tree, .. }, 1..) = (kind, depth)
                        && let Ok(sub) = self.objects.listing(tree)
                    {
                        self.queue_meta(&sub, depth - 1);
                    }
                }
            }
            Job::Content(listing, start, end) => {
                for (_, kind) in &listing.entries[start..end.min(listing.entries.len())] {
                    if let Kind::File(id) = kind {
                        self.advise_content(id);
                    }
                }
            }
        }
    }

    /// Starts reading a small regular file's object into the page cache (errors are left
    /// for the `open` that follows to report).
    fn advise_content(&self, id: &rostree_store::ObjectId) {
        let Ok(meta) = self.objects.file_meta(id) else {
            return;
        };
        if meta.header.is_symlink() || meta.size > CONTENT_MAX_SIZE {
            return;
        }
        let repo = &self.objects.repo;
        // Bare objects are opened through the objects directory's descriptor; archive ones
        // (compressed, so no plain content to open) by path, when that path is absolute.
        let file = match repo.mode() {
            RepoMode::Archive if repo.path().is_absolute() => {
                std::fs::File::open(repo.object_path(id, ObjectType::File)).ok()
            }
            RepoMode::Archive => None,
            _ => repo.open_plain_content(id).ok(),
        };
        if let Some(file) = file {
            let len = NonZeroU64::new(meta.size.max(1));
            let _ = rustix::fs::fadvise(&file, 0, len, rustix::fs::Advice::WillNeed);
        }
    }
}

/// Where reading stands in one directory: the last file opened, and how far ahead content
/// was queued.
#[derive(Clone, Copy)]
struct Position {
    last: usize,
    queued: usize,
}

impl Position {
    /// Entry `index` of a directory of `len` entries is opened: the entries whose content
    /// to read ahead now, if reading moves forward and they were not queued yet.
    fn advance(&mut self, index: usize, len: usize) -> Option<std::ops::Range<usize>> {
        let forward = index > self.last;
        self.last = index;
        let want = (index + 1 + CONTENT_AHEAD).min(len);
        let from = self.queued.max(index + 1);
        // A chunk at a time (or what is left at the end), not one job per file opened.
        if !forward || from >= want || (want - from < CONTENT_CHUNK && want < len) {
            return None;
        }
        self.queued = want;
        Some(from..want)
    }
}

/// Threads reading ahead, blocked on the queues when idle. They end when the filesystem is
/// dropped.
pub(crate) struct Prefetcher {
    shared: Arc<Shared>,
    threads: usize,
    /// Per directory inode, where reading stands.
    positions: Mutex<HashMap<u64, Position>>,
}

impl Prefetcher {
    pub(crate) fn start(objects: Arc<Objects>, threads: usize) -> Self {
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            objects,
        });
        let mut started = 0;
        for i in 0..threads {
            let shared = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("rostree-prefetch-{i}"))
                .spawn(move || {
                    while let Some(job) = shared.next_job() {
                        shared.run(job);
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        Prefetcher {
            shared,
            threads: started,
            positions: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the metadata of a listing's entries ahead, and `depth` levels below.
    pub(crate) fn queue(&self, listing: &Arc<Listing>, depth: u8) {
        if self.threads > 0 {
            self.shared.queue_meta(listing, depth);
        }
    }

    /// Entry `index` of directory `dir` (listed as `listing`) is being opened. From the
    /// second file opened further down the same directory on, the content of the next
    /// few is read ahead; a lone open reads nothing more.
    pub(crate) fn opened(&self, dir: u64, listing: &Arc<Listing>, index: usize) {
        if self.threads == 0 {
            return;
        }
        let range = {
            let mut positions = self.positions.lock();
            if positions.len() >= CONTENT_DIRS && !positions.contains_key(&dir) {
                positions.clear();
            }
            let pos = positions.entry(dir).or_insert(Position {
                last: index,
                queued: index + 1,
            });
            match pos.advance(index, listing.entries.len()) {
                Some(range) => range,
                None => return,
            }
        };
        let mut q = self.shared.queues.lock();
        let mut pushed = 0;
        for start in range.clone().step_by(CONTENT_CHUNK) {
            if q.content.len() >= CONTENT_QUEUE {
                break;
            }
            let end = (start + CONTENT_CHUNK).min(range.end);
            q.content
                .push_back(Job::Content(listing.clone(), start, end));
            pushed += 1;
        }
        drop(q);
        self.shared.wake(pushed);
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.shared.queues.lock().stop = true;
        self.shared.ready.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_read_ahead_only_while_reading_moves_forward() {
        let mut pos = Position { last: 0, queued: 1 };
        // The second file opened, further down: the next CONTENT_AHEAD are queued.
        assert_eq!(pos.advance(1, 100), Some(2..2 + CONTENT_AHEAD));
        // Within what is queued: nothing more until a chunk's worth can be added.
        assert_eq!(pos.advance(2, 100), None);
        let next = 1 + CONTENT_CHUNK;
        assert_eq!(
            pos.advance(next, 100),
            Some(2 + CONTENT_AHEAD..next + 1 + CONTENT_AHEAD)
        );
        assert_eq!(pos.advance(next, 100), None, "the same file again");
        assert_eq!(pos.advance(0, 100), None, "backwards");
        // Near the end: up to the last entry, then nothing.
        let mut pos = Position {
            last: 95,
            queued: 96,
        };
        assert_eq!(pos.advance(97, 100), Some(98..100));
        assert_eq!(pos.advance(99, 100), None);
    }
}
