//! Fetching one object, verifying it, storing it. Nothing from the network is stored before
//! it is verified: metadata by the sha256 of its bytes and a parse of its structure, content
//! by re-hashing the uncompressed header and content against the checksum that named it.

use super::PullStats;
use super::fetch::Fetcher;
use crate::format::{Commit, DirMeta, DirTree, DirTreeRef, parse_detached, parse_filez_header};
use crate::{ContentSource, Error, ObjectId, ObjectType, Repo, Result, Transaction};
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::Ordering;

/// The largest metadata object accepted, as ostree (`OSTREE_MAX_METADATA_SIZE`).
pub const MAX_METADATA_SIZE: u64 = 128 * 1024 * 1024;
/// Content up to this size is verified in memory; larger goes through a temporary file.
const IN_MEMORY_CONTENT: u64 = 64 * 1024 * 1024;

/// Fetches objects of one remote into one transaction.
pub struct ObjectFetcher<'a> {
    /// The local repository.
    pub repo: &'a Repo,
    /// Where fetched objects are written.
    pub tx: &'a Transaction<'a>,
    /// The remote's files.
    pub fetcher: &'a Fetcher,
    /// Counters for progress.
    pub stats: &'a PullStats,
}

fn corrupt(id: &ObjectId, ty: ObjectType, url: &str, why: impl std::fmt::Display) -> Error {
    Error::corrupt(*id, ty, format!("fetched from {url}: {why}"))
}

/// An object's path below a repository, as an archive repository names it.
pub fn archive_relpath(id: &ObjectId, ty: ObjectType) -> String {
    let hex = id.to_string();
    let suffix = if ty == ObjectType::File {
        "filez"
    } else {
        ty.suffix()
    };
    format!("objects/{}/{}.{suffix}", &hex[..2], &hex[2..])
}

