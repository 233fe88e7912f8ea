//! A content object's metadata alone (what `stat` needs), read with as few system calls as
//! each repo mode allows. `Repo::open_content` opens the object for its bytes too; walking a
//! large tree (a FUSE `find`, `ls -lR`) needs only this, for every file, and is dominated by
//! its cost: bare-user objects need a stat and one xattr, bare-user-only a stat, bare a stat
//! and the xattr list, archive one read of the header's block. No file descriptor is kept.

use crate::content::{OSTREEMETA, parse_ostreemeta};
use crate::format::{FileHeader, S_IFLNK, S_IFMT, Xattrs, parse_filez_header};
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, xattr};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::io::Read;
use std::os::unix::fs::FileExt;

/// What one read of an archive object asks for: most headers fit in its first page.
const ARCHIVE_FIRST_READ: usize = 4096;
/// Larger headers are corrupt (as in `open_content`).
const ARCHIVE_MAX_HEADER: usize = 1 << 20;

impl Repo {
    /// A content object's header (owner, mode, symlink target, xattrs) and content size,
    /// exactly as [`Repo::open_content`] reports them, without opening its content.
    pub fn content_meta(&self, id: &ObjectId) -> Result<(FileHeader, u64)> {
        let rel = self.object_relpath(id, ObjectType::File);
        let path = self.object_path(id, ObjectType::File);
        let corrupt = |why: String| Error::corrupt(*id, ObjectType::File, why);
        let missing = || Error::MissingObject {
            id: *id,
            ty: ObjectType::File,
        };
        if self.mode() == RepoMode::Archive {
            return self.archive_meta(id, &rel, &path);
        }
        let st = match rustix::fs::statat(&self.objects, &rel, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(e).at(&path),
        };
        // xattrs are read by path: there is no descriptor to open.
        let xpath = self.object_xattr_path(&rel, &path);
        let is_link = st.st_mode & S_IFMT == S_IFLNK;
        let header = match (self.mode(), is_link) {
            (RepoMode::BareUser, true) => return Err(corrupt("unexpected symlink object".into())),
            (_, true) => return Ok((self.bare_symlink_header(id, &rel, &path, &st)?, 0)),
            (RepoMode::BareUser, false) => {
                let meta = xattr::get_path(&xpath, OSTREEMETA)
                    .at(&path)?
                    .ok_or_else(|| corrupt(format!("missing {OSTREEMETA} xattr")))?;
                let (uid, gid, mode, xattrs) = parse_ostreemeta(&meta).map_err(corrupt)?;
                if mode & S_IFMT == S_IFLNK {
                    // Bare-user keeps a symlink as a file holding its target: rare, so the
                    // object is opened for it.
                    let header = FileHeader {
                        uid,
                        gid,
                        mode,
                        symlink_target: self.bare_user_link_target(id, &rel, &path)?,
                        xattrs,
                    };
                    header.validate().map_err(corrupt)?;
                    return Ok((header, 0));
                }
                FileHeader {
                    uid,
                    gid,
                    mode,
                    symlink_target: String::new(),
                    xattrs,
                }
            }
            (RepoMode::Bare, false) => FileHeader {
                uid: st.st_uid,
                gid: st.st_gid,
                mode: st.st_mode,
                symlink_target: String::new(),
                xattrs: xattr::read_path(&xpath).at(&path)?,
            },
            (_, false) => FileHeader {
                uid: 0,
                gid: 0,
                mode: st.st_mode,
                symlink_target: String::new(),
                xattrs: Xattrs::default(),
            },
        };
        header.validate().map_err(corrupt)?;
        Ok((header, st.st_size as u64))
    }

    /// The object file of a regular file's content in a bare mode, for reading its bytes
    /// in place when its metadata is already known (from [`Repo::content_meta`]): one
    /// `openat`. Archive objects have no such file (their content is compressed).
    pub fn open_plain_content(&self, id: &ObjectId) -> Result<std::fs::File> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        if self.mode() == RepoMode::Archive {
            return Err(corrupt("archive content is compressed"));
        }
        let rel = self.object_relpath(id, ObjectType::File);
        match rustix::fs::openat(
            &self.objects,
            &rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(std::fs::File::from(fd)),
            Err(rustix::io::Errno::NOENT) => Err(Error::MissingObject {
                id: *id,
                ty: ObjectType::File,
            }),
            Err(rustix::io::Errno::LOOP) => Err(corrupt("a symlink, opened for its content")),
            Err(e) => Err(e).at(self.object_path(id, ObjectType::File)),
        }
    }

    /// The target a bare-user symlink object holds: its bytes, then a NUL.
    fn bare_user_link_target(
        &self,
        id: &ObjectId,
        rel: &str,
        path: &std::path::Path,
    ) -> Result<String> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        let fd = rustix::fs::openat(
            &self.objects,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .at(path)?;
        let mut target = Vec::new();
        std::fs::File::from(fd)
            .take(libc::PATH_MAX as u64 + 1)
            .read_to_end(&mut target)
            .at(path)?;
        if target.pop() != Some(0) || target.contains(&0) {
            return Err(corrupt("symlink object not NUL-terminated"));
        }
        String::from_utf8(target).map_err(|_| corrupt("symlink target is not UTF-8"))
    }

    /// An archive object's header: one read of its first page (two for huge headers).
    fn archive_meta(
        &self,
        id: &ObjectId,
        rel: &str,
        path: &std::path::Path,
    ) -> Result<(FileHeader, u64)> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        let fd = match rustix::fs::openat(
            &self.objects,
            rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => {
                return Err(Error::MissingObject {
                    id: *id,
                    ty: ObjectType::File,
                });
            }
            // A symlink where an archive object should be.
            Err(rustix::io::Errno::LOOP) => return Err(corrupt("unexpected symlink object")),
            Err(e) => return Err(e).at(path),
        };
        let file = std::fs::File::from(fd);
        let mut buf = vec![0u8; ARCHIVE_FIRST_READ];
        let got = read_full_at(&file, &mut buf, 0).at(path)?;
        if got < 8 {
            return Err(corrupt("File header too short"));
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > ARCHIVE_MAX_HEADER {
            return Err(corrupt("File header size exceeds object"));
        }
        if 8 + len > got {
            if got < ARCHIVE_FIRST_READ {
                return Err(corrupt("File header size exceeds object"));
            }
            buf.resize(8 + len, 0);
            let more = read_full_at(&file, &mut buf[got..], got as u64).at(path)?;
            if got + more < 8 + len {
                return Err(corrupt("File header size exceeds object"));
            }
        }
        let (header, size, _) = parse_filez_header(&buf[..8 + len]).map_err(|why| corrupt(&why))?;
        Ok((header, size))
    }
}

