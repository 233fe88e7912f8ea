//! Checking out a tree (or one path inside it) into the filesystem, as `ostree checkout` 2022.7.
//!
//! Semantics follow `ostree-repo-checkout.c`:
//! * Regular files are hardlinked from `objects/` when the repo and checkout modes agree on
//!   ownership: a `bare` repo in normal mode, or a `bare-user`/`bare-user-only` repo in user mode
//!   (`bare-user-only` always checks out in user mode). Symlinks of user-mode repos are
//!   recreated, symlinks of `bare` repos are linked too. Zero-sized files are always copied, and in
//!   user mode so are files their owner cannot read (with `u+r` added).
//! * `archive` repos copy, except in user mode with the uncompressed cache (the `ostree checkout`
//!   default without any `checkout_at` option): objects are decompressed once into
//!   `uncompressed-objects-cache/` and hardlinked from there.
//! * Copies get the object's owner and xattrs (not in user mode) and mode (user mode strips
//!   setuid/setgid); their mtime is the checkout time.
//! * Directories are created 0700, filled, then get their mode, owner (not in user mode) and an
//!   mtime of 0 (not with `force_copy`). Directories that already existed (union modes) are left
//!   alone.
//!
//! Safety: everything below the destination is created with `*at` calls relative to directory
//! descriptors; existing directories are opened with `O_NOFOLLOW`, files are created with
//! `O_EXCL`, links never follow, and replacing (`--union`) renames over the entry itself, so a
//! symlink planted in the destination is never written through. Every name comes from a
//! validated dirtree (no `/`, `.`, `..` or empty names), so nothing escapes the destination.
//!
//! Speed: directories are processed in parallel with rayon (a directory is created, then its
//! files and subdirectories in parallel, then its metadata is set), bare copies use
//! `copy_file_range`, and only the syscalls the result needs are made.

use crate::content::{OSTREEMETA, parse_ostreemeta};
use crate::format::{DirMeta, FileHeader, S_IFLNK, S_IFMT, S_IFREG, Xattrs, checksum_header_bytes};
use crate::fsutil::{unique_tmp_name, write_all};
use crate::read::parse_dirtree;
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, TreeEntry, xattr};
use parking_lot::Mutex;
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// What to do with entries that already exist in the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverwriteMode {
    /// Fail on any existing entry (the default).
    #[default]
    None,
    /// `--union`: keep existing directories, replace existing files.
    UnionFiles,
    /// `--union-add`: keep existing files and directories, add only what is missing.
    AddFiles,
    /// `--union-identical`: like `UnionFiles`, but an existing file must have the same content.
    /// Requires `require_hardlinks`.
    UnionIdentical,
}

/// Options of a checkout, mirroring `OstreeRepoCheckoutAtOptions`.
#[derive(Clone, Debug)]
pub struct CheckoutOptions {
    /// `-U`: do not change ownership or set xattrs; strip setuid/setgid from copies.
    /// Forced on for `bare-user-only` repos.
    pub user_mode: bool,
    /// How to treat existing entries.
    pub overwrite: OverwriteMode,
    /// The path inside the tree to check out, resolved as ostree does (default `/`).
    pub subpath: String,
    /// Succeed without doing anything when `subpath` does not exist.
    pub allow_noent: bool,
    /// `-C`: never hardlink.
    pub force_copy: bool,
    /// `-H`: fail instead of copying when a file cannot be hardlinked.
    pub require_hardlinks: bool,
    /// `-M`: directory modes are masked with 0775 (always so for `bare-user-only` repos).
    pub bareuseronly_dirs: bool,
    /// Use the repository's uncompressed object cache for `archive` repos in user mode.
    pub uncompressed_cache: bool,
    /// Sync files written into the uncompressed cache (also subject to `core.fsync`).
    pub fsync: bool,
}

impl Default for CheckoutOptions {
    fn default() -> Self {
        CheckoutOptions {
            user_mode: false,
            overwrite: OverwriteMode::None,
            subpath: "/".into(),
            allow_noent: false,
            force_copy: false,
            require_hardlinks: false,
            bareuseronly_dirs: false,
            uncompressed_cache: false,
            fsync: true,
        }
    }
}

