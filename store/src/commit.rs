//! Committing a directory: walk it (in parallel), write its content and metadata objects,
//! and assemble a [`MutableTree`]; then write the commit object.

use crate::format::{Commit, DirMeta, FileHeader, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, Xattrs};
use crate::mtree::MutableTree;
use crate::repo::RepoMode;
use crate::transaction::{ContentSource, Transaction};
use crate::{Error, IoContext, ObjectId, ObjectType, Repo, Result, xattr};
use parking_lot::Mutex;
use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

/// A `--statoverride` entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatOverride {
    /// `MODE PATH` or `+MODE PATH`: add these bits.
    Add(u32),
    /// `=MODE PATH`: replace the permission bits.
    Set(u32),
}

/// How file metadata is rewritten while committing (ostree's commit modifier).
#[derive(Debug, Default)]
pub struct CommitFilter {
    /// `--owner-uid`.
    pub owner_uid: Option<u32>,
    /// `--owner-gid`.
    pub owner_gid: Option<u32>,
    /// `--canonical-permissions` (forced for bare-user-only repos).
    pub canonical_permissions: bool,
    /// `--mode-ro-executables`.
    pub mode_ro_executables: bool,
    /// `--no-xattrs` (forced for bare-user-only repos).
    pub no_xattrs: bool,
    /// `--statoverride` entries by path (`/usr/bin/foo`).
    pub statoverride: HashMap<String, StatOverride>,
    /// `--skip-list` paths.
    pub skip_list: HashSet<String>,
    /// `--link-checkout-speedup`: reuse checksums of files hardlinked to repo objects.
    pub link_checkout_speedup: bool,
    /// `--devino-canonical`: take any hardlink to an object as that object, unchecked.
    pub devino_canonical: bool,
    /// `--consume`: delete the source as it is committed.
    pub consume: bool,
}

impl CommitFilter {
    /// Whether any option rewrites metadata (then the devino shortcut must not be trusted).
    fn modifies(&self) -> bool {
        self.owner_uid.is_some()
            || self.owner_gid.is_some()
            || self.canonical_permissions
            || self.mode_ro_executables
            || self.no_xattrs
            || !self.statoverride.is_empty()
    }

    /// Parses a `--statoverride` file: `MODE PATH` lines, MODE decimal (as ostree parses it).
    pub fn parse_statoverride(
        text: &str,
    ) -> std::result::Result<HashMap<String, StatOverride>, String> {
        let mut out = HashMap::new();
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let (mode, path) = line
                .split_once(' ')
                .ok_or("Malformed statoverride file (no space found)")?;
            let (set, digits) = match mode.strip_prefix('=') {
                Some(d) => (true, d),
                None => (false, mode.strip_prefix('+').unwrap_or(mode)),
            };
            let value = parse_strtod_int(digits);
            out.insert(
                path.to_string(),
                if set {
                    StatOverride::Set(value)
                } else {
                    StatOverride::Add(value)
                },
            );
        }
        Ok(out)
    }

    /// Parses a `--skip-list` file: one path a line.
    pub fn parse_skip_list(text: &str) -> HashSet<String> {
        text.split('\n')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Applies the modifier to a file's or directory's metadata.
    pub(crate) fn apply(
        &self,
        relpath: &str,
        uid: &mut u32,
        gid: &mut u32,
        mode: &mut u32,
        xattrs: &mut Xattrs,
    ) {
        if let Some(u) = self.owner_uid {
            *uid = u;
        }
        if let Some(g) = self.owner_gid {
            *gid = g;
        }
        let fmt = *mode & S_IFMT;
        if self.mode_ro_executables && fmt == S_IFREG && *mode & 0o111 != 0 {
            *mode &= !0o222;
        }
        match self.statoverride.get(relpath) {
            Some(StatOverride::Add(bits)) => *mode |= bits,
            Some(StatOverride::Set(bits)) => *mode = fmt | bits,
            None => {}
        }
        if self.canonical_permissions {
            *uid = 0;
            *gid = 0;
            match fmt {
                S_IFREG => *mode &= S_IFREG | 0o755,
                S_IFDIR => *mode &= S_IFDIR | 0o755,
                _ => {}
            }
        }
        if self.no_xattrs || self.canonical_permissions {
            *xattrs = Xattrs::default();
        }
    }
}

