//! The one read API: metadata objects, commits, trees and paths inside them.

use crate::format::{Commit, DirMeta, DirTree, DirTreeRef, parse_detached};
use crate::gvariant::Value;
use crate::repo::Repo;
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// What a path inside a commit's tree names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TreeEntry {
    /// A regular file or symlink: its content checksum.
    File(ObjectId),
    /// A directory: its dirtree and dirmeta checksums.
    Dir {
        /// The dirtree checksum.
        tree: ObjectId,
        /// The dirmeta checksum.
        meta: ObjectId,
    },
}

impl Repo {
    /// Reads a metadata object's bytes (unverified: `fsck` checks checksums).
    pub fn read_meta_bytes(&self, id: &ObjectId, ty: ObjectType) -> Result<Vec<u8>> {
        let rel = self.object_relpath(id, ty);
        match crate::fsutil::read_file_at(&self.objects, &rel, &self.object_path(id, ty))? {
            Some(bytes) => Ok(bytes),
            None => Err(Error::MissingObject { id: *id, ty }),
        }
    }

    /// Reads and parses a commit.
    pub fn read_commit(&self, id: &ObjectId) -> Result<Commit> {
        let bytes = self.read_meta_bytes(id, ObjectType::Commit)?;
        Commit::parse(&bytes).map_err(|why| Error::corrupt(*id, ObjectType::Commit, why))
    }

    /// Reads and parses a dirmeta.
    pub fn read_dirmeta(&self, id: &ObjectId) -> Result<DirMeta> {
        let bytes = self.read_meta_bytes(id, ObjectType::DirMeta)?;
        DirMeta::parse(&bytes).map_err(|why| Error::corrupt(*id, ObjectType::DirMeta, why))
    }

    /// Reads and parses a dirtree into an owned value.
    pub fn read_dirtree(&self, id: &ObjectId) -> Result<DirTree> {
        let bytes = self.read_meta_bytes(id, ObjectType::DirTree)?;
        Ok(parse_dirtree(id, &bytes)?.to_owned())
    }

    /// Reads a commit's detached metadata (`.commitmeta`), if any.
    pub fn read_detached_metadata(&self, id: &ObjectId) -> Result<Option<Vec<(String, Value)>>> {
        match self.read_meta_bytes(id, ObjectType::CommitMeta) {
            Ok(bytes) => parse_detached(&bytes)
                .map(Some)
                .map_err(|why| Error::corrupt(*id, ObjectType::CommitMeta, why)),
            Err(Error::MissingObject { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a commit is marked partial (`state/<csum>.commitpartial`).
    pub fn is_commit_partial(&self, id: &ObjectId) -> Result<bool> {
        let state = self.commit_partial_state(id);
        let rel = commit_partial_relpath(id);
        Ok(state.at(self.root_path(&rel))? != PartialState::Complete)
    }

    /// A commit's partial mark as `ostree_repo_load_commit` reads it: the mark is opened
    /// (following a symlink, as ostree does) and a first byte `f` says fsck made it. The raw
    /// errno lets fsck word failures as ostree does.
    pub(crate) fn commit_partial_state(&self, id: &ObjectId) -> rustix::io::Result<PartialState> {
        let rel = commit_partial_relpath(id);
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.root, rel.as_str(), flags, Mode::empty()) {
            Ok(fd) => {
                let mut b = [0u8; 1];
                Ok(match rustix::io::read(&fd, &mut b) {
                    Ok(1) if b[0] == b'f' => PartialState::FsckPartial,
                    _ => PartialState::Partial,
                })
            }
            Err(Errno::NOENT) => Ok(PartialState::Complete),
            Err(e) => Err(e),
        }
    }

    /// The entry `name` of the directory whose dirtree is `tree`, if there is one.
    pub fn dir_child(&self, tree: &ObjectId, name: &str) -> Result<Option<TreeEntry>> {
        let bytes = self.read_meta_bytes(tree, ObjectType::DirTree)?;
        let dt = parse_dirtree(tree, &bytes)?;
        Ok(if let Some(f) = dt.file(name) {
            Some(TreeEntry::File(f))
        } else {
            dt.dir(name)
                .map(|(tree, meta)| TreeEntry::Dir { tree, meta })
        })
    }

    /// Finds `path` (absolute, `/`-separated) in the tree rooted at `root`.
    pub fn lookup_path(&self, root: TreeEntry, path: &str) -> Result<TreeEntry> {
        let mut entry = root;
        let mut walked = String::new();
        for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
            walked.push('/');
            walked.push_str(part);
            let TreeEntry::Dir { tree, .. } = entry else {
                return Err(Error::NotADirectory(walked));
            };
            entry = match self.dir_child(&tree, part)? {
                Some(child) => child,
                None => return Err(Error::NoSuchPath(walked)),
            };
        }
        Ok(entry)
    }
}

/// A commit's partial mark (`state/<csum>.commitpartial`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialState {
    /// No mark: the commit's objects should all be stored.
    Complete,
    /// Marked partial (an interrupted pull, say): objects may be missing.
    Partial,
    /// Marked partial by `fsck`, which found one of its objects missing or corrupt.
    FsckPartial,
}

/// Where a commit's partial mark lives, below the repository root.
pub(crate) fn commit_partial_relpath(id: &ObjectId) -> String {
    format!("state/{id}.commitpartial")
}

/// Parses dirtree bytes, naming the object on failure.
pub fn parse_dirtree<'a>(id: &ObjectId, bytes: &'a [u8]) -> Result<DirTreeRef<'a>> {
    DirTreeRef::parse(bytes).map_err(|why| Error::corrupt(*id, ObjectType::DirTree, why))
}

impl Commit {
    /// The commit's root directory as a tree entry.
    pub fn root(&self) -> TreeEntry {
        TreeEntry::Dir {
            tree: self.root_tree,
            meta: self.root_meta,
        }
    }
}
