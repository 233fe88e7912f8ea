//! `pull-local`: copying commits between two local repositories of any modes.
//!
//! Objects are hardlinked where both repositories have the same mode and share a
//! filesystem (the object files are then identical), else copied through the transaction's
//! object writer, which converts between modes. Copied objects are verified (metadata by
//! its checksum, content by re-hashing it); `untrusted` also refuses hardlinks, so that
//! every object is read and verified. Each commit is marked partial until its objects are
//! all published, and refs move last.

use super::PulledRef;
use crate::{ContentSource, Error, ObjectId, ObjectType, Repo, Result, Transaction};
use rayon::prelude::*;
use std::collections::HashSet;
use std::io::Read;
use std::sync::atomic::Ordering;

/// What to copy and how.
#[derive(Clone, Debug, Default)]
pub struct LocalPullOptions {
    /// Refs or commit checksums of the source; empty means all its local refs.
    pub refs: Vec<String>,
    /// Write the refs under `refs/remotes/REMOTE/` rather than as local branches.
    pub remote: Option<String>,
    /// Parents to copy too: 0 none, -1 all.
    pub depth: i64,
    /// Copy (and verify) every object rather than hardlinking.
    pub untrusted: bool,
    /// Copy only the commit objects, leaving them marked partial.
    pub commit_metadata_only: bool,
}

/// What a local pull did, for its summary line.
#[derive(Clone, Debug, Default)]
pub struct LocalPullReport {
    /// The refs written.
    pub refs: Vec<PulledRef>,
    /// Metadata objects imported.
    pub metadata: u64,
    /// Content objects imported.
    pub content: u64,
    /// Bytes of content written (copies; hardlinks write none).
    pub content_bytes_written: u64,
}

/// Copies commits of `src` into `dest`.
pub fn pull_local(dest: &Repo, src: &Repo, options: &LocalPullOptions) -> Result<LocalPullReport> {
    let targets = resolve(src, &options.refs)?;
    let tx = dest.begin()?;
    let import = Importer {
        src,
        dest,
        tx: &tx,
        untrusted: options.untrusted,
    };
    let mut done = HashSet::new();
    let mut completed = Vec::new();
    for (_, id) in &targets {
        let mut next = Some(*id);
        let mut depth = options.depth;
        while let Some(commit_id) = next.take() {
            if !done.insert(commit_id) {
                break;
            }
            // History the source does not have ends the walk, as in ostree.
            if commit_id != *id && !src.has_object(&commit_id, ObjectType::Commit)? {
                break;
            }
            let complete = dest.has_object(&commit_id, ObjectType::Commit)?
                && !dest.is_commit_partial(&commit_id)?;
            let commit = src.read_commit(&commit_id)?;
            if !complete {
                crate::fsck::mark_commit_partial(dest, &commit_id, false)
                    .map_err(|f| Error::Pull(f.0))?;
                if src.has_object(&commit_id, ObjectType::CommitMeta)? {
                    let bytes = src.read_meta_bytes(&commit_id, ObjectType::CommitMeta)?;
                    tx.write_commit_detached(&commit_id, &bytes)?;
                }
                import.meta(&commit_id, ObjectType::Commit)?;
                if !options.commit_metadata_only {
                    import.tree(&commit.root_tree, &commit.root_meta)?;
                    completed.push(commit_id);
                }
            }
            if depth != 0 {
                depth -= 1;
                next = commit.parent;
            }
        }
    }
    // Every object is in place before a commit loses its partial mark and before any ref.
    tx.publish_all()?;
    for id in &completed {
        crate::fsck::unmark_commit_partial(dest, id).map_err(|f| Error::Pull(f.0))?;
    }
    let mut report = LocalPullReport::default();
    for (name, id) in &targets {
        let Some(name) = name else { continue };
        let remote = options.remote.as_deref();
        let old = dest.read_ref(remote, name)?;
        tx.set_ref(remote, name, Some(*id));
        report.refs.push(PulledRef {
            name: name.clone(),
            old,
            new: *id,
        });
    }
    report.metadata = tx.stats.metadata_written.load(Ordering::Relaxed);
    report.content = tx.stats.content_written.load(Ordering::Relaxed);
    // ostree copies same-mode objects as raw files and counts only converted content.
    if src.mode() != dest.mode() {
        report.content_bytes_written = tx.stats.content_bytes_written.load(Ordering::Relaxed);
    }
    tx.commit()?;
    Ok(report)
}

