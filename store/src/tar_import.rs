//! `commit --tree=tar=FILE`: import a tar archive as a tree, as ostree does with libarchive.
//! Ownership, modes and `SCHILY.xattr.*` pax records come from the archive; hardlinks share
//! their target's content; parent folders missing from the archive are an error unless
//! `autocreate_parents` (then they take the entry's owner and mode 0755, like ostree).

use crate::commit::CommitFilter;
use crate::format::{DirMeta, FileHeader, S_IFDIR, S_IFLNK, S_IFREG, Xattrs};
use crate::mtree::MutableTree;
use crate::transaction::{ContentSource, Transaction};
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use std::collections::HashMap;
use std::io::{Read, Seek};
use std::path::Path;

/// Entries larger than this are spooled to a temporary file instead of memory.
const SPOOL_OVER: u64 = 64 * 1024 * 1024;

/// Writes the objects of the tar archive at `path` and returns its tree.
pub fn write_tar(
    tx: &Transaction<'_>,
    path: &Path,
    filter: &CommitFilter,
    autocreate_parents: bool,
) -> Result<MutableTree> {
    let file = std::fs::File::open(path).map_err(|e| {
        Error::invalid(
            path,
            format!(
                "archive_read_open_filename: Failed to open '{}': {}",
                path.display(),
                crate::io_message(&e)
            ),
        )
    })?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut root = MutableTree::default();
    let mut contents: HashMap<String, ObjectId> = HashMap::new();
    let entries = archive.entries().at(path)?;
    for entry in entries {
        let mut entry = entry.at(path)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8(raw)
            .map_err(|_| Error::invalid(path, "Invalid UTF-8 in filename in archive"))?;
        let rel = normalize(&name);
        let shown = path.join(&rel);
        let header = entry.header().clone();
        let (mut uid, mut gid) = (
            header.uid().at(&shown)? as u32,
            header.gid().at(&shown)? as u32,
        );
        let perm = header.mode().at(&shown)? & 0o7777;
        let mut xattrs = pax_xattrs(&mut entry, &shown)?;
        let relpath = format!("/{rel}");
        let kind = header.entry_type();
        let mut mode = if kind.is_dir() {
            S_IFDIR | perm
        } else if kind.is_symlink() {
            S_IFLNK | 0o777
        } else {
            S_IFREG | perm
        };
        filter.apply(&relpath, &mut uid, &mut gid, &mut mode, &mut xattrs);
        if kind.is_dir() {
            let meta = tx.write_meta(
                ObjectType::DirMeta,
                &DirMeta {
                    uid,
                    gid,
                    mode,
                    xattrs,
                }
                .to_bytes(),
            )?;
            let node = ensure_dir(tx, &mut root, &rel, None, true, &shown)?;
            node.meta = Some(meta);
            continue;
        }
        let (parent, leaf) = match rel.rsplit_once('/') {
            Some((p, l)) => (p, l),
            None => ("", rel.as_str()),
        };
        crate::format::validate_filename(leaf).map_err(|why| Error::invalid(&shown, why))?;
        let auto = autocreate_parents.then_some((uid, gid));
        let id = if kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|b| normalize(&String::from_utf8_lossy(&b)))
                .ok_or_else(|| Error::invalid(&shown, "hardlink without target"))?;
            *contents.get(&target).ok_or_else(|| {
                Error::invalid(&shown, format!("hardlink to unknown entry {target}"))
            })?
        } else if kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .ok_or_else(|| Error::invalid(&shown, "symlink without target"))?;
            let h = FileHeader {
                uid,
                gid,
                mode,
                symlink_target: target,
                xattrs,
            };
            let source = ContentSource::Bytes(&[]);
            let id = Transaction::checksum_content(&h, &source)?;
            tx.write_content(&id, &h, 0, source)?;
            id
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            let size = entry.size();
            let h = FileHeader {
                uid,
                gid,
                mode,
                symlink_target: String::new(),
                xattrs,
            };
            if size > SPOOL_OVER {
                let mut spool = tempfile::tempfile_in(tx.repo().path().join("tmp")).at(&shown)?;
                std::io::copy(&mut entry, &mut spool).at(&shown)?;
                spool.rewind().at(&shown)?;
                let id = Transaction::checksum_content(&h, &ContentSource::File(&spool))?;
                tx.write_content(&id, &h, size, ContentSource::File(&spool))?;
                id
            } else {
                let mut data = Vec::with_capacity(size as usize);
                entry.read_to_end(&mut data).at(&shown)?;
                let source = ContentSource::Bytes(&data);
                let id = Transaction::checksum_content(&h, &source)?;
                tx.write_content(&id, &h, data.len() as u64, source)?;
                id
            }
        } else {
            return Err(Error::invalid(
                &shown,
                format!("Not a regular file or symlink: {leaf}"),
            ));
        };
        let node = ensure_dir(tx, &mut root, parent, auto, false, &shown)?;
        node.files.insert(leaf.to_string(), id);
        contents.insert(rel, id);
    }
    Ok(root)
}

/// `./a/b/` -> `a/b`; the root is the empty string.
fn normalize(name: &str) -> String {
    name.split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// Finds the folder `rel`. Missing folders are created with `auto` (the owner of autocreated
/// parents), and the last one also when `create_last` (a folder entry of the archive).
fn ensure_dir<'m>(
    tx: &Transaction<'_>,
    root: &'m mut MutableTree,
    rel: &str,
    auto: Option<(u32, u32)>,
    create_last: bool,
    shown: &Path,
) -> Result<&'m mut MutableTree> {
    let auto_meta = |tx: &Transaction<'_>, (uid, gid): (u32, u32)| {
        tx.write_meta(
            ObjectType::DirMeta,
            &DirMeta {
                uid,
                gid,
                mode: S_IFDIR | 0o755,
                xattrs: Xattrs::default(),
            }
            .to_bytes(),
        )
    };
    if root.meta.is_none()
        && let Some(owner) = auto
    {
        root.meta = Some(auto_meta(tx, owner)?);
    }
    let mut node = root;
    let mut walked = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        walked = if walked.is_empty() {
            part.to_string()
        } else {
            format!("{walked}/{part}")
        };
        crate::format::validate_filename(part).map_err(|why| Error::invalid(shown, why))?;
        if !node.dirs.contains_key(part) {
            let is_last = walked == rel;
            let meta = match auto {
                Some(owner) => Some(auto_meta(tx, owner)?),
                None if is_last && create_last => None,
                None => return Err(Error::NoSuchPath(walked)),
            };
            node.dirs.insert(
                part.to_string(),
                MutableTree {
                    meta,
                    ..Default::default()
                },
            );
        }
        node = node
            .dirs
            .get_mut(part)
            .ok_or_else(|| Error::NoSuchPath(walked.clone()))?;
    }
    Ok(node)
}

/// Extended attributes recorded as `SCHILY.xattr.NAME` pax records.
fn pax_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &Path) -> Result<Xattrs> {
    let mut pairs = Vec::new();
    if let Some(exts) = entry.pax_extensions().at(shown)? {
        for ext in exts {
            let ext = ext.at(shown)?;
            if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                pairs.push((name.to_vec(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(Xattrs::new(pairs))
}
