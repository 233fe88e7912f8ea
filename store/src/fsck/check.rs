//! Verifying one object as `ostree_repo_fsck_object` does: metadata by checksum and
//! structure (`_ostree_validate_structureof_metadata`), content through [`super::content`];
//! each failure worded as ostree prints it.

use super::Failure;
use super::content::{self, Bad};
use super::objects::read_meta;
use crate::format::{S_IFDIR, S_IFMT};
use crate::gvariant::{Type, Value};
use crate::repo::Repo;
use crate::{ObjectId, ObjectType};

/// The outcome of verifying one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectCheck {
    /// Checksum and structure are right.
    Ok,
    /// The object is not stored.
    Missing,
    /// Anything else, with ostree's message (`fsck <csum>.<type>: ...`).
    Corrupt(String),
}

/// `validate_stat_mode_perms`.
pub(super) fn check_perms(mode: u32) -> Result<(), String> {
    if mode & !(S_IFMT | 0o7777) != 0 {
        return Err(format!("Invalid mode {mode}; invalid bits in mode"));
    }
    Ok(())
}

/// `ot_util_filename_validate` (the empty name is accepted, as in ostree).
fn check_filename(name: &str) -> Result<(), String> {
    if name == "." {
        return Err("Invalid self-referential filename '.'".into());
    }
    if name == ".." {
        return Err("Invalid path uplink filename '..'".into());
    }
    if name.contains('/') {
        return Err(format!("Invalid / in filename {name}"));
    }
    Ok(())
}

fn check_csum_len(v: &Value) -> Result<(), String> {
    let n = v.as_bytes().map(<[u8]>::len).unwrap_or(0);
    if n != 32 {
        return Err(format!("Invalid checksum of length {n} expected 32"));
    }
    Ok(())
}

/// `_ostree_validate_structureof_metadata`: normal form, then the per-type rules.
pub fn validate_metadata_structure(ty: ObjectType, bytes: &[u8]) -> Result<(), String> {
    let vtype: &Type = match ty {
        ObjectType::Commit => &crate::format::COMMIT_TYPE,
        ObjectType::DirTree => &crate::format::DIRTREE_TYPE,
        ObjectType::DirMeta => &crate::format::DIRMETA_TYPE,
        _ => return Ok(()),
    };
    let v = match Value::from_bytes(vtype, bytes) {
        Ok(v) if v.to_bytes() == bytes => v,
        _ => return Err("Not normal form".into()),
    };
    let items = v.items().unwrap_or_default();
    match ty {
        ObjectType::Commit => {
            for entry in items.first().and_then(|m| m.as_array()).unwrap_or(&[]) {
                if let Value::DictEntry(k, _) = entry
                    && k.as_str().is_none_or(str::is_empty)
                {
                    return Err("Empty metadata key".into());
                }
            }
            if let Some(parent) = items.get(1)
                && parent.as_bytes().is_some_and(|b| !b.is_empty())
            {
                check_csum_len(parent)?;
            }
            for i in [6, 7] {
                if let Some(c) = items.get(i) {
                    check_csum_len(c)?;
                }
            }
        }
        ObjectType::DirTree => {
            for (n, list) in items.iter().enumerate().take(2) {
                for entry in list.as_array().unwrap_or(&[]) {
                    let parts = entry.items().unwrap_or_default();
                    check_filename(parts.first().and_then(|p| p.as_str()).unwrap_or(""))?;
                    for c in parts.iter().skip(1).take(if n == 0 { 1 } else { 2 }) {
                        check_csum_len(c)?;
                    }
                }
            }
        }
        ObjectType::DirMeta => {
            let mode = match items.get(2) {
                Some(Value::Uint32(m)) => u32::from_be(*m),
                _ => 0,
            };
            if mode & S_IFMT != S_IFDIR {
                return Err(format!(
                    "Invalid directory metadata mode {mode}; not a directory"
                ));
            }
            check_perms(mode)?;
        }
        _ => {}
    }
    Ok(())
}

/// `_ostree_verify_metadata_object`, with `fsck_metadata_object`'s prefix.
fn check_metadata_bytes(id: &ObjectId, ty: ObjectType, bytes: &[u8]) -> ObjectCheck {
    let tn = ty.suffix();
    let actual = ObjectId::digest(bytes);
    if actual != *id {
        return ObjectCheck::Corrupt(format!(
            "fsck {id}.{tn}: Corrupted {tn} object; checksum expected='{id}' actual='{actual}'"
        ));
    }
    match validate_metadata_structure(ty, bytes) {
        Ok(()) => ObjectCheck::Ok,
        Err(why) => ObjectCheck::Corrupt(format!("fsck {id}.{tn}: {id}.{tn}: {why}")),
    }
}

/// Verifies one object as `ostree_repo_fsck_object` does. `cached` may hold a metadata
/// object's bytes already read.
pub fn check_object(
    repo: &Repo,
    id: &ObjectId,
    ty: ObjectType,
    cached: Option<&[u8]>,
) -> ObjectCheck {
    if ty.is_meta() {
        if let Some(b) = cached {
            return check_metadata_bytes(id, ty, b);
        }
        return match read_meta(repo, id, ty) {
            Ok(Some(b)) => check_metadata_bytes(id, ty, &b),
            Ok(None) => ObjectCheck::Missing,
            Err(Failure(m)) => ObjectCheck::Corrupt(format!("fsck {id}.{ty}: {m}")),
        };
    }
    match content::check_content(repo, id) {
        Ok(()) => ObjectCheck::Ok,
        Err(Bad::Missing) => ObjectCheck::Missing,
        Err(Bad::Why(why)) => ObjectCheck::Corrupt(format!("fsck content object {id}: {why}")),
    }
}
