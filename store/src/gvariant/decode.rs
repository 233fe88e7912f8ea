//! Strict decoding of untrusted bytes into [`Value`]s.

use super::frame::{array_elements, tuple_items};
use super::types::MAX_DEPTH;
use super::{Type, Value, VariantError};

pub(super) fn decode(ty: &Type, data: &[u8]) -> Result<Value, VariantError> {
    decode_at(ty, data, 0)
}

/// Decodes a value nested in `depth` containers (variants included): nested variants carry
/// their own types, so only this bound keeps the recursion finite on untrusted bytes.
fn decode_at(ty: &Type, data: &[u8], depth: usize) -> Result<Value, VariantError> {
    let bad = |why| VariantError::malformed(ty, why);
    if depth > MAX_DEPTH {
        return Err(bad("nested too deeply"));
    }
    let decode = |ty: &Type, data: &[u8]| decode_at(ty, data, depth + 1);
    let fixed = |n: usize| -> Result<&[u8], VariantError> {
        if data.len() == n {
            Ok(data)
        } else {
            Err(bad("wrong size"))
        }
    };
    Ok(match ty {
        Type::Bool => match fixed(1)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(bad("boolean not 0 or 1")),
        },
        Type::Byte => Value::Byte(fixed(1)?[0]),
        Type::Int16 => Value::Int16(i16::from_le_bytes(fixed(2)?.try_into().unwrap_or_default())),
        Type::Uint16 => Value::Uint16(u16::from_le_bytes(fixed(2)?.try_into().unwrap_or_default())),
        Type::Int32 => Value::Int32(i32::from_le_bytes(fixed(4)?.try_into().unwrap_or_default())),
        Type::Handle => Value::Handle(i32::from_le_bytes(fixed(4)?.try_into().unwrap_or_default())),
        Type::Uint32 => Value::Uint32(u32::from_le_bytes(fixed(4)?.try_into().unwrap_or_default())),
        Type::Int64 => Value::Int64(i64::from_le_bytes(fixed(8)?.try_into().unwrap_or_default())),
        Type::Uint64 => Value::Uint64(u64::from_le_bytes(fixed(8)?.try_into().unwrap_or_default())),
        Type::Double => Value::Double(f64::from_le_bytes(fixed(8)?.try_into().unwrap_or_default())),
        Type::String => Value::String(decode_str(ty, data)?.to_string()),
        Type::ObjectPath => Value::ObjectPath(decode_str(ty, data)?.to_string()),
        Type::Signature => Value::Signature(decode_str(ty, data)?.to_string()),
        Type::Variant => {
            let sep = data
                .iter()
                .rposition(|&b| b == 0)
                .ok_or_else(|| bad("no type string"))?;
            let type_str =
                std::str::from_utf8(&data[sep + 1..]).map_err(|_| bad("type string not UTF-8"))?;
            let inner_ty = Type::parse(type_str).map_err(|_| bad("bad type string"))?;
            Value::Variant(Box::new(decode(&inner_ty, &data[..sep])?))
        }
        Type::Maybe(inner) => {
            if data.is_empty() {
                Value::Maybe((**inner).clone(), None)
            } else if inner.fixed_size().is_some() {
                Value::Maybe((**inner).clone(), Some(Box::new(decode(inner, data)?)))
            } else {
                let (last, body) = data.split_last().ok_or_else(|| bad("empty"))?;
                if *last != 0 {
                    return Err(bad("maybe not NUL-terminated"));
                }
                Value::Maybe((**inner).clone(), Some(Box::new(decode(inner, body)?)))
            }
        }
        Type::Array(elem) if **elem == Type::Byte => Value::Bytes(data.to_vec()),
        Type::Array(elem) => {
            let items = array_elements(elem, data)?
                .into_iter()
                .map(|d| decode(elem, d))
                .collect::<Result<_, _>>()?;
            Value::Array((**elem).clone(), items)
        }
        Type::Tuple(items) => {
            let refs: Vec<&Type> = items.iter().collect();
            let slices = tuple_items(ty, &refs, data)?;
            Value::Tuple(
                items
                    .iter()
                    .zip(slices)
                    .map(|(t, d)| decode(t, d))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::DictEntry(k, v) => {
            let slices = tuple_items(ty, &[k, v], data)?;
            Value::DictEntry(
                Box::new(decode(k, slices[0])?),
                Box::new(decode(v, slices[1])?),
            )
        }
    })
}

/// A NUL-terminated UTF-8 string without interior NULs.
pub(crate) fn decode_str<'a>(ty: &Type, data: &'a [u8]) -> Result<&'a str, VariantError> {
    let bad = |why| VariantError::malformed(ty, why);
    let (last, body) = data.split_last().ok_or_else(|| bad("empty string"))?;
    if *last != 0 || body.contains(&0) {
        return Err(bad("string not NUL-terminated"));
    }
    std::str::from_utf8(body).map_err(|_| bad("string not UTF-8"))
}
