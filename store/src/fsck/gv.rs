//! GLib 2.74's access to serialized GVariants loaded as trusted (`gvariant-serialiser.c`):
//! never fails, whatever the bytes; malformed framing yields empty or zero children.
//!
//! ostree walks commits and dirtrees (and reads file headers) through such trusted loads, so a
//! corrupt object yields under rostree the same children, or the same
//! `Invalid checksum of length N expected 32` error, as under ostree. [`crate::format`]'s
//! codecs refuse malformed bytes instead, so the fsck and prune walks read through this.

use crate::gvariant::Type;
use std::sync::LazyLock;

/// The serialized bytes of one value, or `n` zero bytes for a fixed-size child GLib could
/// not frame (its `data == NULL, size == n` case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Data<'a> {
    /// Real bytes.
    Bytes(&'a [u8]),
    /// That many zero bytes.
    Zeros(usize),
}

impl<'a> Data<'a> {
    /// The size in bytes.
    pub fn size(&self) -> usize {
        match self {
            Data::Bytes(b) => b.len(),
            Data::Zeros(n) => *n,
        }
    }

    /// The bytes (empty for zeros).
    pub fn bytes(&self) -> &'a [u8] {
        match self {
            Data::Bytes(b) => b,
            Data::Zeros(_) => &[],
        }
    }

    /// A `u` that ostree stored big-endian.
    pub fn u32_be(&self) -> u32 {
        match self {
            Data::Bytes(b) if b.len() == 4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            _ => 0,
        }
    }

    /// A `t` that ostree stored big-endian.
    pub fn u64_be(&self) -> u64 {
        match self {
            Data::Bytes(b) if b.len() == 8 => {
                u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]))
            }
            _ => 0,
        }
    }

    /// A string read as `g_variant_get_string` does for trusted data: up to the first NUL.
    pub fn str_bytes(&self) -> &'a [u8] {
        let b = self.bytes();
        match b.iter().position(|&c| c == 0) {
            Some(n) => &b[..n],
            None => b,
        }
    }
}

fn offset_size(size: usize) -> usize {
    if size > u32::MAX as usize {
        8
    } else if size > 0xffff {
        4
    } else if size > 0xff {
        2
    } else if size > 0 {
        1
    } else {
        0
    }
}

fn read_le(b: &[u8]) -> usize {
    let mut buf = [0u8; 8];
    let n = b.len().min(8);
    buf[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(buf) as usize
}

fn align(offset: usize, one_less: usize) -> usize {
    offset.wrapping_add(offset.wrapping_neg() & one_less)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Fixed,
    Last,
    Offset,
}

#[derive(Clone, Copy, Debug)]
struct Member {
    /// GLib's `i + 1`: how many framing offsets precede this member's start (0 = none).
    ip1: usize,
    a: usize,
    b: usize,
    c: usize,
    ending: Ending,
    fixed: usize,
}

/// `tuple_generate_table` and `tuple_table_append` of `gvarianttypeinfo.c`.
fn members(items: &[&Type]) -> Vec<Member> {
    let mut out = Vec::with_capacity(items.len());
    let (mut i, mut a, mut b, mut c) = (usize::MAX, 0usize, 0usize, 0usize);
    for (n, t) in items.iter().enumerate() {
        let d = t.alignment() - 1;
        let e = t.fixed_size().unwrap_or(0);
        if d <= b {
            c = align(c, d);
        } else {
            a = a.wrapping_add(align(c, b));
            b = d;
            c = 0;
        }
        let ending = if e != 0 {
            Ending::Fixed
        } else if n + 1 == items.len() {
            Ending::Last
        } else {
            Ending::Offset
        };
        out.push(Member {
            ip1: i.wrapping_add(1),
            a: a.wrapping_add(!b & c).wrapping_add(b),
            b: !b,
            c: c & b,
            ending,
            fixed: e,
        });
        if e == 0 {
            i = i.wrapping_add(1);
            a = 0;
            b = 0;
            c = 0;
        } else {
            c += e;
        }
    }
    out
}

fn member_bounds(m: &Member, data: &[u8], osz: usize) -> (usize, usize) {
    let size = data.len();
    let at = |k: usize| read_le(&data[size - osz * k..size - osz * k + osz]);
    let mut start = if m.ip1 != 0 && osz * m.ip1 <= size {
        at(m.ip1)
    } else {
        0
    };
    start = start.wrapping_add(m.a);
    start &= m.b;
    start |= m.c;
    let end = match m.ending {
        Ending::Last if osz * m.ip1 <= size => size - osz * m.ip1,
        Ending::Fixed => start.wrapping_add(m.fixed),
        Ending::Offset if osz * (m.ip1 + 1) <= size => at(m.ip1 + 1),
        _ => usize::MAX,
    };
    (start, end)
}

/// Child `index` of a tuple whose item types are `items` (`gvs_tuple_get_child`).
pub fn tuple_child<'a>(items: &[&Type], v: Data<'a>, index: usize) -> Data<'a> {
    let ms = members(items);
    let Some(m) = ms.get(index) else {
        return Data::Bytes(&[]);
    };
    let empty = if m.ending == Ending::Fixed {
        Data::Zeros(m.fixed)
    } else {
        Data::Bytes(&[])
    };
    let data = match v {
        Data::Zeros(_) => return empty,
        Data::Bytes(b) => b,
    };
    let size = data.len();
    let osz = offset_size(size);
    let needed = if m.ending == Ending::Offset {
        m.ip1 + 1
    } else {
        m.ip1
    };
    if osz * needed > size {
        return empty;
    }
    let (start, end) = member_bounds(m, data, osz);
    let (_, last_end) = member_bounds(&ms[ms.len() - 1], data, osz);
    if start < end && end <= size && end <= last_end {
        Data::Bytes(&data[start..end])
    } else {
        empty
    }
}

