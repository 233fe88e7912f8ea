//! `.dirtree` objects: `(a(say)a(sayay))`, files and subdirectories sorted by name.

use super::{DIRTREE_TYPE, validate_filename};
use crate::ObjectId;
use crate::gvariant::frame::{array_elements, tuple_items};
use crate::gvariant::{Type, Value};
use std::collections::BTreeMap;
use std::sync::LazyLock;

static FILE_ENTRY: LazyLock<Type> = LazyLock::new(|| match &*DIRTREE_TYPE {
    Type::Tuple(items) => match &items[0] {
        Type::Array(e) => (**e).clone(),
        other => other.clone(),
    },
    other => other.clone(),
});
static DIR_ENTRY: LazyLock<Type> = LazyLock::new(|| match &*DIRTREE_TYPE {
    Type::Tuple(items) => match &items[1] {
        Type::Array(e) => (**e).clone(),
        other => other.clone(),
    },
    other => other.clone(),
});

/// A zero-copy view of a dirtree: names borrow from the object's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirTreeRef<'a> {
    /// Regular files and symlinks: name and content checksum.
    pub files: Vec<(&'a str, ObjectId)>,
    /// Subdirectories: name, dirtree checksum, dirmeta checksum.
    pub dirs: Vec<(&'a str, ObjectId, ObjectId)>,
}

impl<'a> DirTreeRef<'a> {
    /// Parses and validates untrusted bytes: names valid, strictly sorted, checksums 32 bytes.
    pub fn parse(data: &'a [u8]) -> Result<Self, String> {
        let ty = &*DIRTREE_TYPE;
        let (file_ty, dir_ty) = (&*FILE_ENTRY, &*DIR_ENTRY);
        let arr_f = Type::Array(Box::new(file_ty.clone()));
        let arr_d = Type::Array(Box::new(dir_ty.clone()));
        let parts = tuple_items(ty, &[&arr_f, &arr_d], data).map_err(|e| e.to_string())?;
        let mut files = Vec::new();
        for entry in array_elements(file_ty, parts[0]).map_err(|e| e.to_string())? {
            let f = tuple_items(
                file_ty,
                &[&Type::String, &Type::Array(Box::new(Type::Byte))],
                entry,
            )
            .map_err(|e| e.to_string())?;
            files.push((name(f[0])?, checksum(f[1])?));
        }
        let mut dirs = Vec::new();
        let ay = Type::Array(Box::new(Type::Byte));
        for entry in array_elements(dir_ty, parts[1]).map_err(|e| e.to_string())? {
            let d = tuple_items(dir_ty, &[&Type::String, &ay, &ay], entry)
                .map_err(|e| e.to_string())?;
            dirs.push((name(d[0])?, checksum(d[1])?, checksum(d[2])?));
        }
        check_sorted(files.iter().map(|f| f.0))?;
        check_sorted(dirs.iter().map(|d| d.0))?;
        Ok(DirTreeRef { files, dirs })
    }

    /// The content checksum of the file called `name`.
    pub fn file(&self, name: &str) -> Option<ObjectId> {
        self.files
            .binary_search_by(|f| f.0.cmp(name))
            .ok()
            .map(|i| self.files[i].1)
    }

    /// The dirtree and dirmeta checksums of the subdirectory called `name`.
    pub fn dir(&self, name: &str) -> Option<(ObjectId, ObjectId)> {
        self.dirs
            .binary_search_by(|d| d.0.cmp(name))
            .ok()
            .map(|i| (self.dirs[i].1, self.dirs[i].2))
    }

    /// An owned copy.
    pub fn to_owned(&self) -> DirTree {
        DirTree {
            files: self
                .files
                .iter()
                .map(|(n, c)| (n.to_string(), *c))
                .collect(),
            dirs: self
                .dirs
                .iter()
                .map(|(n, t, m)| (n.to_string(), (*t, *m)))
                .collect(),
        }
    }
}

fn name(data: &[u8]) -> Result<&str, String> {
    let s = crate::gvariant::frame::string(data).map_err(|e| e.to_string())?;
    validate_filename(s)?;
    Ok(s)
}

fn checksum(data: &[u8]) -> Result<ObjectId, String> {
    ObjectId::from_bytes(data).ok_or_else(|| format!("Invalid checksum of length {}", data.len()))
}

fn check_sorted<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut prev: Option<&str> = None;
    for n in names {
        if prev.is_some_and(|p| p >= n) {
            return Err(format!("Entries not sorted or duplicated at {n:?}"));
        }
        prev = Some(n);
    }
    Ok(())
}

/// A dirtree being built: maps keep entries sorted by bytes, as `strcmp` does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirTree {
    /// Files: name to content checksum.
    pub files: BTreeMap<String, ObjectId>,
    /// Subdirectories: name to (dirtree, dirmeta) checksums.
    pub dirs: BTreeMap<String, (ObjectId, ObjectId)>,
}

impl DirTree {
    /// The serialized object.
    pub fn to_bytes(&self) -> Vec<u8> {
        let ay = || Type::Array(Box::new(Type::Byte));
        let files = self
            .files
            .iter()
            .map(|(n, c)| Value::Tuple(vec![Value::str(n.as_str()), Value::Bytes(c.0.to_vec())]))
            .collect();
        let dirs = self
            .dirs
            .iter()
            .map(|(n, (t, m))| {
                Value::Tuple(vec![
                    Value::str(n.as_str()),
                    Value::Bytes(t.0.to_vec()),
                    Value::Bytes(m.0.to_vec()),
                ])
            })
            .collect();
        Value::Tuple(vec![
            Value::Array(Type::Tuple(vec![Type::String, ay()]), files),
            Value::Array(Type::Tuple(vec![Type::String, ay(), ay()]), dirs),
        ])
        .to_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_dirtree_has_the_well_known_checksum() {
        let bytes = DirTree::default().to_bytes();
        assert_eq!(
            ObjectId::digest(&bytes).to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn roundtrip_and_rejects_bad_names() {
        let mut t = DirTree::default();
        t.files.insert("b".into(), ObjectId::digest(b"1"));
        t.files.insert("a".into(), ObjectId::digest(b"2"));
        t.dirs
            .insert("d".into(), (ObjectId::digest(b"3"), ObjectId::digest(b"4")));
        let bytes = t.to_bytes();
        let parsed = DirTreeRef::parse(&bytes).unwrap();
        assert_eq!(parsed.to_owned(), t);
        assert_eq!(parsed.file("b"), Some(ObjectId::digest(b"1")));
        for bad in ["", ".", "..", "x/y"] {
            let mut t = DirTree::default();
            t.files.insert(bad.into(), ObjectId::digest(b"1"));
            assert!(DirTreeRef::parse(&t.to_bytes()).is_err(), "{bad:?}");
        }
    }
}
