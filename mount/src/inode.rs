//! Inode numbers and the table of nodes the kernel knows.
//!
//! Numbers are derived, not allocated: a file or symlink's number comes from its content
//! checksum (identical objects share an inode, like a hardlinked checkout); every other node's
//! from its parent's number, its name and what it is, so a directory gets one number per path.
//! A number is therefore the same for the whole life of the mount, even after the kernel has
//! forgotten it and looks the path up again. The table holds only what the kernel holds
//! (lookup counts, dropped on `forget`); in the astronomically unlikely case of two nodes
//! deriving the same number, the later one probes a few alternates.

use rostree_store::ObjectId;
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The root's inode number.
pub(crate) const ROOT: u64 = 1;
/// Set in the numbers of content objects, clear in all others: the two never collide.
const FILE_BIT: u64 = 1 << 63;
/// Alternates tried when a number is taken by another node.
const PROBES: u64 = 8;

/// A directory of the whole-repository view, whose contents follow the refs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum VDir {
    /// `/`: `commits`, `history`, `refs`.
    Root,
    /// `/refs`: `heads`, `remotes`.
    Refs,
    /// `/refs/heads/<prefix>`: local refs and folders of refs.
    Heads(Arc<str>),
    /// `/refs/remotes`: one folder per remote.
    Remotes,
    /// `/refs/remotes/<remote>/<prefix>`.
    Remote(Arc<str>, Arc<str>),
    /// `/commits`: every commit of the repository by checksum.
    Commits,
    /// `/history/<prefix>`: folders of refspecs.
    History(Arc<str>),
    /// `/history/<refspec>`: `0`, `1`, … along the ref's parents.
    HistoryRef(Arc<str>),
}

/// What a node is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A regular file or symlink of a commit: its content object.
    File(ObjectId),
    /// A directory of a commit.
    Tree {
        /// Its dirtree.
        tree: ObjectId,
        /// Its dirmeta.
        meta: ObjectId,
    },
    /// A commit's root directory, resolved when needed (`/commits/<checksum>`).
    Commit(ObjectId),
    /// A directory of the whole-repository view.
    Virtual(VDir),
    /// A symlink of the whole-repository view (into `/commits`).
    Link(Arc<str>),
}

impl Kind {
    /// Whether the node is a directory.
    pub(crate) fn is_dir(&self) -> bool {
        matches!(self, Kind::Tree { .. } | Kind::Commit(_) | Kind::Virtual(_))
    }
}

/// A node the kernel holds.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// What it is.
    pub(crate) kind: Kind,
    /// The directory it was found in (for files: the first one).
    pub(crate) parent: u64,
    /// Its name there.
    pub(crate) name: Arc<str>,
    nlookup: u64,
    /// Which alternate number it took (0 unless its first was taken).
    attempt: u64,
}

impl Node {
    fn same(&self, parent: u64, name: &str, kind: &Kind) -> bool {
        match kind {
            Kind::File(_) => self.kind == *kind,
            _ => self.kind == *kind && self.parent == parent && *self.name == *name,
        }
    }
}

/// The `attempt`-th number a node may take.
fn candidate(parent: u64, name: &str, kind: &Kind, attempt: u64) -> u64 {
    match kind {
        Kind::File(id) => {
            let mut first = [0u8; 8];
            first.copy_from_slice(&id.0[..8]);
            let base = u64::from_be_bytes(first);
            if attempt == 0 {
                base | FILE_BIT
            } else {
                let mut h = DefaultHasher::new();
                (base, attempt).hash(&mut h);
                h.finish() | FILE_BIT
            }
        }
        _ => {
            let mut h = DefaultHasher::new();
            (parent, name, kind, attempt).hash(&mut h);
            let n = h.finish() & !FILE_BIT;
            if n <= ROOT { n + 2 } else { n }
        }
    }
}

/// The nodes the kernel holds, by inode number.
pub(crate) struct NodeTable {
    map: HashMap<u64, Node>,
    /// Nodes held under an alternate number. While there are none, the first free candidate
    /// ends a search (no node can sit further along), which spares hashing the other seven
    /// for every entry of every directory listed.
    displaced: usize,
}

impl NodeTable {
    /// A table holding only the root.
    pub(crate) fn new(root: Kind) -> Self {
        let mut map = HashMap::new();
        map.insert(
            ROOT,
            Node {
                kind: root,
                parent: ROOT,
                name: Arc::from(""),
                nlookup: 1,
                attempt: 0,
            },
        );
        NodeTable { map, displaced: 0 }
    }