/// `g_ascii_strtod` of a mode, truncated to an integer: decimal, or hex with `0x`.
fn parse_strtod_int(s: &str) -> u32 {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u32::from_str_radix(hex, 16).unwrap_or(0);
    }
    s.parse::<f64>().map(|v| v as u32).unwrap_or(0)
}

/// Maps (device, inode) of files hardlinked to content objects to their checksums.
pub type DevinoCache = HashMap<(u64, u64), ObjectId>;

impl Repo {
    /// Scans the content objects' inodes for `--link-checkout-speedup`.
    pub fn scan_hardlinks(&self) -> Result<DevinoCache> {
        let objects = self.list_objects()?;
        let cache: Vec<((u64, u64), ObjectId)> = objects
            .par_iter()
            .filter(|(_, ty)| *ty == ObjectType::File)
            .filter_map(|(id, _)| {
                let rel = self.object_relpath(id, ObjectType::File);
                rustix::fs::statat(&self.objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .ok()
                    .map(|st| ((st.st_dev, st.st_ino), *id))
            })
            .collect();
        Ok(cache.into_iter().collect())
    }
}

/// State shared by the parallel walk.
struct Walk<'t, 'r> {
    tx: &'t Transaction<'r>,
    filter: &'t CommitFilter,
    devino: Option<DevinoCache>,
    used_overrides: Mutex<HashSet<String>>,
    used_skips: Mutex<HashSet<String>>,
}

/// Files up to this size are read once into memory; larger ones are streamed twice.
const INLINE_MAX: u64 = 2 * 1024 * 1024;

thread_local! {
    /// Each walker thread's buffer for files read whole.
    static READ_BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Opens a file of the tree to commit for reading, without updating its access time where
/// we may (reading a whole tree would otherwise dirty every inode).
fn open_source(dir: &OwnedFd, name: &str) -> rustix::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
        Err(rustix::io::Errno::PERM) => rustix::fs::openat(dir, name, flags, Mode::empty()),
        other => other,
    }
}

/// Writes every object of the directory at `path` and returns its tree.
pub fn write_directory(
    tx: &Transaction<'_>,
    path: &Path,
    filter: &CommitFilter,
) -> Result<MutableTree> {
    let repo = tx.repo();
    let devino = if filter.link_checkout_speedup || filter.devino_canonical {
        Some(repo.scan_hardlinks()?)
    } else {
        None
    };
    let walk = Walk {
        tx,
        filter,
        devino,
        used_overrides: Mutex::new(HashSet::new()),
        used_skips: Mutex::new(HashSet::new()),
    };
    let dir = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| {
        Error::invalid(
            path,
            format!("opendir({}): {}", path.display(), std::io::Error::from(e)),
        )
    })?;
    let tree = walk.directory(&dir, path, "/")?;
    let mut unmatched = Vec::new();
    {
        let used = walk.used_overrides.lock();
        for p in filter.statoverride.keys() {
            if !used.contains(p) {
                unmatched.push(format!("Unmatched statoverride path: {p}"));
            }
        }
    }
    if !unmatched.is_empty() {
        return Err(Error::invalid(
            path,
            format!("{}\nUnmatched statoverride paths", unmatched.join("\n")),
        ));
    }
    let used = walk.used_skips.lock();
    let unmatched: Vec<String> = filter
        .skip_list
        .iter()
        .filter(|p| !used.contains(*p))
        .map(|p| format!("Unmatched skip-list path: {p}"))
        .collect();
    if !unmatched.is_empty() {
        return Err(Error::invalid(
            path,
            format!("{}\nUnmatched skip-list paths", unmatched.join("\n")),
        ));
    }
    Ok(tree)
}

