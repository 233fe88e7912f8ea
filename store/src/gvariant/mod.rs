//! GVariant: the serialization format of every OSTree metadata object.
//!
//! We evaluated the `gvariant` crate first. It maps fixed Rust types at compile time, but has no
//! text format (`g_variant_print`/`g_variant_parse`, needed by `show --raw`, `ls -X` and
//! `commit --add-metadata`) and no dynamic values for arbitrary `a{sv}` metadata. This module is
//! therefore a small codec of our own, tested against glib's bytes:
//! - [`Type`]: a parsed type string with its alignment and fixed size;
//! - [`Value`]: a dynamic value, encoded in normal form by [`Value::to_bytes`] and decoded
//!   strictly (errors, never panics, on untrusted bytes) by [`Value::from_bytes`];
//! - [`frame`]: the framing primitives, for zero-copy views over hot objects (dirtrees);
//! - [`print`] and [`text`]: glib's text format, both directions.

mod decode;
mod encode;
pub mod frame;
mod print;
pub mod text;
mod types;
mod value;

pub use types::Type;
pub use value::Value;

/// Why bytes or text could not be read as a GVariant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariantError {
    /// A type string that is not a single complete GVariant type.
    #[error("invalid GVariant type string {0:?}")]
    BadType(String),
    /// Serialized bytes that do not frame a value of the expected type.
    #[error("malformed GVariant of type {ty}: {why}")]
    Malformed {
        /// The type being decoded.
        ty: String,
        /// What was wrong.
        why: &'static str,
    },
    /// GVariant text that could not be parsed.
    #[error("cannot parse GVariant text {text:?}: {why}")]
    Text {
        /// The input text.
        text: String,
        /// What was wrong.
        why: String,
    },
}

impl VariantError {
    pub(crate) fn malformed(ty: &Type, why: &'static str) -> Self {
        VariantError::Malformed {
            ty: ty.to_string(),
            why,
        }
    }
}

#[cfg(test)]
mod tests;
