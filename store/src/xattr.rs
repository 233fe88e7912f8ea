//! Reading and writing extended attributes of files on disk.

use crate::format::Xattrs;
use rustix::io::Errno;
use std::os::fd::AsFd;

fn split_names(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == 0).filter(|n| !n.is_empty())
}

/// Retries a size-then-fill xattr call until the buffer fits (values can grow meanwhile).
fn sized_call(mut call: impl FnMut(&mut [u8]) -> Result<usize, Errno>) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 256];
    loop {
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(Errno::RANGE) => {
                let need = call(&mut [])?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(e) => return Err(e),
        }
    }
}

/// All xattrs of an open file. Filesystems without xattr support give none.
pub fn read_fd(fd: impl AsFd) -> Result<Xattrs, Errno> {
    let fd = fd.as_fd();
    let names = match sized_call(|b| rustix::fs::flistxattr(fd, b)) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Xattrs::default()),
        Err(e) => return Err(e),
    };
    let mut pairs = Vec::new();
    for name in split_names(&names) {
        let cname = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
        match sized_call(|b| rustix::fs::fgetxattr(fd, cname.as_c_str(), b)) {
            Ok(v) => pairs.push((name.to_vec(), v)),
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Xattrs::new(pairs))
}

/// All xattrs of a path, not following a final symlink.
pub fn read_path(path: &std::path::Path) -> Result<Xattrs, Errno> {
    let names = match sized_call(|b| rustix::fs::llistxattr(path, b)) {
        Ok(n) => n,
        Err(Errno::NOTSUP) => return Ok(Xattrs::default()),
        Err(e) => return Err(e),
    };
    let mut pairs = Vec::new();
    for name in split_names(&names) {
        let cname = std::ffi::CString::new(name).map_err(|_| Errno::INVAL)?;
        match sized_call(|b| rustix::fs::lgetxattr(path, cname.as_c_str(), b)) {
            Ok(v) => pairs.push((name.to_vec(), v)),
            Err(Errno::NODATA) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Xattrs::new(pairs))
}

/// One xattr of an open file, `None` when unset.
pub fn get_fd(fd: impl AsFd, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    let fd = fd.as_fd();
    match sized_call(|b| rustix::fs::fgetxattr(fd, name, b)) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// One xattr of a path (not following a final symlink), `None` when unset. Saves opening
/// the file when one value is all that is wanted.
pub fn get_path(path: &std::path::Path, name: &str) -> Result<Option<Vec<u8>>, Errno> {
    match sized_call(|b| rustix::fs::lgetxattr(path, name, b)) {
        Ok(v) => Ok(Some(v)),
        Err(Errno::NODATA) | Err(Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets every xattr on an open file.
pub fn set_fd(fd: impl AsFd, xattrs: &Xattrs) -> Result<(), Errno> {
    let fd = fd.as_fd();
    for (name, value) in &xattrs.0 {
        let cname = std::ffi::CString::new(name.clone()).map_err(|_| Errno::INVAL)?;
        rustix::fs::fsetxattr(fd, cname.as_c_str(), value, rustix::fs::XattrFlags::empty())?;
    }
    Ok(())
}

/// Sets every xattr on a path without following a final symlink.
pub fn set_path(path: &std::path::Path, xattrs: &Xattrs) -> Result<(), Errno> {
    for (name, value) in &xattrs.0 {
        let cname = std::ffi::CString::new(name.clone()).map_err(|_| Errno::INVAL)?;
        rustix::fs::lsetxattr(
            path,
            cname.as_c_str(),
            value,
            rustix::fs::XattrFlags::empty(),
        )?;
    }
    Ok(())
}
