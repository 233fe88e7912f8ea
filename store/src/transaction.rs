//! Writing objects: the one object writer.
//!
//! Like ostree, a transaction writes new objects into a private staging directory
//! `tmp/staging-<boot-id>-<unique>/xx/yyyy.type` (with a sibling `-lock` file held for its
//! life), then on commit: one `syncfs`, a rename of every staged object into `objects/`, an
//! fsync of the object directories, and only then the refs. A crash at any point leaves the
//! repo's objects and refs at their old or new state; staging leftovers are removed by the
//! next transaction once their lock is free.

use crate::content::{OSTREEMETA, ostreemeta_bytes};
use crate::format::{FileHeader, S_IFMT, S_IFREG, checksum_header_bytes};
use crate::fsutil::{self, write_all};
use crate::lock::{LockKind, RepoLock};
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, xattr};
use parking_lot::Mutex;
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

/// Recorded object sizes: archived size, unpacked size, ostree's type code.
type SizeRecord = (u64, u64, u8);

/// An open write transaction. Dropping it without [`Transaction::commit`] discards the
/// staged objects.
pub struct Transaction<'r> {
    repo: &'r Repo,
    _lock: RepoLock,
    stage_name: String,
    stage: OwnedFd,
    _stage_lock: OwnedFd,
    claimed: Mutex<HashSet<(ObjectId, ObjectType)>>,
    stage_dirs: Mutex<HashSet<u8>>,
    refs: Mutex<Vec<RefUpdate>>,
    fsync: bool,
    committed: bool,
    sizes: Option<Mutex<HashMap<ObjectId, SizeRecord>>>,
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
        fsutil::ensure_dir_at(&self.root, "tmp", &tmp_path)?;
        let tmp = fsutil::open_dir_at(&self.root, "tmp", &tmp_path)?;
        let prefix = format!("staging-{}-", boot_id());
        remove_abandoned_stages(&tmp, &tmp_path)?;
        let stage_name = fsutil::unique_tmp_name(&format!("{prefix}rostree-"));
        let lock_path = tmp_path.join(format!("{stage_name}-lock"));
        let stage_lock = rustix::fs::openat(
            &tmp,
            format!("{stage_name}-lock").as_str(),
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .at(&lock_path)?;
        rustix::fs::fcntl_lock(&stage_lock, FlockOperation::NonBlockingLockExclusive)
            .at(&lock_path)?;
        rustix::fs::mkdirat(&tmp, stage_name.as_str(), Mode::from_raw_mode(0o775))
            .at(tmp_path.join(&stage_name))?;
        let stage = fsutil::open_dir_at(&tmp, &stage_name, &tmp_path.join(&stage_name))?;
        Ok(Transaction {
            repo: self,
            _lock: lock,
            stage_name,
            stage,
            _stage_lock: stage_lock,
            claimed: Mutex::new(HashSet::new()),
            stage_dirs: Mutex::new(HashSet::new()),
            refs: Mutex::new(Vec::new()),
            fsync: self.fsync_enabled(),
            committed: false,
            sizes: None,
            stats: TransactionStats::default(),
        })
    }
}

