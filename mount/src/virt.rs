//! The whole-repository view, computed from the refs each time it is asked for:
//!
//! ```text
//! commits/<checksum>/            every commit's tree (any commit checksum resolves on lookup)
//! refs/heads/<ref>               -> ../../commits/<checksum>   (nested names are folders)
//! refs/remotes/<remote>/<ref>    -> ../../../commits/<checksum>
//! history/<ref>/0, 1, …          -> ../../commits/<checksum>   the ref, its parent, …
//! history/<remote>:<ref>/0, 1, … the same for remote refs
//! ```
//! Links are relative, so the view can be moved or bind-mounted. History stops at the first
//! parent that is not in the repository.

use crate::inode::{Kind, VDir};
use crate::tree::Listing;
use rostree_store::refs::RefTarget;
use rostree_store::{ObjectId, ObjectType, Repo, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Commits followed along parents at most (a loop guard).
const MAX_HISTORY: usize = 1 << 20;

fn components(path: &str) -> usize {
    if path.is_empty() {
        0
    } else {
        path.split('/').count()
    }
}

/// A link from a folder `depth` levels below the root to `commits/<id>`.
fn commit_link(depth: usize, id: &ObjectId) -> Kind {
    Kind::Link(Arc::from(format!("{}commits/{id}", "../".repeat(depth))))
}

fn join(prefix: &str, name: &str) -> Arc<str> {
    if prefix.is_empty() {
        Arc::from(name)
    } else {
        Arc::from(format!("{prefix}/{name}"))
    }
}

/// Groups `names` below `prefix`: leaves (`name == prefix/leaf`) and folders (first component
/// of longer names). Returns (child name, full name, is leaf).
fn children_under<'a>(
    prefix: &str,
    names: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    for name in names {
        let rest = if prefix.is_empty() {
            name
        } else {
            match name.strip_prefix(prefix).and_then(|r| r.strip_prefix('/')) {
                Some(r) => r,
                None => continue,
            }
        };
        match rest.split_once('/') {
            Some((first, _)) => {
                out.entry(first.to_string())
                    .or_insert_with(|| (join(prefix, first).to_string(), false));
            }
            None => {
                out.insert(rest.to_string(), (name.to_string(), true));
            }
        }
    }
    out
}

/// Every ref as a refspec (`name` or `remote:name`) with its commit.
fn all_refspecs(repo: &Repo) -> Result<Vec<(String, ObjectId)>> {
    let mut out = Vec::new();
    for (name, _) in repo.list_refs(None)? {
        if let Some(id) = repo.read_ref(None, &name)? {
            out.push((name, id));
        }
    }
    out.extend(repo.list_remote_refs()?);
    Ok(out)
}

fn resolve_refspec(repo: &Repo, spec: &str) -> Result<Option<ObjectId>> {
    match spec.split_once(':') {
        Some((remote, name)) => repo.read_ref(Some(remote), name),
        None => repo.read_ref(None, spec),
    }
}

/// Lists refs of `remote` (or local ones) below `prefix` as links and folders.
fn ref_folder(
    repo: &Repo,
    remote: Option<&str>,
    prefix: &str,
    depth: usize,
) -> Result<Vec<(Arc<str>, Kind)>> {
    let refs = repo.list_refs(remote)?;
    let mut targets = BTreeMap::new();
    for (name, target) in &refs {
        let id = match target {
            RefTarget::Commit(id) => Some(*id),
            RefTarget::Alias(_) => repo.read_ref(remote, name)?,
        };
        if let Some(id) = id {
            targets.insert(name.as_str(), id);
        }
    }
    let mut out = Vec::new();
    for (child, (full, leaf)) in children_under(prefix, targets.keys().copied()) {
        let kind = if leaf {
            commit_link(depth, &targets[full.as_str()])
        } else {
            match remote {
                None => Kind::Virtual(VDir::Heads(Arc::from(full))),
                Some(r) => Kind::Virtual(VDir::Remote(Arc::from(r), Arc::from(full))),
            }
        };
        out.push((Arc::from(child), kind));
    }
    Ok(out)
}

/// The commits of `spec`'s history, newest first.
fn history(repo: &Repo, spec: &str, limit: usize) -> Result<Vec<ObjectId>> {
    let mut out = Vec::new();
    let Some(mut id) = resolve_refspec(repo, spec)? else {
        return Ok(out);
    };
    while out.len() < limit && repo.has_object(&id, ObjectType::Commit)? {
        out.push(id);
        match repo.read_commit(&id)?.parent {
            Some(p) => id = p,
            None => break,
        }
    }
    Ok(out)
}

