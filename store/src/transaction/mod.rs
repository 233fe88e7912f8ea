//! Writing objects: the one object writer.
//!
//! A transaction writes each new object into an anonymous file (`O_TMPFILE`) in its private
//! staging directory `tmp/staging-<boot-id>-<unique>` (with a sibling `-lock` file held for
//! its life, as ostree does) and keeps it open. Publishing is one `syncfs`, then a `linkat`
//! of every such file to its final name in `objects/xx/`, then another `syncfs` for the new
//! names, and only then the refs. So no object is ever visible before its bytes are on
//! disk, a reader never sees a half-written object, and a crash leaves nothing behind: the
//! kernel drops unlinked files. Linking skips the staging directory entry and the global
//! cross-directory rename lock that ostree's rename-from-staging pays per object.
//!
//! Where `O_TMPFILE` is unsupported (and for bare-mode symlinks, which cannot be anonymous),
//! objects are staged by name as `xx/yyyy.type` and renamed into place on commit instead.
//! Staging leftovers are removed by the next transaction once their lock is free. Open
//! anonymous files are bounded by the fd limit: they are published in batches as they come
//! (see [`publish`]).

mod publish;

use crate::content::{OSTREEMETA, ostreemeta_bytes};
use crate::format::{FileHeader, S_IFMT, S_IFREG, SizeEntry, checksum_header_bytes};
use crate::fsutil::{self, write_all};
use crate::lock::{LockKind, RepoLock};
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, xattr};
use parking_lot::Mutex;
use publish::{PendingObject, Publisher, link_anonymous};
use rayon::prelude::*;
use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a content object's bytes come from.
pub enum ContentSource<'a> {
    /// Already in memory.
    Bytes(&'a [u8]),
    /// A file to read; its size is in the header's caller.
    File(&'a std::fs::File),
}

/// Counters for `commit --table-output`.
#[derive(Debug, Default)]
pub struct TransactionStats {
    /// Metadata objects written or found.
    pub metadata_total: AtomicU64,
    /// Metadata objects newly written.
    pub metadata_written: AtomicU64,
    /// Content objects written or found.
    pub content_total: AtomicU64,
    /// Content objects newly written.
    pub content_written: AtomicU64,
    /// Content objects reused through the devino cache.
    pub content_cache_hits: AtomicU64,
    /// Bytes of content newly written.
    pub content_bytes_written: AtomicU64,
}

/// A queued ref update: remote (None for local), name, new target (None deletes).
type RefUpdate = (Option<String>, String, Option<ObjectId>);

/// A freshly created object file: anonymous, or named in the staging directory.
struct StagedFile {
    fd: OwnedFd,
    rel: String,
    anonymous: bool,
}

/// An open write transaction. Dropping it without [`Transaction::commit`] discards the
/// staged objects.
pub struct Transaction<'r> {
    repo: &'r Repo,
    _lock: RepoLock,
    stage_name: String,
    stage: OwnedFd,
    _stage_lock: OwnedFd,
    /// Objects this transaction writes, with their stored size once written.
    claimed: Mutex<HashMap<(ObjectId, ObjectType), u64>>,
    /// Object folders holding objects staged by name.
    stage_dirs: Mutex<HashSet<u8>>,
    /// Publishes written anonymous files into `objects/`.
    publisher: Publisher,
    /// False once the filesystem refused `O_TMPFILE` or `/proc` is missing.
    anonymous: std::sync::atomic::AtomicBool,
    /// Which `objects/xx` folders existed when the transaction began: an object in a
    /// folder that did not cannot be stored yet, so its existence check is skipped.
    existing_dirs: [bool; 256],
    refs: Mutex<Vec<RefUpdate>>,
    fsync: bool,
    committed: bool,
    sizes: Option<Mutex<HashMap<ObjectId, SizeEntry>>>,
    /// What was written, for `--table-output`.
    pub stats: TransactionStats,
}

fn boot_id() -> String {
    std::env::var("OSTREE_BOOTID").ok().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim_end().to_string())
            .unwrap_or_else(|_| "unknown".into())
    })
}