/// Removes staging directories (ours or ostree's) whose lock no process holds any more.
fn remove_abandoned_stages(tmp: &OwnedFd, tmp_path: &std::path::Path) -> Result<()> {
    for (name, ft) in fsutil::list_dir(tmp, tmp_path)? {
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

    /// The recorded sizes, sorted by checksum: (id, archived, unpacked, type code).
    pub fn sizes(&self) -> Vec<(ObjectId, u64, u64, u8)> {
        let mut out: Vec<_> = self
            .sizes
            .as_ref()
            .map(|m| {
                m.lock()
                    .iter()
                    .map(|(id, &(a, u, t))| (*id, a, u, t))
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|e| e.0);
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
            m.lock()
                .insert(*id, (archived, unpacked, ty.ostree_number() as u8));
        }
    }

    /// The stored size of an object, staged or published.
    fn stored_size(&self, id: &ObjectId, ty: ObjectType) -> u64 {
        let rel = self.repo.object_relpath(id, ty);
        rustix::fs::statat(&self.stage, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            .or_else(|_| {
                rustix::fs::statat(&self.repo.objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
            })
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
        if self.claimed.lock().contains(&(*id, ty)) || self.repo.has_object(id, ty)? {
            return Ok(false);
        }
        Ok(self.claimed.lock().insert((*id, ty)))
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

    /// Creates the staged file for an object, to be filled by the caller.
    fn create_staged(&self, id: &ObjectId, ty: ObjectType, mode: u32) -> Result<(OwnedFd, String)> {
        self.ensure_stage_dir(id)?;
        let rel = self.repo.object_relpath(id, ty);
        let fd = rustix::fs::openat(
            &self.stage,
            rel.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )
        .at(self.stage_path(&rel))?;
        Ok((fd, rel))
    }

    /// Writes a metadata object (commit, dirtree, dirmeta) and returns its checksum.
    pub fn write_meta(&self, ty: ObjectType, bytes: &[u8]) -> Result<ObjectId> {
        let id = ObjectId::digest(bytes);
        self.stats.metadata_total.fetch_add(1, Ordering::Relaxed);
        self.record_size(&id, bytes.len() as u64, bytes.len() as u64, ty);
        if self.claim(&id, ty)? {
            let (fd, rel) = self.create_staged(&id, ty, 0o644)?;
            if 0o644 & crate::fsutil::umask() != 0 {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o644)).at(self.stage_path(&rel))?;
            }
            write_all(&fd, bytes).at(self.stage_path(&rel))?;
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
            .insert((*commit, ObjectType::CommitMeta));
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
        self.ensure_stage_dir(id)?;
        let rel = self.repo.object_relpath(id, ObjectType::File);
        let shown = self.stage_path(&rel);
        let mode = self.repo.mode();
        if header.is_symlink() && matches!(mode, RepoMode::Bare | RepoMode::BareUserOnly) {
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
        let (fd, _) = self.create_staged(id, ObjectType::File, file_mode)?;
        let mut out = std::fs::File::from(fd);
        // Set the mode explicitly only where creation could not give it: bits the umask
        // removed, or setuid/setgid bits that fchown clears.
        let mut needs_chmod = file_mode & crate::fsutil::umask() != 0;
        match mode {
            RepoMode::Archive => {
                let mut buf = std::io::BufWriter::with_capacity(256 * 1024, &mut out);
                buf.write_all(&header.to_filez_header(size)).at(&shown)?;
                if !header.is_symlink() {
                    let level = flate2::Compression::new(self.repo.zlib_level());
                    let mut enc = flate2::write::DeflateEncoder::new(&mut buf, level);
                    copy_source(&source, &mut enc).at(&shown)?;
                    enc.finish().at(&shown)?;
                }
                buf.flush().at(&shown)?;
                drop(buf);
                if self.sizes.is_some() {
                    let archived = rustix::fs::fstat(&out).at(&shown)?.st_size as u64;
                    self.record_size(id, archived, unpacked, ObjectType::File);
                }
            }
            RepoMode::BareUser => {
                if header.is_symlink() {
                    let mut data = header.symlink_target.as_bytes().to_vec();
                    data.push(0);
                    out.write_all(&data).at(&shown)?;
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
        debug_assert!(header.is_symlink() || header.mode & S_IFMT == S_IFREG);
        self.stats.content_written.fetch_add(1, Ordering::Relaxed);
        self.stats
            .content_bytes_written
            .fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    /// Queues a ref update, applied by [`Transaction::commit`] after the objects are in place.
    pub fn set_ref(&self, remote: Option<&str>, name: &str, target: Option<ObjectId>) {
        self.refs
            .lock()
            .push((remote.map(str::to_string), name.to_string(), target));
    }

    /// Publishes the staged objects, then the queued refs.
    pub fn commit(mut self) -> Result<()> {
        let stage_path = self.stage_path("");
        if self.fsync {
            rustix::fs::syncfs(&self.stage).at(&stage_path)?;
        }
        let objdir = self.repo.path().join("objects");
        let dirs: Vec<u8> = self.stage_dirs.lock().iter().copied().collect();
        // Move every staged object into place (in parallel: renames are the slow part),
        // then make the renames durable with one fsync per object folder.
        let dests: Vec<OwnedFd> = dirs
            .par_iter()
            .map(|byte| -> Result<OwnedFd> {
                let name = format!("{byte:02x}");
                let sub = fsutil::open_dir_at(&self.stage, &name, &self.stage_path(&name))?;
                fsutil::ensure_dir_at(&self.repo.objects, &name, &objdir.join(&name))?;
                let dest = fsutil::open_dir_at(&self.repo.objects, &name, &objdir.join(&name))?;
                for (file, _) in fsutil::list_dir(&sub, &self.stage_path(&name))? {
                    rustix::fs::renameat(&sub, file.as_str(), &dest, file.as_str())
                        .at(objdir.join(&name).join(&file))?;
                }
                Ok(dest)
            })
            .collect::<Result<_>>()?;
        if self.fsync {
            dests
                .par_iter()
                .try_for_each(|d| rustix::fs::fsync(d).at(&objdir))?;
            if !dirs.is_empty() {
                rustix::fs::fsync(&self.repo.objects).at(&objdir)?;
            }
        }
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
