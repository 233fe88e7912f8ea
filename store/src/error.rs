//! The store's error type. Every variant names what it is about: a path, a ref or an object.

use crate::gvariant::VariantError;
use crate::{ObjectId, ObjectType};
use std::path::PathBuf;

/// Errors from repository operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed on a path.
    #[error("{}: {}", path.display(), io_message(source))]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No repository at the path.
    #[error("{0}: not an OSTree repository (no config file)")]
    NotARepo(PathBuf),
    /// The repository lock could not be taken.
    #[error("{0}")]
    Lock(String),
    /// The repository's config is unusable.
    #[error("repository config: {0}")]
    Config(String),
    /// A ref or revision that does not resolve.
    #[error("Refspec '{0}' not found")]
    RefNotFound(String),
    /// A checksum prefix matching several commits.
    #[error("Refspec {0} not unique")]
    AmbiguousPrefix(String),
    /// `REV^` of a commit without parent.
    #[error("Commit {0} has no parent")]
    NoParent(ObjectId),
    /// A string that is not `[REMOTE:]REF`.
    #[error("Invalid refspec {0}")]
    InvalidRefspec(String),
    /// A ref name that ostree would refuse.
    #[error("Invalid ref name {0}")]
    InvalidRefName(String),
    /// A string that should have been a checksum.
    #[error(transparent)]
    InvalidChecksum(#[from] crate::checksum::InvalidChecksum),
    /// An object that should be present is not.
    #[error("No such metadata object {id}.{ty}")]
    MissingObject {
        /// The object's checksum.
        id: ObjectId,
        /// The object's type.
        ty: ObjectType,
    },
    /// An object whose bytes are corrupt or malformed.
    #[error("Corrupted {ty} object {id}: {why}")]
    Corrupt {
        /// The object's checksum.
        id: ObjectId,
        /// The object's type.
        ty: ObjectType,
        /// What is wrong with it.
        why: String,
    },
    /// A path that does not exist in a commit's tree.
    #[error("No such file or directory: {0}")]
    NoSuchPath(String),
    /// A path in a commit that is not a directory where one is needed.
    #[error("Not a directory: {0}")]
    NotADirectory(String),
    /// Something in a tree to commit or check out that ostree refuses.
    #[error("{path}: {why}")]
    Invalid {
        /// The offending path.
        path: PathBuf,
        /// Why it is refused.
        why: String,
    },
    /// A pull that cannot go on: what the remote offers does not fit what was asked.
    #[error("{0}")]
    Pull(String),
    /// A signature that cannot be made or checked, or a key that cannot be used.
    #[error("{0}")]
    Sign(String),
    /// A remote that is not configured.
    #[error("Remote \"{0}\" not found")]
    RemoteNotFound(String),
    /// A file of a remote that could not be fetched or was refused.
    #[error("{url}: {why}")]
    Fetch {
        /// What was fetched.
        url: String,
        /// Why it failed.
        why: String,
    },
    /// GVariant bytes or text that could not be read, outside any object.
    #[error(transparent)]
    Variant(#[from] VariantError),
}

/// Result alias for the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: impl Into<std::io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            source: source.into(),
        }
    }

    /// A corrupt-object error.
    pub fn corrupt(id: ObjectId, ty: ObjectType, why: impl ToString) -> Self {
        Error::Corrupt {
            id,
            ty,
            why: why.to_string(),
        }
    }

    /// An invalid-input error about `path`.
    pub fn invalid(path: impl Into<PathBuf>, why: impl Into<String>) -> Self {
        Error::Invalid {
            path: path.into(),
            why: why.into(),
        }
    }
}

/// An I/O error as `strerror` words it, without Rust's "(os error N)" suffix.
pub fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Adds a path to I/O results.
pub trait IoContext<T> {
    /// Maps an I/O error into [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T, E: Into<std::io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
