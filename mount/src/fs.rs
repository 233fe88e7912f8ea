//! The filesystem's state and its helpers, one per FUSE operation, each returning
//! `Result<T, Errno>` (the `ops` module's trait methods call them and reply). Helpers read
//! through [`Objects`] (metadata) and [`ContentCache`] (content); store errors are logged and
//! mapped in one place ([`crate::error::fail`]).

use crate::content::{Chunk, ContentBudgets, ContentCache, Data};
use crate::error::{fail, log};
use crate::inode::{Kind, NodeTable, ROOT, VDir};
use crate::prefetch::Prefetcher;
use crate::tree::{FileMeta, Listing, MetaBudgets, Objects};
use crate::virt;
use fuser::{
    AccessFlags, BackingId, Errno, FileAttr, FileType, FopenFlags, Generation, INodeNo, InitFlags,
    KernelConfig, OpenAccMode, OpenFlags, ReplyDirectory, ReplyDirectoryPlus,
};
use parking_lot::Mutex;
use rostree_store::format::Xattrs;
use rostree_store::{ObjectId, Repo};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// Commit trees never change: the kernel may keep what it learnt of them for this long.
pub(crate) const TTL_FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);
/// Names in the whole-repository view follow the refs: the kernel re-asks after this.
const TTL_LIVE: Duration = Duration::from_millis(500);
pub(crate) const GENERATION: Generation = Generation(0);
/// Smaller files are served from the page cache (KEEP_CACHE): registering a backing file
/// costs more than it saves on them.
const PASSTHROUGH_MIN: u64 = 256 * 1024;
const BLOCK: u32 = 4096;
/// Entries one READDIRPLUS request reads before answering, where the prefetcher has not
/// yet: a few replies' worth, so that the following requests find them read.
const REPLY_WARM: usize = 128;

/// An open file or directory.
enum Handle {
    File {
        data: Data,
        /// The inode, when its reads pass through to a backing file.
        passthrough: Option<u64>,
    },
    Dir {
        listing: Arc<Listing>,
        parent: u64,
    },
}

/// What `open` answers.
pub(crate) struct Opened {
    pub(crate) fh: u64,
    /// The backing file the kernel reads directly (passthrough), if any.
    pub(crate) backing: Option<Arc<BackingId>>,
}

/// What `lookup` answers.
pub(crate) struct Entry {
    pub(crate) attr: FileAttr,
    pub(crate) attr_ttl: Duration,
    pub(crate) entry_ttl: Duration,
}

/// What `getxattr` and `listxattr` answer.
pub(crate) enum XattrAnswer {
    Size(u32),
    Data(Vec<u8>),
}

/// What `statfs` answers.
pub(crate) struct FsStats {
    pub(crate) blocks: u64,
    pub(crate) files: u64,
    pub(crate) bsize: u32,
    pub(crate) frsize: u32,
}

/// Settings of a filesystem instance.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    pub(crate) verify_bare: bool,
    /// Pass reads of uncompressed content through to the kernel when it allows.
    pub(crate) passthrough: bool,
    /// Threads reading directory entries' metadata ahead (0: none).
    pub(crate) prefetch_threads: usize,
    /// Use commits' persistent metadata caches, and build them when missing.
    pub(crate) meta_cache: bool,
    pub(crate) meta: MetaBudgets,
    pub(crate) content: ContentBudgets,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            verify_bare: false,
            passthrough: true,
            prefetch_threads: 8,
            meta_cache: true,
            meta: MetaBudgets::default(),
            content: ContentBudgets::default(),
        }
    }
}

/// A read-only view of a repository: one commit's tree, or the whole repository.
pub(crate) struct RostreeFs {
    objects: Arc<Objects>,
    /// Reads the metadata of an opened directory's entries in parallel, so the kernel's
    /// READDIRPLUS finds them cached instead of waiting for the disk one by one.
    prefetch: Option<Prefetcher>,
    content: ContentCache,
    nodes: Mutex<NodeTable>,
    handles: Mutex<HashMap<u64, Handle>>,
    /// Whether the kernel accepted FUSE passthrough (cleared if registering a backing file
    /// fails, e.g. without CAP_SYS_ADMIN).
    passthrough: AtomicBool,
    passthrough_wanted: bool,
    /// Backing files of inodes open in passthrough mode, with their open counts: the kernel
    /// wants one backing file per inode while any of its opens lasts.
    backing: Mutex<HashMap<u64, (Arc<BackingId>, usize)>>,
    next_fh: AtomicU64,
    owner: (u32, u32),
}

