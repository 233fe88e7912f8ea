//! `fsck`: re-verify every object reachable from the repository's commits, as ostree 2022.7's
//! `ostree fsck` does, with its exact messages and order; and the reachability walk that
//! `fsck` and [`crate::prune`] share.
//!
//! Fidelity to ostree goes down to three details that decide what gets printed:
//! - **Trusted loads.** ostree walks commits and dirtrees through GVariants loaded as
//!   "trusted", which GLib reads leniently when they are not in normal form (a truncated dirtree
//!   reads as shorter lists, a bad framing offset as an empty child). [`gv`] reproduces GLib
//!   2.74's framing rules, so a corrupt dirtree yields the same objects (or the same
//!   `Invalid checksum of length N expected 32` error) as under ostree.
//! - **Order.** ostree iterates `GHashTable`s (refs, commits, reachable objects, the commits
//!   containing an object); [`crate::ghash::GHashOrder`] reproduces GLib's bucket order, so the first error
//!   reported, the progress lines and `In commits A, B` lists match.
//! - **Messages.** Each check yields ostree's text (`fsck <csum>.<type>: Corrupted ...`).
//!
//! Speed: the walk is sequential (it must be, to reproduce the order) but cheap; the objects
//! are then hashed on rayon's pool, each read once (dirtrees and commits are kept from the
//! walk), while the calling thread reports results in ostree's order as they arrive.
//!
//! Layout: [`walk`](Reachable) gathers the objects, `check` and `content` verify one object,
//! `run` reports outcomes, `listing` enumerates refs and commits, `objects` reads, marks and
//! deletes with ostree's messages, [`gv`] is the lenient reader.

mod check;
mod content;
pub mod gv;
mod listing;
mod objects;
mod run;
mod walk;

pub use check::{ObjectCheck, check_object, validate_metadata_structure};
pub use listing::list_refs_ostree_order;
pub(crate) use listing::loose_objects;
pub(crate) use objects::io_msg;
pub use objects::{delete_object, mark_commit_partial, unmark_commit_partial};
pub use walk::{CommitView, ObjName, Reachable, object_name_hash};

use crate::ghash::GHashOrder;
use crate::read::PartialState;
use crate::repo::Repo;
use crate::{ObjectId, ObjectType};
use listing::{list_collection_refs, list_commit_objects};
use objects::load_commit_state;
use run::{Run, verify_reachable};

/// An error as ostree words it (`error: <message>` on the command line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Failure(e.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}

/// Options of [`fsck`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FsckOptions {
    /// Omit the four phase lines (`-q`).
    pub quiet: bool,
    /// Report every corrupt object instead of stopping at the first (`--all`).
    pub all: bool,
    /// Delete corrupt objects and mark the commits containing them partial (`--delete`).
    pub delete: bool,
}

/// Where [`fsck`] writes what ostree prints, as it happens.
pub trait FsckSink {
    /// A line for standard output (no trailing newline).
    fn out(&mut self, line: &str);
    /// A line for standard error (no trailing newline).
    fn err(&mut self, line: &str);
    /// Called after each object is checked: `done` of `total`.
    fn progress(&mut self, done: usize, total: usize) {
        let _ = (done, total);
    }
}

/// A sink that only records lines (for library callers and tests).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Standard-output lines.
    pub out: Vec<String>,
    /// Standard-error lines.
    pub err: Vec<String>,
}

impl FsckSink for Recorder {
    fn out(&mut self, line: &str) {
        self.out.push(line.to_string());
    }
    fn err(&mut self, line: &str) {
        self.err.push(line.to_string());
    }
}

/// A problem [`fsck`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// An object that should be stored is not.
    Missing {
        /// The object.
        name: ObjName,
        /// The commits containing it (empty for a ref's commit).
        commits: Vec<ObjectId>,
    },
    /// An object whose checksum or structure is wrong, with ostree's message.
    Corrupt {
        /// The object.
        name: ObjName,
        /// The message as printed.
        message: String,
        /// Whether `--delete` removed it.
        deleted: bool,
    },
}

/// What [`fsck`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Non-partial commits verified.
    pub commits: usize,
    /// Objects reachable from them, each checked.
    pub objects: usize,
    /// Commits that were already partial (not verified).
    pub partial_commits: usize,
    /// Problems in the order reported.
    pub problems: Vec<Problem>,
    /// Commits this run marked partial.
    pub marked_partial: Vec<ObjectId>,
}

/// Checks the repository as `ostree fsck` does, writing ostree's lines to `sink` as they
/// happen. On success returns the report; on failure the error ostree prints
/// (`Repository corruption encountered`, or the first corruption without `--all`).
pub fn fsck(
    repo: &Repo,
    opts: &FsckOptions,
    sink: &mut dyn FsckSink,
) -> Result<FsckReport, Failure> {
    let mut run = Run {
        repo,
        opts: *opts,
        sink,
        report: FsckReport::default(),
        found_corruption: false,
    };
    if !opts.quiet {
        run.sink.out("Validating refs...");
    }
    for (refspec, target) in list_refs_ostree_order(repo) {
        let name = refspec.split_once(':').map(|(_, r)| r).unwrap_or(&refspec);
        run.check_ref_commit(&target, name)?;
    }
    if !opts.quiet {
        run.sink.out("Validating refs in collections...");
    }
    for ((cid, name), target) in list_collection_refs(repo) {
        run.check_ref_commit(&target, &format!("({cid}, {name})"))?;
    }
    if !opts.quiet {
        run.sink.out("Enumerating commits...");
    }
    let mut all: GHashOrder<ObjName> = GHashOrder::default();
    for id in list_commit_objects(repo) {
        let name = (id, ObjectType::Commit);
        all.insert_hashed(name, object_name_hash(&name));
    }
    let mut commits: GHashOrder<ObjName> = GHashOrder::default();
    let (mut n_partial, mut n_fsck_partial) = (0usize, 0usize);
    for name in all.iter() {
        match load_commit_state(repo, &name.0)? {
            PartialState::Complete => {
                commits.insert_hashed(*name, object_name_hash(name));
            }
            PartialState::Partial => n_partial += 1,
            PartialState::FsckPartial => {
                n_partial += 1;
                n_fsck_partial += 1;
            }
        }
    }
    run.report.commits = commits.len();
    run.report.partial_commits = n_partial;
    if !opts.quiet {
        run.sink.out(&format!(
            "Verifying content integrity of {} commit objects...",
            commits.len()
        ));
    }
    let mut reach = Reachable::new(repo, true, true);
    for name in commits.iter() {
        reach.traverse_commit(&name.0, 0)?;
    }
    verify_reachable(&mut run, &reach)?;
    if n_partial > 0 {
        run.sink
            .out(&format!("{n_partial} partial commits not verified"));
    }
    if run.found_corruption {
        return fail("Repository corruption encountered");
    }
    if n_fsck_partial > 0 {
        return fail(format!(
            "{n_partial} partial commits from fsck-detected corruption"
        ));
    }
    run.sink.out(&format!(
        "object fsck of {} commits completed successfully - no errors found.",
        commits.len()
    ));
    Ok(run.report)
}