/// The entries of a directory of the whole-repository view.
pub(crate) fn list(repo: &Repo, dir: &VDir) -> Result<Listing> {
    let v = |d: VDir| Kind::Virtual(d);
    let empty: Arc<str> = Arc::from("");
    Ok(match dir {
        VDir::Root => Listing::sorted(vec![
            (Arc::from("commits"), v(VDir::Commits)),
            (Arc::from("history"), v(VDir::History(empty))),
            (Arc::from("refs"), v(VDir::Refs)),
        ]),
        VDir::Refs => Listing::sorted(vec![
            (Arc::from("heads"), v(VDir::Heads(empty))),
            (Arc::from("remotes"), v(VDir::Remotes)),
        ]),
        VDir::Heads(prefix) => {
            Listing::sorted(ref_folder(repo, None, prefix, 2 + components(prefix))?)
        }
        VDir::Remote(remote, prefix) => Listing::sorted(ref_folder(
            repo,
            Some(remote),
            prefix,
            3 + components(prefix),
        )?),
        VDir::Remotes => {
            let mut remotes: Vec<String> = repo
                .list_remote_refs()?
                .into_iter()
                .filter_map(|(spec, _)| spec.split_once(':').map(|(r, _)| r.to_string()))
                .collect();
            remotes.dedup();
            Listing::sorted(
                remotes
                    .into_iter()
                    .map(|r| {
                        let r: Arc<str> = Arc::from(r);
                        (r.clone(), v(VDir::Remote(r, Arc::from(""))))
                    })
                    .collect(),
            )
        }
        VDir::Commits => Listing::sorted(
            repo.list_objects()?
                .into_iter()
                .filter(|(_, ty)| *ty == ObjectType::Commit)
                .map(|(id, _)| (Arc::from(id.to_string()), Kind::Commit(id)))
                .collect(),
        ),
        VDir::History(prefix) => {
            let specs = all_refspecs(repo)?;
            Listing::sorted(
                children_under(prefix, specs.iter().map(|(s, _)| s.as_str()))
                    .into_iter()
                    .map(|(child, (full, leaf))| {
                        let full: Arc<str> = Arc::from(full);
                        let d = if leaf {
                            VDir::HistoryRef(full)
                        } else {
                            VDir::History(full)
                        };
                        (Arc::from(child), v(d))
                    })
                    .collect(),
            )
        }
        VDir::HistoryRef(spec) => {
            let depth = 1 + components(spec);
            Listing::ordered(
                history(repo, spec, MAX_HISTORY)?
                    .iter()
                    .enumerate()
                    .map(|(i, id)| (Arc::from(i.to_string()), commit_link(depth, id)))
                    .collect(),
            )
        }
    })
}

/// The entry `name` of a directory of the whole-repository view.
pub(crate) fn lookup(repo: &Repo, dir: &VDir, name: &str) -> Result<Option<Kind>> {
    match dir {
        VDir::Commits => {
            let Ok(id) = ObjectId::from_hex(name) else {
                return Ok(None);
            };
            Ok(repo
                .has_object(&id, ObjectType::Commit)?
                .then_some(Kind::Commit(id)))
        }
        VDir::HistoryRef(spec) => {
            // Canonical decimal numbers only: `01` is not an entry.
            let Ok(n) = name.parse::<usize>() else {
                return Ok(None);
            };
            if n.to_string() != name || n >= MAX_HISTORY {
                return Ok(None);
            }
            let chain = history(repo, spec, n + 1)?;
            Ok(chain.get(n).map(|id| commit_link(1 + components(spec), id)))
        }
        _ => Ok(list(repo, dir)?.find(name).cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_nested_names() {
        let names = ["a", "b/c", "b/d/e", "bb"];
        let top = children_under("", names.iter().copied());
        assert_eq!(top["a"], ("a".to_string(), true));
        assert_eq!(top["b"], ("b".to_string(), false));
        assert_eq!(top["bb"], ("bb".to_string(), true));
        let b = children_under("b", names.iter().copied());
        assert_eq!(b.len(), 2);
        assert_eq!(b["c"], ("b/c".to_string(), true));
        assert_eq!(b["d"], ("b/d".to_string(), false));
    }

    #[test]
    fn links_climb_to_the_root() {
        let id = ObjectId::digest(b"c");
        assert_eq!(
            commit_link(2 + components("a/b"), &id),
            Kind::Link(Arc::from(format!("../../../../commits/{id}")))
        );
        assert_eq!(components(""), 0);
    }
}
