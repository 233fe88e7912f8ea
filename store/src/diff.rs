//! Comparing two trees, each a commit's tree or a directory on disk, as `ostree_diff_dirs`
//! (ostree-diff.c) does.
//!
//! For each directory pair: first the children of `a` in enumeration order (a commit lists its
//! files then its subdirectories, each sorted; a directory on disk lists readdir order as GLib's
//! enumerator returns it), each one absent from `b` is *removed* (its descendants are not
//! listed), a type change is *modified*, a checksum change (content checksum for files, dirmeta
//! checksum for directories) is *modified* and directories are then compared recursively; then
//! the children of `b` absent from `a` are *added*, with every descendant of an added directory.
//! Two commit directories with the same dirtree checksum are identical and skipped, so the cost
//! grows with the change, not with the tree. Checksums of files on disk are computed as commit
//! would compute them, in parallel within each directory.

use crate::format::{DirMeta, FileHeader, S_IFLNK, S_IFMT, Xattrs, checksum_header_bytes};
use crate::read::parse_dirtree;
use crate::repo::Repo;
use crate::{Error, ObjectId, ObjectType, Result, TreeEntry, io_message};
use rayon::prelude::*;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};

/// One side of a diff.
#[derive(Clone, Debug)]
pub enum DiffSide {
    /// The root directory of a commit: `TreeEntry::Dir` of its root dirtree and dirmeta.
    Commit(TreeEntry),
    /// A directory on disk.
    Dir(PathBuf),
}

/// Options of a diff (`ostree diff --no-xattrs --owner-uid --owner-gid`).
#[derive(Clone, Debug, Default)]
pub struct DiffOptions {
    /// Do not read extended attributes of files on disk. Also implied when a commit side's
    /// repository is bare-user-only or has `core.disable-xattrs`.
    pub ignore_xattrs: bool,
    /// Owner to assume for files on disk of the `b` side.
    pub owner_uid: Option<u32>,
    /// Group to assume for files on disk of the `b` side.
    pub owner_gid: Option<u32>,
}

/// A path reported by a diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffPath {
    /// Path relative to the compared root, without a leading `/`.
    pub path: PathBuf,
    /// Whether the entry is in a commit (printed `/abs/path`) rather than on disk
    /// (printed relative to its root directory).
    pub in_commit: bool,
}

impl DiffPath {
    /// The path as `ostree diff` prints it: absolute inside a commit, relative on disk.
    pub fn display_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.in_commit {
            out.push(b'/');
        }
        out.extend_from_slice(self.path.as_os_str().as_bytes());
        out
    }
}

/// The result of a diff, in ostree's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeDiff {
    /// Entries present on both sides that differ (paths of the `a` side).
    pub modified: Vec<DiffPath>,
    /// Entries only in `a` (a removed directory is listed alone).
    pub removed: Vec<DiffPath>,
    /// Entries only in `b` (an added directory is followed by all its descendants).
    pub added: Vec<DiffPath>,
}

/// An error about a file on disk, worded as GLib's GIO words it
/// (`Error when getting information for file “/abs/path”: No such file or directory`).
#[derive(Debug)]
pub struct GioError(pub String);

impl fmt::Display for GioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GioError {}

/// The GIO-worded message of an error from [`Repo::diff`] about a file on disk, if it is one.
pub fn gio_message(e: &Error) -> Option<&str> {
    match e {
        Error::Io { source, .. } => source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<GioError>())
            .map(|g| g.0.as_str()),
        _ => None,
    }
}

/// `f` formats the message from the path (as GLib displays it) and `strerror`.
fn gio_error(path: &Path, e: std::io::Error, f: impl FnOnce(&str, &str) -> String) -> Error {
    let msg = f(&path.display().to_string(), &io_message(&e));
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(e.kind(), GioError(msg)),
    }
}

/// `g_file_query_info` on a local file.
fn stat_error(path: &Path, e: std::io::Error) -> Error {
    gio_error(path, e, |p, m| {
        format!("Error when getting information for file “{p}”: {m}")
    })
}

/// `g_file_enumerate_children` on a local directory.
fn opendir_error(path: &Path, e: std::io::Error) -> Error {
    gio_error(path, e, |p, m| {
        format!("Error opening directory '{p}': {m}")
    })
}

/// `g_file_read` on a local file.
fn open_error(path: &Path, e: std::io::Error) -> Error {
    gio_error(path, e, |p, m| format!("Error opening file {p}: {m}"))
}

/// A read error in the middle of a local file or directory.
fn read_error(path: &Path, e: std::io::Error) -> Error {
    gio_error(path, e, |p, m| format!("Error reading file “{p}”: {m}"))
}

