//! Verifying a content object as `fsck_content_object` does: the header ostree hashes is
//! rebuilt from what the repository mode stores (the file's own stat and xattrs, bare-user's
//! `user.ostreemeta`, or an archive's `.filez` header) and hashed with the content.

use super::check::check_perms;
use super::gv;
use super::objects::{io_msg, open_read};
use crate::format::{S_IFLNK, S_IFMT, S_IFREG};
use crate::repo::{Repo, RepoMode};
use crate::{ObjectId, ObjectType};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;

/// Why a content object failed: absent, or ostree's reason.
pub(super) enum Bad {
    /// The object is not stored.
    Missing,
    /// ostree's reason, without the `fsck content object <csum>: ` prefix.
    Why(String),
}

impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad::Why(s)
    }
}

thread_local! {
    /// Each checking thread's read buffer, reused from object to object.
    static CONTENT_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `(uuuus@a(ayay))` with its length prefix: the bytes hashed before a file's content
/// (`_ostree_file_header_new`), with the xattrs copied verbatim as ostree copies them.
/// A target that is not UTF-8 becomes GLib's `[Invalid UTF-8]` placeholder, as in ostree.
fn checksum_header(uid: u32, gid: u32, mode: u32, target: &[u8], xattrs: &[u8]) -> Vec<u8> {
    let target: &[u8] = if std::str::from_utf8(target).is_ok() {
        target
    } else {
        b"[Invalid UTF-8]"
    };
    let body = 16 + target.len() + 1 + xattrs.len();
    let osz = if body < 0xff {
        1
    } else if body + 2 <= 0xffff {
        2
    } else if body + 4 <= u32::MAX as usize {
        4
    } else {
        8
    };
    let total = body + osz;
    let mut out = Vec::with_capacity(8 + total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    for n in [uid, gid, mode, 0] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    out.extend_from_slice(target);
    out.push(0);
    out.extend_from_slice(xattrs);
    let end = (16 + target.len() + 1) as u64;
    out.extend_from_slice(&end.to_le_bytes()[..osz]);
    out
}

/// `ostree_validate_structureof_file_mode`.
fn check_file_mode(mode: u32) -> Result<(), String> {
    let fmt = mode & S_IFMT;
    if fmt != S_IFREG && fmt != S_IFLNK {
        return Err(format!(
            "Invalid file metadata mode {mode}; not a valid file type"
        ));
    }
    check_perms(mode)
}

fn compare(id: &ObjectId, actual: ObjectId) -> Result<(), Bad> {
    if actual != *id {
        return Err(Bad::Why(format!(
            "Corrupted file object; checksum expected='{id}' actual='{actual}'"
        )));
    }
    Ok(())
}

/// Hashes the rest of `fd` after `header`.
fn hash_fd(fd: &OwnedFd, header: &[u8], buf: &mut Vec<u8>, hint: usize) -> Result<ObjectId, Errno> {
    let mut h = crate::checksum::Hasher::default();
    h.update(header);
    let cap = hint.saturating_add(1).clamp(4096, 1 << 20);
    if buf.len() < cap {
        buf.resize(cap, 0);
    }
    loop {
        match rustix::io::read(fd, &mut buf[..cap]) {
            Ok(0) => break,
            Ok(n) => {
                h.update(&buf[..n]);
                if n < cap && n == hint {
                    // A short read of exactly the size stat gave: end of a regular file.
                    break;
                }
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(h.finish())
}

/// Verifies a content object as `fsck_content_object` does (reasons without its prefix).
pub(super) fn check_content(repo: &Repo, id: &ObjectId) -> Result<(), Bad> {
    CONTENT_BUF.with(|buf| check_loose(repo, id, &mut buf.borrow_mut()))
}

/// [`check_content`] with the thread's buffer.
fn check_loose(repo: &Repo, id: &ObjectId, buf: &mut Vec<u8>) -> Result<(), Bad> {
    let rel = repo.object_relpath(id, ObjectType::File);
    if repo.mode() == RepoMode::Archive {
        return check_filez(repo, id, &rel, buf);
    }
    let opening = |m: String| format!("Opening content object {id}: {m}");
    let st = match rustix::fs::statat(&repo.objects, rel.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Err(Bad::Missing),
        Err(e) => return Err(opening(format!("fstat: {}", io_msg(e))).into()),
    };
    let is_reg = st.st_mode & S_IFMT == S_IFREG;
    let is_lnk = st.st_mode & S_IFMT == S_IFLNK;
    let fd = if is_reg {
        Some(
            rustix::fs::openat(
                &repo.objects,
                rel.as_str(),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| opening(format!("openat: {}", io_msg(e))))?,
        )
    } else {
        None
    };
    if !is_reg && !is_lnk {
        return Err(opening("Not a regular file or symlink".into()).into());
    }
    let disable_xattrs = repo
        .config()
        .get_bool("core", "disable-xattrs")
        .ok()
        .flatten()
        .unwrap_or(false);
    let (uid, gid, mode, target, xattrs): (u32, u32, u32, Vec<u8>, Vec<u8>) = match repo.mode() {
        RepoMode::BareUser => {
            let Some(fd) = fd.as_ref() else {
                return Err(opening("Not a regular file or symlink".into()).into());
            };
            let meta = match crate::xattr::get_fd(fd, crate::content::OSTREEMETA) {
                Ok(Some(m)) => m,
                Ok(None) => {
                    return Err(opening(format!(
                        "fgetxattr({}): {}",
                        crate::content::OSTREEMETA,
                        io_msg(Errno::NODATA)
                    ))
                    .into());
                }
                Err(e) => {
                    return Err(opening(format!(
                        "fgetxattr({}): {}",
                        crate::content::OSTREEMETA,
                        io_msg(e)
                    ))
                    .into());
                }
            };
            let items = gv::refs(&gv::OSTREEMETA_ITEMS);
            let v = gv::Data::Bytes(&meta);
            let mode = gv::tuple_child(&items, v, 2).u32_be();
            let xattrs = gv::tuple_child(&items, v, 3).bytes().to_vec();
            let (uid, gid) = (
                gv::tuple_child(&items, v, 0).u32_be(),
                gv::tuple_child(&items, v, 1).u32_be(),
            );
            let mut target = Vec::new();
            if mode & S_IFMT == S_IFLNK {
                let mut tb = vec![0u8; libc::PATH_MAX as usize + 1];
                let mut got = 0;
                while got < tb.len() {
                    match rustix::io::read(fd, &mut tb[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(opening(format!("read: {}", io_msg(e))).into()),
                    }
                }
                let t = &tb[..got];
                target = t[..t.iter().position(|&b| b == 0).unwrap_or(t.len())].to_vec();
            }
            (uid, gid, mode, target, xattrs)
        }
        mode => {
            let (uid, gid) = if mode == RepoMode::Bare {
                (st.st_uid, st.st_gid)
            } else {
                (0, 0)
            };
            let target = if is_lnk {
                rustix::fs::readlinkat(&repo.objects, rel.as_str(), Vec::new())
                    .map_err(|e| opening(format!("readlinkat: {}", io_msg(e))))?
                    .into_bytes()
            } else {
                Vec::new()
            };
            let xattrs = if mode == RepoMode::Bare && !disable_xattrs {
                let x = match fd.as_ref() {
                    Some(fd) => crate::xattr::read_fd(fd),
                    None => crate::xattr::read_path(&repo.path().join("objects").join(&rel)),
                };
                x.map_err(|e| opening(format!("llistxattr: {}", io_msg(e))))?
                    .to_value()
                    .to_bytes()
            } else {
                Vec::new()
            };
            (uid, gid, st.st_mode, target, xattrs)
        }
    };
    check_file_mode(mode)?;
    let is_link = mode & S_IFMT == S_IFLNK;
    let header = checksum_header(uid, gid, mode, if is_link { &target } else { &[] }, &xattrs);
    let actual = match (&fd, is_link) {
        (Some(fd), false) => hash_fd(fd, &header, buf, st.st_size.max(0) as usize)
            .map_err(|e| format!("read: {}", io_msg(e)))?,
        _ => ObjectId::digest(&header),
    };
    compare(id, actual)
}

/// GLib's messages for zlib failures (`GZlibDecompressor`).
const INVALID_COMPRESSED: &str = "Invalid compressed data";
const NEED_MORE_INPUT: &str = "Need more input";

/// Archive objects: `ostree_content_stream_parse` then the checksum of the inflated stream.
fn check_filez(repo: &Repo, id: &ObjectId, rel: &str, buf: &mut Vec<u8>) -> Result<(), Bad> {
    use std::io::Read;
    let mut file = match open_read(&repo.objects, rel) {
        Ok(Some(f)) => f,
        Ok(None) => return Err(Bad::Missing),
        Err(e) => return Err(format!("openat({rel}): {}", io_msg(e)).into()),
    };
    let read_err = |e: std::io::Error| Bad::Why(format!("read: {}", crate::io_message(&e)));
    // `g_input_stream_read_all`: as much as there is, the rest left as it was (zeroes here).
    let read_up_to = |file: &mut std::fs::File, out: &mut [u8]| -> std::io::Result<()> {
        let mut got = 0;
        while got < out.len() {
            match file.read(&mut out[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    };
    let size = file.metadata().map_err(read_err)?.len();
    let mut prefix = [0u8; 8];
    read_up_to(&mut file, &mut prefix).map_err(read_err)?;
    let hdr_size = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    if hdr_size as u64 > size {
        return Err(format!("File header size {hdr_size} exceeds size {size}").into());
    }
    if hdr_size == 0 {
        return Err(Bad::Why("File header size is zero".into()));
    }
    // A header running past the end is read short; ostree's buffer tail is then undefined.
    let mut header = vec![0u8; hdr_size];
    read_up_to(&mut file, &mut header).map_err(read_err)?;
    let items = gv::refs(&gv::FILEZ_ITEMS);
    let v = gv::Data::Bytes(&header);
    let f = |i| gv::tuple_child(&items, v, i);
    let (uid, gid, mode, rdev) = (f(1).u32_be(), f(2).u32_be(), f(3).u32_be(), f(4).u32_be());
    if rdev != 0 {
        return Err(format!("Corrupted archive file; invalid rdev {rdev}").into());
    }
    let fmt = mode & S_IFMT;
    if fmt != S_IFREG && fmt != S_IFLNK {
        return Err(format!("Corrupted archive file; invalid mode {mode}").into());
    }
    check_file_mode(mode)?;
    let target = if fmt == S_IFLNK {
        f(5).str_bytes()
    } else {
        &[]
    };
    let hdr = checksum_header(uid, gid, mode, target, f(6).bytes());
    let mut h = crate::checksum::Hasher::default();
    h.update(&hdr);
    if fmt == S_IFREG {
        const CHUNK: usize = 256 * 1024;
        if buf.len() < 2 * CHUNK {
            buf.resize(2 * CHUNK, 0);
        }
        let (input, out) = buf.split_at_mut(CHUNK);
        let mut z = flate2::Decompress::new(false);
        let (mut start, mut end, mut eof) = (0usize, 0usize, false);
        loop {
            if start == end && !eof {
                let n = loop {
                    match file.read(input) {
                        Ok(n) => break n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(read_err(e)),
                    }
                };
                eof = n == 0;
                (start, end) = (0, n);
            }
            let (in_before, out_before) = (z.total_in(), z.total_out());
            let status = z
                .decompress(&input[start..end], out, flate2::FlushDecompress::None)
                .map_err(|_| Bad::Why(INVALID_COMPRESSED.into()))?;
            let consumed = (z.total_in() - in_before) as usize;
            let produced = (z.total_out() - out_before) as usize;
            start += consumed;
            h.update(&out[..produced]);
            if status == flate2::Status::StreamEnd {
                break;
            }
            if consumed == 0 && produced == 0 && (eof || start < end) {
                return Err(Bad::Why(NEED_MORE_INPUT.into()));
            }
        }
    }
    compare(id, h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes_match_the_store_encoder() {
        let h = crate::format::FileHeader {
            uid: 1,
            gid: 2,
            mode: S_IFLNK | 0o777,
            symlink_target: "x".repeat(300),
            xattrs: crate::format::Xattrs::new(vec![(b"user.a".to_vec(), b"b".to_vec())]),
        };
        assert_eq!(
            checksum_header(
                1,
                2,
                h.mode,
                h.symlink_target.as_bytes(),
                &h.xattrs.to_value().to_bytes()
            ),
            crate::format::checksum_header_bytes(&h)
        );
    }
}
