//! Reading metadata ahead: when a directory is opened, its entries' metadata (and that of
//! its subdirectories' entries, one level down) is read by a few threads, so the kernel's
//! READDIRPLUS finds it cached instead of waiting for the disk one object at a time.

use crate::inode::Kind;
use crate::tree::{Listing, Objects};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

/// Entries of a directory whose metadata is read ahead when it is opened.
const PREFETCH_MAX: usize = 4096;
/// Entries one prefetch job reads.
const PREFETCH_CHUNK: usize = 16;
/// Prefetch jobs waiting at most; more are dropped (the kernel's requests read on demand).
const PREFETCH_QUEUE: usize = 1024;

/// Threads reading metadata ahead, blocked on a bounded queue when idle. Opening a
/// directory queues its entries, and the entries of its subdirectories one level down, so the
/// disk stays busy while a walk (`find`, `ls -R`, `du`) moves from one directory to the next.
/// The threads end when the filesystem is dropped.
pub(crate) struct Prefetcher {
    jobs: SyncSender<Option<PrefetchJob>>,
    threads: usize,
}

/// Entries `start..start + PREFETCH_CHUNK` of a listing; `depth` more levels to queue.
type PrefetchJob = (Arc<Listing>, usize, u8);

/// Queues a listing's entries, dropping what doesn't fit (requests read on demand anyway).
fn queue_prefetch(jobs: &SyncSender<Option<PrefetchJob>>, listing: &Arc<Listing>, depth: u8) {
    let n = listing.entries.len().min(PREFETCH_MAX);
    for start in (0..n).step_by(PREFETCH_CHUNK) {
        if jobs
            .try_send(Some((listing.clone(), start, depth)))
            .is_err()
        {
            return;
        }
    }
}

impl Prefetcher {
    pub(crate) fn start(objects: Arc<Objects>, threads: usize) -> Self {
        let (jobs, rx) = sync_channel::<Option<PrefetchJob>>(PREFETCH_QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..threads {
            let (rx, objects, jobs) = (rx.clone(), objects.clone(), jobs.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("rostree-prefetch-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().recv();
                        let Ok(Some((listing, start, depth))) = job else {
                            return;
                        };
                        let end = (start + PREFETCH_CHUNK).min(listing.entries.len());
                        for (_, kind) in &listing.entries[start..end] {
                            objects.warm(kind);
                            if let (Kind::Tree { tree, .. }, 1..) = (kind, depth)
                                && let Ok(sub) = objects.listing(tree)
                            {
                                queue_prefetch(&jobs, &sub, depth - 1);
                            }
                        }
                    }
                });
            started += usize::from(spawned.is_ok());
        }
        Prefetcher {
            jobs,
            threads: started,
        }
    }

    pub(crate) fn queue(&self, listing: &Arc<Listing>, depth: u8) {
        queue_prefetch(&self.jobs, listing, depth);
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        for _ in 0..self.threads {
            let _ = self.jobs.send(None);
        }
    }
}
