//! `prune`: delete the objects nothing reaches, as ostree 2022.7's `ostree prune` does.
//!
//! Reachability comes from [`crate::fsck::Reachable`], the walk ostree's
//! `ostree_repo_traverse_commit_with_flags` performs: by default every commit in the repository
//! is a root (so only orphaned trees and files go, never commits); with `refs_only` the roots
//! are the refs (local and remote, walked in ostree's hash-table order, which matters with a
//! depth limit); `keep_younger_than`, `only_branches` and `retain_branch_depth` select ostree's
//! per-ref mode. Candidates are the loose `.file`/`.filez`, `.dirtree`, `.dirmeta`, `.commit`
//! and `.payload-link` objects; a deleted commit takes its `.commitmeta` and partial mark.
//! Static deltas to missing commits and summary caches of unknown remotes are cleaned
//! afterwards, even with `no_prune`, as in ostree.

use crate::fsck::{
    CommitView, Failure, Reachable, delete_object, io_msg, list_refs_ostree_order, loose_objects,
    unmark_commit_partial,
};
use crate::fsutil::{dir_entries_lenient, openat_dir};
use crate::lock::LockKind;
use crate::repo::{Repo, RepoMode};
use crate::{Error, ObjectId, ObjectType};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, OwnedFd};

/// Options of [`prune`], as `ostree prune` names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneOptions {
    /// Only compute reachability from refs (`--refs-only`).
    pub refs_only: bool,
    /// Only report what would be deleted (`--no-prune`).
    pub no_prune: bool,
    /// Parents to walk from each root; -1 for all (`--depth`).
    pub depth: i32,
    /// Only walk and delete commit objects (`--commit-only`).
    pub commit_only: bool,
    /// Keep each ref's commit and its consecutive ancestors at least this recent, in seconds
    /// since the epoch (`--keep-younger-than`).
    pub keep_younger_than: Option<i64>,
    /// Only prune these refs; every other ref keeps its whole history (`--only-branch`).
    pub only_branches: Vec<String>,
    /// Per-ref depths (`--retain-branch-depth=REF=DEPTH`).
    pub retain_branch_depth: Vec<(String, i32)>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            refs_only: false,
            no_prune: false,
            depth: -1,
            commit_only: false,
            keep_younger_than: None,
            only_branches: Vec::new(),
            retain_branch_depth: Vec::new(),
        }
    }
}

/// What [`prune`] counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Candidate objects found (`Total objects: N`).
    pub total: u64,
    /// Objects deleted, or that would be with `no_prune`.
    pub pruned: u64,
    /// Their on-disk size in bytes.
    pub freed_bytes: u64,
}

/// The kinds of loose object prune considers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Object(ObjectType),
    PayloadLink,
}

impl Kind {
    fn suffix(self, mode: RepoMode) -> &'static str {
        match self {
            Kind::Object(ObjectType::File) => mode.file_suffix(),
            Kind::Object(ty) => ty.suffix(),
            Kind::PayloadLink => "payload-link",
        }
    }
}

/// A loose object: the checksum as its file name spells it, and its kind.
struct Candidate {
    hex: String,
    kind: Kind,
}

impl Candidate {
    fn rel(&self, mode: RepoMode) -> String {
        format!(
            "{}/{}.{}",
            &self.hex[..2],
            &self.hex[2..],
            self.kind.suffix(mode)
        )
    }
}

/// A directory below `dir`, if it can be opened (prune skips what it cannot read, as ostree).
fn open_subdir(dir: impl AsFd, name: &str) -> Option<OwnedFd> {
    openat_dir(dir, name, true).ok()
}

/// The UTF-8 names in a directory, with their types (other names are none of prune's).
fn dir_names(dir: impl AsFd) -> Vec<(String, rustix::fs::FileType)> {
    dir_entries_lenient(dir)
        .into_iter()
        .filter_map(|(name, ft)| Some((String::from_utf8(name).ok()?, ft)))
        .collect()
}

/// `list_loose_objects`: every loose object of the kinds prune handles (only commits when
/// `commits_only`).
fn list_candidates(repo: &Repo, commits_only: bool) -> Vec<Candidate> {
    let mode = repo.mode();
    let mut out = Vec::new();
    for (hex, suffix) in loose_objects(repo) {
        let kind = match suffix.as_str() {
            "filez" if mode == RepoMode::Archive => Kind::Object(ObjectType::File),
            "file" if mode != RepoMode::Archive => Kind::Object(ObjectType::File),
            "dirtree" => Kind::Object(ObjectType::DirTree),
            "dirmeta" => Kind::Object(ObjectType::DirMeta),
            "commit" => Kind::Object(ObjectType::Commit),
            "payload-link" => Kind::PayloadLink,
            _ => continue,
        };
        if commits_only && kind != Kind::Object(ObjectType::Commit) {
            continue;
        }
        out.push(Candidate { hex, kind });
    }
    out
}

