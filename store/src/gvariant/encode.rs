//! Serialization in normal form.
//!
//! Alignment is computed on the absolute position in the output buffer: every container starts
//! at a position aligned to its own alignment, so this equals alignment within the container.

use super::Value;

pub(super) fn encode(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Bool(b) => out.push(u8::from(*b)),
        Value::Byte(b) => out.push(*b),
        Value::Int16(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Uint16(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Int32(n) | Value::Handle(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Uint32(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Int64(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Uint64(n) => out.extend_from_slice(&n.to_le_bytes()),
        Value::Double(d) => out.extend_from_slice(&d.to_le_bytes()),
        Value::String(s) | Value::ObjectPath(s) | Value::Signature(s) => {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        Value::Variant(inner) => {
            encode(inner, out);
            out.push(0);
            out.extend_from_slice(inner.type_of().to_string().as_bytes());
        }
        Value::Maybe(ty, inner) => {
            if let Some(inner) = inner {
                encode(inner, out);
                if ty.fixed_size().is_none() {
                    out.push(0);
                }
            }
        }
        Value::Bytes(b) => out.extend_from_slice(b),
        Value::Array(ty, items) => {
            let start = out.len();
            if ty.fixed_size().is_some() {
                for item in items {
                    pad_to(out, ty.alignment());
                    encode(item, out);
                }
            } else {
                let mut ends = Vec::with_capacity(items.len());
                for item in items {
                    pad_to(out, ty.alignment());
                    encode(item, out);
                    ends.push(out.len() - start);
                }
                write_offsets(out, start, &ends);
            }
        }
        Value::Tuple(items) => encode_tuple(items.iter(), out),
        Value::DictEntry(k, v) => encode_tuple([k.as_ref(), v.as_ref()].into_iter(), out),
    }
}

fn encode_tuple<'a>(items: impl ExactSizeIterator<Item = &'a Value>, out: &mut Vec<u8>) {
    let start = out.len();
    let n = items.len();
    if n == 0 {
        out.push(0);
        return;
    }
    let mut align = 1;
    let mut all_fixed = true;
    let mut ends = Vec::new();
    for (i, item) in items.enumerate() {
        let ty = item.type_of();
        align = usize::max(align, ty.alignment());
        pad_to(out, ty.alignment());
        encode(item, out);
        if ty.fixed_size().is_none() {
            all_fixed = false;
            if i + 1 < n {
                ends.push(out.len() - start);
            }
        }
    }
    if all_fixed {
        pad_to(out, align);
    } else {
        // Tuple framing offsets are stored last-first.
        ends.reverse();
        write_offsets(out, start, &ends);
    }
}

fn pad_to(out: &mut Vec<u8>, align: usize) {
    let target = out.len().next_multiple_of(align);
    out.resize(target, 0);
}

/// Appends framing offsets, choosing the smallest offset size that addresses the container.
fn write_offsets(out: &mut Vec<u8>, start: usize, offsets: &[usize]) {
    let body = out.len() - start;
    let size = [1usize, 2, 4, 8]
        .into_iter()
        .find(|&size| {
            let total = body + size * offsets.len();
            size == 8 || total < (1usize << (8 * size))
        })
        .unwrap_or(8);
    for &off in offsets {
        out.extend_from_slice(&(off as u64).to_le_bytes()[..size]);
    }
}