fn attr(ino: u64, kind: FileType, perm: u32, nlink: u32, owner: (u32, u32), size: u64) -> FileAttr {
    let blocks = match kind {
        // ext4's allocation, as a checkout shows it: whole 4 KiB blocks, fast symlinks free.
        FileType::Symlink if size < 60 => 0,
        _ => size.div_ceil(BLOCK as u64) * (BLOCK as u64 / 512),
    };
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind,
        perm: (perm & 0o7777) as u16,
        nlink,
        uid: owner.0,
        gid: owner.1,
        rdev: 0,
        blksize: BLOCK,
        flags: 0,
    }
}

fn file_attr(ino: u64, meta: &FileMeta) -> FileAttr {
    let h = &meta.header;
    if h.is_symlink() {
        let len = h.symlink_target.len() as u64;
        attr(ino, FileType::Symlink, h.mode, 1, (h.uid, h.gid), len)
    } else {
        attr(
            ino,
            FileType::RegularFile,
            h.mode,
            1,
            (h.uid, h.gid),
            meta.size,
        )
    }
}

/// Attributes standing in for a node whose own could not be read (never cached).
fn placeholder_attr(ino: u64, kind: &Kind) -> FileAttr {
    let ft = match kind {
        Kind::File(_) => FileType::RegularFile,
        Kind::Link(_) => FileType::Symlink,
        _ => FileType::Directory,
    };
    attr(ino, ft, 0, 1, (0, 0), 0)
}

/// The size-then-fill protocol of `getxattr`/`listxattr`.
fn xattr_answer(data: Vec<u8>, size: u32) -> Result<XattrAnswer, Errno> {
    let len = u32::try_from(data.len()).map_err(|_| Errno::E2BIG)?;
    if size == 0 {
        Ok(XattrAnswer::Size(len))
    } else if len > size {
        Err(Errno::ERANGE)
    } else {
        Ok(XattrAnswer::Data(data))
    }
}

impl RostreeFs {
    /// A filesystem whose root is `root`; nothing is read until the kernel asks.
    pub(crate) fn new(repo: Repo, root: Kind, tuning: Tuning) -> Self {
        let objects = Arc::new(Objects::new(repo, tuning.meta, tuning.meta_cache));
        let prefetch = (tuning.prefetch_threads > 0)
            .then(|| Prefetcher::start(objects.clone(), tuning.prefetch_threads));
        RostreeFs {
            objects,
            prefetch,
            content: ContentCache::new(tuning.content, tuning.verify_bare),
            nodes: Mutex::new(NodeTable::new(root)),
            handles: Mutex::new(HashMap::new()),
            passthrough: AtomicBool::new(false),
            passthrough_wanted: tuning.passthrough,
            backing: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            owner: (
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw(),
            ),
        }
    }

    fn repo(&self) -> &Repo {
        &self.objects.repo
    }

    /// The mounted tree is commit `id`'s: its persistent metadata cache answers `stat`.
    pub(crate) fn show_commit(&self, id: &ObjectId) {
        self.objects.commit_caches.activate(id);
    }

    pub(crate) fn kind_of(&self, ino: u64) -> Result<Kind, Errno> {
        self.nodes
            .lock()
            .get(ino)
            .map(|n| n.kind.clone())
            .ok_or(Errno::ESTALE)
    }

    fn listing_of(&self, kind: &Kind) -> Result<Arc<Listing>, Errno> {
        match kind {
            Kind::Tree { tree, .. } => self.objects.listing(tree).map_err(fail),
            Kind::Commit(c) => {
                let (tree, _) = self.objects.commit_root(c).map_err(fail)?;
                self.objects.listing(&tree).map_err(fail)
            }
            Kind::Virtual(v) => virt::list(self.repo(), v).map(Arc::new).map_err(fail),
            Kind::File(_) | Kind::Link(_) => Err(Errno::ENOTDIR),
        }
    }