/// `ostree prune --delete-commit=REV`: refuses a commit a ref points at, turns on
/// `core.tombstone-commits`, and deletes the commit (REV is used verbatim, as ostree does).
pub fn delete_commit(repo: &mut Repo, rev: &str) -> Result<(), Failure> {
    for (refspec, target) in list_refs_ostree_order(repo) {
        if target == rev {
            return Err(Failure(format!(
                "Commit '{rev}' is referenced by '{refspec}'"
            )));
        }
    }
    let enabled = repo
        .config()
        .get_bool("core", "tombstone-commits")
        .ok()
        .flatten()
        .unwrap_or(false);
    if !enabled {
        let mut config = repo.config().clone();
        config.set("core", "tombstone-commits", "true");
        repo.write_config(config)?;
    }
    match ObjectId::from_hex(rev) {
        Ok(id) => delete_object(repo, &id, ObjectType::Commit),
        Err(_) => {
            let (a, b) = rev.split_at(rev.len().min(2));
            let rel = format!("{a}/{b}.commit");
            let e = rustix::fs::unlinkat(&repo.objects, rel.as_str(), AtFlags::empty())
                .err()
                .unwrap_or(Errno::NOENT);
            Err(Failure(format!(
                "Deleting object {rev}.commit: unlinkat({rel}): {}",
                io_msg(e)
            )))
        }
    }
}

/// Prunes the repository (taking its lock exclusively) and returns ostree's counts.
pub fn prune(repo: &Repo, opts: &PruneOptions) -> Result<PruneStats, Failure> {
    if !opts.no_prune
        && let Err(e) = rustix::fs::accessat(
            &repo.objects,
            ".",
            rustix::fs::Access::WRITE_OK,
            AtFlags::empty(),
        )
    {
        return Err(Failure(format!(
            "Cannot write to repository: {}",
            io_msg(e)
        )));
    }
    let _lock = repo.lock(LockKind::Exclusive)?;
    let mut reach = Reachable::new(repo, false, false);
    reach.set_commit_only(opts.commit_only);
    let advanced = opts.keep_younger_than.is_some()
        || !opts.only_branches.is_empty()
        || !opts.retain_branch_depth.is_empty();
    let candidates = list_candidates(repo, opts.commit_only);
    if advanced {
        let refs = list_refs_ostree_order(repo);
        let mut depths: Vec<(String, i32)> = Vec::new();
        for (name, depth) in &opts.retain_branch_depth {
            match depths.iter_mut().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = *depth,
                None => depths.push((name.clone(), *depth)),
            }
        }
        if !opts.only_branches.is_empty() {
            for b in &opts.only_branches {
                if repo.resolve_rev_opt(b)?.is_none() {
                    return Err(Failure(format!("Refspec '{b}' not found")));
                }
            }
            for (refspec, _) in &refs {
                if !opts.only_branches.contains(refspec)
                    && !depths.iter().any(|(n, _)| n == refspec)
                {
                    depths.push((refspec.clone(), -1));
                }
            }
        }
        for (refspec, target) in &refs {
            let Ok(commit) = ObjectId::from_hex(target) else {
                continue;
            };
            // ostree stores depths as hash-table pointers: a depth of 0 reads back as "none".
            if let Some((_, depth)) = depths.iter().find(|(n, d)| n == refspec && *d != 0) {
                reach.traverse_commit(&commit, *depth)?;
            } else if let Some(ts) = opts.keep_younger_than {
                keep_younger_than(repo, &mut reach, &commit, ts)?;
            } else {
                reach.traverse_commit(&commit, opts.depth)?;
            }
        }
    } else {
        if opts.refs_only {
            for (_, target) in list_refs_ostree_order(repo) {
                if let Ok(commit) = ObjectId::from_hex(&target) {
                    reach.traverse_commit(&commit, opts.depth)?;
                }
            }
            for target in collection_ref_targets(repo) {
                reach.traverse_commit(&target, opts.depth)?;
            }
        } else {
            // Every commit is a root. ostree walks them in hash-table order, but the result
            // does not depend on it: each commit is reached either way.
            for c in &candidates {
                if c.kind == Kind::Object(ObjectType::Commit)
                    && let Ok(id) = ObjectId::from_hex(&c.hex)
                {
                    reach.traverse_commit(&id, opts.depth)?;
                }
            }
        }
    }
    let stats = delete_unreachable(repo, &reach, &candidates, opts)?;
    prune_static_deltas(repo)?;
    prune_summary_cache(repo)?;
    // rostree's own: the metadata caches of commits just deleted.
    repo.prune_meta_caches()
        .map_err(|e| Failure(e.to_string()))?;
    Ok(stats)
}

