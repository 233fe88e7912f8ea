//! Reading content objects in every repo mode: their metadata and a stream of their bytes.

use crate::format::{FileHeader, S_IFLNK, S_IFMT, Xattrs, parse_filez_header};
use crate::gvariant::{Type, Value};
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result, xattr};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

/// The `user.ostreemeta` xattr of bare-user objects: `(uuua(ayay))`.
pub(crate) const OSTREEMETA: &str = "user.ostreemeta";
static OSTREEMETA_TYPE: LazyLock<Type> =
    LazyLock::new(|| Type::parse("(uuua(ayay))").unwrap_or(Type::Tuple(Vec::new())));

/// A content object opened for reading.
pub struct ContentObject {
    /// Owner, mode, symlink target and xattrs.
    pub header: FileHeader,
    /// Size of the content in bytes (0 for symlinks).
    pub size: u64,
    /// The content.
    pub body: ContentBody,
}

/// A content object's bytes.
pub enum ContentBody {
    /// Symlinks: no content.
    Empty,
    /// Bare modes: the object file itself.
    Plain(std::fs::File),
    /// Archive mode: raw deflate after the header.
    Deflate(Box<flate2::read::DeflateDecoder<BufReader<std::fs::File>>>),
}

impl Read for ContentBody {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ContentBody::Empty => Ok(0),
            ContentBody::Plain(f) => f.read(buf),
            ContentBody::Deflate(d) => d.read(buf),
        }
    }
}

impl ContentBody {
    /// The object file, when the content is stored uncompressed (bare modes).
    pub fn plain_file(&self) -> Option<&std::fs::File> {
        match self {
            ContentBody::Plain(f) => Some(f),
            _ => None,
        }
    }
}

/// Parses the `user.ostreemeta` xattr value: (uid, gid, mode, xattrs).
pub fn parse_ostreemeta(data: &[u8]) -> Result<(u32, u32, u32, Xattrs), String> {
    let v = Value::from_bytes(&OSTREEMETA_TYPE, data).map_err(|e| e.to_string())?;
    let items = v.items().ok_or("not a tuple")?;
    let num = |v: &Value| match v {
        Value::Uint32(n) => Ok(u32::from_be(*n)),
        _ => Err("not a uint32".to_string()),
    };
    Ok((
        num(items[0])?,
        num(items[1])?,
        num(items[2])?,
        Xattrs::from_value(items[3])?,
    ))
}

/// Builds the `user.ostreemeta` xattr value.
pub(crate) fn ostreemeta_bytes(h: &FileHeader) -> Vec<u8> {
    Value::Tuple(vec![
        Value::Uint32(h.uid.to_be()),
        Value::Uint32(h.gid.to_be()),
        Value::Uint32(h.mode.to_be()),
        h.xattrs.to_value(),
    ])
    .to_bytes()
}

