//! Extended attributes as ostree stores them: `a(ayay)`, names with their trailing NUL.

use crate::gvariant::{Type, Value};

/// A sorted list of extended attributes (names without the NUL, values as bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Xattrs(pub Vec<(Vec<u8>, Vec<u8>)>);

impl Xattrs {
    /// Builds from unsorted pairs: sorts by name and drops empty values, as ostree 2022.7 does.
    pub fn new(mut pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Self {
        pairs.retain(|(_, v)| !v.is_empty());
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Xattrs(pairs)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `a(ayay)` value.
    pub fn to_value(&self) -> Value {
        Value::Array(
            Type::Tuple(vec![
                Type::Array(Box::new(Type::Byte)),
                Type::Array(Box::new(Type::Byte)),
            ]),
            self.0
                .iter()
                .map(|(name, value)| {
                    let mut n = name.clone();
                    n.push(0);
                    Value::Tuple(vec![Value::Bytes(n), Value::Bytes(value.clone())])
                })
                .collect(),
        )
    }

    /// Reads and validates an `a(ayay)` value: NUL-terminated names, strictly sorted.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let items = v.as_array().ok_or("xattrs are not an array")?;
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(items.len());
        for item in items {
            let pair = item.items().ok_or("xattr is not a pair")?;
            let (name, value) = match pair.as_slice() {
                [Value::Bytes(n), Value::Bytes(v)] => (n, v),
                _ => return Err("xattr is not a pair of byte strings".into()),
            };
            let name = match name.split_last() {
                Some((0, body)) if !body.is_empty() && !body.contains(&0) => body.to_vec(),
                _ => return Err("xattr name is not a NUL-terminated string".into()),
            };
            if let Some((prev, _)) = out.last()
                && *prev >= name
            {
                return Err("xattrs are not sorted or have duplicates".into());
            }
            out.push((name, value.clone()));
        }
        Ok(Xattrs(out))
    }

    /// glib's text form of the `a(ayay)` value, as `ls -X` prints it.
    pub fn print(&self) -> String {
        self.to_value().print(true)
    }
}
