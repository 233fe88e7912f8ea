//! Metadata as the filesystem needs it: directory listings, directory and file metadata,
//! commit roots, each read through the store's read API and kept in bounded LRU caches.
//! Metadata objects are checked against their checksums when read: a corrupt dirtree or
//! dirmeta is an error, never a wrong listing.

use crate::cache::WeightedLru;
use crate::inode::Kind;
use crate::meta_cache::CommitCaches;
use parking_lot::Mutex;
use rostree_store::format::{DirMeta, FileHeader};
use rostree_store::read::parse_dirtree;
use rostree_store::{Error, ObjectId, ObjectType, Repo, Result};
use std::sync::Arc;

/// The entries of a directory, with what each is.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Name and node, sorted by name when `sorted`.
    pub(crate) entries: Vec<(Arc<str>, Kind)>,
    sorted: bool,
}

impl Listing {
    /// A listing of entries sorted by name (a dirtree's).
    pub(crate) fn sorted(mut entries: Vec<(Arc<str>, Kind)>) -> Self {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Listing {
            entries,
            sorted: true,
        }
    }

    /// A listing kept in the given order.
    pub(crate) fn ordered(entries: Vec<(Arc<str>, Kind)>) -> Self {
        Listing {
            entries,
            sorted: false,
        }
    }

    /// The entry called `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&Kind> {
        self.index_of(name).map(|i| &self.entries[i].1)
    }

    /// The position of the entry called `name`.
    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        if self.sorted {
            self.entries.binary_search_by(|(n, _)| (**n).cmp(name)).ok()
        } else {
            self.entries.iter().position(|(n, _)| **n == *name)
        }
    }

    /// How many entries are directories (for `nlink`).
    pub(crate) fn subdirs(&self) -> usize {
        self.entries.iter().filter(|(_, k)| k.is_dir()).count()
    }

    fn weight(&self) -> usize {
        64 + self
            .entries
            .iter()
            .map(|(n, _)| n.len() + 16 + std::mem::size_of::<(Arc<str>, Kind)>())
            .sum::<usize>()
    }
}

/// What `stat` needs of a content object.
#[derive(Debug)]
pub(crate) struct FileMeta {
    /// Owner, mode, symlink target, xattrs.
    pub(crate) header: FileHeader,
    /// Content size.
    pub(crate) size: u64,
}

fn xattrs_weight(x: &rostree_store::format::Xattrs) -> usize {
    x.0.iter().map(|(n, v)| n.len() + v.len() + 48).sum()
}

/// Cache budgets, in bytes (roughly) or entries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MetaBudgets {
    pub(crate) trees: usize,
    pub(crate) dirmetas: usize,
    pub(crate) files: usize,
    pub(crate) commits: usize,
}

impl Default for MetaBudgets {
    fn default() -> Self {
        MetaBudgets {
            trees: 24 << 20,
            dirmetas: 4 << 20,
            files: 24 << 20,
            commits: 4096,
        }
    }
}

/// The repository with caches of parsed metadata.
pub(crate) struct Objects {
    pub(crate) repo: Arc<Repo>,
    /// The persistent metadata caches of the commits shown.
    pub(crate) commit_caches: CommitCaches,
    trees: Mutex<WeightedLru<ObjectId, Arc<Listing>>>,
    dirmetas: Mutex<WeightedLru<ObjectId, Arc<DirMeta>>>,
    files: Mutex<WeightedLru<ObjectId, Arc<FileMeta>>>,
    commits: Mutex<WeightedLru<ObjectId, (ObjectId, ObjectId)>>,
}

impl Objects {
    /// Wraps `repo`; nothing is read yet. With `meta_cache`, commits' persistent metadata
    /// caches are used (and built when missing).
    pub(crate) fn new(repo: Repo, budgets: MetaBudgets, meta_cache: bool) -> Self {
        let repo = Arc::new(repo);
        Objects {
            commit_caches: CommitCaches::new(repo.clone(), meta_cache),
            repo,
            trees: Mutex::new(WeightedLru::new(budgets.trees)),
            dirmetas: Mutex::new(WeightedLru::new(budgets.dirmetas)),
            files: Mutex::new(WeightedLru::new(budgets.files)),
            commits: Mutex::new(WeightedLru::new(budgets.commits)),
        }
    }

    /// A metadata object's bytes, checked against its checksum.
    fn verified_meta(&self, id: &ObjectId, ty: ObjectType) -> Result<Vec<u8>> {
        let bytes = self.repo.read_meta_bytes(id, ty)?;
        let actual = ObjectId::digest(&bytes);
        if actual != *id {
            return Err(Error::corrupt(
                *id,
                ty,
                format!("checksum mismatch: actual {actual}"),
            ));
        }
        Ok(bytes)
    }

