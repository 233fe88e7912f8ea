//! `.commit` objects: `(a{sv}aya(say)sstayay)`.

use super::{COMMIT_TYPE, METADATA_TYPE};
use crate::ObjectId;
use crate::gvariant::{Type, Value};

/// A commit: metadata, parent, subject, body, timestamp and root tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Commit {
    /// `a{sv}` metadata in insertion order (ostree does not sort it).
    pub metadata: Vec<(String, Value)>,
    /// The parent commit, if any.
    pub parent: Option<ObjectId>,
    /// Related objects (name, commit); unused by ostree itself, kept verbatim.
    pub related: Vec<(String, ObjectId)>,
    /// One-line subject.
    pub subject: String,
    /// Free-form body.
    pub body: String,
    /// Seconds since the epoch, UTC.
    pub timestamp: u64,
    /// Root dirtree checksum.
    pub root_tree: ObjectId,
    /// Root dirmeta checksum.
    pub root_meta: ObjectId,
}

impl Commit {
    /// A commit of the tree `root_tree` (metadata `root_meta`) and nothing else: no parent,
    /// no metadata, an empty subject, timestamp 0. Set the rest with struct update syntax.
    pub fn of_tree(root_tree: ObjectId, root_meta: ObjectId) -> Commit {
        Commit {
            metadata: vec![],
            parent: None,
            related: vec![],
            subject: String::new(),
            body: String::new(),
            timestamp: 0,
            root_tree,
            root_meta,
        }
    }

    /// The serialized object.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ay = |b: &[u8]| Value::Bytes(b.to_vec());
        Value::Tuple(vec![
            metadata_value(&self.metadata),
            ay(self.parent.as_ref().map(|p| &p.0[..]).unwrap_or(&[])),
            Value::Array(
                Type::Tuple(vec![Type::String, Type::Array(Box::new(Type::Byte))]),
                self.related
                    .iter()
                    .map(|(n, c)| Value::Tuple(vec![Value::str(n.as_str()), ay(&c.0)]))
                    .collect(),
            ),
            Value::str(self.subject.as_str()),
            Value::str(self.body.as_str()),
            Value::Uint64(self.timestamp.to_be()),
            ay(&self.root_tree.0),
            ay(&self.root_meta.0),
        ])
        .to_bytes()
    }

    /// Parses and validates untrusted bytes.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let v = Value::from_bytes(&COMMIT_TYPE, data).map_err(|e| e.to_string())?;
        Self::from_value(&v)
    }

    /// Reads a decoded commit value.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let items = v.items().ok_or("not a tuple")?;
        let [meta, parent, related, subject, body, ts, tree, dmeta] = items.as_slice() else {
            return Err("wrong number of commit fields".into());
        };
        let checksum = |v: &Value, what: &str| {
            v.as_bytes()
                .and_then(ObjectId::from_bytes)
                .ok_or_else(|| format!("Invalid {what} checksum"))
        };
        let parent = match parent.as_bytes() {
            Some([]) => None,
            _ => Some(checksum(parent, "parent")?),
        };
        let mut rel = Vec::new();
        for r in related.as_array().unwrap_or(&[]) {
            let pair = r.items().unwrap_or_default();
            let [name, csum] = pair.as_slice() else {
                return Err("bad related entry".into());
            };
            rel.push((
                name.as_str().unwrap_or_default().to_string(),
                checksum(csum, "related")?,
            ));
        }
        Ok(Commit {
            metadata: metadata_from_value(meta)?,
            parent,
            related: rel,
            subject: subject.as_str().unwrap_or_default().to_string(),
            body: body.as_str().unwrap_or_default().to_string(),
            timestamp: u64::from_be(ts.as_u64().ok_or("bad timestamp")?),
            root_tree: checksum(tree, "root tree")?,
            root_meta: checksum(dmeta, "root dirmeta")?,
        })
    }

    /// The value of a metadata key.
    pub fn meta(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The `version` metadata string, if set.
    pub fn version(&self) -> Option<&str> {
        self.meta("version").and_then(Value::as_str)
    }

    /// `log`'s ContentChecksum: sha256 of root dirtree then root dirmeta checksum bytes.
    pub fn content_checksum(&self) -> ObjectId {
        let mut h = crate::checksum::Hasher::default();
        h.update(&self.root_tree.0);
        h.update(&self.root_meta.0);
        h.finish()
    }
}

/// Builds an `a{sv}` value from key/value pairs, in order.
pub fn metadata_value(pairs: &[(String, Value)]) -> Value {
    Value::Array(
        Type::DictEntry(Box::new(Type::String), Box::new(Type::Variant)),
        pairs
            .iter()
            .map(|(k, v)| {
                Value::DictEntry(
                    Box::new(Value::str(k.as_str())),
                    Box::new(Value::Variant(Box::new(v.clone()))),
                )
            })
            .collect(),
    )
}

/// `pairs` as a `GVariantDict` filled with them writes them back: each key once (a later
/// value replaces an earlier one in place), in GLib hash-table order. ostree builds some
/// `a{sv}` (summary metadata, detached metadata it adds signatures to) through such a dict,
/// so matching its bytes means ordering them the same way.
pub fn metadata_in_dict_order(pairs: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let order = crate::ghash::ghash_order(&keys);
    let mut slots: Vec<Option<Value>> = vec![None; order.len()];
    for (k, v) in pairs {
        if let Some(i) = order.iter().position(|o| *o == k) {
            slots[i] = Some(v);
        }
    }
    order
        .into_iter()
        .zip(slots)
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// Reads an `a{sv}` value into key/value pairs, in order.
pub fn metadata_from_value(v: &Value) -> Result<Vec<(String, Value)>, String> {
    let entries = v.as_array().ok_or("metadata is not a dictionary")?;
    entries
        .iter()
        .map(|e| match e {
            Value::DictEntry(k, v) => match (k.as_str(), v.as_variant()) {
                (Some(k), Some(v)) => Ok((k.to_string(), v.clone())),
                _ => Err("bad metadata entry".to_string()),
            },
            _ => Err("bad metadata entry".to_string()),
        })
        .collect()
}

/// Parses detached metadata (`.commitmeta`, `a{sv}`).
pub fn parse_detached(data: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let v = Value::from_bytes(&METADATA_TYPE, data).map_err(|e| e.to_string())?;
    metadata_from_value(&v)
}
