//! `.dirmeta` objects: `(uuua(ayay))`, uid, gid and mode big-endian.

use super::{DIRMETA_TYPE, Xattrs};
use crate::gvariant::Value;

/// A directory's ownership, mode and extended attributes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DirMeta {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full mode including `S_IFDIR`.
    pub mode: u32,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

impl DirMeta {
    /// The serialized object.
    pub fn to_bytes(&self) -> Vec<u8> {
        Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            self.xattrs.to_value(),
        ])
        .to_bytes()
    }

    /// Parses and validates untrusted bytes.
    pub fn parse(data: &[u8]) -> Result<Self, String> {
        let v = Value::from_bytes(&DIRMETA_TYPE, data).map_err(|e| e.to_string())?;
        let items = v.items().ok_or("not a tuple")?;
        let num = |i: usize| match items[i] {
            Value::Uint32(n) => Ok(u32::from_be(*n)),
            _ => Err("not a uint32".to_string()),
        };
        let meta = DirMeta {
            uid: num(0)?,
            gid: num(1)?,
            mode: num(2)?,
            xattrs: Xattrs::from_value(items[3])?,
        };
        if meta.mode & super::S_IFMT != super::S_IFDIR || meta.mode & !(super::S_IFMT | 0o7777) != 0
        {
            return Err(format!("Invalid directory metadata mode {:o}", meta.mode));
        }
        Ok(meta)
    }
}
