//! Per-checkout state shared by the worker threads, where entries go, and the object reads
//! the walk needs (with fewer syscalls than the store's read API: checkouts read every object).

use super::fsops::has_default_acl;
use super::{CheckoutOptions, OverwriteMode};
use crate::format::DirMeta;
use crate::fsutil::openat_dir;
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The uncompressed object cache of archive repositories, below the repository root.
pub(super) const CACHE_DIR: &str = "uncompressed-objects-cache";

/// A destination directory's path as a chain of names, built into a `PathBuf` only for errors
/// (so deep trees cost memory linear in their depth).
pub(super) struct DirPath<'p> {
    pub(super) parent: Option<&'p DirPath<'p>>,
    pub(super) name: &'p Path,
}

impl DirPath<'_> {
    pub(super) fn to_path(&self) -> PathBuf {
        match self.parent {
            Some(p) => p.to_path().join(self.name),
            None => self.name.to_path_buf(),
        }
    }
}

/// Where a file goes: a name in an open directory.
pub(super) struct Slot<'s> {
    pub(super) dfd: BorrowedFd<'s>,
    pub(super) name: &'s str,
    pub(super) dir: &'s DirPath<'s>,
}

impl Slot<'_> {
    /// The full path, for errors.
    pub(super) fn path(&self) -> PathBuf {
        self.dir.to_path().join(self.name)
    }

    /// Maps a syscall error to an error naming this entry.
    pub(super) fn err(&self, e: impl Into<std::io::Error>) -> Error {
        Error::io(self.path(), e)
    }
}

/// Outcome of a hardlink attempt.
pub(super) enum Link {
    /// The destination now links to the object, or a kept/identical entry was already there.
    Done,
    /// Hardlinking is not possible here: copy.
    Unsupported,
}

/// Per-checkout state shared by the worker threads.
pub(super) struct Ctx<'a> {
    pub(super) repo: &'a Repo,
    pub(super) opts: &'a CheckoutOptions,
    pub(super) mode: RepoMode,
    pub(super) user: bool,
    /// Archive repo in user mode with the uncompressed cache enabled and writable.
    pub(super) use_cache: bool,
    pub(super) cache_dir: OnceLock<OwnedFd>,
    pub(super) cache_lock: parking_lot::Mutex<()>,
    pub(super) fsync: bool,
    /// The process umask, when it alone decides created files' modes.
    pub(super) umask: Option<u32>,
    pub(super) repo_dev: u64,
    /// `objects/xx` directories, opened once: object lookups then walk a single name.
    pub(super) prefixes: [OnceLock<Option<OwnedFd>>; 256],
    pub(super) dirmetas:
        parking_lot::Mutex<std::collections::HashMap<ObjectId, std::sync::Arc<DirMeta>>>,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(
        repo: &'a Repo,
        opts: &'a CheckoutOptions,
        dest: &Path,
        is_dir: bool,
    ) -> Result<Self> {
        let mode = repo.mode();
        let user = opts.user_mode || mode == RepoMode::BareUserOnly;
        let cache_config = repo.config().get_bool("core", "enable-uncompressed-cache");
        let writable = rustix::fs::accessat(
            &repo.objects,
            ".",
            rustix::fs::Access::WRITE_OK,
            AtFlags::empty(),
        )
        .is_ok();
        let use_cache = mode == RepoMode::Archive
            && user
            && opts.uncompressed_cache
            && cache_config.ok().flatten().unwrap_or(true)
            && writable;
        let cache_dir = OnceLock::new();
        if use_cache {
            match openat_dir(&repo.root, CACHE_DIR, true) {
                Ok(fd) => drop(cache_dir.set(fd)),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(e).at(repo.path().join(CACHE_DIR)),
            }
        }
        let repo_dev = rustix::fs::fstat(&repo.root).at(repo.path())?.st_dev as u64;
        // New files get their final mode at creation when only the umask could change it; with
        // existing directories (union modes, a single file put into an existing directory) or
        // default ACLs inherited from the destination's parent, every file is chmod'ed.
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let umask = if opts.overwrite == OverwriteMode::None && is_dir && !has_default_acl(parent) {
            Some(crate::fsutil::umask())
        } else {
            None
        };
        Ok(Ctx {
            repo,
            opts,
            mode,
            user,
            use_cache,
            cache_dir,
            cache_lock: parking_lot::Mutex::new(()),
            fsync: opts.fsync && repo.fsync_enabled(),
            umask,
            repo_dev,
            prefixes: [const { OnceLock::new() }; 256],
            dirmetas: Default::default(),
        })
    }

    /// The `objects/xx` directory of `id` and the object's name in it (`yyy.file`).
    pub(super) fn object_at(
        &self,
        id: &ObjectId,
        ty: ObjectType,
    ) -> Result<(BorrowedFd<'_>, String)> {
        let mut rel = self.repo.object_relpath(id, ty);
        let dir = self.prefixes[id.0[0] as usize]
            .get_or_init(|| openat_dir(&self.repo.objects, &rel[..2], false).ok());
        match dir {
            Some(fd) => Ok((fd.as_fd(), rel.split_off(3))),
            None => Err(Error::MissingObject { id: *id, ty }),
        }
    }

    /// A metadata object's bytes: like [`Repo::read_meta_bytes`] with fewer syscalls (one
    /// single-name open, a stat, usually one read).
    pub(super) fn read_meta(&self, id: &ObjectId, ty: ObjectType) -> Result<Vec<u8>> {
        let (dir, name) = self.object_at(id, ty)?;
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = match rustix::fs::openat(dir, name.as_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(Error::MissingObject { id: *id, ty }),
            Err(e) => return Err(Error::io(self.repo.object_path(id, ty), e)),
        };
        let err = |e: Errno| Error::io(self.repo.object_path(id, ty), e);
        // Objects never change: read exactly the size stat reports (no EOF probe).
        let size = rustix::fs::fstat(&fd)
            .map_err(err)?
            .st_size
            .clamp(0, 1 << 30) as usize;
        let mut buf = vec![0u8; size];
        let mut filled = 0;
        while filled < size {
            match rustix::io::read(&fd, &mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(err(e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// A dirmeta, parsed once per checkout (trees share a handful).
    pub(super) fn dirmeta(&self, id: &ObjectId) -> Result<std::sync::Arc<DirMeta>> {
        if let Some(m) = self.dirmetas.lock().get(id) {
            return Ok(m.clone());
        }
        let bytes = self.read_meta(id, ObjectType::DirMeta)?;
        let m =
            DirMeta::parse(&bytes).map_err(|why| Error::corrupt(*id, ObjectType::DirMeta, why))?;
        let m = std::sync::Arc::new(m);
        self.dirmetas.lock().insert(*id, m.clone());
        Ok(m)
    }

    /// An error reading content object `id` (missing when absent).
    pub(super) fn object_err(&self, id: &ObjectId, e: Errno) -> Error {
        if e == Errno::NOENT {
            Error::MissingObject {
                id: *id,
                ty: ObjectType::File,
            }
        } else {
            Error::io(self.repo.object_path(id, ObjectType::File), e)
        }
    }

    /// Opens a content object without following a symlink.
    pub(super) fn open_object(
        &self,
        dir: BorrowedFd<'_>,
        name: &str,
        id: &ObjectId,
    ) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| self.object_err(id, e))
    }
}