/// Checks out `source` (a commit's root, a directory, or a file) at `dest_dir`.
///
/// `opts.subpath` is resolved inside `source` first. A directory becomes `dest_dir` itself
/// (created; it must not exist unless a union mode is used). A file is put inside `dest_dir`,
/// which is created (mode 0700) if needed, under the name it has in its directory (a `source`
/// that is itself a file is named by its checksum).
pub fn checkout(
    repo: &Repo,
    source: TreeEntry,
    dest_dir: &Path,
    opts: &CheckoutOptions,
) -> Result<()> {
    if opts.force_copy && opts.require_hardlinks {
        return Err(Error::invalid(
            dest_dir,
            "Cannot specify both --require-hardlinks and --force-copy",
        ));
    }
    if opts.overwrite == OverwriteMode::UnionIdentical && !opts.require_hardlinks {
        return Err(Error::invalid(
            dest_dir,
            "--union-identical requires --require-hardlinks",
        ));
    }
    let (entry, name) = match resolve_subpath(repo, source, &opts.subpath) {
        Ok(found) => found,
        Err(Error::NoSuchPath(_)) if opts.allow_noent => return Ok(()),
        Err(e) => return Err(e),
    };
    let ctx = Ctx::new(repo, opts, dest_dir, matches!(entry, TreeEntry::Dir { .. }))?;
    match entry {
        TreeEntry::Dir { tree, meta } => {
            ctx.checkout_dir(rustix::fs::CWD, dest_dir, dest_dir, &tree, &meta, true)
        }
        TreeEntry::File(id) => {
            let name = name.unwrap_or_else(|| id.to_hex());
            let owned;
            let dfd = if dest_dir == Path::new(".") {
                rustix::fs::CWD
            } else {
                match rustix::fs::mkdirat(rustix::fs::CWD, dest_dir, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).at(dest_dir),
                }
                owned = open_dir(rustix::fs::CWD, dest_dir, true).at(dest_dir)?;
                owned.as_fd()
            };
            ctx.checkout_file(dfd, &name, &id, dest_dir)
        }
    }
}

/// Resolves `subpath` inside `root` exactly as ostree's `OstreeRepoFile` does: a leading `/` is
/// optional, `//` restarts from the root, a trailing `/` names an empty (missing) child, `.` and
/// `..` are ordinary (missing) names. Returns the entry and, unless it is `root` itself, its name.
pub fn resolve_subpath(
    repo: &Repo,
    root: TreeEntry,
    subpath: &str,
) -> Result<(TreeEntry, Option<String>)> {
    let chain = subpath_chain(subpath);
    let mut entry = root;
    let mut shown = String::new();
    for name in &chain {
        let parent_shown = if shown.is_empty() { "/".to_string() } else { shown.clone() };
        shown.push('/');
        shown.push_str(name);
        let TreeEntry::Dir { tree, .. } = entry else {
            return Err(Error::NotADirectory(parent_shown));
        };
        let bytes = repo.read_meta_bytes(&tree, ObjectType::DirTree)?;
        let dt = parse_dirtree(&tree, &bytes)?;
        entry = if let Some(id) = dt.file(name) {
            TreeEntry::File(id)
        } else if let Some((tree, meta)) = dt.dir(name) {
            TreeEntry::Dir { tree, meta }
        } else {
            return Err(Error::NoSuchPath(shown));
        };
    }
    Ok((entry, chain.last().map(|s| s.to_string())))
}

/// The child names ostree's `ostree_repo_file_resolve_relative_path` walks for `subpath`.
fn subpath_chain(subpath: &str) -> Vec<&str> {
    let mut chain: Vec<&str> = Vec::new();
    let mut rel = subpath;
    loop {
        if let Some(rest) = rel.strip_prefix('/') {
            if rest.is_empty() {
                chain.clear();
                return chain;
            }
            if !chain.is_empty() {
                // An absolute path below a child restarts from the root, checked again.
                chain.clear();
                rel = rest;
                continue;
            }
            rel = rest;
        }
        match rel.find('/') {
            Some(pos) => {
                chain.push(&rel[..pos]);
                rel = &rel[pos + 1..];
            }
            None => {
                chain.push(rel);
                return chain;
            }
        }
    }
}

/// Outcome of a hardlink attempt.
enum Link {
    /// The destination now links to the object.
    Linked,
    /// An identical or kept entry was already there.
    Skipped,
    /// Hardlinking is not possible here: copy.
    Unsupported,
}

/// Per-checkout state shared by the worker threads.
struct Ctx<'a> {
    repo: &'a Repo,
    opts: &'a CheckoutOptions,
    mode: RepoMode,
    user: bool,
    /// Archive repo in user mode with the uncompressed cache enabled and writable.
    use_cache: bool,
    cache_dir: OnceLock<OwnedFd>,
    cache_lock: Mutex<()>,
    fsync: bool,
    /// The process umask, when known and when it alone decides created files' modes.
    umask: Option<u32>,
    repo_dev: u64,
    dirmetas: Mutex<HashMap<ObjectId, Arc<DirMeta>>>,
}

