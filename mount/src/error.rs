//! Errors: [`MountError`] for setting up and tearing down a mount, and the one mapping from
//! store errors to the errno a filesystem call answers.

use fuser::Errno;
use std::io::Write;
use std::path::PathBuf;

/// Why a mount or an unmount failed. Each variant names the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// The mountpoint does not exist.
    #[error("{0}: No such file or directory")]
    MountpointMissing(PathBuf),
    /// The mountpoint is not a directory.
    #[error("{0}: Not a directory")]
    NotADirectory(PathBuf),
    /// The FUSE device is missing.
    #[error("/dev/fuse: No such device (is the fuse kernel module loaded? try 'modprobe fuse')")]
    NoFuseDevice,
    /// The FUSE device is there but not open to this user.
    #[error("/dev/fuse: Permission denied (mount as root, or make /dev/fuse usable by this user)")]
    FuseDeviceDenied,
    /// The caller may not mount (or unmount) there.
    #[error("{0}: Operation not permitted (mount as root, or install fusermount3 for user mounts)")]
    NotPermitted(PathBuf),
    /// The path is not a mount point, or not a FUSE one.
    #[error("{0}: not a FUSE mount point")]
    NotMounted(PathBuf),
    /// Files are open on the mount: a plain unmount is refused.
    #[error("{0}: target is busy (close the files using it, or use --lazy)")]
    Busy(PathBuf),
    /// A `-o` option that rostree does not accept.
    #[error("invalid mount option '{0}'")]
    BadOption(String),
    /// The mount or unmount system call failed otherwise.
    #[error("{}: {}", path.display(), rostree_store::io_message(source))]
    Io {
        /// The mountpoint.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The repository could not serve what the mount needs.
    #[error(transparent)]
    Store(#[from] rostree_store::Error),
}

/// Writes one line to stderr, never failing (a daemon's stderr may be gone).
pub(crate) fn log(msg: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "rostree mount: {msg}");
}

/// The errno a filesystem call answers when the repository fails it. Missing or corrupt
/// objects, and any other failure to read the repository, are EIO for the caller: the path
/// exists, its data can't be had. A few resource errors pass through as they are.
pub(crate) fn store_errno(e: &rostree_store::Error) -> Errno {
    match e {
        rostree_store::Error::Io { source, .. } => match source.raw_os_error() {
            Some(code @ (libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::EINTR)) => {
                Errno::from_i32(code)
            }
            _ => Errno::EIO,
        },
        _ => Errno::EIO,
    }
}

/// Logs a store error (naming the object or path, as the store's messages do) and maps it.
pub(crate) fn fail(e: rostree_store::Error) -> Errno {
    log(format_args!("{e}"));
    store_errno(&e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rostree_store::{ObjectId, ObjectType};

    #[test]
    fn store_errors_map_to_specific_errnos() {
        let id = ObjectId::digest(b"x");
        let missing = rostree_store::Error::MissingObject {
            id,
            ty: ObjectType::File,
        };
        assert_eq!(store_errno(&missing), Errno::EIO);
        assert!(missing.to_string().contains(&id.to_string()));
        let corrupt = rostree_store::Error::corrupt(id, ObjectType::DirTree, "bad");
        assert_eq!(store_errno(&corrupt), Errno::EIO);
        let emfile =
            rostree_store::Error::io("/x", std::io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(store_errno(&emfile), Errno::from_i32(libc::EMFILE));
        let enoent =
            rostree_store::Error::io("/x", std::io::Error::from_raw_os_error(libc::ENOENT));
        assert_eq!(store_errno(&enoent), Errno::EIO);
    }
}