impl Repo {
    /// Starts a transaction (takes the repo lock shared, as ostree does).
    pub fn begin(&self) -> Result<Transaction<'_>> {
        let lock = self.lock(LockKind::Shared)?;
        let tmp_path = self.path().join("tmp");
        let tmp = fsutil::ensure_open_dir_at(&self.root, "tmp", &tmp_path)?;
        let prefix = format!("staging-{}-", boot_id());
        remove_abandoned_stages(&tmp, &tmp_path)?;
        let stage_name = fsutil::unique_tmp_name(&format!("{prefix}rostree-"));
        let lock_path = tmp_path.join(format!("{stage_name}-lock"));
        let stage_lock = create_locked(&tmp, &format!("{stage_name}-lock"), &lock_path)?;
        let fsync = self.fsync_enabled();
        let stage_path = tmp_path.join(&stage_name);
        let prepare = || -> Result<_> {
            rustix::fs::mkdirat(&tmp, stage_name.as_str(), Mode::from_raw_mode(0o775))
                .at(&stage_path)?;
            let stage = fsutil::open_dir_at(&tmp, &stage_name, &stage_path)?;
            let objdir = self.path().join("objects");
            let publisher =
                Publisher::new(&stage, stage_path.clone(), &self.objects, objdir, fsync)?;
            Ok((stage, publisher, existing_object_dirs(self)?))
        };
        let (stage, publisher, existing_dirs) = prepare().inspect_err(|_| {
            // Out of space, say: leave neither the lock nor an empty stage behind.
            let _ = rustix::fs::unlinkat(&tmp, stage_name.as_str(), AtFlags::REMOVEDIR);
            let _ = rustix::fs::unlinkat(
                &tmp,
                format!("{stage_name}-lock").as_str(),
                AtFlags::empty(),
            );
        })?;
        Ok(Transaction {
            repo: self,
            _lock: lock,
            stage_name,
            stage,
            _stage_lock: stage_lock,
            claimed: Mutex::new(HashMap::new()),
            stage_dirs: Mutex::new(HashSet::new()),
            publisher,
            anonymous: std::sync::atomic::AtomicBool::new(
                rustix::fs::access("/proc/self/fd", rustix::fs::Access::EXISTS).is_ok(),
            ),
            existing_dirs,
            refs: Mutex::new(Vec::new()),
            fsync,
            committed: false,
            sizes: None,
            stats: TransactionStats::default(),
        })
    }
}

/// Marks the `objects/xx` folders present in `repo`.
fn existing_object_dirs(repo: &Repo) -> Result<[bool; 256]> {
    let mut present = [false; 256];
    for (name, _) in fsutil::list_dir(&repo.objects, &repo.path().join("objects"))? {
        if name.len() == 2
            && let Ok(byte) = u8::from_str_radix(&name, 16)
        {
            present[byte as usize] = true;
        }
    }
    Ok(present)
}

/// Creates the lock file `name` in `tmp` already locked: written anonymously, locked, then
/// linked into place, so nobody ever sees it unlocked while its owner lives and a kill before
/// the link leaves nothing. (Where `O_TMPFILE` is unsupported: created, then locked.)
fn create_locked(tmp: &OwnedFd, name: &str, shown: &std::path::Path) -> Result<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o600);
    let lock = |fd: &OwnedFd| {
        rustix::fs::fcntl_lock(fd, FlockOperation::NonBlockingLockExclusive).at(shown)
    };
    match rustix::fs::openat(tmp, ".", flags | OFlags::TMPFILE, mode) {
        Ok(fd) => {
            lock(&fd)?;
            link_anonymous(&fd, tmp, name).at(shown)?;
            Ok(fd)
        }
        Err(Errno::OPNOTSUPP) | Err(Errno::ISDIR) | Err(Errno::INVAL) => {
            let fd = rustix::fs::openat(tmp, name, flags | OFlags::CREATE, mode).at(shown)?;
            lock(&fd)?;
            Ok(fd)
        }
        Err(e) => Err(e).at(shown),
    }
}

