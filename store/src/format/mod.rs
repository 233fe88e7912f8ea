//! The byte formats of OSTree objects: commit, dirtree, dirmeta, file headers, xattrs.
//!
//! Integers inside these GVariants are big-endian, as ostree byteswaps before serializing.
//! Parsers take untrusted bytes and validate structure; builders produce glib's exact bytes.

mod commit;
mod dirmeta;
mod dirtree;
mod file_header;
mod names;
mod sizes;
mod xattrs;

pub use commit::{
    Commit, metadata_from_value, metadata_in_dict_order, metadata_value, parse_detached,
};
pub use dirmeta::DirMeta;
pub use dirtree::{DirTree, DirTreeRef};
pub use file_header::{FileHeader, checksum_header_bytes, content_checksum, parse_filez_header};
pub use names::validate_filename;
pub use sizes::{SizeEntry, parse_sizes, sizes_value};
pub use xattrs::Xattrs;

use crate::gvariant::Type;
use std::sync::LazyLock;

pub(crate) static COMMIT_TYPE: LazyLock<Type> = LazyLock::new(|| ty("(a{sv}aya(say)sstayay)"));
pub(crate) static DIRTREE_TYPE: LazyLock<Type> = LazyLock::new(|| ty("(a(say)a(sayay))"));
pub(crate) static DIRMETA_TYPE: LazyLock<Type> = LazyLock::new(|| ty("(uuua(ayay))"));
pub(crate) static FILE_HEADER_TYPE: LazyLock<Type> = LazyLock::new(|| ty("(uuuusa(ayay))"));
pub(crate) static FILEZ_HEADER_TYPE: LazyLock<Type> = LazyLock::new(|| ty("(tuuuusa(ayay))"));
pub(crate) static METADATA_TYPE: LazyLock<Type> = LazyLock::new(|| ty("a{sv}"));

fn ty(s: &str) -> Type {
    // The type strings above are constants known to be valid.
    Type::parse(s).unwrap_or(Type::Tuple(Vec::new()))
}

/// Mode bits: file type mask.
pub const S_IFMT: u32 = 0o170000;
/// Mode bits: regular file.
pub const S_IFREG: u32 = 0o100000;
/// Mode bits: directory.
pub const S_IFDIR: u32 = 0o040000;
/// Mode bits: symbolic link.
pub const S_IFLNK: u32 = 0o120000;
