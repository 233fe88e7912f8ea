//! The reporting side of an fsck run: what ostree's `fsck_one_object` does with each
//! object's outcome (print, delete, mark commits partial, or stop), and the parallel check of
//! every reachable object whose outcomes are still reported in ostree's order.

use super::check::{ObjectCheck, check_object};
use super::objects::{delete_object, load_commit_state, mark_commit_partial};
use super::walk::{ObjName, Reachable};
use super::{Failure, FsckOptions, FsckReport, FsckSink, Problem, fail};
use crate::read::PartialState;
use crate::repo::Repo;
use crate::{ObjectId, ObjectType};

/// One fsck run: what it reports to and what it found so far.
pub(super) struct Run<'a, 'r> {
    pub(super) repo: &'r Repo,
    pub(super) opts: FsckOptions,
    pub(super) sink: &'a mut dyn FsckSink,
    pub(super) report: FsckReport,
    /// Whether a problem was reported (the run then fails at the end).
    pub(super) found_corruption: bool,
}

impl Run<'_, '_> {
    /// `fsck_one_object` after the check: report, delete, mark partial, or abort.
    fn handle(
        &mut self,
        name: ObjName,
        check: ObjectCheck,
        commits: Option<Vec<ObjectId>>,
    ) -> Result<(), Failure> {
        let (id, ty) = name;
        let tn = ty.suffix();
        let joined = commits.as_ref().map(|c| {
            c.iter()
                .map(ObjectId::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        });
        let missing = match check {
            ObjectCheck::Ok => return Ok(()),
            ObjectCheck::Missing => {
                self.sink.err(&match &joined {
                    Some(j) => format!("Object missing in commits {j}: {id}.{tn}"),
                    None => format!("Object missing: {id}.{tn}"),
                });
                self.report.problems.push(Problem::Missing {
                    name,
                    commits: commits.clone().unwrap_or_default(),
                });
                true
            }
            ObjectCheck::Corrupt(msg) => {
                let msg = match &joined {
                    Some(j) => format!("In commits {j}: {msg}"),
                    None => msg,
                };
                if self.opts.delete {
                    self.sink.err(&msg);
                    let _ = delete_object(self.repo, &id, ty);
                    self.report.problems.push(Problem::Corrupt {
                        name,
                        message: msg,
                        deleted: true,
                    });
                    true
                } else if self.opts.all {
                    self.found_corruption = true;
                    self.sink.err(&msg);
                    self.report.problems.push(Problem::Corrupt {
                        name,
                        message: msg,
                        deleted: false,
                    });
                    false
                } else {
                    return fail(msg);
                }
            }
        };
        if missing {
            self.found_corruption = true;
            if let Some(commits) = commits
                && ty != ObjectType::Commit
            {
                for c in commits {
                    if load_commit_state(self.repo, &c)? == PartialState::Complete {
                        self.sink.err(&format!("Marking commit as partial: {c}"));
                        mark_commit_partial(self.repo, &c, true)?;
                        self.report.marked_partial.push(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// `fsck_commit_for_ref`.
    pub(super) fn check_ref_commit(&mut self, target: &str, label: &str) -> Result<(), Failure> {
        let Ok(id) = ObjectId::from_hex(target) else {
            self.sink.err(&format!("Object missing: {target}.commit"));
            self.found_corruption = true;
            return fail(format!(
                "Loading commit for ref {label}: No such metadata object {target}.commit"
            ));
        };
        let check = check_object(self.repo, &id, ObjectType::Commit, None);
        self.handle((id, ObjectType::Commit), check, None)?;
        if !self
            .repo
            .has_object(&id, ObjectType::Commit)
            .unwrap_or(false)
        {
            return fail(format!(
                "Loading commit for ref {label}: No such metadata object {id}.commit"
            ));
        }
        Ok(())
    }
}

/// Worker threads for checking objects: `RAYON_NUM_THREADS` when set, else 8 per core
/// (between 8 and 32).
fn io_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return rayon::current_num_threads().max(1);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 8).clamp(8, 32)
}

/// Checks every reached object on a rayon pool; reports in order on this thread.
pub(super) fn verify_reachable(
    run: &mut Run<'_, '_>,
    reach: &Reachable<'_>,
) -> Result<(), Failure> {
    use parking_lot::{Condvar, Mutex};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    let items: Vec<ObjName> = reach.iter().copied().collect();
    let total = items.len();
    run.report.objects = total;
    if total == 0 {
        return Ok(());
    }
    let results: Vec<OnceLock<ObjectCheck>> = (0..total).map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // The index the reporting thread sleeps on (usize::MAX: none); workers wake it only then.
    let wanted = AtomicUsize::new(usize::MAX);
    let lock = Mutex::new(());
    let ready = Condvar::new();
    let repo = run.repo;
    let work = || {
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            let (id, ty) = items[i];
            let check = check_object(repo, &id, ty, reach.cached(&items[i]));
            let _ = results[i].set(check);
            fence(Ordering::SeqCst);
            if wanted.load(Ordering::SeqCst) == i {
                let _guard = lock.lock();
                ready.notify_all();
            }
        }
    };
    // Checking is bound by file-system latency as much as by hashing: more threads than
    // cores keep the disk (or the kernel's inode and page caches) busy.
    let mut threads = io_threads();
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fsck-{i}"))
        .build()
    {
        Ok(p) => p,
        Err(_) => {
            threads = rayon::current_num_threads().max(1);
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| Failure(format!("Starting threads: {e}")))?
        }
    };
    pool.in_place_scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| work());
        }
        let mut outcome = Ok(());
        for (i, name) in items.iter().enumerate() {
            let check = loop {
                if let Some(c) = results[i].get() {
                    break c;
                }
                let mut guard = lock.lock();
                wanted.store(i, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if results[i].get().is_none() {
                    ready.wait(&mut guard);
                }
                wanted.store(usize::MAX, Ordering::SeqCst);
            };
            let commits = (*check != ObjectCheck::Ok).then(|| reach.containing_commits(name));
            if let Err(e) = run.handle(*name, check.clone(), commits) {
                outcome = Err(e);
                break;
            }
            run.sink.progress(i + 1, total);
        }
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}
