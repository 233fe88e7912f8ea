//! A persistent cache of content objects' metadata, one file per commit, so that a walk over
//! a mounted commit (`find`, `ls -lR`) needs no per-object open.
//!
//! Content objects are immutable and named by their checksum, which covers their header: the
//! metadata [`Repo::content_meta`] reports for a checksum (owner, mode, size, symlink target,
//! xattrs) never changes, so a table keyed by checksum is a pure cache. One is kept per commit
//! (the objects its tree names) at `tmp/cache/rostree/meta/<commit>`: ostree keeps its own
//! caches under `tmp/cache` and neither its tmp cleanup nor its prune touch what they do not
//! know there (prune only looks at `tmp/cache/summaries`).
//!
//! The file is read with one sequential read and trusted only whole: magic, version, repo
//! mode and commit checksum must match, every count and offset must fit, records must be
//! strictly sorted and valid headers, and a SHA-256 of everything before it ends the file.
//! Anything else is refused (the caller rebuilds it). It is written atomically (temporary
//! file, rename), never fsynced: a torn file fails its checksum. It answers `stat` only;
//! content bytes always come from the object (and archive content is verified against its
//! checksum), so a wrong cache can't make wrong bytes readable.
//!
//! Layout (little-endian):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 8 | magic `RSTMETA\0` |
//! | 8 | 4 | version (1) |
//! | 12 | 4 | repo mode: 0 bare, 1 archive, 2 bare-user, 3 bare-user-only |
//! | 16 | 32 | commit checksum |
//! | 48 | 4 | record count N |
//! | 52 | 4 | xattr set count S |
//! | 56 | 4 | blob length B |
//! | 60 | 4 | zero |
//! | 64 | 64·N | records, by checksum: checksum 32, uid 4, gid 4, mode 4, xattr set 4 (`u32::MAX`: none), size 8, symlink target offset 4 and length 4 in the blob |
//! | | 8·S | xattr sets: offset 4 and length 4 in the blob |
//! | | B | blob: symlink targets; xattr sets as count 4, then name length 4, name, value length 4, value |
//! | | 32 | SHA-256 of all the above |

use crate::format::{FileHeader, Xattrs};
use crate::fsutil::{ensure_dir_at, open_dir_at, replace_file_at};
use crate::repo::{Repo, RepoMode};
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use rustix::fs::{Mode, OFlags};
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;

/// Where the caches live, below the repository root.
pub const META_CACHE_DIR: &str = "tmp/cache/rostree/meta";
const MAGIC: &[u8; 8] = b"RSTMETA\0";
/// Bumped whenever the layout changes: other versions are refused, then rebuilt.
pub const META_CACHE_VERSION: u32 = 1;
const HEADER_LEN: usize = 64;
const RECORD_LEN: usize = 64;
const SET_LEN: usize = 8;
const SUM_LEN: usize = 32;
const NO_XATTRS: u32 = u32::MAX;
/// Commits with more distinct content objects get no cache (its builder's memory and the
/// file stay bounded: 64 bytes an object).
pub const META_CACHE_MAX_ENTRIES: usize = 1 << 20;
/// Objects whose metadata is read per batch while building.
const BUILD_BATCH: usize = 256;