/// Removes staging directories (ours or ostree's) whose lock no process holds any more, and
/// lock files left without their directory by a transaction killed as it began.
fn remove_abandoned_stages(tmp: &OwnedFd, tmp_path: &std::path::Path) -> Result<()> {
    let entries = fsutil::list_dir(tmp, tmp_path)?;
    for (name, ft) in &entries {
        let Some(stage) = name.strip_suffix("-lock") else {
            continue;
        };
        let orphan = name.starts_with("staging-")
            && !ft.is_dir()
            && !entries.iter().any(|(n, t)| n == stage && t.is_dir());
        if !orphan {
            continue;
        }
        let flags = OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        if let Ok(fd) = rustix::fs::openat(tmp, name.as_str(), flags, Mode::empty())
            && rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok()
        {
            let _ = rustix::fs::unlinkat(tmp, name.as_str(), AtFlags::empty());
        }
    }
    for (name, ft) in entries {
        if !ft.is_dir() || !name.starts_with("staging-") {
            continue;
        }
        let lock_name = format!("{name}-lock");
        let Ok(fd) = rustix::fs::openat(
            tmp,
            lock_name.as_str(),
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) else {
            continue;
        };
        if rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok() {
            remove_tree_at(tmp, &name, &tmp_path.join(&name))?;
            let _ = rustix::fs::unlinkat(tmp, lock_name.as_str(), AtFlags::empty());
        }
    }
    Ok(())
}

/// `rm -rf` of `name` inside `dir`, never following symlinks.
pub(crate) fn remove_tree_at(dir: impl AsFd, name: &str, shown: &std::path::Path) -> Result<()> {
    let dir = dir.as_fd();
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e).at(shown),
    }
    let sub = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e).at(shown),
    };
    for (child, _) in fsutil::list_dir(&sub, shown)? {
        remove_tree_at(&sub, &child, &shown.join(&child))?;
    }
    match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e).at(shown),
    }
}

impl<'r> Transaction<'r> {
    /// The repository written to.
    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    /// Records (archived size, unpacked size, type) of every object touched, for
    /// `commit --generate-sizes` (`ostree.sizes`).
    pub fn record_sizes(&mut self) {
        self.sizes = Some(Mutex::new(HashMap::new()));
    }

    /// The recorded sizes, sorted by checksum.
    pub fn sizes(&self) -> Vec<SizeEntry> {
        let mut out: Vec<SizeEntry> = self
            .sizes
            .as_ref()
            .map(|m| m.lock().values().cloned().collect())
            .unwrap_or_default();
        out.sort_by_key(|e| e.id);
        out
    }

    fn record_size(&self, id: &ObjectId, archived: u64, unpacked: u64, ty: ObjectType) {
        // `ostree.sizes` records only content, dirtrees and dirmetas.
        if !matches!(
            ty,
            ObjectType::File | ObjectType::DirTree | ObjectType::DirMeta
        ) {
            return;
        }
        if let Some(m) = &self.sizes {
            let entry = SizeEntry {
                id: *id,
                object_type: ty,
                archived,
                unpacked,
            };
            m.lock().insert(*id, entry);
        }
    }

