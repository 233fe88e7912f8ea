//! An in-memory tree being assembled for a commit, possibly overlaying several sources
//! (directories, other commits). Subtrees taken from stored commits stay unloaded until
//! something is written into them.

use crate::format::{DirTree, validate_filename};
use crate::read::parse_dirtree;
use crate::transaction::Transaction;
use crate::{Error, ObjectId, ObjectType, Repo, Result};
use rayon::prelude::*;
use std::collections::BTreeMap;

/// A directory under construction.
#[derive(Clone, Debug, Default)]
pub struct MutableTree {
    /// The directory's dirmeta checksum, once known.
    pub meta: Option<ObjectId>,
    /// Files: name to content checksum.
    pub files: BTreeMap<String, ObjectId>,
    /// Subdirectories.
    pub dirs: BTreeMap<String, MutableTree>,
    /// A stored dirtree whose entries have not been loaded yet.
    pub(crate) unloaded: Option<ObjectId>,
}

impl MutableTree {
    /// A tree standing for a stored directory, loaded on demand.
    pub fn from_stored(tree: ObjectId, meta: ObjectId) -> Self {
        MutableTree {
            meta: Some(meta),
            unloaded: Some(tree),
            ..Default::default()
        }
    }

    /// Loads this directory's entries if it still stands for a stored dirtree.
    pub fn ensure_loaded(&mut self, repo: &Repo) -> Result<()> {
        if let Some(tree) = self.unloaded.take() {
            let bytes = repo.read_meta_bytes(&tree, ObjectType::DirTree)?;
            let dt = parse_dirtree(&tree, &bytes)?;
            for (name, id) in &dt.files {
                self.files.insert(name.to_string(), *id);
            }
            for (name, t, m) in &dt.dirs {
                self.dirs
                    .insert(name.to_string(), MutableTree::from_stored(*t, *m));
            }
        }
        Ok(())
    }

    /// Overlays `other` onto this tree: its files replace ours, its directories merge into
    /// ours (taking its dirmeta), as ostree does with several `--tree` arguments.
    pub fn overlay(&mut self, repo: &Repo, other: MutableTree, path: &str) -> Result<()> {
        let mut other = other;
        if other.unloaded.is_some()
            && self.files.is_empty()
            && self.dirs.is_empty()
            && self.unloaded.is_none()
        {
            *self = other;
            return Ok(());
        }
        self.ensure_loaded(repo)?;
        other.ensure_loaded(repo)?;
        if other.meta.is_some() {
            self.meta = other.meta;
        }
        for (name, id) in other.files {
            if self.dirs.contains_key(&name) {
                return Err(Error::invalid(
                    format!("{path}/{name}"),
                    format!("Can't replace directory with file: {name}"),
                ));
            }
            self.files.insert(name, id);
        }
        for (name, sub) in other.dirs {
            if self.files.contains_key(&name) {
                return Err(Error::invalid(
                    format!("{path}/{name}"),
                    format!("Can't replace file with directory: {name}"),
                ));
            }
            let child_path = format!("{path}/{name}");
            match self.dirs.get_mut(&name) {
                Some(existing) => existing.overlay(repo, sub, &child_path)?,
                None => {
                    self.dirs.insert(name, sub);
                }
            }
        }
        Ok(())
    }

    /// Writes the dirtrees bottom-up; returns the (dirtree, dirmeta) checksums of this tree.
    pub fn write(&self, tx: &Transaction<'_>, path: &str) -> Result<(ObjectId, ObjectId)> {
        let meta = self
            .meta
            .ok_or_else(|| Error::invalid(path, "Can't commit an empty tree"))?;
        if let Some(tree) = self.unloaded {
            return Ok((tree, meta));
        }
        let mut dt = DirTree::default();
        for (name, id) in &self.files {
            validate_filename(name).map_err(|why| Error::invalid(format!("{path}/{name}"), why))?;
            dt.files.insert(name.clone(), *id);
        }
        for name in self.dirs.keys() {
            validate_filename(name).map_err(|why| Error::invalid(format!("{path}/{name}"), why))?;
        }
        // Subtrees are independent: write them on all cores.
        let subtrees: Vec<(ObjectId, ObjectId)> = self
            .dirs
            .par_iter()
            .map(|(name, sub)| sub.write(tx, &format!("{path}/{name}")))
            .collect::<Result<_>>()?;
        dt.dirs.extend(self.dirs.keys().cloned().zip(subtrees));
        let tree = tx.write_meta(ObjectType::DirTree, &dt.to_bytes())?;
        Ok((tree, meta))
    }

    /// Finds a subdirectory by path, loading stored trees on the way.
    pub fn subdir_mut(&mut self, repo: &Repo, path: &str) -> Result<Option<&mut MutableTree>> {
        let mut node = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node.ensure_loaded(repo)?;
            match node.dirs.get_mut(part) {
                Some(n) => node = n,
                None => return Ok(None),
            }
        }
        node.ensure_loaded(repo)?;
        Ok(Some(node))
    }
}
