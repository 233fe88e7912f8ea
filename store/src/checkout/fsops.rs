//! Small fd helpers of the checkout: copying content into a new file (in the kernel when it
//! can), the default-ACL probe, and ownership ids.

use crate::fsutil::write_all;
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::Path;

/// Where copied content comes from.
pub(super) enum Source<'s> {
    /// An uncompressed object file and its size.
    Fd(&'s OwnedFd, u64),
    /// A decompressing reader.
    Stream(&'s mut dyn Read),
}

/// Which side of a copy failed: reading the object, or writing the destination.
pub(super) enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies `size` bytes from `src` to `dst` in the kernel, falling back to read/write.
pub(super) fn copy_fd(src: &OwnedFd, dst: &OwnedFd, size: u64) -> Result<(), CopyError> {
    let mut left = size;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        match rustix::fs::copy_file_range(src, None, dst, None, chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => left -= n as u64,
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::PERM) => {
                let mut file = std::fs::File::from(src.try_clone().map_err(CopyError::Read)?);
                return copy_stream(&mut file, dst);
            }
            // Which side failed is unknown; report it at the destination.
            Err(e) => return Err(CopyError::Write(e.into())),
        }
    }
    Ok(())
}

/// Copies everything `src` yields to `dst`.
pub(super) fn copy_stream(src: &mut dyn Read, dst: &OwnedFd) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        write_all(dst, &buf[..n]).map_err(CopyError::Write)?;
    }
}

/// Whether a directory has a default ACL (which then decides new files' modes, not the umask).
pub(super) fn has_default_acl(dir: &Path) -> bool {
    !matches!(
        rustix::fs::getxattr(dir, "system.posix_acl_default", &mut [0u8; 0][..]),
        Err(Errno::NODATA) | Err(Errno::NOTSUP)
    )
}

/// A uid for rustix's ownership calls.
pub(super) fn uid(u: u32) -> rustix::fs::Uid {
    rustix::fs::Uid::from_raw(u)
}

/// A gid for rustix's ownership calls.
pub(super) fn gid(g: u32) -> rustix::fs::Gid {
    rustix::fs::Gid::from_raw(g)
}