fn mode_code(mode: RepoMode) -> u32 {
    match mode {
        RepoMode::Bare => 0,
        RepoMode::Archive => 1,
        RepoMode::BareUser => 2,
        RepoMode::BareUserOnly => 3,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A commit's content metadata, loaded and validated whole.
#[derive(Debug)]
pub struct MetaCache {
    /// The whole file (records and blob are read from it in place).
    bytes: Vec<u8>,
    count: usize,
    blob_at: usize,
    sets: Vec<Xattrs>,
}

impl MetaCache {
    /// Validates a cache file's bytes for `commit` of a `mode` repository; the reason is
    /// given when they are refused.
    pub fn parse(bytes: Vec<u8>, mode: RepoMode, commit: &ObjectId) -> Result<Self, String> {
        if bytes.len() < HEADER_LEN + SUM_LEN {
            return Err(format!("truncated ({} bytes)", bytes.len()));
        }
        if &bytes[..8] != MAGIC {
            return Err("not a rostree metadata cache".into());
        }
        let version = u32_at(&bytes, 8);
        if version != META_CACHE_VERSION {
            return Err(format!("version {version}, expected {META_CACHE_VERSION}"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - SUM_LEN);
        if ObjectId::digest(body).as_bytes() != sum {
            return Err("checksum mismatch".into());
        }
        if u32_at(&bytes, 12) != mode_code(mode) {
            return Err(format!("written for another repository mode than {mode}"));
        }
        if bytes[16..48] != commit.as_bytes()[..] {
            return Err(format!("written for another commit than {commit}"));
        }
        let count = u32_at(&bytes, 48) as usize;
        let nsets = u32_at(&bytes, 52) as usize;
        let blob_len = u32_at(&bytes, 56) as usize;
        let sets_at = HEADER_LEN + count * RECORD_LEN;
        let blob_at = sets_at + nsets * SET_LEN;
        if u32_at(&bytes, 60) != 0 || blob_at + blob_len != body.len() {
            return Err("sizes do not add up".into());
        }
        let blob = &bytes[blob_at..body.len()];
        let sets = (0..nsets)
            .map(|i| {
                let at = sets_at + i * SET_LEN;
                let range = blob_range(u32_at(&bytes, at), u32_at(&bytes, at + 4), blob_len)?;
                parse_xattrs(&blob[range]).ok_or(format!("xattr set {i} malformed"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let cache = MetaCache {
            bytes,
            count,
            blob_at,
            sets,
        };
        let mut previous: Option<&[u8]> = None;
        for i in 0..count {
            let record = cache.record(i);
            if previous.is_some_and(|p| p >= &record[..32]) {
                return Err(format!("record {i} out of order"));
            }
            previous = Some(&record[..32]);
            cache
                .decode(record)
                .and_then(|(h, _)| h.validate())
                .map_err(|why| format!("record {i}: {why}"))?;
        }
        Ok(cache)
    }

    fn record(&self, i: usize) -> &[u8] {
        let at = HEADER_LEN + i * RECORD_LEN;
        &self.bytes[at..at + RECORD_LEN]
    }

    fn decode(&self, r: &[u8]) -> Result<(FileHeader, u64), String> {
        let blob = &self.bytes[self.blob_at..self.bytes.len() - SUM_LEN];
        let set = u32_at(r, 44);
        let xattrs = match set {
            NO_XATTRS => Xattrs::default(),
            n => self
                .sets
                .get(n as usize)
                .cloned()
                .ok_or(format!("xattr set {n} missing"))?,
        };
        let target = blob_range(u32_at(r, 56), u32_at(r, 60), blob.len())?;
        let target = std::str::from_utf8(&blob[target]).map_err(|_| "target not UTF-8")?;
        let header = FileHeader {
            uid: u32_at(r, 32),
            gid: u32_at(r, 36),
            mode: u32_at(r, 40),
            symlink_target: target.to_string(),
            xattrs,
        };
        Ok((header, u64_at(r, 48)))
    }

    /// The header and content size of object `id`, as [`Repo::content_meta`] reported them
    /// when the cache was built; `None` if the cache has no record of it.
    pub fn get(&self, id: &ObjectId) -> Option<(FileHeader, u64)> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.record(mid);
            match r[..32].cmp(&id.as_bytes()[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                // Validated when loaded: decoding can't fail.
                std::cmp::Ordering::Equal => return self.decode(r).ok(),
            }
        }
        None
    }

    /// How many objects it describes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it describes no object.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The memory it holds, in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

fn blob_range(off: u32, len: u32, blob_len: usize) -> Result<std::ops::Range<usize>, String> {
    let (off, len) = (off as usize, len as usize);
    match off.checked_add(len) {
        Some(end) if end <= blob_len => Ok(off..end),
        _ => Err(format!("blob range {off}+{len} past its end {blob_len}")),
    }
}

fn parse_xattrs(mut b: &[u8]) -> Option<Xattrs> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (b.get(..n)?, b.get(n..)?);
        *b = tail;
        Some(head)
    }
    fn len(b: &mut &[u8]) -> Option<usize> {
        Some(u32::from_le_bytes(take(b, 4)?.try_into().ok()?) as usize)
    }
    let n = len(&mut b)?;
    let mut pairs = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        let name_len = len(&mut b)?;
        let name = take(&mut b, name_len)?.to_vec();
        let value_len = len(&mut b)?;
        pairs.push((name, take(&mut b, value_len)?.to_vec()));
    }
    b.is_empty().then_some(Xattrs(pairs))
}

fn encode_xattrs(x: &Xattrs) -> Vec<u8> {
    let mut out = (x.0.len() as u32).to_le_bytes().to_vec();
    for (name, value) in &x.0 {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Builds a cache file's bytes from records pushed in checksum order.
#[derive(Debug)]
pub struct MetaCacheWriter {
    /// Header (filled in by `finish`), then records.
    out: Vec<u8>,
    count: usize,
    last: Option<ObjectId>,
    sets: Vec<(u32, u32)>,
    set_ids: HashMap<Vec<u8>, u32>,
    blob: Vec<u8>,
}

impl MetaCacheWriter {
    /// An empty cache for `commit` of a `mode` repository.
    pub fn new(mode: RepoMode, commit: &ObjectId) -> Self {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&META_CACHE_VERSION.to_le_bytes());
        out.extend_from_slice(&mode_code(mode).to_le_bytes());
        out.extend_from_slice(commit.as_bytes());
        out.resize(HEADER_LEN, 0);
        MetaCacheWriter {
            out,
            count: 0,
            last: None,
            sets: Vec::new(),
            set_ids: HashMap::new(),
            blob: Vec::new(),
        }
    }

    /// Adds object `id`'s header and size. Checksums must come in strictly ascending order.
    pub fn push(&mut self, id: &ObjectId, header: &FileHeader, size: u64) {
        assert!(
            self.last.is_none_or(|l| l < *id),
            "metadata cache records out of order"
        );
        self.last = Some(*id);
        let set = if header.xattrs.0.is_empty() {
            NO_XATTRS
        } else {
            let encoded = encode_xattrs(&header.xattrs);
            match self.set_ids.get(&encoded) {
                Some(&n) => n,
                None => {
                    let n = self.sets.len() as u32;
                    self.sets
                        .push((self.blob.len() as u32, encoded.len() as u32));
                    self.blob.extend_from_slice(&encoded);
                    self.set_ids.insert(encoded, n);
                    n
                }
            }
        };
        let target = header.symlink_target.as_bytes();
        let target_at = self.blob.len() as u32;
        self.blob.extend_from_slice(target);
        self.out.extend_from_slice(id.as_bytes());
        for n in [header.uid, header.gid, header.mode, set] {
            self.out.extend_from_slice(&n.to_le_bytes());
        }
        self.out.extend_from_slice(&size.to_le_bytes());
        self.out.extend_from_slice(&target_at.to_le_bytes());
        self.out
            .extend_from_slice(&(target.len() as u32).to_le_bytes());
        self.count += 1;
    }

    /// The file's bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.out[48..52].copy_from_slice(&(self.count as u32).to_le_bytes());
        self.out[52..56].copy_from_slice(&(self.sets.len() as u32).to_le_bytes());
        self.out[56..60].copy_from_slice(&(self.blob.len() as u32).to_le_bytes());
        for (off, len) in &self.sets {
            self.out.extend_from_slice(&off.to_le_bytes());
            self.out.extend_from_slice(&len.to_le_bytes());
        }
        self.out.extend_from_slice(&self.blob);
        let sum = ObjectId::digest(&self.out);
        self.out.extend_from_slice(sum.as_bytes());
        self.out
    }
}

impl Repo {
    /// Where commit `commit`'s metadata cache lives.
    pub fn meta_cache_path(&self, commit: &ObjectId) -> PathBuf {
        self.path().join(META_CACHE_DIR).join(commit.to_hex())
    }

    /// Loads commit `commit`'s metadata cache with one read: `Ok(None)` when there is none
    /// (or it is larger than `max_bytes`), an error naming the file when it is refused.
    pub fn load_meta_cache(&self, commit: &ObjectId, max_bytes: u64) -> Result<Option<MetaCache>> {
        let rel = format!("{META_CACHE_DIR}/{commit}");
        let path = self.meta_cache_path(commit);
        let fd = match rustix::fs::openat(
            &self.root,
            &rel,
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).at(&path),
        };
        let len = rustix::fs::fstat(&fd).at(&path)?.st_size as u64;
        if len > max_bytes {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::fs::File::from(fd)
            .take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .at(&path)?;
        MetaCache::parse(bytes, self.mode(), commit)
            .map(Some)
            .map_err(|why| Error::Invalid {
                path,
                why: format!("metadata cache refused: {why}"),
            })
    }

    /// The distinct content objects commit `commit`'s tree names, sorted; an error when a
    /// dirtree can't be read or there are more than `limit`.
    pub fn commit_content_ids(&self, commit: &ObjectId, limit: usize) -> Result<Vec<ObjectId>> {
        let root = self.read_commit(commit)?.root_tree;
        let mut seen_trees = HashSet::from([root]);
        let mut stack = vec![root];
        let mut ids = HashSet::new();
        while let Some(tree) = stack.pop() {
            let bytes = self.read_meta_bytes(&tree, ObjectType::DirTree)?;
            let dt = crate::read::parse_dirtree(&tree, &bytes)?;
            ids.extend(dt.files.iter().map(|(_, id)| *id));
            if ids.len() > limit {
                return Err(Error::Invalid {
                    path: self.meta_cache_path(commit),
                    why: format!("commit names more than {limit} content objects"),
                });
            }
            for (_, sub, _) in &dt.dirs {
                if seen_trees.insert(*sub) {
                    stack.push(*sub);
                }
            }
        }
        let mut ids: Vec<_> = ids.into_iter().collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Writes commit `commit`'s metadata cache: the metadata of every content object its
    /// tree names, read from the objects (those that can't be read are left out, and looked
    /// up in the objects again by whoever needs them). Returns how many were recorded.
    /// Fails when the cache directory can't be written, before reading any object.
    pub fn build_meta_cache(&self, commit: &ObjectId) -> Result<usize> {
        let dir_path = self.path().join(META_CACHE_DIR);
        let mut rel = String::new();
        for part in META_CACHE_DIR.split('/') {
            if !rel.is_empty() {
                rel.push('/');
            }
            rel.push_str(part);
            ensure_dir_at(&self.root, &rel, &self.path().join(&rel))?;
        }
        let dir = open_dir_at(&self.root, META_CACHE_DIR, &dir_path)?;
        rustix::fs::accessat(
            &dir,
            ".",
            rustix::fs::Access::WRITE_OK,
            rustix::fs::AtFlags::empty(),
        )
        .at(&dir_path)?;
        let ids = self.commit_content_ids(commit, META_CACHE_MAX_ENTRIES)?;
        let mut writer = MetaCacheWriter::new(self.mode(), commit);
        for batch in ids.chunks(BUILD_BATCH) {
            for (id, meta) in batch.iter().zip(self.content_meta_many(batch)) {
                if let Ok((header, size)) = meta {
                    writer.push(id, &header, size);
                }
            }
        }
        let count = writer.count;
        let bytes = writer.finish();
        let name = commit.to_hex();
        replace_file_at(&dir, &name, &bytes, 0o644, false, &dir_path.join(&name))?;
        Ok(count)
    }
}

/// Temporary files older than this are a crashed writer's (a live one renames within
/// minutes).
const STALE_TMP_SECS: i64 = 24 * 3600;

impl Repo {
    /// Deletes the caches of commits no longer in the repository, and temporary files left
    /// by crashed writers; returns how many files went. Run by `prune`.
    pub fn prune_meta_caches(&self) -> Result<usize> {
        let dir_path = self.path().join(META_CACHE_DIR);
        let dir = match crate::fsutil::openat_dir(&self.root, META_CACHE_DIR, false) {
            Ok(dir) => dir,
            Err(rustix::io::Errno::NOENT) => return Ok(0),
            Err(e) => return Err(e).at(&dir_path),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut removed = 0;
        for (name, _) in crate::fsutil::dir_entries_lenient(&dir) {
            // Names not of rostree's making are left alone.
            let Ok(name) = String::from_utf8(name) else {
                continue;
            };
            let stale = match ObjectId::from_hex(&name) {
                Ok(commit) => !self.has_object(&commit, ObjectType::Commit)?,
                Err(_) if name.starts_with(".tmp-") => {
                    rustix::fs::statat(&dir, name.as_str(), rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| now - st.st_mtime > STALE_TMP_SECS)
                }
                Err(_) => false,
            };
            if stale {
                match rustix::fs::unlinkat(&dir, name.as_str(), rustix::fs::AtFlags::empty()) {
                    Ok(()) => removed += 1,
                    Err(rustix::io::Errno::NOENT) => {}
                    Err(e) => return Err(e).at(dir_path.join(&name)),
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{S_IFLNK, S_IFREG};

    fn header(mode: u32, target: &str, xattrs: Xattrs) -> FileHeader {
        FileHeader {
            uid: mode & 7,
            gid: 1000,
            mode,
            symlink_target: target.into(),
            xattrs,
        }
    }

    fn sample() -> (ObjectId, Vec<(ObjectId, FileHeader, u64)>) {
        let shared = Xattrs::new(vec![(b"user.a".to_vec(), b"1".to_vec())]);
        let other = Xattrs::new(vec![
            (b"security.selinux".to_vec(), b"x_t\0".to_vec()),
            (b"user.b".to_vec(), vec![0u8; 300]),
        ]);
        let mut entries = vec![
            (header(S_IFREG | 0o644, "", Xattrs::default()), 0),
            (header(S_IFREG | 0o4755, "", shared.clone()), 12),
            (header(S_IFLNK | 0o777, "../some/target", shared), 0),
            (header(S_IFREG | 0o600, "", other), u64::from(u32::MAX) + 5),
            (header(S_IFLNK | 0o777, "é", Xattrs::default()), 0),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (h, size))| (ObjectId::digest(&[i as u8]), h, size))
        .collect::<Vec<_>>();
        entries.sort_by_key(|e| e.0);
        (ObjectId::digest(b"commit"), entries)
    }

    fn encode(
        mode: RepoMode,
        commit: &ObjectId,
        entries: &[(ObjectId, FileHeader, u64)],
    ) -> Vec<u8> {
        let mut w = MetaCacheWriter::new(mode, commit);
        for (id, h, size) in entries {
            w.push(id, h, *size);
        }
        w.finish()
    }

    #[test]
    fn round_trip() {
        let (commit, entries) = sample();
        let bytes = encode(RepoMode::Archive, &commit, &entries);
        let cache = MetaCache::parse(bytes.clone(), RepoMode::Archive, &commit).unwrap();
        assert_eq!(cache.len(), entries.len());
        assert_eq!(cache.byte_len(), bytes.len());
        for (id, h, size) in &entries {
            assert_eq!(cache.get(id), Some((h.clone(), *size)), "{id}");
        }
        assert_eq!(cache.get(&ObjectId::digest(b"absent")), None);
        let empty = encode(RepoMode::Bare, &commit, &[]);
        let empty = MetaCache::parse(empty, RepoMode::Bare, &commit).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.get(&entries[0].0), None);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let (commit, entries) = sample();
        let bytes = encode(RepoMode::BareUser, &commit, &entries);
        for len in 0..bytes.len() {
            let r = MetaCache::parse(bytes[..len].to_vec(), RepoMode::BareUser, &commit);
            assert!(r.is_err(), "truncated to {len} accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(MetaCache::parse(longer, RepoMode::BareUser, &commit).is_err());
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            let r = MetaCache::parse(bad, RepoMode::BareUser, &commit);
            assert!(r.is_err(), "byte {i} flipped accepted");
        }
    }

    #[test]
    fn foreign_versions_modes_and_commits_are_refused() {
        let (commit, entries) = sample();
        let bytes = encode(RepoMode::Bare, &commit, &entries);
        let why =
            |b: Vec<u8>, mode, commit: &ObjectId| MetaCache::parse(b, mode, commit).unwrap_err();
        // A well-formed file of another version: its own checksum is right.
        let mut v2 = bytes[..bytes.len() - SUM_LEN].to_vec();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        let sum = ObjectId::digest(&v2);
        v2.extend_from_slice(sum.as_bytes());
        assert!(why(v2, RepoMode::Bare, &commit).contains("version 2"));
        let other = ObjectId::digest(b"another commit");
        assert!(why(bytes.clone(), RepoMode::Bare, &other).contains("another commit"));
        assert!(why(bytes.clone(), RepoMode::Archive, &commit).contains("mode"));
        assert!(why(b"garbage".to_vec(), RepoMode::Bare, &commit).contains("truncated"));
    }

    /// Malformed content under a valid checksum (a buggy or hostile writer) is refused
    /// too: records out of order, invalid modes, ranges past the blob.
    #[test]
    fn well_summed_but_malformed_files_are_refused() {
        let (commit, entries) = sample();
        let resum = |mut b: Vec<u8>| {
            b.truncate(b.len() - SUM_LEN);
            let sum = ObjectId::digest(&b);
            b.extend_from_slice(sum.as_bytes());
            b
        };
        let good = encode(RepoMode::Bare, &commit, &entries);
        let record = |i: usize| HEADER_LEN + i * RECORD_LEN;
        // Each case writes `bytes` at `at`.
        let first_id = good[record(0)..record(0) + 32].to_vec();
        let cases = [
            ("out of order", record(1), first_id),
            ("mode", record(0) + 40, 0o040755u32.to_le_bytes().to_vec()),
            (
                "blob range",
                record(0) + 60,
                u32::MAX.to_le_bytes().to_vec(),
            ),
            ("xattr set", record(0) + 44, 77u32.to_le_bytes().to_vec()),
            ("sizes", 48, 9u32.to_le_bytes().to_vec()),
        ];
        for (what, at, bytes) in cases {
            let mut b = good.clone();
            b[at..at + bytes.len()].copy_from_slice(&bytes);
            let r = MetaCache::parse(resum(b), RepoMode::Bare, &commit);
            assert!(r.is_err(), "{what} accepted");
        }
    }

    /// Built from a repository: what the objects say, for every object of the commit's
    /// tree; loaded back; refused once damaged; absent when never built.
    #[test]
    fn built_for_a_commit_and_loaded() {
        use crate::format::{Commit, DirMeta, DirTree, S_IFDIR};
        use crate::{ContentSource, Transaction};
        for mode in [RepoMode::Archive, RepoMode::BareUser] {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repo::init(&dir.path().join("repo"), mode).unwrap();
            let tx = repo.begin().unwrap();
            let mut tree = DirTree::default();
            let (_, entries) = sample();
            let mut ids = Vec::new();
            for (i, (_, h, _)) in entries.iter().enumerate() {
                let data = if h.is_symlink() {
                    Vec::new()
                } else {
                    vec![b'x'; i * 100]
                };
                let id = Transaction::checksum_content(h, &ContentSource::Bytes(&data)).unwrap();
                tx.write_content(&id, h, data.len() as u64, ContentSource::Bytes(&data))
                    .unwrap();
                tree.files.insert(format!("f{i}"), id);
                ids.push(id);
            }
            let meta = DirMeta {
                uid: 0,
                gid: 0,
                mode: S_IFDIR | 0o755,
                xattrs: Xattrs::default(),
            };
            let meta = tx
                .write_meta(ObjectType::DirMeta, &meta.to_bytes())
                .unwrap();
            let mut root = DirTree::default();
            let sub = tx
                .write_meta(ObjectType::DirTree, &tree.to_bytes())
                .unwrap();
            root.dirs.insert("a".into(), (sub, meta));
            root.dirs.insert("b".into(), (sub, meta));
            root.files.insert("again".into(), ids[0]);
            let root_tree = tx
                .write_meta(ObjectType::DirTree, &root.to_bytes())
                .unwrap();
            let commit = Commit::of_tree(root_tree, meta);
            let commit = crate::commit::write_commit(&tx, &commit).unwrap();
            tx.commit().unwrap();

            assert!(repo.load_meta_cache(&commit, u64::MAX).unwrap().is_none());
            assert_eq!(repo.build_meta_cache(&commit).unwrap(), ids.len());
            let cache = repo.load_meta_cache(&commit, u64::MAX).unwrap().unwrap();
            for id in &ids {
                assert_eq!(
                    cache.get(id).unwrap(),
                    repo.content_meta(id).unwrap(),
                    "{mode:?}"
                );
            }
            assert!(
                repo.load_meta_cache(&commit, 10).unwrap().is_none(),
                "over budget"
            );
            let path = repo.meta_cache_path(&commit);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[HEADER_LEN + 40] ^= 1;
            std::fs::write(&path, &bytes).unwrap();
            let err = repo
                .load_meta_cache(&commit, u64::MAX)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(err.contains("checksum mismatch"), "{err}");
            // An unreadable object is left out, not recorded wrong.
            std::fs::remove_file(repo.object_path(&ids[1], ObjectType::File)).unwrap();
            assert_eq!(repo.build_meta_cache(&commit).unwrap(), ids.len() - 1);
            let cache = repo.load_meta_cache(&commit, u64::MAX).unwrap().unwrap();
            assert!(cache.get(&ids[1]).is_none());
            assert!(cache.get(&ids[0]).is_some());
        }
    }
}