/// A file or directory on one side.
#[derive(Clone, Debug)]
enum Node {
    Repo(TreeEntry),
    Fs {
        path: PathBuf,
        meta: std::fs::Metadata,
    },
}

impl Node {
    fn is_dir(&self) -> bool {
        match self {
            Node::Repo(e) => matches!(e, TreeEntry::Dir { .. }),
            Node::Fs { meta, .. } => meta.file_type().is_dir(),
        }
    }
}

/// The children of one directory, in enumeration order, with lookup by name.
enum Listing {
    Repo {
        files: Vec<(String, ObjectId)>,
        dirs: Vec<(String, ObjectId, ObjectId)>,
    },
    Fs {
        dir: PathBuf,
        entries: Vec<(OsString, Node)>,
    },
}

impl Listing {
    fn entries(&self) -> Vec<(OsString, Node)> {
        match self {
            Listing::Repo { files, dirs } => files
                .iter()
                .map(|(n, id)| (OsString::from(n), Node::Repo(TreeEntry::File(*id))))
                .chain(dirs.iter().map(|(n, tree, meta)| {
                    (
                        OsString::from(n),
                        Node::Repo(TreeEntry::Dir {
                            tree: *tree,
                            meta: *meta,
                        }),
                    )
                }))
                .collect(),
            Listing::Fs { entries, .. } => entries.clone(),
        }
    }
}

/// GLib's local enumerator reads 1000 entries at a time and sorts each batch by inode with
/// `qsort` and a comparator returning the `long` difference truncated to `int`. glibc's qsort
/// is a top-down merge sort; it is reproduced exactly so that even inconsistent comparisons
/// (inodes more than 2^31 apart) order as they do in ostree.
fn glib_inode_order(batch: &mut [(OsString, u64)]) {
    fn cmp(a: u64, b: u64) -> i32 {
        (a as i64).wrapping_sub(b as i64) as i32
    }
    fn msort(v: &mut [(OsString, u64)], tmp: &mut Vec<(OsString, u64)>) {
        let n = v.len();
        if n <= 1 {
            return;
        }
        let n1 = n / 2;
        {
            let (left, right) = v.split_at_mut(n1);
            msort(left, tmp);
            msort(right, tmp);
        }
        tmp.clear();
        let (mut i, mut j) = (0, n1);
        while i < n1 && j < n {
            if cmp(v[i].1, v[j].1) <= 0 {
                tmp.push(v[i].clone());
                i += 1;
            } else {
                tmp.push(v[j].clone());
                j += 1;
            }
        }
        tmp.extend(v[i..n1].iter().cloned());
        let k = tmp.len();
        for (slot, item) in v[..k].iter_mut().zip(tmp.drain(..)) {
            *slot = item;
        }
    }
    let mut tmp = Vec::with_capacity(batch.len());
    msort(batch, &mut tmp);
}

/// Lists a directory on disk in the order GLib's `g_file_enumerate_children` yields it.
fn list_fs_dir(dir: &Path) -> Result<Vec<(OsString, Node)>> {
    let rd = std::fs::read_dir(dir).map_err(|e| opendir_error(dir, e))?;
    let mut names = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| read_error(dir, e))?;
        names.push((ent.file_name(), ent.ino()));
    }
    let mut ordered = Vec::with_capacity(names.len());
    for chunk in names.chunks(1000) {
        let mut batch = chunk.to_vec();
        glib_inode_order(&mut batch);
        ordered.extend(batch);
    }
    let mut out = Vec::with_capacity(ordered.len());
    for (name, _) in ordered {
        let path = dir.join(&name);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) => out.push((name, Node::Fs { path, meta })),
            // Removed since readdir: GLib skips it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(stat_error(&path, e)),
        }
    }
    Ok(out)
}

/// Queries `path` without following a final symlink; `None` when it does not exist.
fn query_fs(path: &Path) -> Result<Option<Node>> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(Node::Fs {
            path: path.to_path_buf(),
            meta,
        })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(stat_error(path, e)),
    }
}

/// `g_file_new_for_path`'s canonical absolute form (no symlink resolution).
fn canonical_path(p: &Path) -> PathBuf {
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

struct Ctx<'a> {
    repo: &'a Repo,
    opts: &'a DiffOptions,
    a_in_commit: bool,
    b_in_commit: bool,
}