    fn find_child(&self, dir: &Kind, name: &str) -> Result<Option<Kind>, Errno> {
        match dir {
            Kind::Virtual(v) => virt::lookup(self.repo(), v, name).map_err(fail),
            _ => Ok(self.listing_of(dir)?.find(name).cloned()),
        }
    }

    fn tree_attr(&self, ino: u64, tree: &ObjectId, meta: &ObjectId) -> Result<FileAttr, Errno> {
        let m = self.objects.dirmeta(meta).map_err(fail)?;
        let subdirs = self.objects.listing(tree).map_err(fail)?.subdirs();
        let nlink = u32::try_from(subdirs + 2).unwrap_or(u32::MAX);
        Ok(attr(
            ino,
            FileType::Directory,
            m.mode,
            nlink,
            (m.uid, m.gid),
            BLOCK as u64,
        ))
    }

    fn attr_of(&self, ino: u64, kind: &Kind) -> Result<FileAttr, Errno> {
        match kind {
            Kind::File(id) => Ok(file_attr(ino, &*self.objects.file_meta(id).map_err(fail)?)),
            Kind::Tree { tree, meta } => self.tree_attr(ino, tree, meta),
            Kind::Commit(c) => {
                let (tree, meta) = self.objects.commit_root(c).map_err(fail)?;
                self.tree_attr(ino, &tree, &meta)
            }
            // nlink 1: "not counted", so no tool assumes a leaf directory.
            Kind::Virtual(_) => Ok(attr(
                ino,
                FileType::Directory,
                0o555,
                1,
                self.owner,
                BLOCK as u64,
            )),
            Kind::Link(target) => Ok(attr(
                ino,
                FileType::Symlink,
                0o777,
                1,
                self.owner,
                target.len() as u64,
            )),
        }
    }

    fn entry_ttl(parent: &Kind) -> Duration {
        match parent {
            Kind::Virtual(_) => TTL_LIVE,
            _ => TTL_FOREVER,
        }
    }

    fn xattrs_of(&self, kind: &Kind) -> Result<Option<Xattrs>, Errno> {
        Ok(match kind {
            Kind::File(id) => Some(
                self.objects
                    .file_meta(id)
                    .map_err(fail)?
                    .header
                    .xattrs
                    .clone(),
            ),
            Kind::Tree { meta, .. } => {
                Some(self.objects.dirmeta(meta).map_err(fail)?.xattrs.clone())
            }
            Kind::Commit(c) => {
                let (_, meta) = self.objects.commit_root(c).map_err(fail)?;
                Some(self.objects.dirmeta(&meta).map_err(fail)?.xattrs.clone())
            }
            Kind::Virtual(_) | Kind::Link(_) => None,
        })
    }

