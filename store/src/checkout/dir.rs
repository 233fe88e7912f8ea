//! Checking out a directory as ostree does: created 0700, filled (files and subdirectories in
//! parallel), and only then given its mode, owner and mtime, so a directory whose final mode
//! is read-only can still be filled.

use super::ctx::{Ctx, DirPath, Slot};
use super::fsops::{gid, uid};
use super::{MAX_DEPTH, OverwriteMode};
use crate::format::DirTreeRef;
use crate::fsutil::{openat_dir, zero_mtime};
use crate::read::parse_dirtree;
use crate::repo::RepoMode;
use crate::{Error, ObjectId, ObjectType, Result, xattr};
use rayon::prelude::*;
use rustix::fs::Mode;
use rustix::io::Errno;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

impl Ctx<'_> {
    /// Checks out directory `at.name` (relative to `parent`) from `tree` and `meta`.
    pub(super) fn checkout_dir(
        &self,
        parent: BorrowedFd<'_>,
        at: &DirPath<'_>,
        tree: &ObjectId,
        meta: &ObjectId,
        depth: usize,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Error::invalid(
                at.to_path(),
                "Exceeded maximum directory depth",
            ));
        }
        let dm = self.dirmeta(meta)?;
        let bytes = self.read_meta(tree, ObjectType::DirTree)?;
        let dt: DirTreeRef<'_> = parse_dirtree(tree, &bytes)?;

        let did_exist = match rustix::fs::mkdirat(parent, at.name, Mode::from_raw_mode(0o700)) {
            Ok(()) => false,
            Err(Errno::EXIST) if self.opts.overwrite != OverwriteMode::None => true,
            Err(e) => return Err(Error::io(at.to_path(), e)),
        };
        // The destination itself may be a symlink the caller chose; nothing below it is followed.
        let fd = openat_dir(parent, at.name, depth == 0).map_err(|e| Error::io(at.to_path(), e))?;
        let dfd = fd.as_fd();
        let dir_err = |e: Errno| Error::io(at.to_path(), e);
        if self.opts.require_hardlinks {
            let dev = rustix::fs::fstat(dfd).map_err(dir_err)?.st_dev as u64;
            if dev != self.repo_dev {
                let why = format!(
                    "Unable to do hardlink checkout across devices (src={} destination={dev})",
                    self.repo_dev
                );
                return Err(Error::invalid(at.to_path(), why));
            }
        }
        if !did_exist && !self.user && !dm.xattrs.is_empty() {
            xattr::set_fd(dfd, &dm.xattrs).map_err(dir_err)?;
        }

        let files = || {
            dt.files
                .par_iter()
                .with_min_len(4)
                .try_for_each(|(name, id)| self.checkout_file(&Slot { dfd, name, dir: at }, id))
        };
        let dirs = || {
            dt.dirs.par_iter().try_for_each(|(name, tree, meta)| {
                let sub = DirPath {
                    parent: Some(at),
                    name: Path::new(name),
                };
                self.checkout_dir(dfd, &sub, tree, meta, depth + 1)
            })
        };
        let (f, d) = match (dt.files.is_empty(), dt.dirs.is_empty()) {
            (_, true) => (files(), Ok(())),
            (true, false) => (Ok(()), dirs()),
            (false, false) => rayon::join(files, dirs),
        };
        f?;
        d?;

        if !did_exist {
            let mode = if self.mode == RepoMode::BareUserOnly || self.opts.bareuseronly_dirs {
                dm.mode & 0o775
            } else {
                dm.mode & 0o7777
            };
            rustix::fs::fchmod(dfd, Mode::from_raw_mode(mode)).map_err(dir_err)?;
            if !self.user {
                rustix::fs::fchown(dfd, Some(uid(dm.uid)), Some(gid(dm.gid))).map_err(dir_err)?;
            }
            if !self.opts.force_copy {
                zero_mtime(dfd).map_err(dir_err)?;
            }
        }
        Ok(())
    }
}
