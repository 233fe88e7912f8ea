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
/// Archive objects `content_meta_many` keeps open at once (their reads in flight together).
const ARCHIVE_BATCH: usize = 64;
/// Larger headers are corrupt (as in `open_content`).
const ARCHIVE_MAX_HEADER: usize = 1 << 20;

impl Repo {
    /// A content object's header (owner, mode, symlink target, xattrs) and content size,
    /// exactly as [`Repo::open_content`] reports them, without opening its content.
    pub fn content_meta(&self, id: &ObjectId) -> Result<(FileHeader, u64)> {
        if self.mode() == RepoMode::Archive {
            let file = self.open_archive_object(id)?;
            return self.archive_header(id, &file);
        }
        let rel = self.object_relpath(id, ObjectType::File);
        let path = self.object_path(id, ObjectType::File);
        let corrupt = |why: String| Error::corrupt(*id, ObjectType::File, why);
        let missing = || Error::MissingObject {
            id: *id,
            ty: ObjectType::File,
        };
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
        self.open_object_file(id, "a symlink, opened for its content")
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

    /// A content object's file, never following a symlink: a missing one is
    /// [`Error::MissingObject`], a symlink where a file belongs is corrupt (`symlink_why`).
    fn open_object_file(&self, id: &ObjectId, symlink_why: &str) -> Result<std::fs::File> {
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
            Err(rustix::io::Errno::LOOP) => Err(Error::corrupt(*id, ObjectType::File, symlink_why)),
            Err(e) => Err(e).at(self.object_path(id, ObjectType::File)),
        }
    }

    /// An archive object's file, opened for its header.
    fn open_archive_object(&self, id: &ObjectId) -> Result<std::fs::File> {
        self.open_object_file(id, "unexpected symlink object")
    }

    /// [`Repo::content_meta`] of many objects, in order. In archive mode the first page of
    /// every object of a batch is asked of the disk before any is waited for
    /// (`posix_fadvise` WILLNEED), so the reads queue together (and adjacent ones merge)
    /// instead of going one after another: a walk over a cold tree waits for the disk
    /// about once per batch rather than once per file.
    pub fn content_meta_many(&self, ids: &[ObjectId]) -> Vec<Result<(FileHeader, u64)>> {
        if self.mode() != RepoMode::Archive {
            return ids.iter().map(|id| self.content_meta(id)).collect();
        }
        let mut out = Vec::with_capacity(ids.len());
        for batch in ids.chunks(ARCHIVE_BATCH) {
            let opened: Vec<Result<_>> = batch
                .iter()
                .map(|id| {
                    let file = self.open_archive_object(id)?;
                    let first = std::num::NonZeroU64::new(ARCHIVE_FIRST_READ as u64);
                    // Only a hint: the read below reports any error.
                    let _ = rustix::fs::fadvise(&file, 0, first, rustix::fs::Advice::WillNeed);
                    Ok(file)
                })
                .collect();
            out.extend(
                batch
                    .iter()
                    .zip(opened)
                    .map(|(id, file)| self.archive_header(id, &file?)),
            );
        }
        out
    }

    /// Reads and parses the header at the start of an archive object: one `pread` of its
    /// first page, another only for a header larger than that.
    fn archive_header(&self, id: &ObjectId, file: &std::fs::File) -> Result<(FileHeader, u64)> {
        let corrupt = |why: &str| Error::corrupt(*id, ObjectType::File, why);
        let mut buf = vec![0u8; ARCHIVE_FIRST_READ];
        let mut got = 0;
        // The header's whole length, once its size field is read.
        let mut need = 8;
        while got < need {
            // The path is built for a message only.
            let n = read_some_at(file, &mut buf[got..], got as u64)
                .map_err(|e| Error::io(self.object_path(id, ObjectType::File), e))?;
            if n == 0 {
                return Err(corrupt(if got < 8 {
                    "File header too short"
                } else {
                    "File header size exceeds object"
                }));
            }
            got += n;
            if got >= 8 {
                let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
                if len > ARCHIVE_MAX_HEADER {
                    return Err(corrupt("File header size exceeds object"));
                }
                need = 8 + len;
                if buf.len() < need {
                    buf.resize(need, 0);
                }
            }
        }
        let (header, size, _) = parse_filez_header(&buf[..need]).map_err(|why| corrupt(&why))?;
        Ok((header, size))
    }
}

/// One `pread` at `offset`, retried when interrupted; 0 at the end of the file.
fn read_some_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
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
            // Many at once: the same answers, in order, errors in their places, across
            // more than one batch.
            let mut many = Vec::new();
            while many.len() <= 2 * ARCHIVE_BATCH {
                many.extend_from_slice(&ids);
                many.push(missing);
            }
            let one_by_one: Vec<_> = many.iter().map(|id| repo.content_meta(id)).collect();
            let together = repo.content_meta_many(&many);
            assert_eq!(together.len(), many.len());
            for ((id, a), b) in many.iter().zip(&one_by_one).zip(&together) {
                match (a, b) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{mode:?} {id}"),
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    _ => panic!("{mode:?} {id}: {a:?} one by one, {b:?} together"),
                }
            }
        }
    }

    /// A header larger than the first read, and objects too short for their header: read
    /// whole, or refused as corrupt, never misparsed.
    #[test]
    fn archive_headers_of_any_length() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(&dir.path().join("repo"), RepoMode::Archive).unwrap();
        let big = Xattrs::new(vec![(
            b"user.big".to_vec(),
            vec![9u8; 3 * ARCHIVE_FIRST_READ],
        )]);
        let tx = repo.begin().unwrap();
        let id = put(&tx, &header(S_IFREG | 0o644, "", big.clone()), b"x");
        tx.commit().unwrap();
        let (h, size) = repo.content_meta(&id).unwrap();
        assert_eq!((h.xattrs, size), (big, 1));
        let path = repo.object_path(&id, ObjectType::File);
        let whole = std::fs::read(&path).unwrap();
        let perm = std::fs::metadata(&path).unwrap().permissions();
        for (len, why) in [
            (5, "too short"),
            (ARCHIVE_FIRST_READ, "exceeds object"),
            (ARCHIVE_FIRST_READ + 100, "exceeds object"),
        ] {
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, &whole[..len]).unwrap();
            std::fs::set_permissions(&path, perm.clone()).unwrap();
            let err = repo.content_meta(&id).unwrap_err();
            assert!(err.to_string().contains(why), "{len}: {err}");
        }
    }
}
