//! Checking out one content object, by repository mode: hardlinked from `objects/` (or from
//! archive's uncompressed cache) when ostree would, else copied with the metadata it applies.

use super::ctx::{CACHE_DIR, Ctx, Link, Slot};
use super::fsops::{CopyError, Source, copy_stream};
use crate::content::{OSTREEMETA, parse_ostreemeta};
use crate::format::{S_IFLNK, S_IFMT, S_IFREG, Xattrs};
use crate::fsutil::{openat_dir, proc_path, unique_tmp_name};
use crate::repo::RepoMode;
use crate::{Error, IoContext, ObjectId, ObjectType, Result, xattr};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

impl Ctx<'_> {
    /// Checks out the content object `id` into `slot`.
    pub(super) fn checkout_file(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        if self.mode == RepoMode::Archive {
            self.file_from_archive(slot, id)
        } else {
            self.file_from_bare(slot, id)
        }
    }

    /// The `-H` error when this repo/checkout mode pair cannot hardlink.
    fn cannot_hardlink(&self, slot: &Slot<'_>) -> Error {
        let why = if self.mode == RepoMode::BareUser || self.mode == RepoMode::BareUserOnly {
            "User repository mode requires user checkout mode to hardlink"
        } else {
            "Bare repository mode cannot hardlink in user checkout mode"
        };
        Error::invalid(slot.path(), why)
    }

    fn file_from_bare(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        let (odir, oname) = self.object_at(id, ObjectType::File)?;
        let oname = oname.as_str();
        // Owner, mode and (bare-user) xattrs as ostree's load_file reports them. Bare-user
        // objects are opened anyway, for their `user.ostreemeta` xattr.
        let (st, mode, owner, meta_xattrs, mut opened) = if self.mode == RepoMode::BareUser {
            let fd = self.open_object(odir, oname, id)?;
            let st = rustix::fs::fstat(&fd).map_err(|e| self.object_err(id, e))?;
            let raw = xattr::get_fd(&fd, OSTREEMETA)
                .map_err(|e| self.object_err(id, e))?
                .ok_or_else(|| corrupt("missing user.ostreemeta xattr"))?;
            let (u, g, m, x) = parse_ostreemeta(&raw).map_err(|why| corrupt(&why))?;
            (st, m, (u, g), Some(x), Some(fd))
        } else {
            let st = rustix::fs::statat(odir, oname, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| self.object_err(id, e))?;
            let owner = match self.mode {
                RepoMode::Bare => (st.st_uid, st.st_gid),
                _ => (0, 0),
            };
            let xattrs = (self.mode != RepoMode::Bare).then(Xattrs::default);
            (st, st.st_mode, owner, xattrs, None)
        };
        let fmt = mode & S_IFMT;
        if (fmt != S_IFREG && fmt != S_IFLNK) || mode & !(S_IFMT | 0o7777) != 0 {
            return Err(corrupt("not a regular file or symlink"));
        }
        let usermode_repo = self.mode != RepoMode::Bare;
        let is_symlink = fmt == S_IFLNK;
        let zero_sized = !is_symlink && st.st_size == 0;
        let unreadable = self.user && !is_symlink && mode & 0o400 == 0;
        if !(zero_sized || unreadable || self.opts.force_copy) {
            let hardlinkable =
                (self.mode == RepoMode::Bare && !self.user) || (usermode_repo && self.user);
            let user_symlink = usermode_repo && is_symlink;
            if self.opts.require_hardlinks && !hardlinkable && !user_symlink {
                return Err(self.cannot_hardlink(slot));
            }
            if hardlinkable
                && !user_symlink
                && let Link::Done = self.hardlink(odir, oname, slot, id, true)?
            {
                return Ok(());
            }
        }

        // Copy, with the xattrs ostree would apply (none in user mode).
        let owner = (!self.user).then_some(owner);
        let mut fd = || match opened.take() {
            Some(fd) => Ok(fd),
            None => self.open_object(odir, oname, id),
        };
        if is_symlink {
            let target = if self.mode == RepoMode::BareUser {
                let mut buf = Vec::new();
                std::fs::File::from(fd()?)
                    .take(libc::PATH_MAX as u64 + 1)
                    .read_to_end(&mut buf)
                    .at(self.repo.object_path(id, ObjectType::File))?;
                if buf.pop() != Some(0) || buf.contains(&0) {
                    return Err(corrupt("symlink object not NUL-terminated"));
                }
                buf
            } else {
                rustix::fs::readlinkat(odir, oname, Vec::new())
                    .map_err(|e| self.object_err(id, e))?
                    .into_bytes()
            };
            let xattrs = match meta_xattrs {
                _ if self.user => None,
                Some(x) => Some(x),
                None => Some(
                    xattr::read_path(&proc_path(odir, oname))
                        .map_err(|e| self.object_err(id, e))?,
                ),
            };
            return self.write_symlink(slot, &target, owner, xattrs.as_ref());
        }
        let fd = fd()?;
        let xattrs = match meta_xattrs {
            _ if self.user => None,
            Some(x) => Some(x),
            None => Some(xattr::read_fd(&fd).map_err(|e| self.object_err(id, e))?),
        };
        let mode = if unreadable { mode | 0o400 } else { mode };
        let src = Source::Fd(&fd, st.st_size as u64);
        self.write_regular(slot, id, src, mode, owner, xattrs.as_ref())
    }

    fn file_from_archive(&self, slot: &Slot<'_>, id: &ObjectId) -> Result<()> {
        let mut obj = self.repo.open_content(id)?;
        let h = &obj.header;
        let is_symlink = h.is_symlink();
        let zero_sized = !is_symlink && obj.size == 0;
        let unreadable = self.user && !is_symlink && h.mode & 0o400 == 0;
        if !(zero_sized || unreadable || self.opts.force_copy) {
            if self.opts.require_hardlinks {
                return Err(self.cannot_hardlink(slot));
            }
            if self.use_cache && !is_symlink {
                let bare_rel = id.loose_path("file");
                if let Some(cache) = self.cache_dir.get()
                    && let Link::Done = self.hardlink(cache.as_fd(), &bare_rel, slot, id, true)?
                {
                    return Ok(());
                }
                let cache = self.write_cache_object(id, &bare_rel, h.mode, &mut obj.body)?;
                match self.hardlink(cache.as_fd(), &bare_rel, slot, id, false)? {
                    Link::Done => return Ok(()),
                    Link::Unsupported => obj = self.repo.open_content(id)?,
                }
            }
        }
        let h = &obj.header;
        let owner = (!self.user).then_some((h.uid, h.gid));
        let xattrs = (!self.user).then(|| h.xattrs.clone());
        if is_symlink {
            let target = h.symlink_target.as_bytes();
            return self.write_symlink(slot, target, owner, xattrs.as_ref());
        }
        let mode = if unreadable { h.mode | 0o400 } else { h.mode };
        let src = Source::Stream(&mut obj.body);
        self.write_regular(slot, id, src, mode, owner, xattrs.as_ref())
    }

    /// Decompresses an archive object into `uncompressed-objects-cache/xx/yyy.file` (mode without
    /// setuid/setgid, synced unless disabled), as ostree does for user-mode checkouts.
    fn write_cache_object(
        &self,
        id: &ObjectId,
        bare_rel: &str,
        mode: u32,
        body: &mut dyn Read,
    ) -> Result<&OwnedFd> {
        let cache = self.ensure_cache_dir()?;
        let cache_path = self.repo.path().join(CACHE_DIR);
        let prefix = &bare_rel[..2];
        match rustix::fs::mkdirat(cache, prefix, Mode::from_raw_mode(0o775)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at(cache_path.join(prefix)),
        }
        let tmp = format!("{prefix}/{}", unique_tmp_name(".tmp-checkout-"));
        let tmp_path = cache_path.join(&tmp);
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(cache, tmp.as_str(), flags, Mode::from_raw_mode(0o600))
            .at(&tmp_path)?;
        let result = (|| {
            copy_stream(body, &fd).map_err(|e| match e {
                CopyError::Read(e) => Error::corrupt(*id, ObjectType::File, e),
                CopyError::Write(e) => Error::io(&tmp_path, e),
            })?;
            if self.fsync {
                rustix::fs::fsync(&fd).at(&tmp_path)?;
            }
            let mode = Mode::from_raw_mode(mode & 0o7777 & !0o6000);
            rustix::fs::fchmod(&fd, mode).at(&tmp_path)?;
            match rustix::fs::linkat(cache, tmp.as_str(), cache, bare_rel, AtFlags::empty()) {
                Ok(()) | Err(Errno::EXIST) => Ok(()),
                Err(e) => Err(e).at(cache_path.join(bare_rel)),
            }
        })();
        let _ = rustix::fs::unlinkat(cache, tmp.as_str(), AtFlags::empty());
        result.map(|()| cache)
    }

    fn ensure_cache_dir(&self) -> Result<&OwnedFd> {
        if let Some(fd) = self.cache_dir.get() {
            return Ok(fd);
        }
        let _guard = self.cache_lock.lock();
        if let Some(fd) = self.cache_dir.get() {
            return Ok(fd);
        }
        let path = self.repo.path().join(CACHE_DIR);
        match rustix::fs::mkdirat(&self.repo.root, CACHE_DIR, Mode::from_raw_mode(0o775)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).at(&path),
        }
        let fd = openat_dir(&self.repo.root, CACHE_DIR, true).at(&path)?;
        Ok(self.cache_dir.get_or_init(|| fd))
    }
}