/// Reads at `offset` until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use crate::format::{S_IFREG, Xattrs};
    use crate::{ContentSource, ObjectId, ObjectType, Repo, RepoMode, Transaction};
    use std::path::Path;

    use super::*;

    fn put(tx: &Transaction<'_>, h: &FileHeader, data: &[u8]) -> ObjectId {
        let id = Transaction::checksum_content(h, &ContentSource::Bytes(data)).unwrap();
        tx.write_content(&id, h, data.len() as u64, ContentSource::Bytes(data))
            .unwrap();
        id
    }

    fn header(mode: u32, target: &str, xattrs: Xattrs) -> FileHeader {
        FileHeader {
            uid: 0,
            gid: 0,
            mode,
            symlink_target: target.into(),
            xattrs,
        }
    }

    /// Every mode: the metadata alone equals what `open_content` reports, for regular files
    /// (with xattrs, empty, with a header larger than one read), symlinks, and missing or
    /// corrupt objects.
    #[test]
    fn matches_open_content_in_every_mode() {
        for mode in [
            RepoMode::Bare,
            RepoMode::BareUser,
            RepoMode::BareUserOnly,
            RepoMode::Archive,
        ] {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repo::init(&dir.path().join("repo"), mode).unwrap();
            let user_only = mode == RepoMode::BareUserOnly;
            let xattrs = if user_only {
                Xattrs::default()
            } else {
                Xattrs::new(vec![(b"user.k".to_vec(), b"v".to_vec())])
            };
            // Archive headers past one read; on disk, what ext4's one xattr block holds.
            let long = match mode {
                RepoMode::BareUserOnly => Xattrs::default(),
                RepoMode::Archive => Xattrs::new(vec![
                    (b"user.big1".to_vec(), vec![7u8; 2500]),
                    (b"user.big2".to_vec(), vec![8u8; 2500]),
                ]),
                _ => Xattrs::new(vec![(b"user.big".to_vec(), vec![7u8; 1500])]),
            };
            // Linux allows no user.* xattr on a real symlink (bare keeps them real).
            let link_xattrs = if mode == RepoMode::Bare {
                Xattrs::default()
            } else {
                xattrs.clone()
            };
            let tx = repo.begin().unwrap();
            let ids = [
                put(&tx, &header(S_IFREG | 0o755, "", xattrs.clone()), b"hi\n"),
                put(&tx, &header(S_IFREG | 0o644, "", Xattrs::default()), b""),
                put(&tx, &header(S_IFLNK | 0o777, "a/target", link_xattrs), b""),
                put(&tx, &header(S_IFREG | 0o600, "", long), &[1u8; 10000]),
            ];
            tx.commit().unwrap();
            for id in &ids {
                let (h, size) = repo.content_meta(id).unwrap();
                let obj = repo.open_content(id).unwrap();
                assert_eq!((h, size), (obj.header, obj.size), "{mode:?} {id}");
            }
            if mode != RepoMode::Archive {
                let mut f = repo.open_plain_content(&ids[0]).unwrap();
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes).unwrap();
                assert_eq!(bytes, b"hi\n");
                if mode != RepoMode::BareUser {
                    assert!(repo.open_plain_content(&ids[2]).is_err(), "a symlink");
                }
            } else {
                assert!(repo.open_plain_content(&ids[0]).is_err());
            }
            // Opened by a relative path: the same answers (xattrs read through the objects
            // directory's descriptor).
            let cwd = std::env::current_dir().unwrap();
            let up = "../".repeat(cwd.components().count() - 1);
            let relative = Path::new(&up).join(repo.path().strip_prefix("/").unwrap());
            let by_relative = Repo::open(&relative).unwrap();
            for id in &ids {
                assert_eq!(
                    by_relative.content_meta(id).unwrap(),
                    repo.content_meta(id).unwrap()
                );
            }
            let missing = ObjectId::digest(b"nope");
            assert!(matches!(
                repo.content_meta(&missing),
                Err(Error::MissingObject { .. })
            ));
            if mode != RepoMode::Archive {
                assert!(matches!(
                    repo.open_plain_content(&missing),
                    Err(Error::MissingObject { .. })
                ));
            }
            // Truncated to nothing: a corrupt object, never a panic.
            let path = repo.object_path(&ids[0], ObjectType::File);
            let perm = std::fs::metadata(&path).unwrap().permissions();
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, b"").unwrap();
            std::fs::set_permissions(&path, perm).unwrap();
            let r = repo.content_meta(&ids[0]);
            if matches!(mode, RepoMode::Archive | RepoMode::BareUser) {
                assert!(r.is_err(), "{mode:?}: {r:?}");
            }
        }
    }
}