impl<'a> Ctx<'a> {
    fn new(repo: &'a Repo, opts: &'a CheckoutOptions, dest: &Path, is_dir: bool) -> Result<Self> {
        let mode = repo.mode();
        let user = opts.user_mode || mode == RepoMode::BareUserOnly;
        let use_cache = mode == RepoMode::Archive
            && user
            && opts.uncompressed_cache
            && repo
                .config()
                .get_bool("core", "enable-uncompressed-cache")
                .ok()
                .flatten()
                .unwrap_or(true)
            && rustix::fs::accessat(
                &repo.objects,
                ".",
                rustix::fs::Access::WRITE_OK,
                AtFlags::empty(),
            )
            .is_ok();
        let cache_dir = OnceLock::new();
        if use_cache {
            match open_dir(&repo.root, Path::new(CACHE_DIR), true) {
                Ok(fd) => {
                    let _ = cache_dir.set(fd);
                }
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
            process_umask()
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
            cache_lock: Mutex::new(()),
            fsync: opts.fsync && repo.fsync_enabled(),
            umask,
            repo_dev,
            dirmetas: Mutex::new(HashMap::new()),
        })
    }

    fn dirmeta(&self, id: &ObjectId) -> Result<Arc<DirMeta>> {
        if let Some(m) = self.dirmetas.lock().get(id) {
            return Ok(m.clone());
        }
        let m = Arc::new(self.repo.read_dirmeta(id)?);
        self.dirmetas.lock().insert(*id, m.clone());
        Ok(m)
    }

