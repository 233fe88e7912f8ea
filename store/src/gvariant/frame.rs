//! Framing primitives: split serialized containers into their children's byte ranges without
//! copying. Every range is bounds-checked; untrusted input yields errors, never panics.

use super::{Type, VariantError};

/// Size of framing offsets in a container of `len` bytes.
pub fn offset_size(len: usize) -> usize {
    match len {
        0 => 0,
        1..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xffff_ffff => 4,
        _ => 8,
    }
}

fn read_offset(bytes: &[u8]) -> usize {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(buf) as usize
}

/// The elements of an array of `elem`, as byte slices.
pub fn array_elements<'a>(elem: &Type, data: &'a [u8]) -> Result<Vec<&'a [u8]>, VariantError> {
    let bad = |why| VariantError::malformed(&Type::Array(Box::new(elem.clone())), why);
    if let Some(size) = elem.fixed_size() {
        if data.len() % size != 0 {
            return Err(bad("length is not a multiple of the element size"));
        }
        return Ok(data.chunks_exact(size).collect());
    }
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let osize = offset_size(data.len());
    let last = read_offset(&data[data.len() - osize..]);
    if last > data.len() || (data.len() - last) % osize != 0 {
        return Err(bad("bad framing offset"));
    }
    let n = (data.len() - last) / osize;
    let table = &data[last..];
    let align = elem.alignment();
    let mut out = Vec::with_capacity(n);
    let mut pos = 0usize;
    for i in 0..n {
        let end = read_offset(&table[i * osize..(i + 1) * osize]);
        let start = pos.next_multiple_of(align);
        if start > end || end > last {
            return Err(bad("element out of bounds"));
        }
        out.push(&data[start..end]);
        pos = end;
    }
    Ok(out)
}

/// The items of a tuple (or dict entry) with item types `items`, as byte slices.
pub fn tuple_items<'a>(
    ty: &Type,
    items: &[&Type],
    data: &'a [u8],
) -> Result<Vec<&'a [u8]>, VariantError> {
    let bad = |why| VariantError::malformed(ty, why);
    if let Some(size) = ty.fixed_size() {
        if data.len() != size {
            return Err(bad("wrong size for a fixed-size tuple"));
        }
    }
    let osize = offset_size(data.len());
    let mut offsets_end = data.len();
    let mut pos = 0usize;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let start = pos.next_multiple_of(item.alignment());
        let end = if let Some(size) = item.fixed_size() {
            start.checked_add(size).ok_or_else(|| bad("overflow"))?
        } else if i + 1 == items.len() {
            offsets_end
        } else {
            if offsets_end < osize {
                return Err(bad("missing framing offset"));
            }
            offsets_end -= osize;
            read_offset(&data[offsets_end..offsets_end + osize])
        };
        if start > end || end > offsets_end {
            return Err(bad("item out of bounds"));
        }
        out.push(&data[start..end]);
        pos = end;
    }
    if ty.fixed_size().is_none() && pos != offsets_end {
        return Err(bad("trailing bytes"));
    }
    Ok(out)
}

/// A serialized string (`s`): NUL-terminated UTF-8 without inner NULs, borrowed.
pub fn string(data: &[u8]) -> Result<&str, VariantError> {
    super::decode::decode_str(&Type::String, data)
}
