//! The reachability walk of `ostree_repo_traverse_commit_with_flags`, shared by fsck and
//! [`crate::prune`]: the same objects, in the same order, with the same errors.
//!
//! Commits and dirtrees are read leniently ([`super::gv`]), as ostree's trusted loads read
//! them, and the reached set iterates in GLib's hash-table order ([`GHashOrder`] keyed by
//! [`object_name_hash`]), which decides fsck's progress and first reported error.

use super::gv;
use super::objects::{partial_state, read_meta};
use super::{Failure, fail};
use crate::ghash::{GHashOrder, g_str_hash};
use crate::gvariant::Type;
use crate::read::PartialState;
use crate::repo::Repo;
use crate::{ObjectId, ObjectType};
use std::collections::HashMap;

/// An object as ostree names it: checksum and type.
pub type ObjName = (ObjectId, ObjectType);

/// `ostree_hash_object_name`: `g_str_hash(checksum) + type`.
pub fn object_name_hash(name: &ObjName) -> u32 {
    g_str_hash(name.0.to_string().as_bytes()).wrapping_add(name.1.ostree_number())
}

/// `ostree_checksum_bytes_peek_validate`.
pub(super) fn checksum_of(v: gv::Data<'_>) -> Result<ObjectId, Failure> {
    let b = v.bytes();
    ObjectId::from_bytes(b).ok_or_else(|| {
        Failure(format!(
            "Invalid checksum of length {} expected 32",
            v.size()
        ))
    })
}

/// What a commit's walk needs, read as ostree reads it (leniently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitView {
    /// Child 1, the parent checksum bytes (empty: no parent).
    pub parent: Vec<u8>,
    /// Child 5, the timestamp.
    pub timestamp: u64,
    /// Child 6, the root dirtree checksum bytes.
    pub root_tree: Vec<u8>,
    /// Child 7, the root dirmeta checksum bytes.
    pub root_meta: Vec<u8>,
}

impl CommitView {
    /// Reads commit bytes leniently, as ostree's trusted loads do.
    pub fn read(bytes: &[u8]) -> CommitView {
        let items = gv::refs(&gv::COMMIT_ITEMS);
        let v = gv::Data::Bytes(bytes);
        let child = |i| gv::tuple_child(&items, v, i);
        CommitView {
            parent: child(1).bytes().to_vec(),
            timestamp: child(5).u64_be(),
            root_tree: child(6).bytes().to_vec(),
            root_meta: child(7).bytes().to_vec(),
        }
    }

    /// The parent, as `ostree_commit_get_parent` returns it.
    pub fn parent(&self) -> Result<Option<ObjectId>, Failure> {
        if self.parent.is_empty() {
            return Ok(None);
        }
        checksum_of(gv::Data::Bytes(&self.parent)).map(Some)
    }
}

/// The entries of a dirtree read leniently: files (checksum bytes) then directories
/// (dirtree and dirmeta checksum bytes), in stored order.
pub(super) fn dirtree_entries(
    bytes: &[u8],
) -> (Vec<gv::Data<'_>>, Vec<(gv::Data<'_>, gv::Data<'_>)>) {
    let top = gv::refs(&*gv::DIRTREE_ITEMS);
    let v = gv::Data::Bytes(bytes);
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for (n, arr_ty) in gv::DIRTREE_ITEMS.iter().enumerate() {
        let Type::Array(elem) = arr_ty else { continue };
        let arr = gv::tuple_child(&top, v, n);
        let Type::Tuple(entry_items) = &**elem else {
            continue;
        };
        let entry_items = gv::refs(entry_items);
        for i in 0..gv::array_len(elem, arr) {
            let e = gv::array_child(elem, arr, i);
            if n == 0 {
                files.push(gv::tuple_child(&entry_items, e, 1));
            } else {
                dirs.push((
                    gv::tuple_child(&entry_items, e, 1),
                    gv::tuple_child(&entry_items, e, 2),
                ));
            }
        }
    }
    (files, dirs)
}

/// The objects reachable from a set of commits, gathered exactly as
/// `ostree_repo_traverse_commit_with_flags` gathers them (same order, same errors).
#[derive(Debug)]
pub struct Reachable<'r> {
    repo: &'r Repo,
    set: GHashOrder<ObjName>,
    parents: Option<HashMap<ObjName, Vec<ObjName>>>,
    cache: Option<HashMap<ObjName, Vec<u8>>>,
    commit_only: bool,
    in_progress: Vec<ObjectId>,
}

/// Dirtree nesting beyond which a walk is refused (ostree would overflow its stack).
const MAX_TREE_DEPTH: usize = 8192;