impl Ctx<'_> {
    fn list(&self, node: &Node) -> Result<Listing> {
        match node {
            Node::Repo(TreeEntry::Dir { tree, .. }) => {
                let bytes = self.repo.read_meta_bytes(tree, ObjectType::DirTree)?;
                let dt = parse_dirtree(tree, &bytes)?;
                // ostree loads every file of a directory it enumerates: fail alike when one
                // is missing.
                for (_, id) in &dt.files {
                    if !self.repo.has_object(id, ObjectType::File)? {
                        return Err(Error::MissingObject {
                            id: *id,
                            ty: ObjectType::File,
                        });
                    }
                }
                Ok(Listing::Repo {
                    files: dt.files.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
                    dirs: dt
                        .dirs
                        .iter()
                        .map(|(n, t, m)| (n.to_string(), *t, *m))
                        .collect(),
                })
            }
            Node::Repo(TreeEntry::File(_)) => Err(Error::NotADirectory(String::new())),
            Node::Fs { path, .. } => Ok(Listing::Fs {
                dir: path.clone(),
                entries: list_fs_dir(path)?,
            }),
        }
    }

    /// The child `name` of a listed directory, `None` when absent.
    fn child(&self, listing: &Listing, name: &OsStr) -> Result<Option<Node>> {
        match listing {
            Listing::Repo { files, dirs } => {
                let Some(name) = name.to_str() else {
                    return Ok(None);
                };
                if let Ok(i) = files.binary_search_by(|f| f.0.as_str().cmp(name)) {
                    return Ok(Some(Node::Repo(TreeEntry::File(files[i].1))));
                }
                Ok(dirs
                    .binary_search_by(|d| d.0.as_str().cmp(name))
                    .ok()
                    .map(|i| {
                        Node::Repo(TreeEntry::Dir {
                            tree: dirs[i].1,
                            meta: dirs[i].2,
                        })
                    }))
            }
            Listing::Fs { dir, .. } => query_fs(&dir.join(name)),
        }
    }

    /// The checksum ostree compares: content checksum of files, dirmeta checksum of
    /// directories; computed for files on disk (`b_side` applies the owner overrides).
    fn checksum(&self, node: &Node, b_side: bool) -> Result<ObjectId> {
        let (path, meta) = match node {
            Node::Repo(TreeEntry::File(id)) => return Ok(*id),
            Node::Repo(TreeEntry::Dir { meta, .. }) => return Ok(*meta),
            Node::Fs { path, meta } => (path, meta),
        };
        let mut uid = meta.uid();
        let mut gid = meta.gid();
        if b_side {
            uid = self.opts.owner_uid.unwrap_or(uid);
            gid = self.opts.owner_gid.unwrap_or(gid);
        }
        let xattrs = if self.opts.ignore_xattrs {
            Xattrs::default()
        } else {
            crate::xattr::read_path(path).map_err(|e| Error::io(path, e))?
        };
        let mode = meta.mode();
        let ft = meta.file_type();
        if ft.is_dir() {
            let dm = DirMeta {
                uid,
                gid,
                mode,
                xattrs,
            };
            return Ok(ObjectId::digest(&dm.to_bytes()));
        }
        let symlink_target = if mode & S_IFMT == S_IFLNK {
            let t = std::fs::read_link(path).map_err(|e| stat_error(path, e))?;
            t.as_os_str().to_string_lossy().into_owned()
        } else {
            String::new()
        };
        let header = FileHeader {
            uid,
            gid,
            mode,
            symlink_target,
            xattrs,
        };
        let mut h = crate::checksum::Hasher::default();
        h.update(&checksum_header_bytes(&header));
        if ft.is_file() {
            let mut f = std::fs::File::open(path).map_err(|e| open_error(path, e))?;
            std::io::copy(&mut f, &mut h).map_err(|e| read_error(path, e))?;
        }
        Ok(h.finish())
    }

    fn diff_dirs(&self, a: &Node, b: &Node, rel: &Path, out: &mut TreeDiff) -> Result<()> {
        if let (
            Node::Repo(TreeEntry::Dir { tree: ta, .. }),
            Node::Repo(TreeEntry::Dir { tree: tb, .. }),
        ) = (a, b)
            && ta == tb
        {
            return Ok(());
        }
        let a_listing = self.list(a)?;
        // Children of `b` on disk are looked up one by one; `b` is enumerated only for the
        // additions, after `a`'s children (which is also where ostree reports its errors).
        let b_lookup = match b {
            Node::Fs { path, .. } => Listing::Fs {
                dir: path.clone(),
                entries: Vec::new(),
            },
            _ => self.list(b)?,
        };
        let a_list = a_listing.entries();
        let mut pairs = Vec::with_capacity(a_list.len());
        for (name, a_child) in a_list {
            let b_child = self.child(&b_lookup, &name)?;
            pairs.push((name, a_child, b_child));
        }
        // Checksums of same-typed pairs, in parallel (files on disk are hashed).
        let differs: Vec<Result<bool>> = pairs
            .par_iter()
            .map(|(_, ac, bc)| match bc {
                Some(bc) if ac.is_dir() == bc.is_dir() => {
                    Ok(self.checksum(ac, false)? != self.checksum(bc, true)?)
                }
                _ => Ok(true),
            })
            .collect();
        for ((name, a_child, b_child), differs) in pairs.into_iter().zip(differs) {
            let child_rel = rel.join(&name);
            let Some(b_child) = b_child else {
                out.removed.push(DiffPath {
                    path: child_rel,
                    in_commit: self.a_in_commit,
                });
                continue;
            };
            if a_child.is_dir() != b_child.is_dir() {
                out.modified.push(DiffPath {
                    path: child_rel,
                    in_commit: self.a_in_commit,
                });
                continue;
            }
            if differs? {
                out.modified.push(DiffPath {
                    path: child_rel.clone(),
                    in_commit: self.a_in_commit,
                });
            }
            if a_child.is_dir() {
                self.diff_dirs(&a_child, &b_child, &child_rel, out)?;
            }
        }
        let b_listing = match b {
            Node::Fs { .. } => self.list(b)?,
            _ => b_lookup,
        };
        for (name, b_child) in b_listing.entries() {
            if self.child(&a_listing, &name)?.is_none() {
                let child_rel = rel.join(&name);
                out.added.push(DiffPath {
                    path: child_rel.clone(),
                    in_commit: self.b_in_commit,
                });
                if b_child.is_dir() {
                    self.add_recurse(&b_child, &child_rel, out)?;
                }
            }
        }
        Ok(())
    }

    fn add_recurse(&self, dir: &Node, rel: &Path, out: &mut TreeDiff) -> Result<()> {
        for (name, child) in self.list(dir)?.entries() {
            let child_rel = rel.join(&name);
            out.added.push(DiffPath {
                path: child_rel.clone(),
                in_commit: self.b_in_commit,
            });
            if child.is_dir() {
                self.add_recurse(&child, &child_rel, out)?;
            }
        }
        Ok(())
    }
}