    fn add_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(fh, h);
        fh
    }

    // ---- helpers, one per operation ----

    pub(crate) fn do_lookup(&self, parent: u64, name: &OsStr) -> Result<Entry, Errno> {
        let name = name.to_str().ok_or(Errno::ENOENT)?;
        let pkind = self.kind_of(parent)?;
        // The kernel resolves `.` and `..` itself (no export support is requested).
        let kind = self.find_child(&pkind, name)?.ok_or(Errno::ENOENT)?;
        let ino = self.nodes.lock().peek(parent, name, &kind);
        let mut a = self.attr_of(ino, &kind)?;
        let ino = self
            .nodes
            .lock()
            .remember(parent, name, &kind)
            .ok_or(Errno::EIO)?;
        a.ino = INodeNo(ino);
        Ok(Entry {
            attr: a,
            attr_ttl: TTL_FOREVER,
            entry_ttl: Self::entry_ttl(&pkind),
        })
    }

    pub(crate) fn do_forget(&self, ino: u64, n: u64) {
        self.nodes.lock().forget(ino, n);
    }

    pub(crate) fn do_getattr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let kind = self.kind_of(ino)?;
        self.attr_of(ino, &kind)
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        match self.kind_of(ino)? {
            Kind::File(id) => {
                let m = self.objects.file_meta(&id).map_err(fail)?;
                if !m.header.is_symlink() {
                    return Err(Errno::EINVAL);
                }
                Ok(m.header.symlink_target.clone().into_bytes())
            }
            Kind::Link(target) => Ok(target.as_bytes().to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Opens a regular file. Uncompressed content on disk is passed through to the kernel
    /// when it can be (`open_backing` registers a file; native read speed), else served by
    /// `read` with the page cache kept across opens.
    pub(crate) fn do_open(
        &self,
        ino: u64,
        flags: OpenFlags,
        open_backing: impl FnOnce(&std::fs::File) -> std::io::Result<BackingId>,
    ) -> Result<Opened, Errno> {
        if flags.acc_mode() != OpenAccMode::O_RDONLY || flags.0 & libc::O_TRUNC != 0 {
            return Err(Errno::EROFS);
        }
        let (kind, parent, name) = {
            let nodes = self.nodes.lock();
            let node = nodes.get(ino).ok_or(Errno::ESTALE)?;
            (node.kind.clone(), node.parent, node.name.clone())
        };
        let id = match kind {
            Kind::File(id) => id,
            k if k.is_dir() => return Err(Errno::EISDIR),
            _ => return Err(Errno::ELOOP),
        };
        let meta = self.objects.file_meta(&id).map_err(fail)?;
        let data = self.content.open(self.repo(), &id, &meta).map_err(fail)?;
        self.read_ahead_after(parent, &name);
        let backing = match &data {
            Data::File(file, size)
                if *size >= PASSTHROUGH_MIN && self.passthrough.load(Ordering::Relaxed) =>
            {
                self.backing_for(ino, file, open_backing)
            }
            _ => None,
        };
        let passthrough = backing.as_ref().map(|_| ino);
        let fh = self.add_handle(Handle::File { data, passthrough });
        Ok(Opened { fh, backing })
    }

    /// Tells the prefetcher that file `name` of directory `parent` is being opened, so that
    /// a walk opening one file after another finds the next ones' bytes read ahead.
    fn read_ahead_after(&self, parent: u64, name: &str) {
        let Some(prefetch) = &self.prefetch else {
            return;
        };
        let listing = match self.kind_of(parent) {
            Ok(k @ (Kind::Tree { .. } | Kind::Commit(_))) => self.listing_of(&k),
            _ => return,
        };
        if let Ok(listing) = listing
            && let Some(index) = listing.index_of(name)
        {
            prefetch.opened(parent, &listing, index);
        }
    }

    /// The inode's backing file, registered on its first open.
    fn backing_for(
        &self,
        ino: u64,
        file: &std::fs::File,
        open_backing: impl FnOnce(&std::fs::File) -> std::io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        let mut map = self.backing.lock();
        if let Some((id, opens)) = map.get_mut(&ino) {
            *opens += 1;
            return Some(id.clone());
        }
        match open_backing(file) {
            Ok(id) => {
                let id = Arc::new(id);
                map.insert(ino, (id.clone(), 1));
                Some(id)
            }
            Err(e) => {
                if self.passthrough.swap(false, Ordering::Relaxed) {
                    log(format_args!("passthrough unavailable, serving reads: {e}"));
                }
                None
            }
        }
    }

    pub(crate) fn do_read(&self, fh: u64, offset: u64, size: u32) -> Result<Chunk, Errno> {
        let data = match self.handles.lock().get(&fh) {
            Some(Handle::File { data, .. }) => data.clone(),
            Some(Handle::Dir { .. }) => return Err(Errno::EISDIR),
            None => return Err(Errno::EBADF),
        };
        data.read(offset, size).map_err(|e| {
            log(format_args!("reading an open file: {e}"));
            Errno::EIO
        })
    }

    pub(crate) fn do_release(&self, fh: u64) {
        let handle = self.handles.lock().remove(&fh);
        if let Some(Handle::File {
            passthrough: Some(ino),
            ..
        }) = handle
        {
            let mut map = self.backing.lock();
            if let Some((_, opens)) = map.get_mut(&ino) {
                *opens -= 1;
                if *opens == 0 {
                    map.remove(&ino);
                }
            }
        }
    }

    pub(crate) fn do_opendir(&self, ino: u64) -> Result<(u64, FopenFlags), Errno> {
        let kind = self.kind_of(ino)?;
        let listing = self.listing_of(&kind)?;
        let parent = self.nodes.lock().get(ino).map(|n| n.parent).unwrap_or(ROOT);
        // Commit trees never change: the kernel may cache their listings.
        let flags = match kind {
            Kind::Virtual(_) => FopenFlags::empty(),
            _ => {
                self.prefetch(&listing);
                FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR
            }
        };
        Ok((self.add_handle(Handle::Dir { listing, parent }), flags))
    }

    /// Starts reading the metadata of a directory's entries in the background.
    fn prefetch(&self, listing: &Arc<Listing>) {
        if let Some(p) = &self.prefetch {
            p.queue(listing, 1);
        }
    }

    fn dir_handle(&self, fh: u64) -> Result<(Arc<Listing>, u64), Errno> {
        match self.handles.lock().get(&fh) {
            Some(Handle::Dir { listing, parent }) => Ok((listing.clone(), *parent)),
            Some(Handle::File { .. }) => Err(Errno::ENOTDIR),
            None => Err(Errno::EBADF),
        }
    }

    /// The dirent type of a child (reading a file's header to tell symlinks apart).
    fn file_type(&self, kind: &Kind) -> FileType {
        match kind {
            Kind::File(id) => match self.objects.file_meta(id) {
                Ok(m) if m.header.is_symlink() => FileType::Symlink,
                Ok(_) => FileType::RegularFile,
                Err(e) => {
                    fail(e);
                    FileType::RegularFile
                }
            },
            Kind::Link(_) => FileType::Symlink,
            _ => FileType::Directory,
        }
    }

    pub(crate) fn fill_dir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        reply: &mut ReplyDirectory,
    ) -> Result<(), Errno> {
        let (listing, parent) = self.dir_handle(fh)?;
        let mut i = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        loop {
            let next = i as u64 + 1;
            let full = match i {
                0 => reply.add(INodeNo(ino), next, FileType::Directory, "."),
                1 => reply.add(INodeNo(parent), next, FileType::Directory, ".."),
                _ => {
                    let Some((name, kind)) = listing.entries.get(i - 2) else {
                        break;
                    };
                    let child = self.nodes.lock().peek(ino, name, kind);
                    reply.add(INodeNo(child), next, self.file_type(kind), &**name)
                }
            };
            if full {
                break;
            }
            i += 1;
        }
        Ok(())
    }

    pub(crate) fn fill_dir_plus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        reply: &mut ReplyDirectoryPlus,
    ) -> Result<(), Errno> {
        let (listing, parent) = self.dir_handle(fh)?;
        let ttl = Self::entry_ttl(&self.kind_of(ino)?);
        let mut i = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        self.warm_entries(&listing, i.saturating_sub(2));
        loop {
            let next = i as u64 + 1;
            // The kernel takes nothing from the dot entries but their names.
            let full = match i {
                0 => {
                    let a = attr(ino, FileType::Directory, 0o555, 1, self.owner, 0);
                    reply.add(INodeNo(ino), next, ".", &Duration::ZERO, &a, GENERATION)
                }
                1 => {
                    let a = attr(parent, FileType::Directory, 0o555, 1, self.owner, 0);
                    reply.add(INodeNo(parent), next, "..", &Duration::ZERO, &a, GENERATION)
                }
                _ => {
                    let Some((name, kind)) = listing.entries.get(i - 2) else {
                        break;
                    };
                    let guess = self.nodes.lock().peek(ino, name, kind);
                    // A child whose metadata can't be read is still listed; its attributes
                    // are not cached, so looking at it answers EIO.
                    let (mut a, ttl) = match self.attr_of(guess, kind) {
                        Ok(a) => (a, ttl),
                        Err(_) => (placeholder_attr(guess, kind), Duration::ZERO),
                    };
                    let child = self
                        .nodes
                        .lock()
                        .remember(ino, name, kind)
                        .ok_or(Errno::EIO)?;
                    a.ino = INodeNo(child);
                    let full = reply.add(INodeNo(child), next, &**name, &ttl, &a, GENERATION);
                    if full {
                        // Not sent: the kernel holds no reference to it.
                        self.nodes.lock().forget(child, 1);
                    }
                    full
                }
            };
            if full {
                break;
            }
            i += 1;
        }
        Ok(())
    }

    /// Reads what a READDIRPLUS reply from entry `start` on describes, where the prefetcher
    /// has not yet, all at once rather than one entry after another.
    fn warm_entries(&self, listing: &Listing, start: usize) {
        let end = listing.entries.len().min(start.saturating_add(REPLY_WARM));
        self.objects.warm(&listing.entries[start.min(end)..end]);
    }

    pub(crate) fn do_getxattr(
        &self,
        ino: u64,
        name: &OsStr,
        size: u32,
    ) -> Result<XattrAnswer, Errno> {
        let xattrs = self.xattrs_of(&self.kind_of(ino)?)?.unwrap_or_default();
        let name = name.as_encoded_bytes();
        let value = xattrs
            .0
            .iter()
            .find(|(n, _)| n.as_slice() == name)
            .map(|(_, v)| v.clone())
            .ok_or(Errno::NO_XATTR)?;
        xattr_answer(value, size)
    }

    pub(crate) fn do_listxattr(&self, ino: u64, size: u32) -> Result<XattrAnswer, Errno> {
        let xattrs = self.xattrs_of(&self.kind_of(ino)?)?.unwrap_or_default();
        let mut names = Vec::new();
        for (n, _) in &xattrs.0 {
            names.extend_from_slice(n);
            names.push(0);
        }
        xattr_answer(names, size)
    }

    pub(crate) fn do_statfs(&self) -> Result<FsStats, Errno> {
        let path: &Path = self.repo().path();
        let st = rustix::fs::statvfs(path).map_err(|e| {
            log(format_args!("{}: {e}", path.display()));
            Errno::EIO
        })?;
        Ok(FsStats {
            blocks: st.f_blocks.saturating_sub(st.f_bfree),
            files: st.f_files.saturating_sub(st.f_ffree),
            bsize: u32::try_from(st.f_bsize).unwrap_or(BLOCK),
            frsize: u32::try_from(st.f_frsize).unwrap_or(BLOCK),
        })
    }

    pub(crate) fn do_access(&self, ino: u64, mask: AccessFlags) -> Result<(), Errno> {
        self.kind_of(ino)?;
        if mask.contains(AccessFlags::W_OK) {
            return Err(Errno::EROFS);
        }
        Ok(())
    }

    /// Asks the kernel for what makes the mount fast: READDIRPLUS, parallel directory
    /// operations, cached symlinks, and passthrough (kernel >= 6.9) so that reads of
    /// uncompressed content go straight to the object files (ordinary filesystems, stack
    /// depth 0, hence a maximum depth of 1). Older kernels lack some: the mount works without.
    pub(crate) fn negotiate(&mut self, config: &mut KernelConfig) {
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_CACHE_SYMLINKS,
        ] {
            let _ = config.add_capabilities(cap);
        }
        if self.passthrough_wanted
            && config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.passthrough.store(true, Ordering::Relaxed);
        }
    }

    /// How many nodes the kernel holds (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.lock().len()
    }
}

