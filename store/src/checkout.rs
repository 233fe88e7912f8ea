//! Checking out a tree (or one path inside it) into the filesystem, as `ostree checkout` 2022.7.
//!
//! Semantics follow `ostree-repo-checkout.c`:
//! * Regular files are hardlinked from `objects/` when the repo and checkout modes agree on
//!   ownership: a `bare` repo in normal mode, or a `bare-user`/`bare-user-only` repo in user mode
//!   (`bare-user-only` always checks out in user mode). Symlinks of user-mode repos are
//!   recreated, symlinks of `bare` repos are linked too. Zero-sized files are always copied, and in
//!   user mode so are files their owner cannot read (with `u+r` added).
//! * `archive` repos copy, except in user mode with the uncompressed cache (what `ostree checkout`
//!   does without any `checkout_at` option): objects are decompressed once into
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
//! symlink planted in the destination is never written through (ostree follows a symlink found
//! where the tree has a directory; rostree refuses it). Every name comes from a validated dirtree
//! (no `/`, `.`, `..` or empty names), so nothing escapes the destination. Depth is bounded.
//!
//! Speed: a directory is created, then its files and subdirectories are checked out in parallel
//! (rayon), then its metadata is set; bare copies use `copy_file_range`; a file costs only the
//! syscalls its result needs (a stat and a link, or a stat, two opens and a copy).

use crate::content::{OSTREEMETA, parse_ostreemeta};
use crate::format::{
    DirMeta, DirTreeRef, FileHeader, S_IFLNK, S_IFMT, S_IFREG, Xattrs, checksum_header_bytes,
};
use crate::fsutil::{unique_tmp_name, write_all};
use crate::read::parse_dirtree;
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, TreeEntry, xattr};
use rayon::prelude::*;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

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

/// Directories nested deeper than this are refused rather than risking the stack.
pub const MAX_DEPTH: usize = 8192;
/// Stack of the checkout threads: room for [`MAX_DEPTH`] levels of recursion (only touched
/// pages are ever allocated).
const STACK_SIZE: usize = 256 << 20;
const CACHE_DIR: &str = "uncompressed-objects-cache";

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
    let top = DirPath {
        parent: None,
        name: dest_dir,
    };
    match entry {
        TreeEntry::Dir { tree, meta } => {
            let run = || ctx.checkout_dir(rustix::fs::CWD, &top, &tree, &meta, 0);
            match rayon::ThreadPoolBuilder::new()
                .stack_size(STACK_SIZE)
                .thread_name(|i| format!("checkout-{i}"))
                .build()
            {
                Ok(pool) => pool.install(run),
                // No room for big stacks: the global pool still works for common depths.
                Err(_) => run(),
            }
        }
        TreeEntry::File(id) => {
            let name = name.unwrap_or_else(|| id.to_hex());
            let owned;
            let dfd = if dest_dir == Path::new(".") {
                rustix::fs::CWD
            } else {
                let mode = Mode::from_raw_mode(0o700);
                match rustix::fs::mkdirat(rustix::fs::CWD, dest_dir, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).at(dest_dir),
                }
                owned = open_dir(rustix::fs::CWD, dest_dir, true).at(dest_dir)?;
                owned.as_fd()
            };
            let slot = Slot {
                dfd,
                name: &name,
                dir: &top,
            };
            ctx.checkout_file(&slot, &id)
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
        let TreeEntry::Dir { tree, .. } = entry else {
            return Err(Error::NotADirectory(shown));
        };
        shown.push('/');
        shown.push_str(name);
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

/// A destination directory's path as a chain of names, built into a `PathBuf` only for errors
/// (so deep trees cost memory linear in their depth).
struct DirPath<'p> {
    parent: Option<&'p DirPath<'p>>,
    name: &'p Path,
}

impl DirPath<'_> {
    fn to_path(&self) -> PathBuf {
        match self.parent {
            Some(p) => p.to_path().join(self.name),
            None => self.name.to_path_buf(),
        }
    }
}

/// Where a file goes: a name in an open directory.
struct Slot<'s> {
    dfd: BorrowedFd<'s>,
    name: &'s str,
    dir: &'s DirPath<'s>,
}

impl Slot<'_> {
    /// The full path, for errors.
    fn path(&self) -> PathBuf {
        self.dir.to_path().join(self.name)
    }

    /// Maps a syscall error to an error naming this entry.
    fn err(&self, e: impl Into<std::io::Error>) -> Error {
        Error::io(self.path(), e)
    }
}