    /// Checks out a directory `name` (relative to `parent`), shown as `path` in errors.
    fn checkout_dir(
        &self,
        parent: BorrowedFd<'_>,
        name: &Path,
        path: &Path,
        tree: &ObjectId,
        meta: &ObjectId,
        top: bool,
    ) -> Result<()> {
        let dm = self.dirmeta(meta)?;
        let bytes = self.repo.read_meta_bytes(tree, ObjectType::DirTree)?;
        let dt = parse_dirtree(tree, &bytes)?;

        let did_exist = match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => false,
            Err(Errno::EXIST) if self.opts.overwrite != OverwriteMode::None => true,
            Err(e) => return Err(e).at(path),
        };
        // The destination itself may be a symlink the caller chose; nothing below it is followed.
        let fd = open_dir(parent, name, top).at(path)?;
        if self.opts.require_hardlinks {
            let dev = rustix::fs::fstat(&fd).at(path)?.st_dev as u64;
            if dev != self.repo_dev {
                return Err(Error::invalid(
                    path,
                    format!(
                        "Unable to do hardlink checkout across devices (src={} destination={dev})",
                        self.repo_dev
                    ),
                ));
            }
        }
        self.fill_dir(&fd, path, &dt, &dm, did_exist)
    }

    fn fill_dir(
        &self,
        fd: &OwnedFd,
        path: &Path,
        dt: &crate::format::DirTreeRef<'_>,
        dm: &DirMeta,
        did_exist: bool,
    ) -> Result<()> {
        if !did_exist && !self.user && !dm.xattrs.is_empty() {
            xattr::set_fd(fd, &dm.xattrs).at(path)?;
        }
        let dfd = fd.as_fd();
        let files = || {
            dt.files
                .par_iter()
                .with_min_len(4)
                .try_for_each(|(name, id)| self.checkout_file(dfd, name, id, path))
        };
        let dirs = || {
            dt.dirs.par_iter().try_for_each(|(name, tree, meta)| {
                self.checkout_dir(dfd, Path::new(name), &path.join(name), tree, meta, false)
            })
        };
        let (f, d) = if dt.dirs.is_empty() {
            (files(), Ok(()))
        } else if dt.files.is_empty() {
            (Ok(()), dirs())
        } else {
            rayon::join(files, dirs)
        };
        f?;
        d?;

        if !did_exist {
            let mode = if self.mode == RepoMode::BareUserOnly || self.opts.bareuseronly_dirs {
                dm.mode & 0o775
            } else {
                dm.mode & 0o7777
            };
            rustix::fs::fchmod(fd, Mode::from_raw_mode(mode)).at(path)?;
            if !self.user {
                rustix::fs::fchown(fd, Some(uid(dm.uid)), Some(gid(dm.gid))).at(path)?;
            }
            if !self.opts.force_copy {
                let times = Timestamps {
                    last_access: Timespec {
                        tv_sec: 0,
                        tv_nsec: rustix::fs::UTIME_OMIT,
                    },
                    last_modification: Timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                };
                rustix::fs::futimens(fd, &times).at(path)?;
            }
        }
        Ok(())
    }

    /// Checks out the content object `id` as `name` in `dfd` (shown as `dir/name`).
    fn checkout_file(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        id: &ObjectId,
        dir: &Path,
    ) -> Result<()> {
        if self.mode == RepoMode::Archive {
            self.file_from_archive(dfd, name, id, dir)
        } else {
            self.file_from_bare(dfd, name, id, dir)
        }
    }

    fn missing_or(&self, id: &ObjectId, e: Errno) -> Error {
        if e == Errno::NOENT {
            Error::MissingObject {
                id: *id,
                ty: ObjectType::File,
            }
        } else {
            Error::io(self.repo.object_path(id, ObjectType::File), e)
        }
    }

    fn corrupt(id: &ObjectId, why: &str) -> Error {
        Error::corrupt(*id, ObjectType::File, why)
    }

    /// The `-H` error when this repo/checkout mode pair cannot hardlink.
    fn cannot_hardlink(&self, dir: &Path, name: &str) -> Error {
        let usermode_repo = matches!(self.mode, RepoMode::BareUser | RepoMode::BareUserOnly);
        Error::invalid(
            dir.join(name),
            if usermode_repo {
                "User repository mode requires user checkout mode to hardlink"
            } else {
                "Bare repository mode cannot hardlink in user checkout mode"
            },
        )
    }

    fn file_from_bare(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        id: &ObjectId,
        dir: &Path,
    ) -> Result<()> {
        let objects = self.repo.objects.as_fd();
        let rel = id.loose_path("file");
        let st = rustix::fs::statat(objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.missing_or(id, e))?;
        let ftype = st.st_mode & S_IFMT;
        if ftype != S_IFREG && ftype != S_IFLNK {
            return Err(Self::corrupt(id, "not a regular file or symlink"));
        }
        let usermode_repo = self.mode != RepoMode::Bare;
        // Owner, mode and xattrs as ostree's load_file reports them.
        let (mode, owner, meta_xattrs) = match self.mode {
            RepoMode::BareUser => {
                if ftype != S_IFREG {
                    return Err(Self::corrupt(id, "unexpected symlink object"));
                }
                let path = self.repo.object_path(id, ObjectType::File);
                let raw = get_xattr_path(&path, OSTREEMETA)
                    .at(&path)?
                    .ok_or_else(|| Self::corrupt(id, "missing user.ostreemeta xattr"))?;
                let (u, g, m, x) =
                    parse_ostreemeta(&raw).map_err(|why| Error::corrupt(*id, ObjectType::File, why))?;
                let fmt = m & S_IFMT;
                if (fmt != S_IFREG && fmt != S_IFLNK) || m & !(S_IFMT | 0o7777) != 0 {
                    return Err(Self::corrupt(id, "invalid mode in user.ostreemeta"));
                }
                (m, (u, g), Some(x))
            }
            RepoMode::BareUserOnly => (st.st_mode, (0, 0), Some(Xattrs::default())),
            _ => (st.st_mode, (st.st_uid, st.st_gid), None),
        };
        let is_symlink = mode & S_IFMT == S_IFLNK;
        let zero_sized = !is_symlink && st.st_size == 0;
        let unreadable = self.user && !is_symlink && mode & 0o400 == 0;
        if !(zero_sized || unreadable) && !self.opts.force_copy {
            let hardlinkable = (self.mode == RepoMode::Bare && !self.user)
                || (usermode_repo && self.user);
            let user_symlink = usermode_repo && is_symlink;
            if self.opts.require_hardlinks && !hardlinkable && !user_symlink {
                return Err(self.cannot_hardlink(dir, name));
            }
            if hardlinkable && !user_symlink {
                match self.hardlink(objects, &rel, dfd, name, id, dir, true)? {
                    Link::Linked | Link::Skipped => return Ok(()),
                    Link::Unsupported => {}
                }
            }
        }

        // Copy.
        let owner = (!self.user).then_some(owner);
        if is_symlink {
            let target = if self.mode == RepoMode::BareUser {
                let fd = self.open_object(objects, &rel, id)?;
                let mut buf = Vec::new();
                std::fs::File::from(fd)
                    .take(libc::PATH_MAX as u64 + 1)
                    .read_to_end(&mut buf)
                    .at(self.repo.object_path(id, ObjectType::File))?;
                if buf.pop() != Some(0) || buf.contains(&0) {
                    return Err(Self::corrupt(id, "symlink object not NUL-terminated"));
                }
                buf
            } else {
                rustix::fs::readlinkat(objects, rel.as_str(), Vec::new())
                    .map_err(|e| self.missing_or(id, e))?
                    .into_bytes()
            };
            let xattrs = if self.user {
                None
            } else if let Some(x) = meta_xattrs {
                Some(x)
            } else {
                let path = self.repo.object_path(id, ObjectType::File);
                Some(xattr::read_path(&path).at(&path)?)
            };
            return self.write_symlink(dfd, name, dir, &target, owner, xattrs.as_ref());
        }
        let fd = self.open_object(objects, &rel, id)?;
        let xattrs = if self.user {
            None
        } else if let Some(x) = meta_xattrs {
            Some(x)
        } else {
            Some(xattr::read_fd(&fd).at(self.repo.object_path(id, ObjectType::File))?)
        };
        let mode = if unreadable { mode | 0o400 } else { mode };
        self.write_regular(
            dfd,
            name,
            dir,
            Source::Fd(&fd, st.st_size as u64),
            mode,
            owner,
            xattrs.as_ref(),
            id,
        )
    }

    fn open_object(&self, dir: BorrowedFd<'_>, rel: &str, id: &ObjectId) -> Result<OwnedFd> {
        rustix::fs::openat(
            dir,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| self.missing_or(id, e))
    }

    fn file_from_archive(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        id: &ObjectId,
        dir: &Path,
    ) -> Result<()> {
        let mut obj = self.repo.open_content(id)?;
        let h = &obj.header;
        let is_symlink = h.is_symlink();
        let zero_sized = !is_symlink && obj.size == 0;
        let unreadable = self.user && !is_symlink && h.mode & 0o400 == 0;
        if !(zero_sized || unreadable) && !self.opts.force_copy {
            if self.opts.require_hardlinks {
                return Err(self.cannot_hardlink(dir, name));
            }
            if self.use_cache && !is_symlink {
                let bare_rel = id.loose_path("file");
                if let Some(cache) = self.cache_dir.get() {
                    match self.hardlink(cache.as_fd(), &bare_rel, dfd, name, id, dir, true)? {
                        Link::Linked | Link::Skipped => return Ok(()),
                        Link::Unsupported => {}
                    }
                }
                let cache = self.write_cache_object(id, &bare_rel, h.mode, &mut obj.body)?;
                match self.hardlink(cache.as_fd(), &bare_rel, dfd, name, id, dir, false)? {
                    Link::Linked | Link::Skipped => return Ok(()),
                    Link::Unsupported => obj = self.repo.open_content(id)?,
                }
            }
        }
        let h = &obj.header;
        let owner = (!self.user).then_some((h.uid, h.gid));
        let xattrs = (!self.user).then_some(&h.xattrs);
        if is_symlink {
            return self.write_symlink(
                dfd,
                name,
                dir,
                h.symlink_target.as_bytes(),
                owner,
                xattrs,
            );
        }
        let mode = if unreadable { h.mode | 0o400 } else { h.mode };
        let xattrs = xattrs.cloned();
        self.write_regular(
            dfd,
            name,
            dir,
            Source::Stream(&mut obj.body),
            mode,
            owner,
            xattrs.as_ref(),
            id,
        )
    }

    /// Decompresses an archive object into `uncompressed-objects-cache/xx/yyy.file`.
    fn write_cache_object(
        &self,
        id: &ObjectId,
        bare_rel: &str,
        mode: u32,
        body: &mut dyn Read,
    ) -> Result<&OwnedFd> {
        let cache = self.ensure_cache_dir()?;
        let cache_path = self.repo.path().join(CACHE_DIR);
        let prefix = &bare_rel[..2];
        match rustix::fs::mkdirat(cache, prefix, Mode::from_raw_mode(0o775)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at(cache_path.join(prefix)),
        }
        let tmp = format!("{prefix}/{}", unique_tmp_name(".tmp-checkout-"));
        let tmp_path = cache_path.join(&tmp);
        let fd = rustix::fs::openat(
            cache,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::from_raw_mode(0o600),
        )
        .at(&tmp_path)?;
        let result = (|| {
            copy_stream(body, &fd).map_err(|e| match e {
                CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                CopyError::Write(e) => Error::io(&tmp_path, e),
            })?;
            if self.fsync {
                rustix::fs::fsync(&fd).at(&tmp_path)?;
            }
            // No setuid/setgid files in the cache.
            let mode = mode & 0o7777 & !0o6000;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).at(&tmp_path)?;
            match rustix::fs::linkat(cache, tmp.as_str(), cache, bare_rel, AtFlags::empty()) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(e).at(cache_path.join(bare_rel)),
            }
        })();
        let _ = rustix::fs::unlinkat(cache, tmp.as_str(), AtFlags::empty());
        result.map(|()| cache)
    }

    fn ensure_cache_dir(&self) -> Result<&OwnedFd> {
        if let Some(fd) = self.cache_dir.get() {
            return Ok(fd);
        }
        let _guard = self.cache_lock.lock();
        if let Some(fd) = self.cache_dir.get() {
            return Ok(fd);
        }
        let path = self.repo.path().join(CACHE_DIR);
        match rustix::fs::mkdirat(&self.repo.root, CACHE_DIR, Mode::from_raw_mode(0o775)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at(&path),
        }
        let fd = open_dir(&self.repo.root, Path::new(CACHE_DIR), true).at(&path)?;
        Ok(self.cache_dir.get_or_init(|| fd))
    }

    /// Links `src_dir/rel` as `name` in `dfd`, handling existing entries per the overwrite mode.
    #[allow(clippy::too_many_arguments)]
    fn hardlink(
        &self,
        src_dir: BorrowedFd<'_>,
        rel: &str,
        dfd: BorrowedFd<'_>,
        name: &str,
        id: &ObjectId,
        dir: &Path,
        allow_noent: bool,
    ) -> Result<Link> {
        let err = match rustix::fs::linkat(src_dir, rel, dfd, name, AtFlags::empty()) {
            Ok(()) => return Ok(Link::Linked),
            Err(e) => e,
        };
        if matches!(err, Errno::MLINK | Errno::XDEV | Errno::PERM) && !self.opts.require_hardlinks
        {
            return Ok(Link::Unsupported);
        }
        if err == Errno::NOENT && allow_noent {
            return Ok(Link::Unsupported);
        }
        if err != Errno::EXIST {
            return Err(Error::io(dir.join(name), err));
        }
        match self.opts.overwrite {
            OverwriteMode::None => Err(Error::io(dir.join(name), err)),
            OverwriteMode::AddFiles => Ok(Link::Skipped),
            OverwriteMode::UnionFiles | OverwriteMode::UnionIdentical => {
                let src = rustix::fs::statat(src_dir, rel, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.missing_or(id, e))?;
                let dst = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .at(dir.join(name))?;
                let mut identical = src.st_dev == dst.st_dev && src.st_ino == dst.st_ino;
                if !identical
                    && src.st_mode == dst.st_mode
                    && (src.st_mode & S_IFMT != S_IFREG || src.st_size == dst.st_size)
                    && src.st_uid == dst.st_uid
                    && src.st_gid == dst.st_gid
                {
                    identical = self.checksum_existing(dfd, name, dir, &dst)? == Some(*id);
                }
                if identical {
                    Ok(Link::Skipped)
                } else if self.opts.overwrite == OverwriteMode::UnionFiles {
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::linkat(src_dir, rel, dfd, tmp.as_str(), AtFlags::empty())
                        .at(dir.join(name))?;
                    if let Err(e) = rustix::fs::renameat(dfd, tmp.as_str(), dfd, name) {
                        let _ = rustix::fs::unlinkat(dfd, tmp.as_str(), AtFlags::empty());
                        return Err(e).at(dir.join(name));
                    }
                    Ok(Link::Linked)
                } else {
                    Err(Error::io(dir.join(name), err))
                }
            }
        }
    }

    /// The content checksum of an existing destination entry, as ostree computes it to decide
    /// whether a union checkout may keep it.
    fn checksum_existing(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        dir: &Path,
        st: &rustix::fs::Stat,
    ) -> Result<Option<ObjectId>> {
        let shown = dir.join(name);
        let canonical = self.mode == RepoMode::BareUserOnly;
        let ftype = st.st_mode & S_IFMT;
        let mut header = FileHeader {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            symlink_target: String::new(),
            xattrs: Xattrs::default(),
        };
        let mut file = None;
        if ftype == S_IFREG {
            let fd = rustix::fs::openat(
                dfd,
                name,
                OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
            )
            .at(&shown)?;
            if canonical {
                header.uid = 0;
                header.gid = 0;
            } else {
                header.xattrs = xattr::read_fd(&fd).at(&shown)?;
            }
            file = Some(std::fs::File::from(fd));
        } else if ftype == S_IFLNK {
            let target = rustix::fs::readlinkat(dfd, name, Vec::new()).at(&shown)?;
            header.symlink_target = String::from_utf8_lossy(target.as_bytes()).into_owned();
            if !canonical {
                header.xattrs = xattr::read_path(&proc_path(dfd, name)).at(&shown)?;
            }
        } else {
            // Not a file ostree could store: never identical.
            return Ok(None);
        }
        let mut hasher = crate::checksum::Hasher::default();
        hasher.update(&checksum_header_bytes(&header));
        if let Some(mut f) = file {
            std::io::copy(&mut f, &mut hasher).at(&shown)?;
        }
        Ok(Some(hasher.finish()))
    }

    /// Creates a symlink; `owner`/`xattrs` are applied unless in user mode.
    #[allow(clippy::too_many_arguments)]
    fn write_symlink(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        dir: &Path,
        target: &[u8],
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
    ) -> Result<()> {
        let target = std::ffi::OsStr::from_bytes(target);
        match rustix::fs::symlinkat(target, dfd, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => match self.opts.overwrite {
                OverwriteMode::None => return Err(Errno::EXIST).at(dir.join(name)),
                OverwriteMode::AddFiles => return Ok(()),
                OverwriteMode::UnionIdentical => {
                    let st = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .at(dir.join(name))?;
                    if st.st_mode & S_IFMT == S_IFLNK {
                        let existing =
                            rustix::fs::readlinkat(dfd, name, Vec::new()).at(dir.join(name))?;
                        if existing.as_bytes() == target.as_encoded_bytes() {
                            return Ok(());
                        }
                    }
                    return Err(Errno::EXIST).at(dir.join(name));
                }
                OverwriteMode::UnionFiles => {
                    // Replace the entry itself (never what a symlink points to). Like ostree,
                    // a replaced symlink keeps the caller's ownership and gets no xattrs.
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::symlinkat(target, dfd, tmp.as_str()).at(dir.join(name))?;
                    if let Err(e) = rustix::fs::renameat(dfd, tmp.as_str(), dfd, name) {
                        let _ = rustix::fs::unlinkat(dfd, tmp.as_str(), AtFlags::empty());
                        return Err(e).at(dir.join(name));
                    }
                    return Ok(());
                }
            },
            Err(e) => return Err(e).at(dir.join(name)),
        }
        if let Some((u, g)) = owner {
            rustix::fs::chownat(dfd, name, Some(uid(u)), Some(gid(g)), AtFlags::SYMLINK_NOFOLLOW)
                .at(dir.join(name))?;
        }
        if let Some(x) = xattrs
            && !x.is_empty()
        {
            xattr::set_path(&proc_path(dfd, name), x).at(dir.join(name))?;
        }
        Ok(())
    }

    /// Creates a regular file with `src`'s content; `owner`/`xattrs` are applied unless in user
    /// mode.
    #[allow(clippy::too_many_arguments)]
    fn write_regular(
        &self,
        dfd: BorrowedFd<'_>,
        name: &str,
        dir: &Path,
        src: Source<'_>,
        mode: u32,
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
        id: &ObjectId,
    ) -> Result<()> {
        let mode = if self.user {
            mode & 0o7777 & !0o6000
        } else {
            mode & 0o7777
        };
        let create = |n: &str| {
            rustix::fs::openat(
                dfd,
                n,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode & 0o777),
            )
        };
        let (fd, tmp) = match create(name) {
            Ok(fd) => (fd, None),
            Err(Errno::EXIST) => match self.opts.overwrite {
                OverwriteMode::None => return Err(Errno::EXIST).at(dir.join(name)),
                OverwriteMode::AddFiles => return Ok(()),
                OverwriteMode::UnionIdentical => {
                    let st = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .at(dir.join(name))?;
                    if self.checksum_existing(dfd, name, dir, &st)? == Some(*id) {
                        return Ok(());
                    }
                    return Err(Errno::EXIST).at(dir.join(name));
                }
                OverwriteMode::UnionFiles => {
                    let tmp = unique_tmp_name(".checkout-union-");
                    (create(&tmp).at(dir.join(name))?, Some(tmp))
                }
            },
            Err(e) => return Err(e).at(dir.join(name)),
        };
        let shown = || dir.join(name);
        let result = (|| {
            match src {
                Source::Fd(src, size) => copy_fd(src, &fd, size).map_err(|e| match e {
                    CopyError::Read(e) => Error::io(self.repo.object_path(id, ObjectType::File), e),
                    CopyError::Write(e) => Error::io(shown(), e),
                })?,
                Source::Stream(body) => copy_stream(body, &fd).map_err(|e| match e {
                    CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                    CopyError::Write(e) => Error::io(shown(), e),
                })?,
            }
            if let Some((u, g)) = owner {
                rustix::fs::fchown(&fd, Some(uid(u)), Some(gid(g))).at(shown())?;
            }
            if let Some(x) = xattrs {
                xattr::set_fd(&fd, x).at(shown())?;
            }
            if mode & 0o7000 != 0 || self.umask.is_none_or(|m| mode & m != 0) {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).at(shown())?;
            }
            if let Some(tmp) = &tmp {
                rustix::fs::renameat(dfd, tmp.as_str(), dfd, name).at(shown())?;
            }
            Ok(())
        })();
        if result.is_err()
            && let Some(tmp) = &tmp
        {
            let _ = rustix::fs::unlinkat(dfd, tmp.as_str(), AtFlags::empty());
        }
        result
    }
}

