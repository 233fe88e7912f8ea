//! Object identifiers: SHA-256 checksums.

use std::fmt;
use std::str::FromStr;

/// The SHA-256 checksum naming an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(pub [u8; 32]);

/// A string that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid checksum: {0:?}")]
pub struct InvalidChecksum(pub String);

impl ObjectId {
    /// Parses 64 lowercase hex digits, as ostree requires.
    pub fn from_hex(s: &str) -> Result<Self, InvalidChecksum> {
        let bad = || InvalidChecksum(s.to_string());
        if s.len() != 64 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| bad())?;
        Ok(ObjectId(out))
    }

    /// Reads a checksum from 32 raw bytes (as stored inside GVariants).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        Some(ObjectId(b.try_into().ok()?))
    }

    /// Checksum of `data`.
    pub fn digest(data: &[u8]) -> Self {
        use sha2::Digest;
        ObjectId(sha2::Sha256::digest(data).into())
    }

    /// The full lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The loose object path below `objects/`: `xx/<62 hex>.<suffix>`.
    pub fn loose_path(&self, suffix: &str) -> String {
        let hex = self.to_hex();
        format!("{}/{}.{}", &hex[..2], &hex[2..], suffix)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        // Infallible: the buffer is exactly twice the input length.
        let _ = hex::encode_to_slice(self.0, &mut buf);
        f.write_str(std::str::from_utf8(&buf).unwrap_or_default())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl FromStr for ObjectId {
    type Err = InvalidChecksum;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

/// A streaming SHA-256 hasher producing an [`ObjectId`].
#[derive(Default, Clone)]
pub struct Hasher(sha2::Sha256);

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        sha2::Digest::update(&mut self.0, data);
    }
    /// The checksum of everything fed.
    pub fn finish(self) -> ObjectId {
        ObjectId(sha2::Digest::finalize(self.0).into())
    }
}

impl std::io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_roundtrips() {
        let id = ObjectId::digest(b"\0");
        assert_eq!(
            id.to_string(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), id);
        assert!("6E34".parse::<ObjectId>().is_err());
        assert!(ObjectId::from_hex(&"g".repeat(64)).is_err());
        assert_eq!(id.loose_path("dirtree").len(), 2 + 1 + 62 + 8);
    }
}
