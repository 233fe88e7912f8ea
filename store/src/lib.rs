//! rostree-store: an OSTree 2022.7 compatible repository.
//!
//! Objects, formats, refs, commit, checkout, diff, fsck, prune, pull and signatures (GPG,
//! ed25519); no FUSE or CLI code.
//!
//! Error policy: every fallible API returns [`Error`], a `thiserror` enum whose variants name
//! the path, ref or object concerned. Bytes read from disk or the network are untrusted: they
//! are validated before use and yield [`Error::Corrupt`], never a panic.

pub mod checkout;
pub mod checksum;
pub mod commit;
pub mod config;
pub mod content;
mod content_meta;
pub mod detached;
pub mod diff;
mod error;
pub mod format;
pub mod fsck;
mod fsutil;
pub mod ghash;
pub mod gpg;
pub mod gvariant;
pub mod lock;
pub mod meta_cache;
pub mod mtree;
pub mod object;
pub mod prune;
pub mod pull;
pub mod read;
pub mod refs;
pub mod repo;
pub mod sign;
pub mod tar_import;
pub mod time;
pub mod transaction;
pub mod xattr;

pub use checksum::ObjectId;
pub use error::{Error, IoContext, Result, io_message};
pub use object::ObjectType;
pub use read::TreeEntry;
pub use repo::{Repo, RepoMode};
pub use transaction::{ContentSource, Transaction};