const CACHE_DIR: &str = "uncompressed-objects-cache";

/// Where copied content comes from.
enum Source<'s> {
    /// An uncompressed object file and its size.
    Fd(&'s OwnedFd, u64),
    /// A decompressing reader.
    Stream(&'s mut dyn Read),
}

enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `size` bytes from `src` to `dst` in the kernel, falling back to read/write.
fn copy_fd(src: &OwnedFd, dst: &OwnedFd, size: u64) -> Result<(), CopyError> {
    let mut left = size;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, None, dst, None, chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => left -= n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) => {
                let mut file = std::fs::File::from(src.try_clone().map_err(CopyError::Read)?);
                return copy_stream(&mut file, dst);
            }
            // Which side failed is unknown; report it at the destination.
            Err(e) => return Err(CopyError::Write(e.into())),
        }
    }
    Ok(())
}

/// Copies everything `src` yields to `dst`.
fn copy_stream(src: &mut dyn Read, dst: &OwnedFd) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        write_all(dst, &buf[..n]).map_err(CopyError::Write)?;
    }
}

/// Opens a directory, following a final symlink only when `follow`.
fn open_dir(parent: impl AsFd, name: &Path, follow: bool) -> rustix::io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::openat(parent, name, flags, Mode::empty())
}

/// `/proc/self/fd/N/name`: a path to an entry that does not depend on the directory's path.
fn proc_path(dfd: BorrowedFd<'_>, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dfd.as_raw_fd()))
}

