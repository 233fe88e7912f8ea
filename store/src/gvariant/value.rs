//! Dynamic GVariant values.

use super::{Type, VariantError};

/// A GVariant value. `ay` is always [`Value::Bytes`], never an `Array` of bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `b`
    Bool(bool),
    /// `y`
    Byte(u8),
    /// `n`
    Int16(i16),
    /// `q`
    Uint16(u16),
    /// `i`
    Int32(i32),
    /// `u`
    Uint32(u32),
    /// `x`
    Int64(i64),
    /// `t`
    Uint64(u64),
    /// `h`
    Handle(i32),
    /// `d`
    Double(f64),
    /// `s`
    String(String),
    /// `o`
    ObjectPath(String),
    /// `g`
    Signature(String),
    /// `v`: a value carrying its own type.
    Variant(Box<Value>),
    /// `mT`: the element type and the value, if any.
    Maybe(Type, Option<Box<Value>>),
    /// `aT` for every `T` but `y`: the element type and the elements.
    Array(Type, Vec<Value>),
    /// `ay`
    Bytes(Vec<u8>),
    /// `(T...)`
    Tuple(Vec<Value>),
    /// `{KV}`
    DictEntry(Box<Value>, Box<Value>),
}

impl Value {
    /// `g_variant_byteswap`: every integer and double with its bytes reversed (what
    /// ostree prints for big-endian fields such as commit timestamps).
    pub fn byteswapped(&self) -> Value {
        match self {
            Value::Int16(n) => Value::Int16(n.swap_bytes()),
            Value::Uint16(n) => Value::Uint16(n.swap_bytes()),
            Value::Int32(n) => Value::Int32(n.swap_bytes()),
            Value::Uint32(n) => Value::Uint32(n.swap_bytes()),
            Value::Int64(n) => Value::Int64(n.swap_bytes()),
            Value::Uint64(n) => Value::Uint64(n.swap_bytes()),
            Value::Handle(n) => Value::Handle(n.swap_bytes()),
            Value::Double(d) => Value::Double(f64::from_bits(d.to_bits().swap_bytes())),
            Value::Variant(inner) => Value::Variant(Box::new(inner.byteswapped())),
            Value::Maybe(t, inner) => {
                Value::Maybe(t.clone(), inner.as_ref().map(|i| Box::new(i.byteswapped())))
            }
            Value::Array(t, items) => {
                Value::Array(t.clone(), items.iter().map(Value::byteswapped).collect())
            }
            Value::Tuple(items) => Value::Tuple(items.iter().map(Value::byteswapped).collect()),
            Value::DictEntry(k, v) => {
                Value::DictEntry(Box::new(k.byteswapped()), Box::new(v.byteswapped()))
            }
            other => other.clone(),
        }
    }

    /// The type of this value.
    pub fn type_of(&self) -> Type {
        match self {
            Value::Bool(_) => Type::Bool,
            Value::Byte(_) => Type::Byte,
            Value::Int16(_) => Type::Int16,
            Value::Uint16(_) => Type::Uint16,
            Value::Int32(_) => Type::Int32,
            Value::Uint32(_) => Type::Uint32,
            Value::Int64(_) => Type::Int64,
            Value::Uint64(_) => Type::Uint64,
            Value::Handle(_) => Type::Handle,
            Value::Double(_) => Type::Double,
            Value::String(_) => Type::String,
            Value::ObjectPath(_) => Type::ObjectPath,
            Value::Signature(_) => Type::Signature,
            Value::Variant(_) => Type::Variant,
            Value::Maybe(t, _) => Type::Maybe(Box::new(t.clone())),
            Value::Array(t, _) => Type::Array(Box::new(t.clone())),
            Value::Bytes(_) => Type::Array(Box::new(Type::Byte)),
            Value::Tuple(items) => Type::Tuple(items.iter().map(Value::type_of).collect()),
            Value::DictEntry(k, v) => Type::DictEntry(Box::new(k.type_of()), Box::new(v.type_of())),
        }
    }

    /// Serializes in glib's normal form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        super::encode::encode(self, &mut out);
        out
    }

    /// Decodes untrusted bytes as a value of type `ty`.
    pub fn from_bytes(ty: &Type, data: &[u8]) -> Result<Value, VariantError> {
        super::decode::decode(ty, data)
    }

    /// glib's text form (`g_variant_print`), with type annotations where glib puts them.
    pub fn print(&self, annotate: bool) -> String {
        let mut out = String::new();
        super::print::print(self, annotate, &mut out);
        out
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// An `as` value.
    pub fn strv<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(
            Type::String,
            items.iter().map(|s| Value::str(s.as_ref())).collect(),
        )
    }

    /// The string inside `s`, `o` or `g`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes inside an `ay`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The value inside a `v`.
    pub fn as_variant(&self) -> Option<&Value> {
        match self {
            Value::Variant(v) => Some(v),
            _ => None,
        }
    }

    /// The items of a tuple or the key and value of a dict entry.
    pub fn items(&self) -> Option<Vec<&Value>> {
        match self {
            Value::Tuple(items) => Some(items.iter().collect()),
            Value::DictEntry(k, v) => Some(vec![k, v]),
            _ => None,
        }
    }

    /// The elements of an array other than `ay`.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(_, items) => Some(items),
            _ => None,
        }
    }

    /// `Uint64` as a number.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Uint64(n) => Some(*n),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Value;

    #[test]
    fn byteswap_swaps_numbers_only() {
        let v = Value::Tuple(vec![Value::Uint32(1), Value::str("s"), Value::Byte(7)]);
        let swapped = Value::Tuple(vec![
            Value::Uint32(1 << 24),
            Value::str("s"),
            Value::Byte(7),
        ]);
        assert_eq!(v.byteswapped(), swapped);
        // `--add-metadata=i=5` stores a native (little-endian) int; ostree shows it swapped.
        assert_eq!(Value::Int32(5).byteswapped().print(true), "83886080");
    }
}
