//! GVariant type strings.

use super::VariantError;
use std::fmt;

/// How deeply containers may nest, as glib's `G_VARIANT_MAX_RECURSION_DEPTH`: in type strings,
/// in decoded values (across variants) and in text. Bounds recursion on untrusted input.
pub(crate) const MAX_DEPTH: usize = 128;

/// A complete GVariant type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    /// `b`
    Bool,
    /// `y`
    Byte,
    /// `n`
    Int16,
    /// `q`
    Uint16,
    /// `i`
    Int32,
    /// `u`
    Uint32,
    /// `x`
    Int64,
    /// `t`
    Uint64,
    /// `h`
    Handle,
    /// `d`
    Double,
    /// `s`
    String,
    /// `o`
    ObjectPath,
    /// `g`
    Signature,
    /// `v`
    Variant,
    /// `mT`
    Maybe(Box<Type>),
    /// `aT`
    Array(Box<Type>),
    /// `(T...)`
    Tuple(Vec<Type>),
    /// `{KV}`
    DictEntry(Box<Type>, Box<Type>),
}

impl Type {
    /// Parses a string holding exactly one complete type.
    pub fn parse(s: &str) -> Result<Type, VariantError> {
        let (ty, rest) =
            Self::parse_prefix(s.as_bytes()).ok_or_else(|| VariantError::BadType(s.to_string()))?;
        if rest.is_empty() {
            Ok(ty)
        } else {
            Err(VariantError::BadType(s.to_string()))
        }
    }

    /// Parses one type from the start of `s`, returning it and the rest.
    pub(crate) fn parse_prefix(s: &[u8]) -> Option<(Type, &[u8])> {
        Self::parse_prefix_at(s, 0)
    }

    /// [`Type::parse_prefix`] inside `depth` containers; fails beyond [`MAX_DEPTH`].
    fn parse_prefix_at(s: &[u8], depth: usize) -> Option<(Type, &[u8])> {
        let (&c, rest) = s.split_first()?;
        if matches!(c, b'm' | b'a' | b'(' | b'{') && depth >= MAX_DEPTH {
            return None;
        }
        let basic = match c {
            b'b' => Type::Bool,
            b'y' => Type::Byte,
            b'n' => Type::Int16,
            b'q' => Type::Uint16,
            b'i' => Type::Int32,
            b'u' => Type::Uint32,
            b'x' => Type::Int64,
            b't' => Type::Uint64,
            b'h' => Type::Handle,
            b'd' => Type::Double,
            b's' => Type::String,
            b'o' => Type::ObjectPath,
            b'g' => Type::Signature,
            b'v' => Type::Variant,
            b'm' => {
                let (inner, rest) = Self::parse_prefix_at(rest, depth + 1)?;
                return Some((Type::Maybe(Box::new(inner)), rest));
            }
            b'a' => {
                let (inner, rest) = Self::parse_prefix_at(rest, depth + 1)?;
                return Some((Type::Array(Box::new(inner)), rest));
            }
            b'(' => {
                let mut items = Vec::new();
                let mut rest = rest;
                loop {
                    if let Some(r) = rest.strip_prefix(b")") {
                        return Some((Type::Tuple(items), r));
                    }
                    let (item, r) = Self::parse_prefix_at(rest, depth + 1)?;
                    items.push(item);
                    rest = r;
                }
            }
            b'{' => {
                let (key, rest) = Self::parse_prefix_at(rest, depth + 1)?;
                if !key.is_basic() {
                    return None;
                }
                let (value, rest) = Self::parse_prefix_at(rest, depth + 1)?;
                let rest = rest.strip_prefix(b"}")?;
                return Some((Type::DictEntry(Box::new(key), Box::new(value)), rest));
            }
            _ => return None,
        };
        Some((basic, rest))
    }

    /// Whether this is a basic type (allowed as a dictionary key).
    pub fn is_basic(&self) -> bool {
        !matches!(
            self,
            Type::Variant | Type::Maybe(_) | Type::Array(_) | Type::Tuple(_) | Type::DictEntry(..)
        )
    }

    /// Alignment in bytes of serialized values of this type.
    pub fn alignment(&self) -> usize {
        match self {
            Type::Bool | Type::Byte | Type::String | Type::ObjectPath | Type::Signature => 1,
            Type::Int16 | Type::Uint16 => 2,
            Type::Int32 | Type::Uint32 | Type::Handle => 4,
            Type::Int64 | Type::Uint64 | Type::Double | Type::Variant => 8,
            Type::Maybe(t) | Type::Array(t) => t.alignment(),
            Type::Tuple(items) => items.iter().map(Type::alignment).max().unwrap_or(1),
            Type::DictEntry(k, v) => k.alignment().max(v.alignment()),
        }
    }

    /// Size in bytes when every value of this type has the same size, else `None`.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Type::Bool | Type::Byte => Some(1),
            Type::Int16 | Type::Uint16 => Some(2),
            Type::Int32 | Type::Uint32 | Type::Handle => Some(4),
            Type::Int64 | Type::Uint64 | Type::Double => Some(8),
            Type::String
            | Type::ObjectPath
            | Type::Signature
            | Type::Variant
            | Type::Maybe(_)
            | Type::Array(_) => None,
            Type::Tuple(items) => fixed_tuple_size(items.iter()),
            Type::DictEntry(k, v) => fixed_tuple_size([k.as_ref(), v.as_ref()].into_iter()),
        }
    }

    /// The items of a tuple or dict entry, in order.
    pub fn items(&self) -> Option<Vec<&Type>> {
        match self {
            Type::Tuple(items) => Some(items.iter().collect()),
            Type::DictEntry(k, v) => Some(vec![k, v]),
            _ => None,
        }
    }
}

fn fixed_tuple_size<'a>(items: impl Iterator<Item = &'a Type>) -> Option<usize> {
    let mut size = 0usize;
    let mut align = 1usize;
    let mut any = false;
    for item in items {
        any = true;
        let a = item.alignment();
        align = align.max(a);
        size = size.next_multiple_of(a) + item.fixed_size()?;
    }
    if !any {
        // The unit tuple is one zero byte.
        return Some(1);
    }
    Some(size.next_multiple_of(align))
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self {
            Type::Bool => "b",
            Type::Byte => "y",
            Type::Int16 => "n",
            Type::Uint16 => "q",
            Type::Int32 => "i",
            Type::Uint32 => "u",
            Type::Int64 => "x",
            Type::Uint64 => "t",
            Type::Handle => "h",
            Type::Double => "d",
            Type::String => "s",
            Type::ObjectPath => "o",
            Type::Signature => "g",
            Type::Variant => "v",
            Type::Maybe(t) => return write!(f, "m{t}"),
            Type::Array(t) => return write!(f, "a{t}"),
            Type::Tuple(items) => {
                f.write_str("(")?;
                for item in items {
                    write!(f, "{item}")?;
                }
                return f.write_str(")");
            }
            Type::DictEntry(k, v) => return write!(f, "{{{k}{v}}}"),
        };
        f.write_str(c)
    }
}