    /// The entries of dirtree `tree`: files, then subdirectories, merged by name.
    pub(crate) fn listing(&self, tree: &ObjectId) -> Result<Arc<Listing>> {
        if let Some(l) = self.trees.lock().get(tree) {
            return Ok(l);
        }
        let bytes = self.verified_meta(tree, ObjectType::DirTree)?;
        let dt = parse_dirtree(tree, &bytes)?;
        let mut entries = Vec::with_capacity(dt.files.len() + dt.dirs.len());
        for (name, id) in &dt.files {
            entries.push((Arc::from(*name), Kind::File(*id)));
        }
        for (name, tree, meta) in &dt.dirs {
            entries.push((
                Arc::from(*name),
                Kind::Tree {
                    tree: *tree,
                    meta: *meta,
                },
            ));
        }
        let listing = Arc::new(Listing::sorted(entries));
        let weight = listing.weight();
        self.trees.lock().insert(*tree, listing.clone(), weight);
        Ok(listing)
    }

    /// A directory's owner, mode and xattrs.
    pub(crate) fn dirmeta(&self, meta: &ObjectId) -> Result<Arc<DirMeta>> {
        if let Some(m) = self.dirmetas.lock().get(meta) {
            return Ok(m);
        }
        let bytes = self.verified_meta(meta, ObjectType::DirMeta)?;
        let parsed = DirMeta::parse(&bytes)
            .map_err(|why| Error::corrupt(*meta, ObjectType::DirMeta, why))?;
        let weight = 64 + xattrs_weight(&parsed.xattrs);
        let parsed = Arc::new(parsed);
        self.dirmetas.lock().insert(*meta, parsed.clone(), weight);
        Ok(parsed)
    }

    /// A content object's metadata and size (its content is not read).
    pub(crate) fn file_meta(&self, id: &ObjectId) -> Result<Arc<FileMeta>> {
        if let Some(m) = self.files.lock().get(id) {
            return Ok(m);
        }
        // The commit's cache, else the metadata alone: a walk stats every file, and
        // opening each would cost more system calls than the stat itself.
        let (header, size) = match self.commit_caches.get(id) {
            Some(meta) => meta,
            None => self.repo.content_meta(id)?,
        };
        Ok(self.cache_file_meta(*id, header, size))
    }

    /// Reads what `stat` of each entry needs into the caches: from the commit's cache, else
    /// the metadata of all their content objects at once (see [`Repo::content_meta_many`]:
    /// in archive mode the disk gets every header read together). Errors are left for the
    /// request that needs the entry to report, and never cached.
    pub(crate) fn warm(&self, entries: &[(Arc<str>, Kind)]) {
        let uncached: Vec<ObjectId> = {
            let files = self.files.lock();
            entries
                .iter()
                .filter_map(|(_, kind)| match kind {
                    Kind::File(id) if !files.contains(id) => Some(*id),
                    _ => None,
                })
                .collect()
        };
        let mut missing = Vec::with_capacity(uncached.len());
        for id in uncached {
            match self.commit_caches.get(&id) {
                Some((header, size)) => {
                    self.cache_file_meta(id, header, size);
                }
                None => missing.push(id),
            }
        }
        for (id, meta) in missing.iter().zip(self.repo.content_meta_many(&missing)) {
            if let Ok((header, size)) = meta {
                self.cache_file_meta(*id, header, size);
            }
        }
        for (_, kind) in entries {
            if let Kind::Tree { tree, meta } = kind {
                let _ = self.dirmeta(meta);
                let _ = self.listing(tree);
            }
        }
    }

    fn cache_file_meta(&self, id: ObjectId, header: FileHeader, size: u64) -> Arc<FileMeta> {
        let weight = 112 + header.symlink_target.len() + xattrs_weight(&header.xattrs);
        let meta = Arc::new(FileMeta { header, size });
        self.files.lock().insert(id, meta.clone(), weight);
        meta
    }

    /// A commit's root dirtree and dirmeta (the commit is being shown: its metadata cache
    /// is activated).
    pub(crate) fn commit_root(&self, id: &ObjectId) -> Result<(ObjectId, ObjectId)> {
        self.commit_caches.activate(id);
        if let Some(r) = self.commits.lock().get(id) {
            return Ok(r);
        }
        let commit = self.repo.read_commit(id)?;
        let root = (commit.root_tree, commit.root_meta);
        self.commits.lock().insert(*id, root, 1);
        Ok(root)
    }
}