    /// The stored size of an object, written by this transaction or published before.
    fn stored_size(&self, id: &ObjectId, ty: ObjectType) -> u64 {
        if let Some(&size) = self.claimed.lock().get(&(*id, ty)) {
            return size;
        }
        let rel = self.repo.object_relpath(id, ty);
        rustix::fs::statat(&self.repo.objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .map(|st| st.st_size as u64)
            .unwrap_or(0)
    }

    fn stage_path(&self, rel: &str) -> PathBuf {
        self.repo
            .path()
            .join("tmp")
            .join(&self.stage_name)
            .join(rel)
    }

    /// Claims an object for writing: false when it is stored or claimed already.
    fn claim(&self, id: &ObjectId, ty: ObjectType) -> Result<bool> {
        if self.claimed.lock().contains_key(&(*id, ty)) {
            return Ok(false);
        }
        // A concurrent writer may store it meanwhile: publishing tolerates that.
        if self.existing_dirs[id.0[0] as usize] && self.repo.has_object(id, ty)? {
            return Ok(false);
        }
        Ok(self.claimed.lock().insert((*id, ty), 0).is_none())
    }

    fn ensure_stage_dir(&self, id: &ObjectId) -> Result<()> {
        let byte = id.0[0];
        if self.stage_dirs.lock().contains(&byte) {
            return Ok(());
        }
        let name = format!("{byte:02x}");
        fsutil::ensure_dir_at(&self.stage, &name, &self.stage_path(&name))?;
        self.stage_dirs.lock().insert(byte);
        Ok(())
    }

    /// Creates the file for an object, to be filled by the caller and handed to
    /// [`Transaction::finish_staged`]: anonymous where the filesystem allows, else named.
    fn create_staged(&self, id: &ObjectId, ty: ObjectType, mode: u32) -> Result<StagedFile> {
        let rel = self.repo.object_relpath(id, ty);
        if self.anonymous.load(Ordering::Relaxed) {
            match rustix::fs::openat(
                &self.stage,
                ".",
                OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
                Mode::from_raw_mode(mode),
            ) {
                Ok(fd) => {
                    return Ok(StagedFile {
                        fd,
                        rel,
                        anonymous: true,
                    });
                }
                Err(Errno::OPNOTSUPP) | Err(Errno::ISDIR) | Err(Errno::INVAL) => {
                    self.anonymous.store(false, Ordering::Relaxed);
                }
                Err(e) => return Err(e).at(self.stage_path("")),
            }
        }
        self.ensure_stage_dir(id)?;
        let fd = rustix::fs::openat(
            &self.stage,
            rel.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .at(self.stage_path(&rel))?;
        Ok(StagedFile {
            fd,
            rel,
            anonymous: false,
        })
    }

    /// Records a fully written object file: its size, and for an anonymous file, a place
    /// in the queue to be linked into `objects/`.
    fn finish_staged(
        &self,
        id: &ObjectId,
        ty: ObjectType,
        staged: StagedFile,
        stored_size: u64,
    ) -> Result<()> {
        self.claimed.lock().insert((*id, ty), stored_size);
        if staged.anonymous {
            self.publisher
                .push(PendingObject::new(staged.rel, staged.fd))?;
        }
        Ok(())
    }

    /// Writes a metadata object (commit, dirtree, dirmeta) and returns its checksum.
    pub fn write_meta(&self, ty: ObjectType, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::digest(bytes);
        self.stats.metadata_total.fetch_add(1, Ordering::Relaxed);
        self.record_size(&id, bytes.len() as u64, bytes.len() as u64, ty);
        if self.claim(&id, ty)? {
            let staged = self.create_staged(&id, ty, 0o644)?;
            let shown = self.stage_path(&staged.rel);
            if 0o644 & crate::fsutil::umask() != 0 {
                rustix::fs::fchmod(&staged.fd, Mode::from_raw_mode(0o644)).at(&shown)?;
            }
            write_all(&staged.fd, bytes).at(&shown)?;
            self.finish_staged(&id, ty, staged, bytes.len() as u64)?;
            self.stats.metadata_written.fetch_add(1, Ordering::Relaxed);
        }
        Ok(id)
    }

    /// Writes detached metadata (`.commitmeta`) for a commit, replacing any previous one.
    pub fn write_commit_detached(&self, commit: &ObjectId, bytes: &[u8]) -> Result<()> {
        self.ensure_stage_dir(commit)?;
        let rel = self.repo.object_relpath(commit, ObjectType::CommitMeta);
        self.claimed
            .lock()
            .insert((*commit, ObjectType::CommitMeta), bytes.len() as u64);
        let (dir, leaf) = rel.split_at(2);
        let dfd = fsutil::open_dir_at(&self.stage, dir, &self.stage_path(dir))?;
        fsutil::replace_file_at(
            &dfd,
            &leaf[1..],
            bytes,
            0o644,
            false,
            &self.stage_path(&rel),
        )
    }

    /// The checksum of a content object, reading `source` once.
    pub fn checksum_content(header: &FileHeader, source: &ContentSource<'_>) -> Result<ObjectId> {
        let mut h = crate::checksum::Hasher::default();
        h.update(&checksum_header_bytes(header));
        match source {
            ContentSource::Bytes(b) => h.update(b),
            ContentSource::File(f) => {
                let mut f = *f;
                std::io::copy(&mut f, &mut h).map_err(|e| Error::io("<content>", e))?;
            }
        }
        Ok(h.finish())
    }

    /// Records a content object found through the devino cache (already stored).
    pub fn note_cache_hit(&self) {
        self.stats.content_total.fetch_add(1, Ordering::Relaxed);
        self.stats
            .content_cache_hits
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Writes a content object whose checksum `id` the caller computed with
    /// [`Transaction::checksum_content`]. `source` is read again from its start.
    pub fn write_content(
        &self,
        id: &ObjectId,
        header: &FileHeader,
        size: u64,
        source: ContentSource<'_>,
    ) -> Result<()> {
        self.stats.content_total.fetch_add(1, Ordering::Relaxed);
        let unpacked = if header.is_symlink() {
            header.symlink_target.len() as u64
        } else {
            size
        };
        if !self.claim(id, ObjectType::File)? {
            if self.sizes.is_some() {
                let archived = self.stored_size(id, ObjectType::File);
                self.record_size(id, archived, unpacked, ObjectType::File);
            }
            return Ok(());
        }
        let rel = self.repo.object_relpath(id, ObjectType::File);
        let shown = self.stage_path(&rel);
        let mode = self.repo.mode();
        if header.is_symlink() && matches!(mode, RepoMode::Bare | RepoMode::BareUserOnly) {
            // Symlinks cannot be anonymous: they are staged by name and renamed on commit.
            self.ensure_stage_dir(id)?;
            self.claimed
                .lock()
                .insert((*id, ObjectType::File), unpacked);
            rustix::fs::symlinkat(header.symlink_target.as_str(), &self.stage, rel.as_str())
                .at(&shown)?;
            if mode == RepoMode::Bare {
                rustix::fs::chownat(
                    &self.stage,
                    rel.as_str(),
                    Some(rustix::process::Uid::from_raw(header.uid)),
                    Some(rustix::process::Gid::from_raw(header.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .at(&shown)?;
                if !header.xattrs.is_empty() {
                    let proc = fsutil::proc_path(&self.stage, &rel);
                    xattr::set_path(&proc, &header.xattrs).at(&shown)?;
                }
            }
            return Ok(());
        }
        if mode == RepoMode::BareUserOnly && header.mode & !(S_IFMT | 0o775) != 0 {
            return Err(Error::corrupt(
                *id,
                ObjectType::File,
                format!(
                    "Content object {id}: invalid mode 0{:04o} with bits 0{:04o}",
                    header.mode,
                    header.mode & !(S_IFMT | 0o775)
                ),
            ));
        }
        // The object file's own mode: bare-user keeps real metadata in an xattr.
        let file_mode = match mode {
            RepoMode::Archive => 0o644,
            RepoMode::BareUser if header.is_symlink() => 0o644,
            RepoMode::BareUser => (header.mode & 0o775) | 0o400,
            RepoMode::Bare | RepoMode::BareUserOnly => header.mode & 0o7777,
        };
        let staged = self.create_staged(id, ObjectType::File, file_mode)?;
        let mut out = std::fs::File::from(staged.fd);
        let mut stored_size = size;
        // Set the mode explicitly only where creation could not give it: bits the umask
        // removed, or setuid/setgid bits that fchown clears.
        let mut needs_chmod = file_mode & crate::fsutil::umask() != 0;
        match mode {
            RepoMode::Archive => {
                let mut buf = std::io::BufWriter::with_capacity(256 * 1024, &mut out);
                let filez_header = header.to_filez_header(size);
                buf.write_all(&filez_header).at(&shown)?;
                stored_size = filez_header.len() as u64;
                if !header.is_symlink() {
                    let level = flate2::Compression::new(self.repo.zlib_level());
                    let mut enc = flate2::write::DeflateEncoder::new(&mut buf, level);
                    copy_source(&source, &mut enc).at(&shown)?;
                    enc.try_finish().at(&shown)?;
                    stored_size += enc.total_out();
                }
                buf.flush().at(&shown)?;
                drop(buf);
                self.record_size(id, stored_size, unpacked, ObjectType::File);
            }
            RepoMode::BareUser => {
                if header.is_symlink() {
                    let mut data = header.symlink_target.as_bytes().to_vec();
                    data.push(0);
                    out.write_all(&data).at(&shown)?;
                    stored_size = data.len() as u64;
                } else {
                    copy_into(&source, &out, size).at(&shown)?;
                }
                xattr::set_fd(
                    &out,
                    &crate::format::Xattrs(vec![(
                        OSTREEMETA.as_bytes().to_vec(),
                        ostreemeta_bytes(header),
                    )]),
                )
                .at(&shown)?;
            }
            RepoMode::Bare | RepoMode::BareUserOnly => {
                copy_into(&source, &out, size).at(&shown)?;
                if mode == RepoMode::Bare {
                    let (uid, gid) = (rustix::process::geteuid(), rustix::process::getegid());
                    if header.uid != uid.as_raw() || header.gid != gid.as_raw() {
                        rustix::fs::fchown(
                            &out,
                            Some(rustix::process::Uid::from_raw(header.uid)),
                            Some(rustix::process::Gid::from_raw(header.gid)),
                        )
                        .at(&shown)?;
                        needs_chmod |= file_mode & 0o6000 != 0;
                    }
                    xattr::set_fd(&out, &header.xattrs).at(&shown)?;
                }
            }
        }
        if needs_chmod {
            rustix::fs::fchmod(&out, Mode::from_raw_mode(file_mode)).at(&shown)?;
        }
        if mode != RepoMode::Archive {
            fsutil::zero_mtime(&out).at(&shown)?;
        }
        let staged = StagedFile {
            fd: out.into(),
            ..staged
        };
        self.finish_staged(id, ObjectType::File, staged, stored_size)?;
        debug_assert!(header.is_symlink() || header.mode & S_IFMT == S_IFREG);
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .content_bytes_written
            .fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Stores an object of `src` by hardlinking its file, for local pulls between
    /// repositories of the same mode: the file is staged by name and renamed into place on
    /// commit. Returns false, claiming nothing, where a link is impossible (another mode,
    /// another filesystem, too many links): the caller then copies the object.
    pub fn link_object_from(&self, src: &Repo, id: &ObjectId, ty: ObjectType) -> Result<bool> {
        if src.mode() != self.repo.mode() {
            return Ok(false);
        }
        if !self.claim(id, ty)? {
            return Ok(true);
        }
        self.ensure_stage_dir(id)?;
        let rel = self.repo.object_relpath(id, ty);
        match rustix::fs::linkat(
            &src.objects,
            rel.as_str(),
            &self.stage,
            rel.as_str(),
            AtFlags::empty(),
        ) {
            Ok(()) => {
                let mut counter = &self.stats.metadata_written;
                if ty == ObjectType::File {
                    counter = &self.stats.content_written;
                }
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(true)
            }
            Err(Errno::XDEV) | Err(Errno::PERM) | Err(Errno::MLINK) | Err(Errno::ACCESS) => {
                self.claimed.lock().remove(&(*id, ty));
                Ok(false)
            }
            Err(e) => Err(e).at(src.object_path(id, ty)),
        }
    }

    /// How many written objects wait for publication.
    pub fn pending_len(&self) -> usize {
        self.publisher.pending_len()
    }

    /// Makes the anonymous objects written so far durable and visible now, so that an
    /// interrupted pull keeps them; refs still wait for [`Transaction::commit`].
    pub fn publish_written(&self) -> Result<()> {
        self.publisher.flush()
    }

    /// Queues a ref update, applied by [`Transaction::commit`] after the objects are in place.
    pub fn set_ref(&self, remote: Option<&str>, name: &str, target: Option<ObjectId>) {
        self.refs
            .lock()
            .push((remote.map(str::to_string), name.to_string(), target));
    }

    /// Publishes every object written so far, anonymous or staged by name, and makes the
    /// names durable; refs still wait for [`Transaction::commit`].
    pub fn publish_all(&self) -> Result<()> {
        self.publisher.flush()?;
        let objdir = self.repo.path().join("objects");
        let named: Vec<u8> = self.stage_dirs.lock().iter().copied().collect();
        // Move the objects staged by name into place, once their bytes are on disk.
        if !named.is_empty() {
            self.sync()?;
        }
        named.par_iter().try_for_each(|byte| -> Result<()> {
            let name = format!("{byte:02x}");
            let sub = fsutil::open_dir_at(&self.stage, &name, &self.stage_path(&name))?;
            let dest = fsutil::ensure_open_dir_at(&self.repo.objects, &name, &objdir.join(&name))?;
            for (file, _) in fsutil::list_dir(&sub, &self.stage_path(&name))? {
                rustix::fs::renameat(&sub, file.as_str(), &dest, file.as_str())
                    .at(objdir.join(&name).join(&file))?;
            }
            Ok(())
        })?;
        // Make the new names durable before any ref: one more `syncfs` writes the object
        // folders' blocks together, where an fsync per folder would flush the disk for each.
        if !self.claimed.lock().is_empty() {
            self.sync()?;
        }
        Ok(())
    }

    /// Makes everything written so far durable: one `syncfs`, unless fsync is off.
    fn sync(&self) -> Result<()> {
        if self.fsync {
            rustix::fs::syncfs(&self.stage).at(self.stage_path(""))?;
        }
        Ok(())
    }

    /// Publishes the staged objects, then the queued refs.
    pub fn commit(mut self) -> Result<()> {
        self.publish_all()?;
        let refs = std::mem::take(&mut *self.refs.lock());
        for (remote, name, target) in refs {
            self.repo
                .write_ref(remote.as_deref(), &name, target.as_ref())?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        let tmp_path = self.repo.path().join("tmp");
        if let Ok(tmp) = fsutil::open_dir_at(&self.repo.root, "tmp", &tmp_path) {
            let _ = remove_tree_at(&tmp, &self.stage_name, &tmp_path.join(&self.stage_name));
            let lock = format!("{}-lock", self.stage_name);
            let _ = rustix::fs::unlinkat(&tmp, lock.as_str(), AtFlags::empty());
        }
        let _ = self.committed;
    }
}

fn copy_source(source: &ContentSource<'_>, out: &mut impl Write) -> std::io::Result<()> {
    match source {
        ContentSource::Bytes(b) => out.write_all(b),
        ContentSource::File(f) => {
            let mut f = *f;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0))?;
            std::io::copy(&mut f, out).map(|_| ())
        }
    }
}

/// Copies content into a new object file; the kernel copies file-to-file.
fn copy_into(source: &ContentSource<'_>, out: &std::fs::File, size: u64) -> std::io::Result<()> {
    match source {
        ContentSource::Bytes(b) => write_all(out, b),
        ContentSource::File(f) => {
            let mut off_in: u64 = 0;
            let mut off_out: u64 = 0;
            while off_in < size {
                let want = (size - off_in).min(1 << 30) as usize;
                match rustix::fs::copy_file_range(
                    f,
                    Some(&mut off_in),
                    out,
                    Some(&mut off_out),
                    want,
                ) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(Errno::XDEV) | Err(Errno::NOSYS) | Err(Errno::INVAL) => {
                        let mut f = *f;
                        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(off_in))?;
                        let mut w = out;
                        std::io::Seek::seek(&mut w, std::io::SeekFrom::Start(off_out))?;
                        std::io::copy(&mut f.take(size - off_in), &mut w)?;
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if off_in != size {
                return Err(std::io::Error::other("file changed size while committing"));
            }
            Ok(())
        }
    }
}
