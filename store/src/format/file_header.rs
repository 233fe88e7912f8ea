//! Content-object headers: `(uuuusa(ayay))` for checksums and bare-user metadata,
//! `(tuuuusa(ayay))` at the start of archive `.filez` objects.

use super::{FILE_HEADER_TYPE, FILEZ_HEADER_TYPE, S_IFLNK, S_IFMT, S_IFREG, Xattrs};
use crate::gvariant::Value;

/// The metadata of a content object: owner, mode, symlink target and xattrs.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileHeader {
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Full mode: `S_IFREG` or `S_IFLNK` plus permission bits.
    pub mode: u32,
    /// Symlink target; empty for regular files.
    pub symlink_target: String,
    /// Extended attributes.
    pub xattrs: Xattrs,
}

impl FileHeader {
    /// Whether this is a symlink.
    pub fn is_symlink(&self) -> bool {
        self.mode & S_IFMT == S_IFLNK
    }

    fn fields(&self) -> Vec<Value> {
        vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            Value::Uint32(0),
            Value::str(self.symlink_target.as_str()),
            self.xattrs.to_value(),
        ]
    }

    /// The `(uuuusa(ayay))` variant bytes.
    pub fn to_variant_bytes(&self) -> Vec<u8> {
        Value::Tuple(self.fields()).to_bytes()
    }

    /// The header of an archive `.filez` object, including its length prefix.
    pub fn to_filez_header(&self, size: u64) -> Vec<u8> {
        let mut fields = self.fields();
        fields.insert(0, Value::Uint64(size.to_be()));
        frame_with_length(&Value::Tuple(fields).to_bytes())
    }

    /// Parses a `(uuuusa(ayay))` variant and validates mode and rdev.
    pub fn parse_variant(data: &[u8]) -> Result<Self, String> {
        let v = Value::from_bytes(&FILE_HEADER_TYPE, data).map_err(|e| e.to_string())?;
        let items = v.items().ok_or("not a tuple")?;
        from_fields(&items)
    }

    /// Checks that the mode is a regular file or symlink with permission bits only.
    pub fn validate(&self) -> Result<(), String> {
        let fmt = self.mode & S_IFMT;
        if (fmt != S_IFREG && fmt != S_IFLNK) || self.mode & !(S_IFMT | 0o7777) != 0 {
            return Err(format!("Invalid file metadata mode {:o}", self.mode));
        }
        if fmt == S_IFLNK && self.symlink_target.is_empty() {
            return Err("Symlink with empty target".into());
        }
        if fmt == S_IFREG && !self.symlink_target.is_empty() {
            return Err("Regular file with a symlink target".into());
        }
        Ok(())
    }
}

fn from_fields(items: &[&Value]) -> Result<FileHeader, String> {
    let num = |v: &Value| match v {
        Value::Uint32(n) => Ok(u32::from_be(*n)),
        _ => Err("not a uint32".to_string()),
    };
    let [uid, gid, mode, rdev, target, xattrs] = items else {
        return Err("wrong number of header fields".into());
    };
    if num(rdev)? != 0 {
        return Err("Corrupted file object; rdev is nonzero".into());
    }
    let h = FileHeader {
        uid: num(uid)?,
        gid: num(gid)?,
        mode: num(mode)?,
        symlink_target: target.as_str().unwrap_or_default().to_string(),
        xattrs: Xattrs::from_value(xattrs)?,
    };
    h.validate()?;
    Ok(h)
}

/// `[u32 BE length][4 zero bytes][variant]`: the framing ostree checksums and stores.
fn frame_with_length(variant: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + variant.len());
    out.extend_from_slice(&(variant.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(variant);
    out
}

/// The bytes hashed before the content to give a content object's checksum.
pub fn checksum_header_bytes(header: &FileHeader) -> Vec<u8> {
    frame_with_length(&header.to_variant_bytes())
}

/// Parses the start of a `.filez` object: returns the header, the uncompressed size and the
/// offset where the raw-deflate payload begins.
pub fn parse_filez_header(data: &[u8]) -> Result<(FileHeader, u64, usize), String> {
    if data.len() < 8 {
        return Err("File header too short".into());
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let end = 8usize
        .checked_add(len)
        .filter(|&e| e <= data.len())
        .ok_or("File header size exceeds object")?;
    let v = Value::from_bytes(&FILEZ_HEADER_TYPE, &data[8..end]).map_err(|e| e.to_string())?;
    let items = v.items().ok_or("not a tuple")?;
    let size = items[0].as_u64().ok_or("bad size")?;
    let header = from_fields(&items[1..])?;
    Ok((header, u64::from_be(size), end))
}

/// The checksum of a content object whose content is in memory.
pub fn content_checksum(header: &FileHeader, content: &[u8]) -> crate::ObjectId {
    let mut h = crate::checksum::Hasher::default();
    h.update(&checksum_header_bytes(header));
    h.update(content);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_checksum_matches_ostree() {
        // `echo "Hello world!" > hello.txt` committed by root in a bare repo.
        let header = FileHeader {
            uid: 0,
            gid: 0,
            mode: S_IFREG | 0o644,
            symlink_target: String::new(),
            xattrs: Xattrs::default(),
        };
        let mut h = crate::checksum::Hasher::default();
        h.update(&checksum_header_bytes(&header));
        h.update(b"Hello world!\n");
        assert_eq!(
            h.finish().to_string(),
            "29050f989f6313f6c5cdd0e72e48754827b8905a600972bbaa0505252285625b"
        );
    }

    #[test]
    fn filez_header_roundtrip() {
        let header = FileHeader {
            uid: 1000,
            gid: 1000,
            mode: S_IFLNK | 0o777,
            symlink_target: "target".into(),
            xattrs: Xattrs::new(vec![(b"user.x".to_vec(), b"1".to_vec())]),
        };
        let mut bytes = header.to_filez_header(42);
        let n = bytes.len();
        bytes.extend_from_slice(b"payload");
        assert_eq!(parse_filez_header(&bytes).unwrap(), (header, 42, n));
    }
}