fn child_relpath(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

impl Walk<'_, '_> {
    fn skipped(&self, relpath: &str) -> bool {
        if self.filter.skip_list.contains(relpath) {
            self.used_skips.lock().insert(relpath.to_string());
            return true;
        }
        false
    }

    fn note_override(&self, relpath: &str) {
        if self.filter.statoverride.contains_key(relpath) {
            self.used_overrides.lock().insert(relpath.to_string());
        }
    }

    fn directory(&self, dir: &OwnedFd, path: &Path, relpath: &str) -> Result<MutableTree> {
        let st = rustix::fs::fstat(dir).at(path)?;
        let mut xattrs = if self.filter.no_xattrs || self.filter.canonical_permissions {
            Xattrs::default()
        } else {
            xattr::read_fd(dir).at(path)?
        };
        let (mut uid, mut gid, mut mode) = (st.st_uid, st.st_gid, st.st_mode);
        self.note_override(relpath);
        self.filter
            .apply(relpath, &mut uid, &mut gid, &mut mode, &mut xattrs);
        let meta = DirMeta {
            uid,
            gid,
            mode,
            xattrs,
        };
        let meta_id = self.tx.write_meta(ObjectType::DirMeta, &meta.to_bytes())?;
        let entries = crate::fsutil::list_dir(dir, path)?;
        enum Child {
            File(String, ObjectId),
            Dir(String, MutableTree),
            Skip,
        }
        let children: Vec<Child> = entries
            .par_iter()
            .map(|(name, ftype)| -> Result<Child> {
                let child_path = path.join(name);
                let rel = child_relpath(relpath, name);
                if self.skipped(&rel) {
                    if self.filter.consume {
                        crate::transaction::remove_tree_at(dir, name, &child_path)?;
                    }
                    return Ok(Child::Skip);
                }
                crate::format::validate_filename(name)
                    .map_err(|why| Error::invalid(&child_path, why))?;
                let ftype = if *ftype == FileType::Unknown {
                    FileType::from_raw_mode(
                        rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW)
                            .at(&child_path)?
                            .st_mode,
                    )
                } else {
                    *ftype
                };
                match ftype {
                    FileType::Directory => {
                        let sub = rustix::fs::openat(
                            dir,
                            name.as_str(),
                            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                            Mode::empty(),
                        )
                        .at(&child_path)?;
                        let tree = self.directory(&sub, &child_path, &rel)?;
                        if self.filter.consume {
                            rustix::fs::unlinkat(dir, name.as_str(), AtFlags::REMOVEDIR)
                                .at(&child_path)?;
                        }
                        Ok(Child::Dir(name.clone(), tree))
                    }
                    FileType::RegularFile | FileType::Symlink => {
                        let id = self.file(dir, name, &child_path, &rel, ftype)?;
                        if self.filter.consume {
                            rustix::fs::unlinkat(dir, name.as_str(), AtFlags::empty())
                                .at(&child_path)?;
                        }
                        Ok(Child::File(name.clone(), id))
                    }
                    _ => Err(Error::invalid(
                        &child_path,
                        format!("Not a regular file or symlink: {name}"),
                    )),
                }
            })
            .collect::<Result<_>>()?;
        let mut tree = MutableTree {
            meta: Some(meta_id),
            ..Default::default()
        };
        for child in children {
            match child {
                Child::File(n, id) => {
                    tree.files.insert(n, id);
                }
                Child::Dir(n, t) => {
                    tree.dirs.insert(n, t);
                }
                Child::Skip => {}
            }
        }
        Ok(tree)
    }

    fn file(
        &self,
        dir: &OwnedFd,
        name: &str,
        path: &Path,
        relpath: &str,
        ftype: FileType,
    ) -> Result<ObjectId> {
        self.note_override(relpath);
        let read_xattrs = !(self.filter.no_xattrs || self.filter.canonical_permissions);
        if ftype == FileType::Symlink {
            let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).at(path)?;
            let target = rustix::fs::readlinkat(dir, name, Vec::new()).at(path)?;
            let target = target
                .into_string()
                .map_err(|_| Error::invalid(path, "Invalid UTF-8 in symlink target"))?;
            let mut xattrs = if read_xattrs {
                let proc = crate::fsutil::proc_path(dir, name);
                xattr::read_path(&proc).at(path)?
            } else {
                Xattrs::default()
            };
            let (mut uid, mut gid, mut mode) = (st.st_uid, st.st_gid, S_IFLNK | 0o777);
            self.filter
                .apply(relpath, &mut uid, &mut gid, &mut mode, &mut xattrs);
            let header = FileHeader {
                uid,
                gid,
                mode,
                symlink_target: target,
                xattrs,
            };
            let source = ContentSource::Bytes(&[]);
            let id = Transaction::checksum_content(&header, &source)?;
            self.tx.write_content(&id, &header, 0, source)?;
            return Ok(id);
        }
        let fd = open_source(dir, name).at(path)?;
        let st = rustix::fs::fstat(&fd).at(path)?;
        if st.st_mode & S_IFMT != S_IFREG {
            return Err(Error::invalid(
                path,
                format!("Not a regular file or symlink: {name}"),
            ));
        }
        if let Some(cache) = &self.devino
            && st.st_nlink > 1
            && let Some(id) = cache.get(&(st.st_dev, st.st_ino))
            && (self.filter.devino_canonical || !self.filter.modifies())
        {
            self.tx.note_cache_hit();
            return Ok(*id);
        }
        let mut xattrs = if read_xattrs {
            xattr::read_fd(&fd).at(path)?
        } else {
            Xattrs::default()
        };
        let (mut uid, mut gid, mut mode) = (st.st_uid, st.st_gid, st.st_mode);
        self.filter
            .apply(relpath, &mut uid, &mut gid, &mut mode, &mut xattrs);
        let header = FileHeader {
            uid,
            gid,
            mode,
            symlink_target: String::new(),
            xattrs,
        };
        let size = st.st_size as u64;
        let file = std::fs::File::from(fd);
        if size <= INLINE_MAX {
            // One read of exactly the size fstat gave: a file that shrank meanwhile fails.
            // The buffer is the thread's own, reused from file to file.
            READ_BUFFER.with_borrow_mut(|data| {
                data.resize(size as usize, 0);
                (&file)
                    .read_exact(data)
                    .map_err(|_| Error::invalid(path, "file changed size while committing"))?;
                let source = ContentSource::Bytes(data);
                let id = Transaction::checksum_content(&header, &source)?;
                self.tx.write_content(&id, &header, size, source)?;
                Ok(id)
            })
        } else {
            let source = ContentSource::File(&file);
            let id = Transaction::checksum_content(&header, &source).map_err(|e| match e {
                Error::Io { source, .. } => Error::io(path, source),
                other => other,
            })?;
            self.tx
                .write_content(&id, &header, size, ContentSource::File(&file))?;
            Ok(id)
        }
    }
}

/// Forces the filter options a repo mode implies (bare-user-only: canonical, no xattrs).
pub fn filter_for_mode(mode: RepoMode, filter: &mut CommitFilter) {
    if mode == RepoMode::BareUserOnly {
        filter.canonical_permissions = true;
        filter.no_xattrs = true;
    }
}

/// Writes a commit object for an already written tree.
pub fn write_commit(tx: &Transaction<'_>, commit: &Commit) -> Result<ObjectId> {
    tx.write_meta(ObjectType::Commit, &commit.to_bytes())
}