impl Repo {
    /// A path to read an object's xattrs by: the absolute one, or through the objects
    /// directory's descriptor when the repository was opened by a relative path (the process
    /// may have changed directory since).
    pub(crate) fn object_xattr_path(&self, rel: &str, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            crate::fsutil::proc_path(&self.objects, rel)
        }
    }

    /// The header of a bare or bare-user-only symlink object (stat already taken): its
    /// target, and in bare mode its owner and xattrs.
    pub(crate) fn bare_symlink_header(
        &self,
        id: &ObjectId,
        rel: &str,
        path: &Path,
        st: &rustix::fs::Stat,
    ) -> Result<FileHeader> {
        let target = rustix::fs::readlinkat(&self.objects, rel, Vec::new()).at(path)?;
        let symlink_target = target
            .into_string()
            .map_err(|_| Error::corrupt(*id, ObjectType::File, "symlink target is not UTF-8"))?;
        let (uid, gid, xattrs) = match self.mode() {
            RepoMode::Bare => {
                let xpath = self.object_xattr_path(rel, path);
                (st.st_uid, st.st_gid, xattr::read_path(&xpath).at(path)?)
            }
            _ => (0, 0, Xattrs::default()),
        };
        Ok(FileHeader {
            uid,
            gid,
            mode: S_IFLNK | 0o777,
            symlink_target,
            xattrs,
        })
    }

    /// Opens a content object: its header and a reader of its content.
    pub fn open_content(&self, id: &ObjectId) -> Result<ContentObject> {
        let rel = self.object_relpath(id, ObjectType::File);
        let path = self.object_path(id, ObjectType::File);
        let st = match rustix::fs::statat(&self.objects, &rel, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => {
                return Err(Error::MissingObject {
                    id: *id,
                    ty: ObjectType::File,
                });
            }
            Err(e) => return Err(e).at(&path),
        };
        let corrupt = |why: String| Error::corrupt(*id, ObjectType::File, why);
        if st.st_mode & S_IFMT == S_IFLNK {
            // Bare and bare-user-only keep symlinks as real symlinks.
            if self.mode() == RepoMode::BareUser || self.mode() == RepoMode::Archive {
                return Err(corrupt("unexpected symlink object".into()));
            }
            let header = self.bare_symlink_header(id, &rel, &path, &st)?;
            return Ok(ContentObject {
                header,
                size: 0,
                body: ContentBody::Empty,
            });
        }
        let fd: OwnedFd = rustix::fs::openat(
            &self.objects,
            &rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .at(&path)?;
        let mut file = std::fs::File::from(fd);
        match self.mode() {
            RepoMode::Bare | RepoMode::BareUserOnly => {
                let (uid, gid, xattrs) = if self.mode() == RepoMode::Bare {
                    (st.st_uid, st.st_gid, xattr::read_fd(&file).at(&path)?)
                } else {
                    (0, 0, Xattrs::default())
                };
                let header = FileHeader {
                    uid,
                    gid,
                    mode: st.st_mode,
                    symlink_target: String::new(),
                    xattrs,
                };
                header.validate().map_err(corrupt)?;
                Ok(ContentObject {
                    header,
                    size: st.st_size as u64,
                    body: ContentBody::Plain(file),
                })
            }
            RepoMode::BareUser => {
                let meta = xattr::get_fd(&file, OSTREEMETA)
                    .at(&path)?
                    .ok_or_else(|| corrupt(format!("missing {OSTREEMETA} xattr")))?;
                let (uid, gid, mode, xattrs) = parse_ostreemeta(&meta).map_err(corrupt)?;
                if mode & S_IFMT == S_IFLNK {
                    let mut target = Vec::new();
                    (&mut file)
                        .take(libc::PATH_MAX as u64 + 1)
                        .read_to_end(&mut target)
                        .at(&path)?;
                    // Stored as the target followed by a NUL.
                    if target.pop() != Some(0) || target.contains(&0) {
                        return Err(corrupt("symlink object not NUL-terminated".into()));
                    }
                    let target = String::from_utf8(target)
                        .map_err(|_| corrupt("symlink target is not UTF-8".into()))?;
                    let header = FileHeader {
                        uid,
                        gid,
                        mode,
                        symlink_target: target,
                        xattrs,
                    };
                    header.validate().map_err(corrupt)?;
                    return Ok(ContentObject {
                        header,
                        size: 0,
                        body: ContentBody::Empty,
                    });
                }
                let header = FileHeader {
                    uid,
                    gid,
                    mode,
                    symlink_target: String::new(),
                    xattrs,
                };
                header.validate().map_err(corrupt)?;
                Ok(ContentObject {
                    header,
                    size: st.st_size as u64,
                    body: ContentBody::Plain(file),
                })
            }
            RepoMode::Archive => {
                // The header is small; read a bounded prefix and parse it.
                let mut prefix = vec![0u8; 8];
                file.read_exact(&mut prefix)
                    .map_err(|_| corrupt("File header too short".into()))?;
                let len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
                if len > 1 << 20 || 8 + len as u64 > st.st_size as u64 {
                    return Err(corrupt("File header size exceeds object".into()));
                }
                prefix.resize(8 + len, 0);
                file.read_exact(&mut prefix[8..]).at(&path)?;
                let (header, size, offset) = parse_filez_header(&prefix).map_err(corrupt)?;
                file.seek(SeekFrom::Start(offset as u64)).at(&path)?;
                let body = if header.is_symlink() || size == 0 {
                    ContentBody::Empty
                } else {
                    ContentBody::Deflate(Box::new(flate2::read::DeflateDecoder::new(
                        BufReader::with_capacity(128 * 1024, file),
                    )))
                };
                Ok(ContentObject { header, size, body })
            }
        }
    }

    /// Reads a content object whole and checks its checksum; for `cat`-like small reads.
    pub fn read_content_verified(&self, id: &ObjectId) -> Result<(FileHeader, Vec<u8>)> {
        let mut obj = self.open_content(id)?;
        let mut data = Vec::with_capacity(obj.size.min(1 << 26) as usize);
        let path = self.object_path(id, ObjectType::File);
        (&mut obj.body)
            .take(obj.size + 1)
            .read_to_end(&mut data)
            .map_err(|e| Error::corrupt(*id, ObjectType::File, e))?;
        let actual = crate::format::content_checksum(&obj.header, &data);
        if data.len() as u64 != obj.size || actual != *id {
            return Err(Error::corrupt(
                *id,
                ObjectType::File,
                format!("checksum mismatch: actual {actual} ({})", path.display()),
            ));
        }
        Ok((obj.header, data))
    }
}