/// Outcome of a hardlink attempt.
enum Link {
    /// The destination now links to the object, or a kept/identical entry was already there.
    Done,
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
    cache_lock: parking_lot::Mutex<()>,
    fsync: bool,
    /// The process umask, when known and when it alone decides created files' modes.
    umask: Option<u32>,
    repo_dev: u64,
    /// `objects/xx` directories, opened once: object lookups then walk a single name.
    prefixes: [OnceLock<Option<OwnedFd>>; 256],
    dirmetas: parking_lot::Mutex<std::collections::HashMap<ObjectId, std::sync::Arc<DirMeta>>>,
}

impl<'a> Ctx<'a> {
    fn new(repo: &'a Repo, opts: &'a CheckoutOptions, dest: &Path, is_dir: bool) -> Result<Self> {
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
            match open_dir(&repo.root, Path::new(CACHE_DIR), true) {
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
            cache_lock: parking_lot::Mutex::new(()),
            fsync: opts.fsync && repo.fsync_enabled(),
            umask,
            repo_dev,
            prefixes: [const { OnceLock::new() }; 256],
            dirmetas: Default::default(),
        })
    }

    /// The `objects/xx` directory of `id` and the object's name in it (`yyy.file`).
    fn object_at(&self, id: &ObjectId, ty: ObjectType) -> Result<(BorrowedFd<'_>, String)> {
        let hex = id.to_hex();
        let dir = self.prefixes[id.0[0] as usize]
            .get_or_init(|| open_dir(&self.repo.objects, Path::new(&hex[..2]), false).ok());
        match dir {
            Some(fd) => Ok((
                fd.as_fd(),
                format!("{}.{}", &hex[2..], self.mode.suffix(ty)),
            )),
            None => Err(Error::MissingObject { id: *id, ty }),
        }
    }

    /// A metadata object's bytes: like [`Repo::read_meta_bytes`] with fewer syscalls (one
    /// single-name open, a stat, usually one read).
    fn read_meta(&self, id: &ObjectId, ty: ObjectType) -> Result<Vec<u8>> {
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
    fn dirmeta(&self, id: &ObjectId) -> Result<std::sync::Arc<DirMeta>> {
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

    /// Checks out directory `at.name` (relative to `parent`) from `tree` and `meta`.
    fn checkout_dir(
        &self,
        parent: BorrowedFd<'_>,
        at: &DirPath<'_>,
        tree: &ObjectId,
        meta: &ObjectId,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid(
                at.to_path(),
                "Exceeded maximum directory depth",
            ));
        }
        let dm = self.dirmeta(meta)?;
        let bytes = self.read_meta(tree, ObjectType::DirTree)?;
        let dt: DirTreeRef<'_> = parse_dirtree(tree, &bytes)?;

        let did_exist = match rustix::fs::mkdirat(parent, at.name, Mode::from_raw_mode(0o700)) {
            Ok(()) => false,
            Err(Errno::EXIST) if self.opts.overwrite != OverwriteMode::None => true,
            Err(e) => return Err(Error::io(at.to_path(), e)),
        };
        // The destination itself may be a symlink the caller chose; nothing below it is followed.
        let fd = open_dir(parent, at.name, depth == 0).map_err(|e| Error::io(at.to_path(), e))?;
        let dfd = fd.as_fd();
        let dir_err = |e: Errno| Error::io(at.to_path(), e);
        if self.opts.require_hardlinks {
            let dev = rustix::fs::fstat(dfd).map_err(dir_err)?.st_dev as u64;
            if dev != self.repo_dev {
                let why = format!(
                    "Unable to do hardlink checkout across devices (src={} destination={dev})",
                    self.repo_dev
                );
                return Err(Error::invalid(at.to_path(), why));
            }
        }
        if !did_exist && !self.user && !dm.xattrs.is_empty() {
            xattr::set_fd(dfd, &dm.xattrs).map_err(dir_err)?;
        }

        let files = || {
            dt.files
                .par_iter()
                .with_min_len(4)
                .try_for_each(|(name, id)| self.checkout_file(&Slot { dfd, name, dir: at }, id))
        };
        let dirs = || {
            dt.dirs.par_iter().try_for_each(|(name, tree, meta)| {
                let sub = DirPath {
                    parent: Some(at),
                    name: Path::new(name),
                };
                self.checkout_dir(dfd, &sub, tree, meta, depth + 1)
            })
        };
        let (f, d) = match (dt.files.is_empty(), dt.dirs.is_empty()) {
            (_, true) => (files(), Ok(())),
            (true, false) => (Ok(()), dirs()),
            (false, false) => rayon::join(files, dirs),
        };
        f?;
        d?;

        if !did_exist {
            let mode = if self.mode == RepoMode::BareUserOnly || self.opts.bareuseronly_dirs {
                dm.mode & 0o775
            } else {
                dm.mode & 0o7777
            };
            rustix::fs::fchmod(dfd, Mode::from_raw_mode(mode)).map_err(dir_err)?;
            if !self.user {
                rustix::fs::fchown(dfd, Some(uid(dm.uid)), Some(gid(dm.gid))).map_err(dir_err)?;
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
                rustix::fs::futimens(dfd, &times).map_err(dir_err)?;
            }
        }
        Ok(())
    }

    /// Checks out the content object `id` into `slot`.
    fn checkout_file(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        if self.mode == RepoMode::Archive {
            self.file_from_archive(slot, id)
        } else {
            self.file_from_bare(slot, id)
        }
    }

    fn object_err(&self, id: &ObjectId, e: Errno) -> Error {
        if e == Errno::NOENT {
            Error::MissingObject {
                id: *id,
                ty: ObjectType::File,
            }
        } else {
            Error::io(self.repo.object_path(id, ObjectType::File), e)
        }
    }

    /// The `-H` error when this repo/checkout mode pair cannot hardlink.
    fn cannot_hardlink(&self, slot: &Slot<'_>) -> Error {
        let why = if self.mode == RepoMode::BareUser || self.mode == RepoMode::BareUserOnly {
            "User repository mode requires user checkout mode to hardlink"
        } else {
            "Bare repository mode cannot hardlink in user checkout mode"
        };
        Error::invalid(slot.path(), why)
    }

    fn file_from_bare(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        let (odir, oname) = self.object_at(id, ObjectType::File)?;
        let oname = oname.as_str();
        // Owner, mode and (bare-user) xattrs as ostree's load_file reports them. Bare-user
        // objects are opened anyway, for their `user.ostreemeta` xattr.
        let (st, mode, owner, meta_xattrs, mut opened) = if self.mode == RepoMode::BareUser {
            let fd = self.open_object(odir, oname, id)?;
            let st = rustix::fs::fstat(&fd).map_err(|e| self.object_err(id, e))?;
            let raw = xattr::get_fd(&fd, OSTREEMETA)
                .map_err(|e| self.object_err(id, e))?
                .ok_or_else(|| corrupt("missing user.ostreemeta xattr"))?;
            let (u, g, m, x) = parse_ostreemeta(&raw).map_err(|why| corrupt(&why))?;
            (st, m, (u, g), Some(x), Some(fd))
        } else {
            let st = rustix::fs::statat(odir, oname, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.object_err(id, e))?;
            let owner = match self.mode {
                RepoMode::Bare => (st.st_uid, st.st_gid),
                _ => (0, 0),
            };
            let xattrs = (self.mode != RepoMode::Bare).then(Xattrs::default);
            (st, st.st_mode, owner, xattrs, None)
        };
        let fmt = mode & S_IFMT;
        if (fmt != S_IFREG && fmt != S_IFLNK) || mode & !(S_IFMT | 0o7777) != 0 {
            return Err(corrupt("not a regular file or symlink"));
        }
        let usermode_repo = self.mode != RepoMode::Bare;
        let is_symlink = fmt == S_IFLNK;
        let zero_sized = !is_symlink && st.st_size == 0;
        let unreadable = self.user && !is_symlink && mode & 0o400 == 0;
        if !(zero_sized || unreadable || self.opts.force_copy) {
            let hardlinkable =
                (self.mode == RepoMode::Bare && !self.user) || (usermode_repo && self.user);
            let user_symlink = usermode_repo && is_symlink;
            if self.opts.require_hardlinks && !hardlinkable && !user_symlink {
                return Err(self.cannot_hardlink(slot));
            }
            if hardlinkable
                && !user_symlink
                && let Link::Done = self.hardlink(odir, oname, slot, id, true)?
            {
                return Ok(());
            }
        }

        // Copy, with the xattrs ostree would apply (none in user mode).
        let owner = (!self.user).then_some(owner);
        let mut fd = || match opened.take() {
            Some(fd) => Ok(fd),
            None => self.open_object(odir, oname, id),
        };
        if is_symlink {
            let target = if self.mode == RepoMode::BareUser {
                let mut buf = Vec::new();
                std::fs::File::from(fd()?)
                    .take(libc::PATH_MAX as u64 + 1)
                    .read_to_end(&mut buf)
                    .at(self.repo.object_path(id, ObjectType::File))?;
                if buf.pop() != Some(0) || buf.contains(&0) {
                    return Err(corrupt("symlink object not NUL-terminated"));
                }
                buf
            } else {
                rustix::fs::readlinkat(odir, oname, Vec::new())
                    .map_err(|e| self.object_err(id, e))?
                    .into_bytes()
            };
            let xattrs = match meta_xattrs {
                _ if self.user => None,
                Some(x) => Some(x),
                None => Some(
                    xattr::read_path(&proc_path(odir, oname))
                        .map_err(|e| self.object_err(id, e))?,
                ),
            };
            return self.write_symlink(slot, &target, owner, xattrs.as_ref());
        }
        let fd = fd()?;
        let xattrs = match meta_xattrs {
            _ if self.user => None,
            Some(x) => Some(x),
            None => Some(xattr::read_fd(&fd).map_err(|e| self.object_err(id, e))?),
        };
        let mode = if unreadable { mode | 0o400 } else { mode };
        let src = Source::Fd(&fd, st.st_size as u64);
        self.write_regular(slot, id, src, mode, owner, xattrs.as_ref())
    }

    fn open_object(&self, dir: BorrowedFd<'_>, name: &str, id: &ObjectId) -> Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(|e| self.object_err(id, e))
    }

    fn file_from_archive(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        let mut obj = self.repo.open_content(id)?;
        let h = &obj.header;
        let is_symlink = h.is_symlink();
        let zero_sized = !is_symlink && obj.size == 0;
        let unreadable = self.user && !is_symlink && h.mode & 0o400 == 0;
        if !(zero_sized || unreadable || self.opts.force_copy) {
            if self.opts.require_hardlinks {
                return Err(self.cannot_hardlink(slot));
            }
            if self.use_cache && !is_symlink {
                let bare_rel = id.loose_path("file");
                if let Some(cache) = self.cache_dir.get()
                    && let Link::Done = self.hardlink(cache.as_fd(), &bare_rel, slot, id, true)?
                {
                    return Ok(());
                }
                let cache = self.write_cache_object(id, &bare_rel, h.mode, &mut obj.body)?;
                match self.hardlink(cache.as_fd(), &bare_rel, slot, id, false)? {
                    Link::Done => return Ok(()),
                    Link::Unsupported => obj = self.repo.open_content(id)?,
                }
            }
        }
        let h = &obj.header;
        let owner = (!self.user).then_some((h.uid, h.gid));
        let xattrs = (!self.user).then(|| h.xattrs.clone());
        if is_symlink {
            let target = h.symlink_target.as_bytes();
            return self.write_symlink(slot, target, owner, xattrs.as_ref());
        }
        let mode = if unreadable { h.mode | 0o400 } else { h.mode };
        let src = Source::Stream(&mut obj.body);
        self.write_regular(slot, id, src, mode, owner, xattrs.as_ref())
    }

    /// Decompresses an archive object into `uncompressed-objects-cache/xx/yyy.file` (mode without
    /// setuid/setgid, synced unless disabled), as ostree does for user-mode checkouts.
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
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(cache, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
            .at(&tmp_path)?;
        let result = (|| {
            copy_stream(body, &fd).map_err(|e| match e {
                CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                CopyError::Write(e) => Error::io(&tmp_path, e),
            })?;
            if self.fsync {
                rustix::fs::fsync(&fd).at(&tmp_path)?;
            }
            let mode = Mode::from_raw_mode(mode & 0o7777 & !0o6000);
            rustix::fs::fchmod(&fd, mode).at(&tmp_path)?;
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

    /// Links `src_dir/rel` into `slot`, handling an existing entry per the overwrite mode.
    fn hardlink(
        &self,
        src_dir: BorrowedFd<'_>,
        rel: &str,
        slot: &Slot<'_>,
        id: &ObjectId,
        allow_noent: bool,
    ) -> Result<Link> {
        let (dfd, name) = (slot.dfd, slot.name);
        let err = match rustix::fs::linkat(src_dir, rel, dfd, name, AtFlags::empty()) {
            Ok(()) => return Ok(Link::Done),
            Err(e) => e,
        };
        if matches!(err, Errno::MLINK | Errno::XDEV | Errno::PERM) && !self.opts.require_hardlinks
            || err == Errno::NOENT && allow_noent
        {
            return Ok(Link::Unsupported);
        }
        if err != Errno::EXIST {
            return Err(slot.err(err));
        }
        match self.opts.overwrite {
            OverwriteMode::None => Err(slot.err(err)),
            OverwriteMode::AddFiles => Ok(Link::Done),
            OverwriteMode::UnionFiles | OverwriteMode::UnionIdentical => {
                let src = rustix::fs::statat(src_dir, rel, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.object_err(id, e))?;
                let dst = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| slot.err(e))?;
                let mut identical = src.st_dev == dst.st_dev && src.st_ino == dst.st_ino;
                if !identical
                    && src.st_mode == dst.st_mode
                    && (src.st_mode & S_IFMT != S_IFREG || src.st_size == dst.st_size)
                    && src.st_uid == dst.st_uid
                    && src.st_gid == dst.st_gid
                {
                    identical = self.checksum_existing(slot, &dst)? == Some(*id);
                }
                if identical {
                    Ok(Link::Done)
                } else if self.opts.overwrite == OverwriteMode::UnionFiles {
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::linkat(src_dir, rel, dfd, tmp.as_str(), AtFlags::empty())
                        .map_err(|e| slot.err(e))?;
                    rename_into_place(slot, &tmp)?;
                    Ok(Link::Done)
                } else {
                    Err(slot.err(err))
                }
            }
        }
    }

    /// The content checksum of an existing entry, as ostree computes it to decide whether a
    /// union checkout may keep it; `None` for entries no object could describe.
    fn checksum_existing(
        &self,
        slot: &Slot<'_>,
        st: &rustix::fs::Stat,
    ) -> Result<Option<ObjectId>> {
        let (dfd, name) = (slot.dfd, slot.name);
        let canonical = self.mode == RepoMode::BareUserOnly;
        let mut header = FileHeader {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            symlink_target: String::new(),
            xattrs: Xattrs::default(),
        };
        let mut file = None;
        match st.st_mode & S_IFMT {
            S_IFREG => {
                let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                let fd =
                    rustix::fs::openat(dfd, name, flags, Mode::empty()).map_err(|e| slot.err(e))?;
                if canonical {
                    (header.uid, header.gid) = (0, 0);
                } else {
                    header.xattrs = xattr::read_fd(&fd).map_err(|e| slot.err(e))?;
                }
                file = Some(std::fs::File::from(fd));
            }
            S_IFLNK => {
                let target =
                    rustix::fs::readlinkat(dfd, name, Vec::new()).map_err(|e| slot.err(e))?;
                header.symlink_target = String::from_utf8_lossy(target.as_bytes()).into_owned();
                if !canonical {
                    header.xattrs =
                        xattr::read_path(&proc_path(dfd, name)).map_err(|e| slot.err(e))?;
                }
            }
            _ => return Ok(None),
        }
        let mut hasher = crate::checksum::Hasher::default();
        hasher.update(&checksum_header_bytes(&header));
        if let Some(mut f) = file {
            std::io::copy(&mut f, &mut hasher).map_err(|e| slot.err(e))?;
        }
        Ok(Some(hasher.finish()))
    }

    /// Creates a symlink; `owner` and `xattrs` are applied when given (not in user mode).
    fn write_symlink(
        &self,
        slot: &Slot<'_>,
        target: &[u8],
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
    ) -> Result<()> {
        let (dfd, name) = (slot.dfd, slot.name);
        let target = std::ffi::OsStr::from_bytes(target);
        match rustix::fs::symlinkat(target, dfd, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => match self.opts.overwrite {
                OverwriteMode::None => return Err(slot.err(Errno::EXIST)),
                OverwriteMode::AddFiles => return Ok(()),
                OverwriteMode::UnionIdentical => {
                    let st = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| slot.err(e))?;
                    if st.st_mode & S_IFMT == S_IFLNK {
                        let existing = rustix::fs::readlinkat(dfd, name, Vec::new())
                            .map_err(|e| slot.err(e))?;
                        if existing.as_bytes() == target.as_bytes() {
                            return Ok(());
                        }
                    }
                    return Err(slot.err(Errno::EXIST));
                }
                OverwriteMode::UnionFiles => {
                    // Replace the entry itself, never what a symlink there points to. Like
                    // ostree, a replaced symlink keeps the caller's ownership and gets no xattrs.
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::symlinkat(target, dfd, tmp.as_str()).map_err(|e| slot.err(e))?;
                    return rename_into_place(slot, &tmp);
                }
            },
            Err(e) => return Err(slot.err(e)),
        }
        if let Some((u, g)) = owner {
            let nofollow = AtFlags::SYMLINK_NOFOLLOW;
            rustix::fs::chownat(dfd, name, Some(uid(u)), Some(gid(g)), nofollow)
                .map_err(|e| slot.err(e))?;
        }
        if let Some(x) = xattrs.filter(|x| !x.is_empty()) {
            xattr::set_path(&proc_path(dfd, name), x).map_err(|e| slot.err(e))?;
        }
        Ok(())
    }

    /// Creates a regular file with `src`'s content and `mode`; `owner` and `xattrs` are applied
    /// when given (not in user mode, where setuid/setgid are dropped).
    fn write_regular(
        &self,
        slot: &Slot<'_>,
        id: &ObjectId,
        src: Source<'_>,
        mode: u32,
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
    ) -> Result<()> {
        let (dfd, name) = (slot.dfd, slot.name);
        let mode = mode & if self.user { 0o1777 } else { 0o7777 };
        let create = |n: &str| {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rustix::fs::openat(dfd, n, flags, Mode::from_raw_mode(mode & 0o777))
        };
        let (fd, tmp) = match create(name) {
            Ok(fd) => (fd, None),
            Err(Errno::EXIST) => match self.opts.overwrite {
                OverwriteMode::None => return Err(slot.err(Errno::EXIST)),
                OverwriteMode::AddFiles => return Ok(()),
                OverwriteMode::UnionIdentical => {
                    let st = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|e| slot.err(e))?;
                    if self.checksum_existing(slot, &st)? == Some(*id) {
                        return Ok(());
                    }
                    return Err(slot.err(Errno::EXIST));
                }
                OverwriteMode::UnionFiles => {
                    // Written aside, then renamed over the existing entry.
                    let tmp = unique_tmp_name(".checkout-union-");
                    (create(&tmp).map_err(|e| slot.err(e))?, Some(tmp))
                }
            },
            Err(e) => return Err(slot.err(e)),
        };
        let result = (|| {
            let copied = match src {
                Source::Fd(src, size) => copy_fd(src, &fd, size),
                Source::Stream(body) => copy_stream(body, &fd),
            };
            copied.map_err(|e| match e {
                CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                CopyError::Write(e) => slot.err(e),
            })?;
            if let Some((u, g)) = owner {
                rustix::fs::fchown(&fd, Some(uid(u)), Some(gid(g))).map_err(|e| slot.err(e))?;
            }
            if let Some(x) = xattrs {
                xattr::set_fd(&fd, x).map_err(|e| slot.err(e))?;
            }
            // After fchown, which clears setuid/setgid; skipped when creation set the mode.
            if mode & 0o7000 != 0 || self.umask.is_none_or(|m| mode & m != 0) {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| slot.err(e))?;
            }
            match &tmp {
                Some(tmp) => rename_into_place(slot, tmp),
                None => Ok(()),
            }
        })();
        if result.is_err()
            && let Some(tmp) = &tmp
        {
            let _ = rustix::fs::unlinkat(dfd, tmp.as_str(), AtFlags::empty());
        }
        result
    }
}

/// Renames `tmp` over `slot` (same directory), removing `tmp` if that fails.
fn rename_into_place(slot: &Slot<'_>, tmp: &str) -> Result<()> {
    rustix::fs::renameat(slot.dfd, tmp, slot.dfd, slot.name).map_err(|e| {
        let _ = rustix::fs::unlinkat(slot.dfd, tmp, AtFlags::empty());
        slot.err(e)
    })
}

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
        let root: Vec<&str> = Vec::new();
        assert_eq!(subpath_chain("/"), root);
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
