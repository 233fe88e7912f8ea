//! Object and commit-state access as ostree's fsck and prune do it, failing with ostree's
//! messages (`openat(<path>): <strerror>`): loading metadata, reading and setting the partial
//! mark, deleting objects.
//!
//! These differ from the store's read API on purpose: ostree opens loose objects following
//! symlinks and words errors per syscall, and fsck's output must match it byte for byte.

use super::{Failure, fail};
use crate::read::{PartialState, commit_partial_relpath};
use crate::repo::Repo;
use crate::{ObjectId, ObjectType};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::AsFd;

/// `strerror` text of an errno, as GLib prints it (without Rust's `(os error N)`).
pub(crate) fn io_msg(e: Errno) -> String {
    crate::io_message(&e.into())
}

/// Opens a file below `dir` for reading, following symlinks as ostree's `openat` does.
pub(super) fn open_read(dir: impl AsFd, rel: &str) -> Result<Option<std::fs::File>, Errno> {
    match rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(std::fs::File::from(fd))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a whole open file into `buf` (cleared first), sized by `fstat`.
pub(super) fn read_all(mut file: std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    buf.reserve(size.saturating_add(1));
    file.read_to_end(buf).map(|_| ())
}

/// Reads a loose metadata object as ostree's loads do; `None` when absent.
pub(super) fn read_meta(
    repo: &Repo,
    id: &ObjectId,
    ty: ObjectType,
) -> Result<Option<Vec<u8>>, Failure> {
    let rel = repo.object_relpath(id, ty);
    let file = match open_read(&repo.objects, &rel) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) => return fail(format!("openat({rel}): {}", io_msg(e))),
    };
    let mut buf = Vec::new();
    read_all(file, &mut buf)
        .map_err(|e| Failure(format!("read({rel}): {}", crate::io_message(&e))))?;
    Ok(Some(buf))
}

/// A commit's partial mark ([`Repo::commit_partial_state`]) with ostree's error message.
pub(super) fn partial_state(repo: &Repo, id: &ObjectId) -> Result<PartialState, Failure> {
    repo.commit_partial_state(id).map_err(|e| {
        let rel = commit_partial_relpath(id);
        Failure(format!("openat({rel}): {}", io_msg(e)))
    })
}

/// `ostree_repo_load_commit`: the commit must exist; returns its partial mark.
pub(super) fn load_commit_state(repo: &Repo, id: &ObjectId) -> Result<PartialState, Failure> {
    let rel = repo.object_relpath(id, ObjectType::Commit);
    match rustix::fs::statat(&repo.objects, rel.as_str(), AtFlags::empty()) {
        Ok(_) => partial_state(repo, id),
        Err(Errno::NOENT) => fail(format!("No such metadata object {id}.commit")),
        Err(e) => fail(format!("openat({rel}): {}", io_msg(e))),
    }
}

/// Marks a commit partial (`state/<c>.commitpartial`), with reason `f` when found by fsck.
pub fn mark_commit_partial(repo: &Repo, id: &ObjectId, fsck: bool) -> Result<(), Failure> {
    let rel = commit_partial_relpath(id);
    match rustix::fs::openat(
        &repo.root,
        rel.as_str(),
        OFlags::EXCL | OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(fd) => {
            if fsck {
                crate::fsutil::write_all(&fd, b"f")
                    .map_err(|e| Failure(format!("write({rel}): {}", crate::io_message(&e))))?;
            }
            Ok(())
        }
        Err(Errno::EXIST) => Ok(()),
        Err(e) => fail(format!("open({rel}): {}", io_msg(e))),
    }
}

/// Clears a commit's partial mark.
pub fn unmark_commit_partial(repo: &Repo, id: &ObjectId) -> Result<(), Failure> {
    let rel = commit_partial_relpath(id);
    match rustix::fs::unlinkat(&repo.root, rel.as_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => fail(format!("unlinkat({rel}): {}", io_msg(e))),
    }
}

/// Deletes an object as `ostree_repo_delete_object` does: a commit takes its `.commitmeta`
/// with it and leaves a tombstone when `core.tombstone-commits` is set.
pub fn delete_object(repo: &Repo, id: &ObjectId, ty: ObjectType) -> Result<(), Failure> {
    if ty == ObjectType::Commit {
        let meta = repo.object_relpath(id, ObjectType::CommitMeta);
        match rustix::fs::unlinkat(&repo.objects, meta.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return fail(format!("unlinkat({meta}): {}", io_msg(e))),
        }
    }
    let rel = repo.object_relpath(id, ty);
    if let Err(e) = rustix::fs::unlinkat(&repo.objects, rel.as_str(), AtFlags::empty()) {
        return fail(format!(
            "Deleting object {id}.{ty}: unlinkat({rel}): {}",
            io_msg(e)
        ));
    }
    if ty == ObjectType::Commit
        && repo
            .config()
            .get_bool("core", "tombstone-commits")
            .ok()
            .flatten()
            .unwrap_or(false)
    {
        write_tombstone(repo, id)?;
    }
    Ok(())
}

/// Writes `<commit>.tombstone-commit`: `{'commit': <checksum as a C string>}`.
fn write_tombstone(repo: &Repo, id: &ObjectId) -> Result<(), Failure> {
    let mut hex = id.to_string().into_bytes();
    hex.push(0);
    let value = crate::gvariant::Value::Bytes(hex);
    let bytes = crate::format::metadata_value(&[("commit".to_string(), value)]).to_bytes();
    let path = repo.object_relpath(id, ObjectType::TombstoneCommit);
    let (dir, leaf) = path.split_at(2);
    let shown = repo.object_path(id, ObjectType::TombstoneCommit);
    let dfd = crate::fsutil::open_dir_at(&repo.objects, dir, &shown)?;
    crate::fsutil::replace_file_at(
        &dfd,
        &leaf[1..],
        &bytes,
        0o644,
        repo.fsync_enabled(),
        &shown,
    )?;
    Ok(())
}