impl<'r> Reachable<'r> {
    /// An empty set. `with_parents` records which objects contain which (for fsck's
    /// `In commits ...`); `keep_bytes` keeps the commits and dirtrees read during the walk.
    pub fn new(repo: &'r Repo, with_parents: bool, keep_bytes: bool) -> Self {
        Reachable {
            repo,
            set: GHashOrder::default(),
            parents: with_parents.then(HashMap::new),
            cache: keep_bytes.then(HashMap::new),
            commit_only: false,
            in_progress: Vec::new(),
        }
    }

    /// Only walk commits, not their trees (`--commit-only`).
    pub fn set_commit_only(&mut self, commit_only: bool) {
        self.commit_only = commit_only;
    }

    /// Whether an object was reached.
    pub fn contains(&self, id: &ObjectId, ty: ObjectType) -> bool {
        let name = (*id, ty);
        self.set.contains_hashed(&name, object_name_hash(&name))
    }

    /// The number of objects reached.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing was reached.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The objects in ostree's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &ObjName> {
        self.set.iter()
    }

    /// The bytes of a commit or dirtree read during the walk (when kept).
    pub fn cached(&self, name: &ObjName) -> Option<&[u8]> {
        self.cache.as_ref()?.get(name).map(Vec::as_slice)
    }

    /// The commits containing `name`, in the order ostree lists them (`In commits ...`).
    pub fn containing_commits(&self, name: &ObjName) -> Vec<ObjectId> {
        let mut res: GHashOrder<String> = GHashOrder::default();
        let mut seen = std::collections::HashSet::new();
        self.collect_commits(name, &mut res, &mut seen);
        res.iter()
            .filter_map(|s| ObjectId::from_hex(s).ok())
            .collect()
    }

    fn collect_commits(
        &self,
        name: &ObjName,
        res: &mut GHashOrder<String>,
        seen: &mut std::collections::HashSet<ObjName>,
    ) {
        if name.1 == ObjectType::Commit {
            let s = name.0.to_string();
            let h = g_str_hash(s.as_bytes());
            res.insert_hashed(s, h);
            return;
        }
        // A corrupt repository could make the parent graph cyclic; visit each object once
        // (ostree's result is a set, so this changes nothing else).
        if !seen.insert(*name) {
            return;
        }
        let Some(parents) = self.parents.as_ref().and_then(|p| p.get(name)) else {
            return;
        };
        for p in parents {
            self.collect_commits(p, res, seen);
        }
    }

    fn add(&mut self, name: ObjName) {
        let h = object_name_hash(&name);
        self.set.insert_hashed(name, h);
    }

    fn add_parent(&mut self, key: ObjName, parent: ObjName) {
        let Some(parents) = self.parents.as_mut() else {
            return;
        };
        let list = parents.entry(key).or_default();
        list.retain(|p| *p != parent);
        list.push(parent);
    }

    fn load(&mut self, id: &ObjectId, ty: ObjectType) -> Result<Option<Vec<u8>>, Failure> {
        let name = (*id, ty);
        if let Some(b) = self.cache.as_ref().and_then(|c| c.get(&name)) {
            return Ok(Some(b.clone()));
        }
        let bytes = read_meta(self.repo, id, ty)?;
        if let (Some(cache), Some(b)) = (self.cache.as_mut(), bytes.as_ref()) {
            cache.insert(name, b.clone());
        }
        Ok(bytes)
    }

    /// Adds `commit` and, unless commit-only, everything in its tree; then its parents up to
    /// `maxdepth` of them (-1: all). A missing commit ends the walk silently; a missing dirtree
    /// is an error unless the commit is partial.
    pub fn traverse_commit(&mut self, commit: &ObjectId, maxdepth: i32) -> Result<(), Failure> {
        let mut csum = *commit;
        let mut depth = maxdepth;
        loop {
            let key = (csum, ObjectType::Commit);
            if self.set.contains_hashed(&key, object_name_hash(&key)) {
                break;
            }
            let Some(bytes) = self.load(&csum, ObjectType::Commit)? else {
                break;
            };
            let partial = partial_state(self.repo, &csum)? != PartialState::Complete;
            self.add(key);
            let view = CommitView::read(&bytes);
            if !self.commit_only {
                let root_tree = checksum_of(gv::Data::Bytes(&view.root_tree))?;
                let root_meta = checksum_of(gv::Data::Bytes(&view.root_meta))?;
                self.walk_commit_root(key, &root_tree, &root_meta, partial)?;
            }
            if depth == -1 || depth > 0 {
                if let Some(parent) = view.parent()? {
                    csum = parent;
                    if depth > 0 {
                        depth -= 1;
                    }
                    continue;
                }
            }
            break;
        }
        Ok(())
    }

    /// The commit iterator: the root directory first (walked whole), then the root dirtree's
    /// entries again with the commit as their parent.
    fn walk_commit_root(
        &mut self,
        key: ObjName,
        root_tree: &ObjectId,
        root_meta: &ObjectId,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let Some(root_bytes) = self.load(root_tree, ObjectType::DirTree)? else {
            if ignore_missing {
                return Ok(());
            }
            return fail(format!("No such metadata object {root_tree}.dirtree"));
        };
        self.dir_entry(key, root_tree, root_meta, ignore_missing)?;
        self.walk_entries(&root_bytes, key, ignore_missing)
    }

    fn dir_entry(
        &mut self,
        parent: ObjName,
        tree: &ObjectId,
        meta: &ObjectId,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let meta_key = (*meta, ObjectType::DirMeta);
        self.add_parent(meta_key, parent);
        self.add(meta_key);
        let tree_key = (*tree, ObjectType::DirTree);
        self.add_parent(tree_key, parent);
        if !self
            .set
            .contains_hashed(&tree_key, object_name_hash(&tree_key))
        {
            self.traverse_dirtree(tree, ignore_missing)?;
            self.add(tree_key);
        }
        Ok(())
    }

    fn traverse_dirtree(&mut self, tree: &ObjectId, ignore_missing: bool) -> Result<(), Failure> {
        if self.in_progress.contains(tree) || self.in_progress.len() >= MAX_TREE_DEPTH {
            return fail(format!(
                "Corrupted dirtree object {tree}: directory nesting loops or is too deep"
            ));
        }
        let Some(bytes) = self.load(tree, ObjectType::DirTree)? else {
            if ignore_missing {
                return Ok(());
            }
            return fail(format!("No such metadata object {tree}.dirtree"));
        };
        self.in_progress.push(*tree);
        let r = self.walk_entries(&bytes, (*tree, ObjectType::DirTree), ignore_missing);
        self.in_progress.pop();
        r
    }

    fn walk_entries(
        &mut self,
        bytes: &[u8],
        parent: ObjName,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let (files, dirs) = dirtree_entries(bytes);
        for f in files {
            let key = (checksum_of(f)?, ObjectType::File);
            self.add_parent(key, parent);
            self.add(key);
        }
        for (t, m) in dirs {
            let tree = checksum_of(t)?;
            let meta = checksum_of(m)?;
            self.dir_entry(parent, &tree, &meta, ignore_missing)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsck::validate_metadata_structure;

    #[test]
    fn lenient_reader_on_good_and_bad_dirtrees() {
        let mut t = crate::format::DirTree::default();
        t.files.insert("a".into(), ObjectId::digest(b"1"));
        t.dirs
            .insert("d".into(), (ObjectId::digest(b"2"), ObjectId::digest(b"3")));
        let bytes = t.to_bytes();
        let (files, dirs) = dirtree_entries(&bytes);
        assert_eq!(files.len(), 1);
        assert_eq!(checksum_of(files[0]).unwrap(), ObjectId::digest(b"1"));
        assert_eq!(checksum_of(dirs[0].1).unwrap(), ObjectId::digest(b"3"));
        // Every truncation and garbage suffix reads without panicking.
        for n in 0..bytes.len() {
            let _ = dirtree_entries(&bytes[..n]);
            let _ = CommitView::read(&bytes[..n]);
        }
        let mut junk = bytes.clone();
        junk.extend_from_slice(b"junkjunk\n");
        let (files, _) = dirtree_entries(&junk);
        assert!(files.iter().all(|f| checksum_of(*f).is_err()) || files.is_empty());
    }

    #[test]
    fn lenient_reader_never_panics_on_random_bytes() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let filez = gv::refs(&gv::FILEZ_ITEMS);
        for round in 0..8_000 {
            let len = (next() % if round % 10 == 0 { 70_000 } else { 300 }) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let (files, dirs) = dirtree_entries(&data);
            for f in files {
                let _ = checksum_of(f);
            }
            for (t, m) in dirs {
                let _ = (checksum_of(t), checksum_of(m));
            }
            let c = CommitView::read(&data);
            let _ = c.parent();
            for i in 0..8 {
                let d = gv::tuple_child(&filez, gv::Data::Bytes(&data), i);
                let _ = (d.u32_be(), d.u64_be(), d.str_bytes());
            }
            let _ = validate_metadata_structure(ObjectType::DirTree, &data);
            let _ = validate_metadata_structure(ObjectType::Commit, &data);
            let _ = validate_metadata_structure(ObjectType::DirMeta, &data);
        }
    }
}