    /// The node numbered `ino`.
    pub(crate) fn get(&self, ino: u64) -> Option<&Node> {
        self.map.get(&ino)
    }

    /// The number `kind`, found as `name` in `parent`, has or will have; no change.
    pub(crate) fn peek(&self, parent: u64, name: &str, kind: &Kind) -> u64 {
        let mut free = None;
        for attempt in 0..PROBES {
            let ino = candidate(parent, name, kind, attempt);
            match self.map.get(&ino) {
                Some(n) if n.same(parent, name, kind) => return ino,
                Some(_) => {}
                None => {
                    free.get_or_insert(ino);
                    if self.displaced == 0 {
                        break;
                    }
                }
            }
        }
        free.unwrap_or_else(|| candidate(parent, name, kind, 0))
    }

    /// Counts one more kernel reference to the node and returns its number (`None` only if
    /// every alternate number is taken).
    pub(crate) fn remember(&mut self, parent: u64, name: &str, kind: &Kind) -> Option<u64> {
        let mut free = None;
        for attempt in 0..PROBES {
            let ino = candidate(parent, name, kind, attempt);
            match self.map.get_mut(&ino) {
                Some(n) if n.same(parent, name, kind) => {
                    n.nlookup += 1;
                    return Some(ino);
                }
                Some(_) => {}
                None => {
                    free.get_or_insert((ino, attempt));
                    if self.displaced == 0 {
                        break;
                    }
                }
            }
        }
        let (ino, attempt) = free?;
        self.displaced += usize::from(attempt > 0);
        self.map.insert(
            ino,
            Node {
                kind: kind.clone(),
                parent,
                name: Arc::from(name),
                nlookup: 1,
                attempt,
            },
        );
        Some(ino)
    }

    /// Drops `n` kernel references; the node goes when none is left (never the root).
    pub(crate) fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        if let Some(node) = self.map.get_mut(&ino) {
            node.nlookup = node.nlookup.saturating_sub(n);
            if node.nlookup == 0 {
                let displaced = node.attempt > 0;
                self.map.remove(&ino);
                self.displaced -= usize::from(displaced);
            }
        }
    }

    /// How many nodes are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(n: u8) -> Kind {
        Kind::Tree {
            tree: ObjectId::digest(&[n]),
            meta: ObjectId::digest(b"m"),
        }
    }

    #[test]
    fn numbers_are_stable_and_unique_per_path() {
        let mut t = NodeTable::new(tree(0));
        let a = t.remember(ROOT, "a", &tree(1)).unwrap();
        let b = t.remember(ROOT, "b", &tree(1)).unwrap();
        assert_ne!(a, b, "same dirtree at two paths: two inodes");
        assert_eq!(t.remember(ROOT, "a", &tree(1)), Some(a));
        t.forget(a, 2);
        assert!(t.get(a).is_none());
        assert_eq!(t.peek(ROOT, "a", &tree(1)), a);
        assert_eq!(
            t.remember(ROOT, "a", &tree(1)),
            Some(a),
            "same number after forget"
        );
        let f = Kind::File(ObjectId::digest(b"f"));
        let f1 = t.remember(a, "x", &f).unwrap();
        let f2 = t.remember(b, "y", &f).unwrap();
        assert_eq!(f1, f2, "identical objects share an inode");
        assert!(f1 & FILE_BIT != 0 && a & FILE_BIT == 0);
        t.forget(ROOT, 100);
        assert!(t.get(ROOT).is_some());
    }

    #[test]
    fn collisions_probe_alternates() {
        let mut t = NodeTable::new(tree(0));
        let a = t.remember(ROOT, "a", &tree(1)).unwrap();
        // Squat the number another node would take.
        let other = candidate(ROOT, "z", &tree(2), 0);
        t.map.insert(
            other,
            Node {
                kind: tree(9),
                parent: 7,
                name: Arc::from("q"),
                nlookup: 1,
                attempt: 0,
            },
        );
        let z = t.remember(ROOT, "z", &tree(2)).unwrap();
        assert_ne!(z, other);
        assert_eq!(t.displaced, 1);
        // The squatter goes: `z` keeps its alternate, found past the now free first slot.
        t.forget(other, 1);
        assert_eq!(t.peek(ROOT, "z", &tree(2)), z);
        assert_eq!(t.remember(ROOT, "z", &tree(2)), Some(z));
        assert_ne!(a, z);
        assert_eq!(t.len(), 3);
        t.forget(z, 2);
        assert_eq!(t.displaced, 0);
        assert_eq!(
            t.remember(ROOT, "z", &tree(2)),
            Some(other),
            "back to its first number"
        );
    }
}