/// `traverse_keep_younger_than`: the ref's commit, then each consecutive ancestor (starting
/// again from the ref's commit) whose timestamp is at least `ts`.
fn keep_younger_than(
    repo: &Repo,
    reach: &mut Reachable<'_>,
    commit: &ObjectId,
    ts: i64,
) -> Result<(), Failure> {
    reach.traverse_commit(commit, 0)?;
    let mut next = *commit;
    loop {
        let bytes = match repo.read_meta_bytes(&next, ObjectType::Commit) {
            Ok(bytes) => bytes,
            Err(Error::MissingObject { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        let view = CommitView::read(&bytes);
        if (view.timestamp as i128) < ts as i128 {
            break;
        }
        reach.traverse_commit(&next, 0)?;
        match view.parent()? {
            Some(p) => next = p,
            None => break,
        }
    }
    Ok(())
}

/// Commits of collection refs outside remotes (`refs/mirrors/*`, and the local refs when the
/// repository has a collection ID).
fn collection_ref_targets(repo: &Repo) -> Vec<ObjectId> {
    fn walk(dir: &OwnedFd, out: &mut Vec<ObjectId>) {
        for (name, ft) in dir_names(dir) {
            if ft == rustix::fs::FileType::Directory {
                if let Some(sub) = open_subdir(dir, &name) {
                    walk(&sub, out);
                }
            } else if let Ok(fd) = rustix::fs::openat(
                dir,
                name.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                let mut buf = Vec::new();
                if std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut buf).is_ok()
                    && let Ok(id) = ObjectId::from_hex(String::from_utf8_lossy(&buf).trim_end())
                {
                    out.push(id);
                }
            }
        }
    }
    let mut out = Vec::new();
    if repo.config().get("core", "collection-id").is_some()
        && let Some(heads) = open_subdir(&repo.root, "refs/heads")
    {
        walk(&heads, &mut out);
    }
    if let Some(mirrors) = open_subdir(&repo.root, "refs/mirrors") {
        walk(&mirrors, &mut out);
    }
    out
}

/// `repo_prune_internal`'s loop (`maybe_prune_loose_object`).
fn delete_unreachable(
    repo: &Repo,
    reach: &Reachable<'_>,
    candidates: &[Candidate],
    opts: &PruneOptions,
) -> Result<PruneStats, Failure> {
    let mode = repo.mode();
    let threshold: u64 = repo
        .config()
        .get("core", "payload-link-threshold")
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let mut stats = PruneStats::default();
    for c in candidates {
        let id = ObjectId::from_hex(&c.hex).ok();
        let reachable = match (c.kind, id) {
            (Kind::Object(ty), Some(id)) => reach.contains(&id, ty),
            _ => false,
        };
        stats.total += 1;
        if reachable {
            continue;
        }
        let rel = c.rel(mode);
        let st = rustix::fs::statat(&repo.objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| {
                Failure(format!(
                    "Querying object {}.{}: {}",
                    c.hex,
                    c.kind.suffix(mode).trim_end_matches('z'),
                    io_msg(e)
                ))
            })?;
        stats.freed_bytes += st.st_size.max(0) as u64;
        if !opts.no_prune {
            match c.kind {
                Kind::PayloadLink => {
                    if payload_target_kept(repo, reach, &rel, threshold)? {
                        continue;
                    }
                    rustix::fs::unlinkat(&repo.objects, rel.as_str(), AtFlags::empty()).map_err(
                        |e| {
                            Failure(format!(
                                "Deleting object {}.payload-link: unlinkat({rel}): {}",
                                c.hex,
                                io_msg(e)
                            ))
                        },
                    )?;
                }
                Kind::Object(ty) => match id {
                    Some(id) => {
                        if ty == ObjectType::Commit {
                            unmark_commit_partial(repo, &id)?;
                        }
                        delete_object(repo, &id, ty)?;
                    }
                    None => {
                        if ty == ObjectType::Commit {
                            let meta = format!("{}/{}.commitmeta", &c.hex[..2], &c.hex[2..]);
                            let _ = rustix::fs::unlinkat(
                                &repo.objects,
                                meta.as_str(),
                                AtFlags::empty(),
                            );
                        }
                        rustix::fs::unlinkat(&repo.objects, rel.as_str(), AtFlags::empty())
                            .map_err(|e| Failure(format!("unlinkat({rel}): {}", io_msg(e))))?;
                    }
                },
            }
        }
        stats.pruned += 1;
    }
    Ok(stats)
}

/// Whether a payload link stays: its target file is reachable and at least `threshold` bytes.
fn payload_target_kept(
    repo: &Repo,
    reach: &Reachable<'_>,
    rel: &str,
    threshold: u64,
) -> Result<bool, Failure> {
    let target = rustix::fs::readlinkat(&repo.objects, rel, Vec::new())
        .map_err(|e| Failure(format!("readlinkat: {}", io_msg(e))))?
        .into_bytes();
    // "../xx/<62 hex>.file..."
    if target.len() < 64 + 3 + 1 {
        return Err(Failure(format!("invalid data size for {rel}")));
    }
    let hex = format!(
        "{}{}",
        String::from_utf8_lossy(&target[3..5]),
        String::from_utf8_lossy(&target[6..68.min(target.len())])
    );
    let Ok(id) = ObjectId::from_hex(&hex) else {
        return Ok(false);
    };
    if !reach.contains(&id, ObjectType::File) {
        return Ok(false);
    }
    let file_rel = id.loose_path(repo.mode().file_suffix());
    let st = rustix::fs::statat(&repo.objects, file_rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| Failure(format!("Querying object {id}.file: {}", io_msg(e))))?;
    Ok(st.st_size.max(0) as u64 >= threshold)
}

/// ostree's base64 variant for delta names (`_` for `/`, no padding), decoded to 32 bytes
/// the way `g_base64_decode_step` does: characters outside the alphabet are skipped.
fn b64_checksum(s: &str) -> ObjectId {
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(32);
    for ch in s.bytes().take(43) {
        let v = match ch {
            b'A'..=b'Z' => ch - b'A',
            b'a'..=b'z' => ch - b'a' + 26,
            b'0'..=b'9' => ch - b'0' + 52,
            b'+' => 62,
            b'_' | b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | v as u32;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out.resize(32, 0);
    ObjectId::from_bytes(&out[..32]).unwrap_or(ObjectId([0; 32]))
}

/// `ostree_repo_prune_static_deltas(NULL)`: removes deltas whose target commit is gone.
fn prune_static_deltas(repo: &Repo) -> Result<(), Failure> {
    let Some(deltas) = open_subdir(&repo.root, "deltas") else {
        return Ok(());
    };
    for (d1, ft) in dir_names(&deltas) {
        if ft != rustix::fs::FileType::Directory {
            continue;
        }
        let Some(sub) = open_subdir(&deltas, &d1) else {
            continue;
        };
        for (d2, ft) in dir_names(&sub) {
            if ft != rustix::fs::FileType::Directory
                || rustix::fs::statat(&sub, format!("{d2}/superblock").as_str(), AtFlags::empty())
                    .is_err()
            {
                continue;
            }
            let name = format!("{d1}{d2}");
            let to = match name.split_once('-') {
                Some((_, to)) => to,
                None => name.as_str(),
            };
            let to = b64_checksum(to);
            if repo.has_object(&to, ObjectType::Commit)? {
                continue;
            }
            let shown = repo.path().join("deltas").join(&d1).join(&d2);
            crate::transaction::remove_tree_at(&sub, &d2, &shown)?;
        }
    }
    Ok(())
}

/// `_ostree_repo_prune_tmp`: drops cached summaries of remotes no longer configured.
fn prune_summary_cache(repo: &Repo) -> Result<(), Failure> {
    let Some(dir) = open_subdir(&repo.root, "tmp/cache/summaries") else {
        return Ok(());
    };
    let remotes = repo.remote_names();
    for (name, _) in dir_names(&dir) {
        let remote = match name.strip_suffix(".sig") {
            Some(r) if name.len() > 4 => r,
            _ => name.as_str(),
        };
        if !remotes.iter().any(|r| r == remote) {
            rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty())
                .map_err(|e| Failure(format!("unlinkat({name}): {}", io_msg(e))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_names_decode() {
        // ostree_checksum_b64_from_bytes of 0x00..0x1f.
        let bytes: Vec<u8> = (0..32).collect();
        let id = ObjectId::from_bytes(&bytes).unwrap();
        assert_eq!(
            b64_checksum("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
            id
        );
    }
}
