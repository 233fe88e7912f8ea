//! Object types and their file suffixes.

use std::fmt;

/// The kinds of object a repository stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectType {
    /// File content with its metadata (`.file`, `.filez` in archive repos).
    File,
    /// A directory listing (`.dirtree`).
    DirTree,
    /// A directory's owner, mode and xattrs (`.dirmeta`).
    DirMeta,
    /// A commit (`.commit`).
    Commit,
    /// A marker left where a commit was deleted (`.tombstone-commit`).
    TombstoneCommit,
    /// Detached commit metadata such as signatures (`.commitmeta`).
    CommitMeta,
}

impl ObjectType {
    /// All types, in the order ostree numbers them.
    pub const ALL: [ObjectType; 6] = [
        ObjectType::File,
        ObjectType::DirTree,
        ObjectType::DirMeta,
        ObjectType::Commit,
        ObjectType::TombstoneCommit,
        ObjectType::CommitMeta,
    ];

    /// The loose-object suffix (for `File`, the one of bare repos).
    pub fn suffix(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "tombstone-commit",
            ObjectType::CommitMeta => "commitmeta",
        }
    }

    /// The type a suffix names; `filez` is the archive form of `File`.
    pub fn from_suffix(s: &str) -> Option<Self> {
        Some(match s {
            "file" | "filez" => ObjectType::File,
            "dirtree" => ObjectType::DirTree,
            "dirmeta" => ObjectType::DirMeta,
            "commit" => ObjectType::Commit,
            "tombstone-commit" => ObjectType::TombstoneCommit,
            "commitmeta" => ObjectType::CommitMeta,
            _ => return None,
        })
    }

    /// ostree's number for the type (`OSTREE_OBJECT_TYPE_*`): part of its object-name hash
    /// and of `ostree.sizes` records.
    pub fn ostree_number(self) -> u32 {
        match self {
            ObjectType::File => 1,
            ObjectType::DirTree => 2,
            ObjectType::DirMeta => 3,
            ObjectType::Commit => 4,
            ObjectType::TombstoneCommit => 5,
            ObjectType::CommitMeta => 6,
        }
    }

    /// The type with ostree's number `n`, if any.
    pub fn from_ostree_number(n: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.ostree_number() == n)
    }

    /// Whether objects of this type are GVariant metadata (not file content).
    pub fn is_meta(self) -> bool {
        self != ObjectType::File
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.suffix())
    }
}
