//! Refs and commits listed as ostree lists them, in its hash-table order: what fsck validates
//! first, and the roots of prune's walk.

use super::objects::{open_read, read_all};
use crate::ObjectId;
use crate::fsutil::{dir_entries_lenient, openat_dir};
use crate::ghash::{GHashOrder, g_str_hash};
use crate::repo::Repo;
use std::os::fd::OwnedFd;

/// Whether a file name can be part of a ref (`ostree_validate_rev`'s fragment rule); ostree
/// skips other entries of `refs/` silently.
fn is_ref_fragment(name: &[u8]) -> bool {
    !name.is_empty()
        && name[0] != b'-'
        && name[0] != b'.'
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// The refs below `dir` (`prefix` naming it) with their raw targets, appended to `out`:
/// `enumerate_refs_recurse` in `readdir` order.
fn enumerate_refs(dir: &OwnedFd, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, ft) in dir_entries_lenient(dir) {
        if !is_ref_fragment(&name) {
            continue;
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        let path = format!("{prefix}{name}");
        if ft == rustix::fs::FileType::Directory {
            if let Ok(sub) = openat_dir(dir, name.as_str(), true) {
                enumerate_refs(&sub, &format!("{path}/"), out);
            }
        } else if ft == rustix::fs::FileType::RegularFile || ft == rustix::fs::FileType::Symlink {
            let mut bytes = Vec::new();
            if let Ok(Some(file)) = open_read(dir, &name)
                && read_all(file, &mut bytes).is_ok()
            {
                let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
                out.push((path, text));
            }
        }
    }
}

/// The refs of `refs/heads`, with their raw targets.
fn local_refs(repo: &Repo) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(heads) = openat_dir(&repo.root, "refs/heads", true) {
        enumerate_refs(&heads, "", &mut out);
    }
    out
}

/// The refs of each subdirectory of `group` (`refs/remotes`: one per remote, `refs/mirrors`:
/// one per collection), as (subdirectory, ref, raw target).
fn grouped_refs(repo: &Repo, group: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = openat_dir(&repo.root, group, true) else {
        return out;
    };
    for (sub, ft) in dir_entries_lenient(&dir) {
        if ft != rustix::fs::FileType::Directory {
            continue;
        }
        let sub = String::from_utf8_lossy(&sub).into_owned();
        if let Ok(subdir) = openat_dir(&dir, sub.as_str(), true) {
            let mut refs = Vec::new();
            enumerate_refs(&subdir, "", &mut refs);
            out.extend(refs.into_iter().map(|(r, t)| (sub.clone(), r, t)));
        }
    }
    out
}

/// `ostree_repo_list_refs(NULL)`: local refs then `remote:ref`s, in the order ostree's hash
/// table iterates them, with their (unvalidated) targets.
pub fn list_refs_ostree_order(repo: &Repo) -> Vec<(String, String)> {
    let mut found = local_refs(repo);
    for (remote, r, t) in grouped_refs(repo, "refs/remotes") {
        found.push((format!("{remote}:{r}"), t));
    }
    order_pairs(found, |k| g_str_hash(k.as_bytes()))
}

/// `ostree_repo_list_collection_refs(EXCLUDE_REMOTES)`: `((collection, ref), target)`.
pub(super) fn list_collection_refs(repo: &Repo) -> Vec<((String, String), String)> {
    let mut found = Vec::new();
    if let Some(cid) = repo.config().get("core", "collection-id") {
        let local = local_refs(repo).into_iter();
        found.extend(local.map(|(r, t)| ((cid.to_string(), r), t)));
    }
    for (cid, r, t) in grouped_refs(repo, "refs/mirrors") {
        found.push(((cid, r), t));
    }
    order_pairs(found, |(c, r)| {
        g_str_hash(c.as_bytes()) ^ g_str_hash(r.as_bytes())
    })
}

/// The pairs in the order a GLib hash table filled with them iterates (a repeated key keeps
/// its place and takes the later value, as in GLib).
fn order_pairs<K: PartialEq + Clone, V: Clone>(
    pairs: Vec<(K, V)>,
    hash: impl Fn(&K) -> u32,
) -> Vec<(K, V)> {
    let mut t: GHashOrder<K> = GHashOrder::default();
    let mut values: Vec<(K, V)> = Vec::new();
    for (k, v) in pairs {
        if let Some(slot) = values.iter_mut().find(|(key, _)| *key == k) {
            slot.1 = v;
        } else {
            values.push((k.clone(), v));
        }
        let h = hash(&k);
        t.insert_hashed(k, h);
    }
    t.iter()
        .filter_map(|k| values.iter().find(|(key, _)| key == k).cloned())
        .collect()
}

/// The loose objects as ostree's `list_loose_objects` visits them: directories `00`..`ff`,
/// entries in `readdir` order. Each is the checksum as its file name spells it (62 characters
/// after the directory's two, not validated) and its suffix; other names are skipped.
pub(crate) fn loose_objects(repo: &Repo) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for c in 0..=255u8 {
        let prefix = format!("{c:02x}");
        let Ok(dir) = openat_dir(&repo.objects, prefix.as_str(), true) else {
            continue;
        };
        for (name, _) in dir_entries_lenient(&dir) {
            let Ok(name) = String::from_utf8(name) else {
                continue;
            };
            let Some((stem, suffix)) = name.rsplit_once('.') else {
                continue;
            };
            if stem.len() == 62 {
                out.push((format!("{prefix}{stem}"), suffix.to_string()));
            }
        }
    }
    out
}

/// Every loose `.commit` object, in the order ostree's `list_loose_objects` fills its table.
pub(super) fn list_commit_objects(repo: &Repo) -> Vec<ObjectId> {
    loose_objects(repo)
        .into_iter()
        .filter(|(_, suffix)| suffix == "commit")
        .filter_map(|(hex, _)| ObjectId::from_hex(&hex).ok())
        .collect()
}