struct Frame {
    length: usize,
    data_size: usize,
    osz: usize,
}

fn frame(data: &[u8]) -> Frame {
    let size = data.len();
    let none = Frame {
        length: 0,
        data_size: 0,
        osz: 0,
    };
    if size == 0 {
        return none;
    }
    let osz = offset_size(size);
    let last_end = read_le(&data[size - osz..]);
    if last_end > size {
        return none;
    }
    let table = size - last_end;
    if table % osz != 0 {
        return none;
    }
    Frame {
        length: table / osz,
        data_size: last_end,
        osz,
    }
}

/// The number of elements of an array of `elem` (`g_variant_n_children`).
pub fn array_len(elem: &Type, v: Data<'_>) -> usize {
    let size = v.size();
    match elem.fixed_size() {
        Some(fs) if fs > 0 => {
            if size % fs == 0 {
                size / fs
            } else {
                0
            }
        }
        _ => frame(v.bytes()).length,
    }
}

/// Element `index` (< [`array_len`]) of an array of `elem`.
pub fn array_child<'a>(elem: &Type, v: Data<'a>, index: usize) -> Data<'a> {
    let data = v.bytes();
    if let Some(fs) = elem.fixed_size().filter(|&fs| fs > 0) {
        return match data.get(fs * index..fs * (index + 1)) {
            Some(b) => Data::Bytes(b),
            None => Data::Zeros(fs),
        };
    }
    let f = frame(data);
    if index >= f.length {
        return Data::Bytes(&[]);
    }
    let table = &data[f.data_size..];
    let off = |n: usize| read_le(&table[n * f.osz..(n + 1) * f.osz]);
    let start = if index > 0 {
        align(off(index - 1), elem.alignment() - 1)
    } else {
        0
    };
    let end = off(index);
    if start < end && end <= data.len() && end <= f.data_size {
        Data::Bytes(&data[start..end])
    } else {
        Data::Bytes(&[])
    }
}

// The item types of the objects read this way.

static AY: LazyLock<Type> = LazyLock::new(|| Type::Array(Box::new(Type::Byte)));
/// The items of a dirtree: files `a(say)` and directories `a(sayay)`.
pub(super) static DIRTREE_ITEMS: LazyLock<[Type; 2]> = LazyLock::new(|| {
    [
        Type::Array(Box::new(Type::Tuple(vec![Type::String, AY.clone()]))),
        Type::Array(Box::new(Type::Tuple(vec![
            Type::String,
            AY.clone(),
            AY.clone(),
        ]))),
    ]
});
/// The items of a commit.
pub(super) static COMMIT_ITEMS: LazyLock<Vec<Type>> =
    LazyLock::new(|| match &*crate::format::COMMIT_TYPE {
        Type::Tuple(items) => items.clone(),
        _ => Vec::new(),
    });
/// The items of an archive file header.
pub(super) static FILEZ_ITEMS: LazyLock<Vec<Type>> =
    LazyLock::new(|| match &*crate::format::FILEZ_HEADER_TYPE {
        Type::Tuple(items) => items.clone(),
        _ => Vec::new(),
    });
/// The items of a bare-user `user.ostreemeta` xattr (a dirmeta's layout).
pub(super) static OSTREEMETA_ITEMS: LazyLock<Vec<Type>> =
    LazyLock::new(|| match &*crate::format::DIRMETA_TYPE {
        Type::Tuple(items) => items.clone(),
        _ => Vec::new(),
    });

/// Borrowed item types, as [`tuple_child`] takes them.
pub(super) fn refs(items: &[Type]) -> Vec<&Type> {
    items.iter().collect()
}
