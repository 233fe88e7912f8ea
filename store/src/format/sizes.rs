//! `ostree.sizes`, the commit metadata `commit --generate-sizes` writes: `aay`, one entry per
//! object, each the binary checksum, the archived and unpacked sizes as LEB128 varints, and
//! (since ostree 2020.1) the object type's number. Entries without a type are content.

use crate::gvariant::{Type, Value};
use crate::{ObjectId, ObjectType};

/// One object's sizes in a commit's `ostree.sizes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeEntry {
    /// The object.
    pub id: ObjectId,
    /// Its type: content, dirtree or dirmeta.
    pub object_type: ObjectType,
    /// Bytes it takes in an archive repository (compressed for content).
    pub archived: u64,
    /// Bytes it takes unpacked (a file's size, a symlink's target length).
    pub unpacked: u64,
}

/// The `ostree.sizes` value for `entries`, in ostree's byte format.
pub fn sizes_value(entries: &[SizeEntry]) -> Value {
    Value::Array(
        Type::Array(Box::new(Type::Byte)),
        entries
            .iter()
            .map(|e| {
                let mut b = e.id.0.to_vec();
                put_varint(e.archived, &mut b);
                put_varint(e.unpacked, &mut b);
                b.push(e.object_type.ostree_number() as u8);
                Value::Bytes(b)
            })
            .collect(),
    )
}

/// Parses an `ostree.sizes` value; the error says what is malformed.
pub fn parse_sizes(value: &Value) -> Result<Vec<SizeEntry>, String> {
    let Value::Array(_, items) = value else {
        return Err("Invalid ostree.sizes metadata: not an array of byte arrays".into());
    };
    items
        .iter()
        .map(|item| {
            let bytes = item
                .as_bytes()
                .ok_or("Invalid ostree.sizes metadata: entry is not a byte array")?;
            parse_entry(bytes)
        })
        .collect()
}

fn parse_entry(bytes: &[u8]) -> Result<SizeEntry, String> {
    let invalid = |what: &str| format!("Invalid ostree.sizes entry: {what}");
    if bytes.len() < 32 {
        return Err(invalid("too short for a checksum"));
    }
    let id = ObjectId(bytes[..32].try_into().map_err(|_| invalid("checksum"))?);
    let mut rest = &bytes[32..];
    let archived = take_varint(&mut rest).ok_or_else(|| invalid("archived size"))?;
    let unpacked = take_varint(&mut rest).ok_or_else(|| invalid("unpacked size"))?;
    let object_type = match rest {
        [] => ObjectType::File,
        [n] => ObjectType::from_ostree_number(*n as u32)
            .filter(|t| {
                matches!(
                    t,
                    ObjectType::File | ObjectType::DirTree | ObjectType::DirMeta
                )
            })
            .ok_or_else(|| invalid(&format!("object type {n}")))?,
        _ => return Err(invalid("trailing bytes")),
    };
    Ok(SizeEntry {
        id,
        object_type,
        archived,
        unpacked,
    })
}

fn put_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads one LEB128 varint of at most 64 bits from the front of `bytes`.
fn take_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return None;
        }
        value |= bits << (7 * i);
        if b & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let entries = vec![
            SizeEntry {
                id: ObjectId([7; 32]),
                object_type: ObjectType::File,
                archived: 0,
                unpacked: u64::MAX,
            },
            SizeEntry {
                id: ObjectId([9; 32]),
                object_type: ObjectType::DirTree,
                archived: 300,
                unpacked: 300,
            },
        ];
        assert_eq!(parse_sizes(&sizes_value(&entries)).unwrap(), entries);
    }

    #[test]
    fn entries_without_type_are_content_and_bad_ones_are_refused() {
        let mut b = vec![1u8; 32];
        b.extend([0xac, 0x02, 0x05]);
        let v = Value::Array(Type::Array(Box::new(Type::Byte)), vec![Value::Bytes(b)]);
        let e = &parse_sizes(&v).unwrap()[0];
        assert_eq!(
            (e.object_type, e.archived, e.unpacked),
            (ObjectType::File, 300, 5)
        );
        for bad in [vec![1u8; 31], [vec![1u8; 32], vec![0x80]].concat()] {
            let v = Value::Array(Type::Array(Box::new(Type::Byte)), vec![Value::Bytes(bad)]);
            assert!(parse_sizes(&v).is_err());
        }
    }
}
