//! Creating one entry of the checkout (a hardlink, a symlink or a regular file) and, when the
//! name is taken, doing what the [`OverwriteMode`] says. Nothing here follows a symlink found
//! in the destination: replacing renames over the entry itself.

use super::OverwriteMode;
use super::ctx::{Ctx, Link, Slot};
use super::fsops::{CopyError, Source, copy_fd, copy_stream, gid, uid};
use crate::format::{FileHeader, S_IFLNK, S_IFMT, S_IFREG, Xattrs, checksum_header_bytes};
use crate::fsutil::{proc_path, unique_tmp_name};
use crate::repo::RepoMode;
use crate::{Error, ObjectId, ObjectType, Result, xattr};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;

/// What becomes of an entry already where a symlink or regular file is to be created.
enum Existing {
    /// It stays; nothing is written.
    Keep,
    /// The new entry is written aside and renamed over it.
    Replace,
}

impl Ctx<'_> {
    /// Links `src_dir/rel` into `slot`, handling an existing entry per the overwrite mode.
    pub(super) fn hardlink(
        &self,
        src_dir: BorrowedFd<'_>,
        rel: &str,
        slot: &Slot<'_>,
        id: &ObjectId,
        allow_noent: bool,
    ) -> Result<Link> {
        let (dfd, name) = (slot.dfd, slot.name);
        let err = match rustix::fs::linkat(src_dir, rel, dfd, name, AtFlags::empty()) {
            Ok(()) => return Ok(Link::Done),
            Err(e) => e,
        };
        if matches!(err, Errno::MLINK | Errno::XDEV | Errno::PERM) && !self.opts.require_hardlinks
            || err == Errno::NOENT && allow_noent
        {
            return Ok(Link::Unsupported);
        }
        if err != Errno::EXIST {
            return Err(slot.err(err));
        }
        match self.opts.overwrite {
            OverwriteMode::None => Err(slot.err(err)),
            OverwriteMode::AddFiles => Ok(Link::Done),
            OverwriteMode::UnionFiles | OverwriteMode::UnionIdentical => {
                let src = rustix::fs::statat(src_dir, rel, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| self.object_err(id, e))?;
                let dst = rustix::fs::statat(dfd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| slot.err(e))?;
                let mut identical = src.st_dev == dst.st_dev && src.st_ino == dst.st_ino;
                if !identical
                    && src.st_mode == dst.st_mode
                    && (src.st_mode & S_IFMT != S_IFREG || src.st_size == dst.st_size)
                    && src.st_uid == dst.st_uid
                    && src.st_gid == dst.st_gid
                {
                    identical = self.checksum_existing(slot, &dst)? == Some(*id);
                }
                if identical {
                    Ok(Link::Done)
                } else if self.opts.overwrite == OverwriteMode::UnionFiles {
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::linkat(src_dir, rel, dfd, tmp.as_str(), AtFlags::empty())
                        .map_err(|e| slot.err(e))?;
                    rename_into_place(slot, &tmp)?;
                    Ok(Link::Done)
                } else {
                    Err(slot.err(err))
                }
            }
        }
    }

    /// The content checksum of an existing entry, as ostree computes it to decide whether a
    /// union checkout may keep it; `None` for entries no object could describe.
    fn checksum_existing(
        &self,
        slot: &Slot<'_>,
        st: &rustix::fs::Stat,
    ) -> Result<Option<ObjectId>> {
        let (dfd, name) = (slot.dfd, slot.name);
        let canonical = self.mode == RepoMode::BareUserOnly;
        let mut header = FileHeader {
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode,
            symlink_target: String::new(),
            xattrs: Xattrs::default(),
        };
        let mut file = None;
        match st.st_mode & S_IFMT {
            S_IFREG => {
                let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
                let fd =
                    rustix::fs::openat(dfd, name, flags, Mode::empty()).map_err(|e| slot.err(e))?;
                if canonical {
                    (header.uid, header.gid) = (0, 0);
                } else {
                    header.xattrs = xattr::read_fd(&fd).map_err(|e| slot.err(e))?;
                }
                file = Some(std::fs::File::from(fd));
            }
            S_IFLNK => {
                let target =
                    rustix::fs::readlinkat(dfd, name, Vec::new()).map_err(|e| slot.err(e))?;
                header.symlink_target = String::from_utf8_lossy(target.as_bytes()).into_owned();
                if !canonical {
                    header.xattrs =
                        xattr::read_path(&proc_path(dfd, name)).map_err(|e| slot.err(e))?;
                }
            }
            _ => return Ok(None),
        }
        let mut hasher = crate::checksum::Hasher::default();
        hasher.update(&checksum_header_bytes(&header));
        if let Some(mut f) = file {
            std::io::copy(&mut f, &mut hasher).map_err(|e| slot.err(e))?;
        }
        Ok(Some(hasher.finish()))
    }

    /// What to do about an entry already at `slot` when creating a symlink or regular file
    /// there, per the overwrite mode; `identical` tells (from the entry's `lstat`) whether it
    /// already is what would be created, which `--union-identical` requires.
    fn on_existing(
        &self,
        slot: &Slot<'_>,
        identical: impl FnOnce(&rustix::fs::Stat) -> Result<bool>,
    ) -> Result<Existing> {
        match self.opts.overwrite {
            OverwriteMode::None => Err(slot.err(Errno::EXIST)),
            OverwriteMode::AddFiles => Ok(Existing::Keep),
            OverwriteMode::UnionIdentical => {
                let st = rustix::fs::statat(slot.dfd, slot.name, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| slot.err(e))?;
                if identical(&st)? {
                    Ok(Existing::Keep)
                } else {
                    Err(slot.err(Errno::EXIST))
                }
            }
            OverwriteMode::UnionFiles => Ok(Existing::Replace),
        }
    }

    /// Creates a symlink; `owner` and `xattrs` are applied when given (not in user mode).
    pub(super) fn write_symlink(
        &self,
        slot: &Slot<'_>,
        target: &[u8],
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
    ) -> Result<()> {
        let (dfd, name) = (slot.dfd, slot.name);
        let target = std::ffi::OsStr::from_bytes(target);
        match rustix::fs::symlinkat(target, dfd, name) {
            Ok(()) => {}
            Err(Errno::EXIST) => match self.on_existing(slot, |st| {
                if st.st_mode & S_IFMT != S_IFLNK {
                    return Ok(false);
                }
                let existing =
                    rustix::fs::readlinkat(dfd, name, Vec::new()).map_err(|e| slot.err(e))?;
                Ok(existing.as_bytes() == target.as_bytes())
            })? {
                Existing::Keep => return Ok(()),
                Existing::Replace => {
                    // Replace the entry itself, never what a symlink there points to. Like
                    // ostree, a replaced symlink keeps the caller's ownership and gets no xattrs.
                    let tmp = unique_tmp_name(".checkout-union-");
                    rustix::fs::symlinkat(target, dfd, tmp.as_str()).map_err(|e| slot.err(e))?;
                    return rename_into_place(slot, &tmp);
                }
            },
            Err(e) => return Err(slot.err(e)),
        }
        if let Some((u, g)) = owner {
            let nofollow = AtFlags::SYMLINK_NOFOLLOW;
            rustix::fs::chownat(dfd, name, Some(uid(u)), Some(gid(g)), nofollow)
                .map_err(|e| slot.err(e))?;
        }
        if let Some(x) = xattrs.filter(|x| !x.is_empty()) {
            xattr::set_path(&proc_path(dfd, name), x).map_err(|e| slot.err(e))?;
        }
        Ok(())
    }

    /// Creates a regular file with `src`'s content and `mode`; `owner` and `xattrs` are applied
    /// when given (not in user mode, where setuid/setgid are dropped).
    pub(super) fn write_regular(
        &self,
        slot: &Slot<'_>,
        id: &ObjectId,
        src: Source<'_>,
        mode: u32,
        owner: Option<(u32, u32)>,
        xattrs: Option<&Xattrs>,
    ) -> Result<()> {
        let (dfd, name) = (slot.dfd, slot.name);
        let mode = mode & if self.user { 0o1777 } else { 0o7777 };
        let create = |n: &str| {
            let flags =
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            rustix::fs::openat(dfd, n, flags, Mode::from_raw_mode(mode & 0o777))
        };
        let (fd, tmp) = match create(name) {
            Ok(fd) => (fd, None),
            Err(Errno::EXIST) => match self.on_existing(slot, |st| {
                Ok(self.checksum_existing(slot, st)? == Some(*id))
            })? {
                Existing::Keep => return Ok(()),
                Existing::Replace => {
                    // Written aside, then renamed over the existing entry.
                    let tmp = unique_tmp_name(".checkout-union-");
                    (create(&tmp).map_err(|e| slot.err(e))?, Some(tmp))
                }
            },
            Err(e) => return Err(slot.err(e)),
        };
        let result = (|| {
            let copied = match src {
                Source::Fd(src, size) => copy_fd(src, &fd, size),
                Source::Stream(body) => copy_stream(body, &fd),
            };
            copied.map_err(|e| match e {
                CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                CopyError::Write(e) => slot.err(e),
            })?;
            if let Some((u, g)) = owner {
                rustix::fs::fchown(&fd, Some(uid(u)), Some(gid(g))).map_err(|e| slot.err(e))?;
            }
            if let Some(x) = xattrs {
                xattr::set_fd(&fd, x).map_err(|e| slot.err(e))?;
            }
            // After fchown, which clears setuid/setgid; skipped when creation set the mode.
            if mode & 0o7000 != 0 || self.umask.is_none_or(|m| mode & m != 0) {
                rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| slot.err(e))?;
            }
            match &tmp {
                Some(tmp) => rename_into_place(slot, tmp),
                None => Ok(()),
            }
        })();
        if result.is_err()
            && let Some(tmp) = &tmp
        {
            let _ = rustix::fs::unlinkat(dfd, tmp.as_str(), AtFlags::empty());
        }
        result
    }
}

/// Renames `tmp` over `slot` (same directory), removing `tmp` if that fails.
fn rename_into_place(slot: &Slot<'_>, tmp: &str) -> Result<()> {
    rustix::fs::renameat(slot.dfd, tmp, slot.dfd, slot.name).map_err(|e| {
        let _ = rustix::fs::unlinkat(slot.dfd, tmp, AtFlags::empty());
        slot.err(e)
    })
}