/// One xattr of a path (not following a final symlink), `None` when unset.
fn get_xattr_path(path: &Path, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    let mut buf = vec![0u8; 256];
    loop {
        match rustix::fs::lgetxattr(path, name, &mut buf[..]) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::NODATA) | Err(Errno::NOTSUP) => return Ok(None),
            Err(Errno::RANGE) => {
                let need = rustix::fs::lgetxattr(path, name, &mut [0u8; 0][..])?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether a directory has a default ACL (which then decides new files' modes, not the umask).
fn has_default_acl(dir: &Path) -> bool {
    !matches!(
        rustix::fs::getxattr(dir, "system.posix_acl_default", &mut [0u8; 0][..]),
        Err(Errno::NODATA) | Err(Errno::NOTSUP)
    )
}

/// The process umask, read without changing it (`Umask:` of `/proc/self/status`).
fn process_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}

fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}

#[cfg(test)]
mod tests {
    use super::subpath_chain;

    #[test]
    fn subpaths_resolve_like_ostree() {
        let empty: Vec<&str> = Vec::new();
        assert_eq!(subpath_chain("/"), empty);
        assert_eq!(subpath_chain("/sub"), vec!["sub"]);
        assert_eq!(subpath_chain("sub"), vec!["sub"]);
        assert_eq!(subpath_chain("/sub/a"), vec!["sub", "a"]);
        assert_eq!(subpath_chain(""), vec![""]);
        assert_eq!(subpath_chain("."), vec!["."]);
        assert_eq!(subpath_chain("sub/"), vec!["sub", ""]);
        assert_eq!(subpath_chain("//sub"), vec!["", "sub"]);
        assert_eq!(subpath_chain("sub//deep"), vec!["deep"]);
        assert_eq!(subpath_chain("/a/b/"), vec!["a", "b", ""]);
        assert_eq!(subpath_chain("/sub/../x"), vec!["sub", "..", "x"]);
    }
}