/// The requested refs resolved in the source: (ref name, or None for a checksum; commit).
fn resolve(src: &Repo, requested: &[String]) -> Result<Vec<(Option<String>, ObjectId)>> {
    if requested.is_empty() {
        let mut out = Vec::new();
        for (name, _) in src.list_refs(None)? {
            if let Some(id) = src.read_ref(None, &name)? {
                out.push((Some(name), id));
            }
        }
        return Ok(out);
    }
    requested
        .iter()
        .map(|r| {
            if let Ok(id) = ObjectId::from_hex(r) {
                return Ok((None, id));
            }
            if !crate::refs::is_valid_ref_name(r) {
                return Err(Error::InvalidRefName(r.clone()));
            }
            // ostree's words: it looks refs up in the source's summary when it has one.
            let id = src.read_ref(None, r)?.ok_or_else(|| {
                Error::Pull(if src.path().join("summary").exists() {
                    format!("No such branch '{r}' in repository summary")
                } else {
                    format!("Refspec '{r}' not found")
                })
            })?;
            Ok((Some(r.clone()), id))
        })
        .collect()
}

/// Copies objects of one source into one transaction.
struct Importer<'a> {
    src: &'a Repo,
    dest: &'a Repo,
    tx: &'a Transaction<'a>,
    untrusted: bool,
}

impl Importer<'_> {
    /// Copies a metadata object the destination lacks, hardlinked or verified.
    fn meta(&self, id: &ObjectId, ty: ObjectType) -> Result<()> {
        if self.dest.has_object(id, ty)? {
            return Ok(());
        }
        if !self.untrusted && self.tx.link_object_from(self.src, id, ty)? {
            return Ok(());
        }
        let bytes = self.src.read_meta_bytes(id, ty)?;
        let actual = ObjectId::digest(&bytes);
        if actual != *id {
            return Err(Error::corrupt(*id, ty, format!("checksum is {actual}")));
        }
        self.tx.write_meta(ty, &bytes)?;
        Ok(())
    }

    /// Copies a tree: dirtrees and dirmetas level by level, then the content, in parallel.
    fn tree(&self, root_tree: &ObjectId, root_meta: &ObjectId) -> Result<()> {
        let mut seen = HashSet::new();
        let mut files = HashSet::new();
        let mut level = vec![(*root_tree, *root_meta)];
        while !level.is_empty() {
            let trees = level
                .par_iter()
                .map(|(tree, meta)| {
                    self.meta(meta, ObjectType::DirMeta)?;
                    self.meta(tree, ObjectType::DirTree)?;
                    self.src.read_dirtree(tree)
                })
                .collect::<Result<Vec<_>>>()?;
            let mut next = Vec::new();
            for tree in trees {
                files.extend(tree.files.values().copied());
                next.extend(tree.dirs.values().filter(|d| seen.insert(**d)).copied());
            }
            level = next;
        }
        let files: Vec<ObjectId> = files.into_iter().collect();
        files.par_iter().try_for_each(|id| self.content(id))
    }

    /// Copies a content object the destination lacks: hardlinked, or read, re-hashed and
    /// written in the destination's mode.
    fn content(&self, id: &ObjectId) -> Result<()> {
        let ty = ObjectType::File;
        if self.dest.has_object(id, ty)? {
            return Ok(());
        }
        if !self.untrusted && self.tx.link_object_from(self.src, id, ty)? {
            return Ok(());
        }
        let mut obj = self.src.open_content(id)?;
        let bad = |e: std::io::Error| Error::corrupt(*id, ty, e);
        let tmp_dir = self.dest.path().join("tmp");
        // Large content goes through an unlinked temporary file rather than memory.
        let spill = obj.size > 64 * 1024 * 1024;
        let mut data = Vec::new();
        let mut file = None;
        if spill {
            let mut f = tempfile::tempfile_in(&tmp_dir).map_err(|e| Error::io(&tmp_dir, e))?;
            std::io::copy(&mut (&mut obj.body).take(obj.size + 1), &mut f).map_err(bad)?;
            file = Some(f);
        } else {
            (&mut obj.body)
                .take(obj.size + 1)
                .read_to_end(&mut data)
                .map_err(bad)?;
        }
        let source = match &file {
            Some(f) => {
                let mut r = f;
                std::io::Seek::seek(&mut r, std::io::SeekFrom::Start(0)).map_err(bad)?;
                ContentSource::File(f)
            }
            None => ContentSource::Bytes(&data),
        };
        let actual = Transaction::checksum_content(&obj.header, &source)?;
        if actual != *id {
            return Err(Error::corrupt(*id, ty, format!("checksum is {actual}")));
        }
        self.tx.write_content(id, &obj.header, obj.size, source)
    }
}
