//! rostree-mount: a repository as a read-only FUSE filesystem.
//!
//! [`Root::Commit`] shows one commit's tree exactly as `ostree checkout` (as root) lays it
//! out: types, modes with setuid/setgid/sticky, owners, sizes, symlink targets, xattrs, mtime 0.
//! [`Root::Repository`] shows the whole repository (see the `virt` module's layout:
//! `refs/heads/<ref>` and `refs/remotes/<remote>/<ref>` link into `commits/<checksum>/`,
//! `history/<ref>/0, 1, …` walk the parents). The driver is a thin adapter over
//! rostree-store's read API and never parses objects itself; nothing is read up front.
//!
//! Inode numbers are derived from content checksums (files) and paths (directories), so they
//! are stable for the life of the mount; the node table and every cache are bounded (LRU,
//! `forget` honoured). Archive content is inflated once per object, verified, and kept in a
//! bounded cache (memory, or an unlinked temporary file for large objects), so random reads
//! never inflate from the start again.
//!
//! Error policy: mounting and unmounting return [`MountError`] (thiserror; each variant names
//! the path concerned). Filesystem operations are helpers returning `Result<T, Errno>`: store
//! errors pass through one mapping that logs a line naming the object on stderr and answers
//! EIO (a missing or corrupt object fails that file only, never the daemon, and never yields
//! wrong bytes); every write answers EROFS.

mod cache;
mod content;
mod error;
mod fs;
mod inode;
mod meta_cache;
mod ops;
mod prefetch;
mod session;
#[cfg(test)]
mod tests;
mod tree;
mod virt;

pub use error::MountError;
pub use session::{
    MountOptions, MountSpec, Root, daemon_ready, detach_from_terminal, mount, unmount,
};