impl Repo {
    /// Whether xattrs are ignored when this repository's trees are compared with files on
    /// disk: bare-user-only repos and `core.disable-xattrs=true` store none.
    pub fn diff_ignores_xattrs(&self) -> bool {
        self.mode() == crate::RepoMode::BareUserOnly
            || self
                .config()
                .get_bool("core", "disable-xattrs")
                .ok()
                .flatten()
                .unwrap_or(false)
    }

    /// Compares `a` with `b` as `ostree diff A B` does.
    pub fn diff(&self, a: &DiffSide, b: &DiffSide, opts: &DiffOptions) -> Result<TreeDiff> {
        let mut opts = opts.clone();
        let is_commit = |s: &DiffSide| matches!(s, DiffSide::Commit(_));
        if (is_commit(a) || is_commit(b)) && self.diff_ignores_xattrs() {
            opts.ignore_xattrs = true;
        }
        let root = |s: &DiffSide| -> Result<Node> {
            match s {
                DiffSide::Commit(e) => Ok(Node::Repo(*e)),
                DiffSide::Dir(p) => {
                    let path = canonical_path(p);
                    let meta =
                        std::fs::symlink_metadata(&path).map_err(|e| stat_error(&path, e))?;
                    Ok(Node::Fs { path, meta })
                }
            }
        };
        let a_node = root(a)?;
        let b_node = root(b)?;
        let ctx = Ctx {
            repo: self,
            opts: &opts,
            a_in_commit: is_commit(a),
            b_in_commit: is_commit(b),
        };
        let mut out = TreeDiff::default();
        ctx.diff_dirs(&a_node, &b_node, Path::new(""), &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inode_order_is_a_stable_merge_sort_with_truncated_differences() {
        let mut v: Vec<(OsString, u64)> = [("a", 5u64), ("b", 3), ("c", 5), ("d", 1)]
            .iter()
            .map(|(n, i)| (OsString::from(n), *i))
            .collect();
        glib_inode_order(&mut v);
        let names: Vec<_> = v.iter().map(|(n, _)| n.to_str().unwrap()).collect();
        assert_eq!(names, ["d", "b", "a", "c"]);
        // 2^32 apart: the truncated difference is 0, so the two compare equal and keep order.
        let mut v = vec![(OsString::from("x"), 1u64 << 32), (OsString::from("y"), 0)];
        glib_inode_order(&mut v);
        assert_eq!(v[0].0, "x");
    }

    #[test]
    fn display_paths() {
        let p = DiffPath {
            path: PathBuf::from("a/b"),
            in_commit: true,
        };
        assert_eq!(p.display_bytes(), b"/a/b");
        let p = DiffPath {
            path: PathBuf::from("a/b"),
            in_commit: false,
        };
        assert_eq!(p.display_bytes(), b"a/b");
    }
}