/// The root of a whole-repository mount.
pub(crate) fn repository_root() -> Kind {
    Kind::Virtual(VDir::Root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_size_protocol() {
        match xattr_answer(b"bar".to_vec(), 0) {
            Ok(XattrAnswer::Size(3)) => {}
            _ => panic!("size query"),
        }
        assert_eq!(xattr_answer(b"bar".to_vec(), 2).err(), Some(Errno::ERANGE));
        match xattr_answer(b"bar".to_vec(), 3) {
            Ok(XattrAnswer::Data(d)) => assert_eq!(d, b"bar"),
            _ => panic!("data"),
        }
    }

    #[test]
    fn blocks_follow_ext4() {
        let a = attr(5, FileType::RegularFile, 0o100644, 1, (0, 0), 4097);
        assert_eq!(a.blocks, 16);
        assert_eq!(a.perm, 0o644);
        let a = attr(5, FileType::RegularFile, 0o104755, 1, (0, 0), 0);
        assert_eq!(a.blocks, 0);
        assert_eq!(a.perm, 0o4755);
        assert_eq!(attr(5, FileType::Symlink, 0o777, 1, (0, 0), 10).blocks, 0);
        assert_eq!(attr(5, FileType::Symlink, 0o777, 1, (0, 0), 1000).blocks, 8);
    }
}
