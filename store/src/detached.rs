//! Signatures in a commit's detached metadata (`.commitmeta`), shared by every kind of
//! signature: each kind is a list of byte strings (`aay`) under its own key
//! (`ostree.gpgsigs`, `ostree.sign.ed25519`).
//!
//! ostree adds a signature by loading the metadata into a `GVariantDict` and writing it
//! back, so the keys come out in GLib hash-table order; adding goes through the same
//! round trip here, one signature at a time, so the bytes match ostree's. A summary's
//! signatures are kept the same way in `summary.sig`.

use crate::format::{metadata_in_dict_order, metadata_value};
use crate::gvariant::{Type, Value};
use crate::{Error, IoContext, ObjectId, Repo, Result};

/// Detached metadata: `a{sv}` pairs in stored order.
pub type Metadata = Vec<(String, Value)>;

fn signatures_type() -> Type {
    Type::Array(Box::new(Type::Array(Box::new(Type::Byte))))
}

/// The signatures listed under `key`, or None when the key is absent or not an `aay` (as
/// ostree's typed lookup sees it).
pub fn signatures<'a>(meta: Option<&'a [(String, Value)]>, key: &str) -> Option<Vec<&'a [u8]>> {
    let (_, value) = meta?.iter().rev().find(|(k, _)| k == key)?;
    if value.type_of() != signatures_type() {
        return None;
    }
    value
        .as_array()
        .map(|sigs| sigs.iter().filter_map(Value::as_bytes).collect())
}

fn signatures_value(sigs: Vec<Vec<u8>>) -> Value {
    Value::Array(
        Type::Array(Box::new(Type::Byte)),
        sigs.into_iter().map(Value::Bytes).collect(),
    )
}

/// `meta` with each of `new` appended under `key`, as ostree appends a signature; one
/// already listed there is not added again. Returns whether anything was added.
pub fn add_signatures(meta: &mut Metadata, key: &str, new: &[Vec<u8>]) -> bool {
    let mut added = false;
    for sig in new {
        let mut sigs: Vec<Vec<u8>> = signatures(Some(meta), key)
            .unwrap_or_default()
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        if sigs.contains(sig) {
            continue;
        }
        sigs.push(sig.clone());
        let mut pairs = std::mem::take(meta);
        pairs.push((key.to_string(), signatures_value(sigs)));
        *meta = metadata_in_dict_order(pairs);
        added = true;
    }
    added
}

/// `meta` without the signatures under `key` that `remove` selects; the key goes when none
/// is left. Returns how many were removed. The other keys keep their order.
pub fn remove_signatures(
    meta: &mut Metadata,
    key: &str,
    mut remove: impl FnMut(&[u8]) -> bool,
) -> usize {
    let Some(sigs) = signatures(Some(meta), key) else {
        return 0;
    };
    let before = sigs.len();
    let kept: Vec<Vec<u8>> = sigs
        .into_iter()
        .filter(|s| !remove(s))
        .map(<[u8]>::to_vec)
        .collect();
    let removed = before - kept.len();
    if removed == 0 {
        return 0;
    }
    if kept.is_empty() {
        meta.retain(|(k, _)| k != key);
    } else if let Some(entry) = meta.iter_mut().rev().find(|(k, _)| k == key) {
        entry.1 = signatures_value(kept);
    }
    removed
}

impl Repo {
    /// Rewrites a commit's detached metadata with `change` (which returns whether it
    /// changed anything) in one transaction; nothing is written when it did not.
    pub fn update_detached_metadata<T>(
        &self,
        id: &ObjectId,
        change: impl FnOnce(&mut Metadata) -> Result<(bool, T)>,
    ) -> Result<T> {
        let mut meta = self.read_detached_metadata(id)?.unwrap_or_default();
        let (changed, out) = change(&mut meta)?;
        if changed {
            let tx = self.begin()?;
            tx.write_commit_detached(id, &metadata_value(&meta).to_bytes())?;
            tx.commit()?;
        }
        Ok(out)
    }

    /// Signs the repository's `summary` and adds the signatures to `summary.sig`, as ostree
    /// does for every kind of signature: `sign` gets the summary's bytes and returns
    /// (metadata key, signature) pairs, appended in order.
    pub fn update_summary_signatures(
        &self,
        sign: impl FnOnce(&[u8]) -> Result<Vec<(&'static str, Vec<u8>)>>,
    ) -> Result<()> {
        let summary_path = self.path().join("summary");
        let summary = std::fs::read(&summary_path).at(&summary_path)?;
        let sig_path = self.path().join(SUMMARY_SIG);
        let mut meta = match std::fs::read(&sig_path) {
            Ok(bytes) => parse_summary_sig(&bytes).map_err(|why| Error::invalid(&sig_path, why))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&sig_path, e)),
        };
        for (key, sig) in sign(&summary)? {
            add_signatures(&mut meta, key, &[sig]);
        }
        let bytes = metadata_value(&meta).to_bytes();
        let fsync = self.fsync_enabled();
        crate::fsutil::replace_file_at(&self.root, SUMMARY_SIG, &bytes, 0o644, fsync, &sig_path)
    }
}

/// The file beside `summary` holding its signatures (an `a{sv}`, like a `.commitmeta`).
pub const SUMMARY_SIG: &str = "summary.sig";

/// Parses untrusted `summary.sig` bytes.
pub fn parse_summary_sig(bytes: &[u8]) -> std::result::Result<Metadata, String> {
    crate::format::parse_detached(bytes).map_err(|why| format!("Invalid summary.sig: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(meta: &Metadata) -> Vec<&str> {
        meta.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn adds_once_and_removes() {
        let mut meta: Metadata = vec![("user".into(), Value::str("x"))];
        assert!(add_signatures(&mut meta, "sigs", &[vec![1], vec![2]]));
        assert!(!add_signatures(&mut meta, "sigs", &[vec![1]]));
        assert_eq!(
            signatures(Some(&meta), "sigs").unwrap(),
            vec![&[1u8][..], &[2u8][..]]
        );
        assert_eq!(remove_signatures(&mut meta, "sigs", |s| s == [1]), 1);
        assert_eq!(signatures(Some(&meta), "sigs").unwrap(), vec![&[2u8][..]]);
        assert_eq!(remove_signatures(&mut meta, "sigs", |_| true), 1);
        assert_eq!(keys(&meta), ["user"]);
        assert_eq!(remove_signatures(&mut meta, "sigs", |_| true), 0);
    }

    #[test]
    fn a_value_of_another_type_is_not_signatures() {
        let mut meta: Metadata = vec![("sigs".into(), Value::str("not a list"))];
        assert!(signatures(Some(&meta), "sigs").is_none());
        // As ostree's dict insert, the signatures replace it in place.
        assert!(add_signatures(&mut meta, "sigs", &[vec![7]]));
        assert_eq!(keys(&meta), ["sigs"]);
        assert_eq!(signatures(Some(&meta), "sigs").unwrap(), vec![&[7u8][..]]);
    }
}
