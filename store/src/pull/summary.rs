//! A repository's `summary` file: `(a(s(taya{sv}))a{sv})`, every ref with its commit's
//! size, checksum and metadata, sorted by name, then the summary's own metadata.

use crate::ObjectId;
use crate::gvariant::{Type, Value};

/// One ref listed in a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRef {
    /// The ref's name.
    pub name: String,
    /// The commit it names.
    pub commit: ObjectId,
    /// The commit object's size in bytes.
    pub commit_size: u64,
}

/// Parses untrusted summary bytes; the error says what is malformed.
pub fn parse_summary(data: &[u8]) -> Result<Vec<SummaryRef>, String> {
    let ty = Type::parse("(a(s(taya{sv}))a{sv})").map_err(|e| e.to_string())?;
    let v = Value::from_bytes(&ty, data).map_err(|e| format!("Invalid summary: {e}"))?;
    let items = v.items().ok_or("Invalid summary: not a tuple")?;
    let refs = items[0].as_array().ok_or("Invalid summary: no ref list")?;
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let pair = r.items().ok_or("Invalid summary: bad ref entry")?;
        let name = pair[0].as_str().ok_or("Invalid summary: bad ref name")?;
        let data = pair[1].items().ok_or("Invalid summary: bad ref data")?;
        let size = data[0].as_u64().ok_or("Invalid summary: bad commit size")?;
        let commit = data[1]
            .as_bytes()
            .and_then(ObjectId::from_bytes)
            .ok_or_else(|| format!("Invalid summary: bad checksum for ref {name}"))?;
        crate::refs::is_valid_ref_name(name)
            .then_some(())
            .ok_or_else(|| format!("Invalid summary: invalid ref name {name}"))?;
        out.push(SummaryRef {
            name: name.to_string(),
            commit,
            // Unlike commit fields, ostree stores the size in native (little-endian) order.
            commit_size: size,
        });
    }
    Ok(out)
}