impl ObjectFetcher<'_> {
    /// Fetches a metadata object and checks its checksum and structure; `None` when the
    /// remote lacks it and `optional` (only `.commitmeta` may be missing).
    fn fetch_meta(&self, id: &ObjectId, ty: ObjectType, optional: bool) -> Result<Option<Vec<u8>>> {
        let rel = archive_relpath(id, ty);
        let url = self.fetcher.url(&rel);
        let bytes = match self.fetcher.get(&rel, MAX_METADATA_SIZE)? {
            Some(b) => b,
            None if optional => return Ok(None),
            None => return Err(corrupt(id, ty, &url, "Server returned HTTP 404")),
        };
        self.stats
            .bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.stats.metadata.fetch_add(1, Ordering::Relaxed);
        let checked = match ty {
            // Detached metadata is named by its commit, not by its own checksum.
            ObjectType::CommitMeta => parse_detached(&bytes).map(drop),
            _ => {
                let actual = ObjectId::digest(&bytes);
                if actual != *id {
                    return Err(corrupt(id, ty, &url, format!("checksum is {actual}")));
                }
                match ty {
                    ObjectType::Commit => Commit::parse(&bytes).map(drop),
                    ObjectType::DirTree => DirTreeRef::parse(&bytes).map(drop),
                    ObjectType::DirMeta => DirMeta::parse(&bytes).map(drop),
                    _ => Err(format!("unexpected object type {ty}")),
                }
            }
        };
        checked.map_err(|why| corrupt(id, ty, &url, why))?;
        Ok(Some(bytes))
    }

    /// Fetches and verifies a commit and its detached metadata, storing nothing yet: the
    /// caller checks bindings and signatures first, then calls [`FetchedCommit::store`].
    pub fn fetch_commit(&self, id: &ObjectId) -> Result<FetchedCommit> {
        let detached_bytes = self.fetch_meta(id, ObjectType::CommitMeta, true)?;
        let bytes = self
            .fetch_meta(id, ObjectType::Commit, false)?
            .unwrap_or_default();
        let commit =
            Commit::parse(&bytes).map_err(|why| Error::corrupt(*id, ObjectType::Commit, why))?;
        let detached = match &detached_bytes {
            Some(d) => Some(
                parse_detached(d)
                    .map_err(|why| Error::corrupt(*id, ObjectType::CommitMeta, why))?,
            ),
            None => None,
        };
        Ok(FetchedCommit {
            id: *id,
            bytes,
            detached_bytes,
            commit,
            detached,
        })
    }

    /// Makes sure a dirmeta is stored.
    pub fn ensure_dirmeta(&self, id: &ObjectId) -> Result<()> {
        if self.repo.has_object(id, ObjectType::DirMeta)? {
            return Ok(());
        }
        let bytes = self
            .fetch_meta(id, ObjectType::DirMeta, false)?
            .unwrap_or_default();
        self.tx.write_meta(ObjectType::DirMeta, &bytes)?;
        Ok(())
    }

    /// Makes sure a dirtree is stored and returns it.
    pub fn ensure_dirtree(&self, id: &ObjectId) -> Result<DirTree> {
        if self.repo.has_object(id, ObjectType::DirTree)? {
            return self.repo.read_dirtree(id);
        }
        let bytes = self
            .fetch_meta(id, ObjectType::DirTree, false)?
            .unwrap_or_default();
        let tree = crate::read::parse_dirtree(id, &bytes)?.to_owned();
        self.tx.write_meta(ObjectType::DirTree, &bytes)?;
        Ok(tree)
    }

    /// Makes sure a content object is stored: fetches its `.filez`, decompresses it within
    /// the size its header declares, re-hashes header and content, and only then writes it.
    pub fn ensure_content(&self, id: &ObjectId) -> Result<()> {
        if self.repo.has_object(id, ObjectType::File)? {
            return Ok(());
        }
        let ty = ObjectType::File;
        let rel = archive_relpath(id, ty);
        let url = self.fetcher.url(&rel);
        let stream = self
            .fetcher
            .open(&rel)?
            .ok_or_else(|| corrupt(id, ty, &url, "Server returned HTTP 404"))?;
        let mut counted = CountingReader {
            inner: stream,
            stats: self.stats,
        };
        let bad = |why: String| corrupt(id, ty, &url, why);
        let io = |e: std::io::Error| corrupt(id, ty, &url, e);
        // The header: its length, 4 bytes of padding, then the variant.
        let mut prefix = [0u8; 8];
        counted.read_exact(&mut prefix).map_err(io)?;
        let header_len = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as u64;
        if header_len > MAX_METADATA_SIZE {
            return Err(bad(format!("file header of {header_len} bytes")));
        }
        let mut head = prefix.to_vec();
        (&mut counted)
            .take(header_len)
            .read_to_end(&mut head)
            .map_err(io)?;
        let (header, size, _) = parse_filez_header(&head).map_err(bad)?;
        header.validate().map_err(bad)?;
        // Raw deflate never grows data by more than a few bytes per 16 KiB block.
        let bound = size + size / 64 + 1024;
        let mut compressed = BufReader::new((&mut counted).take(bound + 1));
        let mut decoder = flate2::bufread::DeflateDecoder::new(&mut compressed);
        let content = if header.is_symlink() {
            Content::Memory(Vec::new())
        } else if size <= IN_MEMORY_CONTENT {
            let mut data = Vec::with_capacity(size as usize);
            (&mut decoder)
                .take(size + 1)
                .read_to_end(&mut data)
                .map_err(io)?;
            Content::Memory(data)
        } else {
            let mut tmp = tempfile::tempfile_in(self.repo.path().join("tmp"))
                .map_err(|e| Error::io(self.repo.path().join("tmp"), e))?;
            std::io::copy(&mut (&mut decoder).take(size + 1), &mut tmp).map_err(io)?;
            Content::File(tmp)
        };
        let got = match &content {
            Content::Memory(d) => d.len() as u64,
            Content::File(f) => f.metadata().map_err(io)?.len(),
        };
        if !header.is_symlink() && got != size {
            return Err(bad(format!("content is {got} bytes, header says {size}")));
        }
        drop(decoder);
        // Nothing may follow the compressed stream.
        if !compressed.fill_buf().map_err(io)?.is_empty() {
            return Err(bad("trailing bytes after the compressed content".into()));
        }
        self.stats.content.fetch_add(1, Ordering::Relaxed);
        let source = match &content {
            Content::Memory(d) => ContentSource::Bytes(d),
            Content::File(f) => {
                use std::io::Seek;
                let mut f = f;
                f.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
                ContentSource::File(f)
            }
        };
        let actual = Transaction::checksum_content(&header, &source)?;
        if actual != *id {
            return Err(bad(format!("checksum is {actual}")));
        }
        self.tx.write_content(id, &header, size, source)
    }
}

/// A fetched, verified commit not yet stored.
pub struct FetchedCommit {
    id: ObjectId,
    bytes: Vec<u8>,
    detached_bytes: Option<Vec<u8>>,
    /// The commit.
    pub commit: Commit,
    /// Its detached metadata, if the remote has any.
    pub detached: Option<Vec<(String, crate::gvariant::Value)>>,
}

impl FetchedCommit {
    /// The commit object's bytes, as signed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Stores the commit and its detached metadata.
    pub fn store(&self, tx: &Transaction<'_>) -> Result<()> {
        if let Some(d) = &self.detached_bytes {
            tx.write_commit_detached(&self.id, d)?;
        }
        let stored = tx.write_meta(ObjectType::Commit, &self.bytes)?;
        debug_assert_eq!(stored, self.id);
        Ok(())
    }
}

/// A verified object's content, in memory or in an unlinked temporary file.
enum Content {
    Memory(Vec<u8>),
    File(std::fs::File),
}

/// Counts the bytes read off the network for progress.
struct CountingReader<'a> {
    inner: Box<dyn Read + Send>,
    stats: &'a PullStats,
}

impl Read for CountingReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
