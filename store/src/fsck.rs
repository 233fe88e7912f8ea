//! `fsck`: re-verify every object reachable from the repository's commits, as ostree 2022.7's
//! `ostree fsck` does, with its exact messages and order; and the reachability walk that
//! `fsck` and [`crate::prune`] share.
//!
//! Fidelity to ostree goes down to three details that decide what gets printed:
//! - **Trusted loads.** ostree walks commits and dirtrees through GVariants loaded as
//!   "trusted", which GLib reads leniently when they are not in normal form (a truncated dirtree
//!   reads as shorter lists, a bad framing offset as an empty child). [`gv`] reproduces GLib
//!   2.74's framing rules, so a corrupt dirtree yields the same objects (or the same
//!   `Invalid checksum of length N expected 32` error) as under ostree.
//! - **Order.** ostree iterates `GHashTable`s (refs, commits, reachable objects, the commits
//!   containing an object); [`HashOrder`] reproduces GLib's bucket order, so the first error
//!   reported, the progress lines and `In commits A, B` lists match.
//! - **Messages.** Each check yields ostree's text (`fsck <csum>.<type>: Corrupted ...`).
//!
//! Speed: the walk is sequential (it must be, to reproduce the order) but cheap; the objects
//! are then hashed on rayon's pool, each read once (dirtrees and commits are kept from the
//! walk), while the calling thread reports results in ostree's order as they arrive.

use crate::format::{S_IFDIR, S_IFLNK, S_IFMT, S_IFREG};
use crate::gvariant::{Type, Value};
use crate::repo::{Repo, RepoMode};
use crate::{ObjectId, ObjectType};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::LazyLock;

/// An error as ostree words it (`error: <message>` on the command line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Failure(e.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}

/// An object as ostree names it: checksum and type.
pub type ObjName = (ObjectId, ObjectType);

/// ostree's numbering of object types (`OSTREE_OBJECT_TYPE_*`).
pub fn ostree_type_number(ty: ObjectType) -> u32 {
    match ty {
        ObjectType::File => 1,
        ObjectType::DirTree => 2,
        ObjectType::DirMeta => 3,
        ObjectType::Commit => 4,
        ObjectType::TombstoneCommit => 5,
        ObjectType::CommitMeta => 6,
    }
}

/// ostree's name of an object type (`ostree_object_type_to_string`).
pub fn ostree_type_name(ty: ObjectType) -> &'static str {
    match ty {
        ObjectType::File => "file",
        ObjectType::DirTree => "dirtree",
        ObjectType::DirMeta => "dirmeta",
        ObjectType::Commit => "commit",
        ObjectType::TombstoneCommit => "tombstone-commit",
        ObjectType::CommitMeta => "commitmeta",
    }
}

/// The loose path below `objects/` exactly as ostree builds it (`_ostree_loose_path`).
fn loose_path(repo: &Repo, id: &ObjectId, ty: ObjectType) -> String {
    let z = if ty == ObjectType::File && repo.mode() == RepoMode::Archive {
        "z"
    } else {
        ""
    };
    id.loose_path(&format!("{}{z}", ostree_type_name(ty)))
}

// ---------------------------------------------------------------------------------------------
// GLib hash table order
// ---------------------------------------------------------------------------------------------

/// `g_str_hash`: djb2 over signed chars.
pub fn g_str_hash(key: &[u8]) -> u32 {
    let mut h: u32 = 5381;
    for &b in key {
        h = h.wrapping_mul(33).wrapping_add(b as i8 as i32 as u32);
    }
    h
}

/// `ostree_hash_object_name`: `g_str_hash(checksum) + type`.
pub fn object_name_hash(name: &ObjName) -> u32 {
    g_str_hash(name.0.to_string().as_bytes()).wrapping_add(ostree_type_number(name.1))
}

const PRIMES: [u32; 32] = [
    1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
    262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689,
    268435399, 536870909, 1073741789, 2147483647,
];

/// An insert-only set that iterates in the order a GLib 2.74 `GHashTable` filled with the same
/// keys in the same order would (the caller supplies each key's GLib hash).
#[derive(Debug, Clone)]
pub struct HashOrder<K> {
    hashes: Vec<u32>,
    keys: Vec<Option<K>>,
    modulo: u32,
    nnodes: usize,
    noccupied: usize,
}

impl<K: PartialEq> Default for HashOrder<K> {
    fn default() -> Self {
        HashOrder {
            hashes: vec![0; 8],
            keys: (0..8).map(|_| None).collect(),
            modulo: PRIMES[3],
            nnodes: 0,
            noccupied: 0,
        }
    }
}

impl<K: PartialEq> HashOrder<K> {
    fn bucket(&self, h: u32) -> usize {
        (h.wrapping_mul(11) % self.modulo) as usize
    }

    fn find(&self, key: &K, h: u32) -> (usize, bool) {
        let mask = self.hashes.len() - 1;
        let mut i = self.bucket(h);
        let mut step = 0;
        while self.hashes[i] != 0 {
            if self.hashes[i] == h && self.keys[i].as_ref() == Some(key) {
                return (i, true);
            }
            step += 1;
            i = (i + step) & mask;
        }
        (i, false)
    }

    /// Whether `key` (whose GLib hash is `hash`) is present.
    pub fn contains(&self, key: &K, hash: u32) -> bool {
        self.find(key, hash.max(2)).1
    }

    /// Adds `key`; an existing key keeps its place. Returns whether it was new.
    pub fn insert(&mut self, key: K, hash: u32) -> bool {
        let h = hash.max(2);
        let (i, found) = self.find(&key, h);
        if found {
            return false;
        }
        self.hashes[i] = h;
        self.keys[i] = Some(key);
        self.nnodes += 1;
        self.noccupied += 1;
        let size = self.hashes.len();
        if (size > self.nnodes * 4 && size > 8) || size <= self.noccupied + self.noccupied / 16 {
            self.resize();
        }
        true
    }

    fn resize(&mut self) {
        let old = self.hashes.len();
        let mut n = (self.nnodes as f64 * 1.333) as usize;
        let mut shift = 0;
        while n > 0 {
            shift += 1;
            n >>= 1;
        }
        let shift = shift.clamp(3, 31);
        let size = 1usize << shift;
        self.modulo = PRIMES[shift];
        if size > old {
            self.hashes.resize(size, 0);
            self.keys.resize_with(size, || None);
        }
        let mask = size - 1;
        let mut placed = vec![false; size.max(old)];
        for i in 0..old {
            let mut nh = self.hashes[i];
            if nh < 2 {
                self.hashes[i] = 0;
                continue;
            }
            if placed[i] {
                continue;
            }
            self.hashes[i] = 0;
            let mut key = self.keys[i].take();
            loop {
                let mut hv = self.bucket(nh);
                let mut step = 0;
                while placed[hv] {
                    step += 1;
                    hv = (hv + step) & mask;
                }
                placed[hv] = true;
                let evicted = self.hashes[hv];
                self.hashes[hv] = nh;
                if evicted < 2 {
                    self.keys[hv] = key;
                    break;
                }
                nh = evicted;
                std::mem::swap(&mut key, &mut self.keys[hv]);
            }
        }
        if size < old {
            self.hashes.truncate(size);
            self.keys.truncate(size);
        }
        self.noccupied = self.nnodes;
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.nnodes
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.nnodes == 0
    }

    /// The keys in GLib's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        self.hashes
            .iter()
            .zip(&self.keys)
            .filter(|(h, _)| **h >= 2)
            .filter_map(|(_, k)| k.as_ref())
    }
}

// ---------------------------------------------------------------------------------------------
// GLib's lenient reading of serialized GVariants
// ---------------------------------------------------------------------------------------------

/// GLib 2.74's access to serialized GVariants loaded as trusted (`gvariant-serialiser.c`):
/// never fails, whatever the bytes; malformed framing yields empty or zero children.
pub mod gv {
    use crate::gvariant::Type;

    /// The serialized bytes of one value, or `n` zero bytes for a fixed-size child GLib could
    /// not frame (its `data == NULL, size == n` case).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Data<'a> {
        /// Real bytes.
        Bytes(&'a [u8]),
        /// That many zero bytes.
        Zeros(usize),
    }

    impl<'a> Data<'a> {
        /// The size in bytes.
        pub fn size(&self) -> usize {
            match self {
                Data::Bytes(b) => b.len(),
                Data::Zeros(n) => *n,
            }
        }

        /// The bytes (empty for zeros).
        pub fn bytes(&self) -> &'a [u8] {
            match self {
                Data::Bytes(b) => b,
                Data::Zeros(_) => &[],
            }
        }

        /// A `u` that ostree stored big-endian.
        pub fn u32_be(&self) -> u32 {
            match self {
                Data::Bytes(b) if b.len() == 4 => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                _ => 0,
            }
        }

        /// A `t` that ostree stored big-endian.
        pub fn u64_be(&self) -> u64 {
            match self {
                Data::Bytes(b) if b.len() == 8 => {
                    u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]))
                }
                _ => 0,
            }
        }

        /// A string read as `g_variant_get_string` does for trusted data: up to the first NUL.
        pub fn str_bytes(&self) -> &'a [u8] {
            let b = self.bytes();
            match b.iter().position(|&c| c == 0) {
                Some(n) => &b[..n],
                None => b,
            }
        }
    }

    fn offset_size(size: usize) -> usize {
        if size > u32::MAX as usize {
            8
        } else if size > 0xffff {
            4
        } else if size > 0xff {
            2
        } else if size > 0 {
            1
        } else {
            0
        }
    }

    fn read_le(b: &[u8]) -> usize {
        let mut buf = [0u8; 8];
        let n = b.len().min(8);
        buf[..n].copy_from_slice(&b[..n]);
        u64::from_le_bytes(buf) as usize
    }

    fn align(offset: usize, one_less: usize) -> usize {
        offset.wrapping_add(offset.wrapping_neg() & one_less)
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Ending {
        Fixed,
        Last,
        Offset,
    }

    #[derive(Clone, Copy, Debug)]
    struct Member {
        /// GLib's `i + 1`: how many framing offsets precede this member's start (0 = none).
        ip1: usize,
        a: usize,
        b: usize,
        c: usize,
        ending: Ending,
        fixed: usize,
    }

    /// `tuple_generate_table` and `tuple_table_append` of `gvarianttypeinfo.c`.
    fn members(items: &[&Type]) -> Vec<Member> {
        let mut out = Vec::with_capacity(items.len());
        let (mut i, mut a, mut b, mut c) = (usize::MAX, 0usize, 0usize, 0usize);
        for (n, t) in items.iter().enumerate() {
            let d = t.alignment() - 1;
            let e = t.fixed_size().unwrap_or(0);
            if d <= b {
                c = align(c, d);
            } else {
                a = a.wrapping_add(align(c, b));
                b = d;
                c = 0;
            }
            let ending = if e != 0 {
                Ending::Fixed
            } else if n + 1 == items.len() {
                Ending::Last
            } else {
                Ending::Offset
            };
            out.push(Member {
                ip1: i.wrapping_add(1),
                a: a.wrapping_add(!b & c).wrapping_add(b),
                b: !b,
                c: c & b,
                ending,
                fixed: e,
            });
            if e == 0 {
                i = i.wrapping_add(1);
                a = 0;
                b = 0;
                c = 0;
            } else {
                c += e;
            }
        }
        out
    }

    fn member_bounds(m: &Member, data: &[u8], osz: usize) -> (usize, usize) {
        let size = data.len();
        let at = |k: usize| read_le(&data[size - osz * k..size - osz * k + osz]);
        let mut start = if m.ip1 != 0 && osz * m.ip1 <= size {
            at(m.ip1)
        } else {
            0
        };
        start = start.wrapping_add(m.a);
        start &= m.b;
        start |= m.c;
        let end = match m.ending {
            Ending::Last if osz * m.ip1 <= size => size - osz * m.ip1,
            Ending::Fixed => start.wrapping_add(m.fixed),
            Ending::Offset if osz * (m.ip1 + 1) <= size => at(m.ip1 + 1),
            _ => usize::MAX,
        };
        (start, end)
    }

    /// Child `index` of a tuple whose item types are `items` (`gvs_tuple_get_child`).
    pub fn tuple_child<'a>(items: &[&Type], v: Data<'a>, index: usize) -> Data<'a> {
        let ms = members(items);
        let Some(m) = ms.get(index) else {
            return Data::Bytes(&[]);
        };
        let empty = if m.ending == Ending::Fixed {
            Data::Zeros(m.fixed)
        } else {
            Data::Bytes(&[])
        };
        let data = match v {
            Data::Zeros(_) => return empty,
            Data::Bytes(b) => b,
        };
        let size = data.len();
        let osz = offset_size(size);
        let needed = if m.ending == Ending::Offset {
            m.ip1 + 1
        } else {
            m.ip1
        };
        if osz * needed > size {
            return empty;
        }
        let (start, end) = member_bounds(m, data, osz);
        let (_, last_end) = member_bounds(&ms[ms.len() - 1], data, osz);
        if start < end && end <= size && end <= last_end {
            Data::Bytes(&data[start..end])
        } else {
            empty
        }
    }

    struct Frame {
        length: usize,
        data_size: usize,
        osz: usize,
    }

    fn frame(data: &[u8]) -> Frame {
        let size = data.len();
        let none = Frame {
            length: 0,
            data_size: 0,
            osz: 0,
        };
        if size == 0 {
            return none;
        }
        let osz = offset_size(size);
        let last_end = read_le(&data[size - osz..]);
        if last_end > size {
            return none;
        }
        let table = size - last_end;
        if table % osz != 0 {
            return none;
        }
        Frame {
            length: table / osz,
            data_size: last_end,
            osz,
        }
    }

    /// The number of elements of an array of `elem` (`g_variant_n_children`).
    pub fn array_len(elem: &Type, v: Data<'_>) -> usize {
        let size = v.size();
        match elem.fixed_size() {
            Some(fs) if fs > 0 => {
                if size % fs == 0 {
                    size / fs
                } else {
                    0
                }
            }
            _ => frame(v.bytes()).length,
        }
    }

    /// Element `index` (< [`array_len`]) of an array of `elem`.
    pub fn array_child<'a>(elem: &Type, v: Data<'a>, index: usize) -> Data<'a> {
        let data = v.bytes();
        if let Some(fs) = elem.fixed_size().filter(|&fs| fs > 0) {
            return match data.get(fs * index..fs * (index + 1)) {
                Some(b) => Data::Bytes(b),
                None => Data::Zeros(fs),
            };
        }
        let f = frame(data);
        if index >= f.length {
            return Data::Bytes(&[]);
        }
        let table = &data[f.data_size..];
        let off = |n: usize| read_le(&table[n * f.osz..(n + 1) * f.osz]);
        let start = if index > 0 {
            align(off(index - 1), elem.alignment() - 1)
        } else {
            0
        };
        let end = off(index);
        if start < end && end <= data.len() && end <= f.data_size {
            Data::Bytes(&data[start..end])
        } else {
            Data::Bytes(&[])
        }
    }
}

static AY: LazyLock<Type> = LazyLock::new(|| Type::Array(Box::new(Type::Byte)));
static DIRTREE_ITEMS: LazyLock<[Type; 2]> = LazyLock::new(|| {
    [
        Type::Array(Box::new(Type::Tuple(vec![Type::String, AY.clone()]))),
        Type::Array(Box::new(Type::Tuple(vec![
            Type::String,
            AY.clone(),
            AY.clone(),
        ]))),
    ]
});
static COMMIT_ITEMS: LazyLock<Vec<Type>> = LazyLock::new(|| match &*crate::format::COMMIT_TYPE {
    Type::Tuple(items) => items.clone(),
    _ => Vec::new(),
});
static FILEZ_ITEMS: LazyLock<Vec<Type>> =
    LazyLock::new(|| match &*crate::format::FILEZ_HEADER_TYPE {
        Type::Tuple(items) => items.clone(),
        _ => Vec::new(),
    });
static OSTREEMETA_ITEMS: LazyLock<Vec<Type>> =
    LazyLock::new(|| match &*crate::format::DIRMETA_TYPE {
        Type::Tuple(items) => items.clone(),
        _ => Vec::new(),
    });

fn refs(items: &[Type]) -> Vec<&Type> {
    items.iter().collect()
}

/// `ostree_checksum_bytes_peek_validate`.
fn checksum_of(v: gv::Data<'_>) -> Result<ObjectId, Failure> {
    let b = v.bytes();
    ObjectId::from_bytes(b).ok_or_else(|| {
        Failure(format!(
            "Invalid checksum of length {} expected 32",
            v.size()
        ))
    })
}

/// What a commit's walk needs, read as ostree reads it (leniently).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitView {
    /// Child 1, the parent checksum bytes (empty: no parent).
    pub parent: Vec<u8>,
    /// Child 5, the timestamp.
    pub timestamp: u64,
    /// Child 6, the root dirtree checksum bytes.
    pub root_tree: Vec<u8>,
    /// Child 7, the root dirmeta checksum bytes.
    pub root_meta: Vec<u8>,
}

impl CommitView {
    /// Reads commit bytes leniently, as ostree's trusted loads do.
    pub fn read(bytes: &[u8]) -> CommitView {
        let items = refs(&COMMIT_ITEMS);
        let v = gv::Data::Bytes(bytes);
        let child = |i| gv::tuple_child(&items, v, i);
        CommitView {
            parent: child(1).bytes().to_vec(),
            timestamp: child(5).u64_be(),
            root_tree: child(6).bytes().to_vec(),
            root_meta: child(7).bytes().to_vec(),
        }
    }

    /// The parent, as `ostree_commit_get_parent` returns it.
    pub fn parent(&self) -> Result<Option<ObjectId>, Failure> {
        if self.parent.is_empty() {
            return Ok(None);
        }
        checksum_of(gv::Data::Bytes(&self.parent)).map(Some)
    }
}

/// The entries of a dirtree read leniently: files (checksum bytes) then directories
/// (dirtree and dirmeta checksum bytes), in stored order.
fn dirtree_entries(bytes: &[u8]) -> (Vec<gv::Data<'_>>, Vec<(gv::Data<'_>, gv::Data<'_>)>) {
    let top = refs(&*DIRTREE_ITEMS);
    let v = gv::Data::Bytes(bytes);
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    for (n, arr_ty) in DIRTREE_ITEMS.iter().enumerate() {
        let Type::Array(elem) = arr_ty else { continue };
        let arr = gv::tuple_child(&top, v, n);
        let Type::Tuple(entry_items) = &**elem else {
            continue;
        };
        let entry_items = refs(entry_items);
        for i in 0..gv::array_len(elem, arr) {
            let e = gv::array_child(elem, arr, i);
            if n == 0 {
                files.push(gv::tuple_child(&entry_items, e, 1));
            } else {
                dirs.push((
                    gv::tuple_child(&entry_items, e, 1),
                    gv::tuple_child(&entry_items, e, 2),
                ));
            }
        }
    }
    (files, dirs)
}

// ---------------------------------------------------------------------------------------------
// Low-level reads
// ---------------------------------------------------------------------------------------------

/// `strerror` text of an errno, as GLib prints it (without Rust's `(os error N)`).
pub(crate) fn io_msg(e: Errno) -> String {
    strip_os_error(std::io::Error::from(e).to_string())
}

/// Drops the ` (os error N)` suffix Rust appends to system error messages.
pub(crate) fn strip_os_error(s: String) -> String {
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Opens a file below `dir` for reading, following symlinks as ostree's `openat` does.
fn open_read(dir: impl AsFd, rel: &str) -> Result<Option<std::fs::File>, Errno> {
    match rustix::fs::openat(dir, rel, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => Ok(Some(std::fs::File::from(fd))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads a whole open file into `buf` (cleared first), sized by `fstat`.
fn read_all(mut file: std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<()> {
    use std::io::Read;
    buf.clear();
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    buf.reserve(size.saturating_add(1));
    file.read_to_end(buf).map(|_| ())
}

/// Reads a loose metadata object as ostree's loads do; `None` when absent.
fn read_meta(repo: &Repo, id: &ObjectId, ty: ObjectType) -> Result<Option<Vec<u8>>, Failure> {
    let rel = loose_path(repo, id, ty);
    let file = match open_read(&repo.objects, &rel) {
        Ok(Some(f)) => f,
        Ok(None) => return Ok(None),
        Err(e) => return fail(format!("openat({rel}): {}", io_msg(e))),
    };
    let mut buf = Vec::new();
    read_all(file, &mut buf)
        .map_err(|e| Failure(format!("read({rel}): {}", strip_os_error(e.to_string()))))?;
    Ok(Some(buf))
}

/// Whether `state/<commit>.commitpartial` exists, and whether its reason is fsck (`f`).
fn commit_state(repo: &Repo, id: &ObjectId) -> Result<(bool, bool), Failure> {
    let rel = format!("state/{id}.commitpartial");
    match rustix::fs::openat(
        &repo.root,
        rel.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let mut b = [0u8; 1];
            let fsck = matches!(rustix::io::read(&fd, &mut b), Ok(1)) && b[0] == b'f';
            Ok((true, fsck))
        }
        Err(Errno::NOENT) => Ok((false, false)),
        Err(e) => fail(format!("openat({rel}): {}", io_msg(e))),
    }
}

/// `ostree_repo_load_commit`: the commit must exist; returns its partial state.
fn load_commit_state(repo: &Repo, id: &ObjectId) -> Result<(bool, bool), Failure> {
    let rel = loose_path(repo, id, ObjectType::Commit);
    match rustix::fs::statat(&repo.objects, rel.as_str(), AtFlags::empty()) {
        Ok(_) => commit_state(repo, id),
        Err(Errno::NOENT) => fail(format!("No such metadata object {id}.commit")),
        Err(e) => fail(format!("openat({rel}): {}", io_msg(e))),
    }
}

/// Marks a commit partial (`state/<c>.commitpartial`), with reason `f` when found by fsck.
pub fn mark_commit_partial(repo: &Repo, id: &ObjectId, fsck: bool) -> Result<(), Failure> {
    let rel = format!("state/{id}.commitpartial");
    match rustix::fs::openat(
        &repo.root,
        rel.as_str(),
        OFlags::EXCL | OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(fd) => {
            if fsck {
                crate::fsutil::write_all(&fd, b"f").map_err(|e| {
                    Failure(format!("write({rel}): {}", strip_os_error(e.to_string())))
                })?;
            }
            Ok(())
        }
        Err(Errno::EXIST) => Ok(()),
        Err(e) => fail(format!("open({rel}): {}", io_msg(e))),
    }
}

/// Clears a commit's partial mark.
pub fn unmark_commit_partial(repo: &Repo, id: &ObjectId) -> Result<(), Failure> {
    let rel = format!("state/{id}.commitpartial");
    match rustix::fs::unlinkat(&repo.root, rel.as_str(), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => fail(format!("unlinkat({rel}): {}", io_msg(e))),
    }
}

/// Deletes an object as `ostree_repo_delete_object` does: a commit takes its `.commitmeta`
/// with it and leaves a tombstone when `core.tombstone-commits` is set.
pub fn delete_object(repo: &Repo, id: &ObjectId, ty: ObjectType) -> Result<(), Failure> {
    if ty == ObjectType::Commit {
        let meta = loose_path(repo, id, ObjectType::CommitMeta);
        match rustix::fs::unlinkat(&repo.objects, meta.as_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return fail(format!("unlinkat({meta}): {}", io_msg(e))),
        }
    }
    let rel = loose_path(repo, id, ty);
    if let Err(e) = rustix::fs::unlinkat(&repo.objects, rel.as_str(), AtFlags::empty()) {
        return fail(format!(
            "Deleting object {id}.{}: unlinkat({rel}): {}",
            ostree_type_name(ty),
            io_msg(e)
        ));
    }
    if ty == ObjectType::Commit
        && repo
            .config()
            .get_bool("core", "tombstone-commits")
            .ok()
            .flatten()
            .unwrap_or(false)
    {
        let mut hex = id.to_string().into_bytes();
        hex.push(0);
        let bytes =
            crate::format::metadata_value(&[("commit".to_string(), Value::Bytes(hex))]).to_bytes();
        let path = loose_path(repo, id, ObjectType::TombstoneCommit);
        let (dir, leaf) = path.split_at(2);
        let shown = repo.path().join("objects").join(&path);
        let dfd = crate::fsutil::open_dir_at(&repo.objects, dir, &shown)?;
        crate::fsutil::replace_file_at(
            &dfd,
            &leaf[1..],
            &bytes,
            0o644,
            repo.fsync_enabled(),
            &shown,
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reachability
// ---------------------------------------------------------------------------------------------

/// The objects reachable from a set of commits, gathered exactly as
/// `ostree_repo_traverse_commit_with_flags` gathers them (same order, same errors).
#[derive(Debug)]
pub struct Reachable<'r> {
    repo: &'r Repo,
    set: HashOrder<ObjName>,
    parents: Option<HashMap<ObjName, Vec<ObjName>>>,
    cache: Option<HashMap<ObjName, Vec<u8>>>,
    commit_only: bool,
    in_progress: Vec<ObjectId>,
}

/// Dirtree nesting beyond which a walk is refused (ostree would overflow its stack).
const MAX_TREE_DEPTH: usize = 8192;

impl<'r> Reachable<'r> {
    /// An empty set. `with_parents` records which objects contain which (for fsck's
    /// `In commits ...`); `keep_bytes` keeps the commits and dirtrees read during the walk.
    pub fn new(repo: &'r Repo, with_parents: bool, keep_bytes: bool) -> Self {
        Reachable {
            repo,
            set: HashOrder::default(),
            parents: with_parents.then(HashMap::new),
            cache: keep_bytes.then(HashMap::new),
            commit_only: false,
            in_progress: Vec::new(),
        }
    }

    /// Only walk commits, not their trees (`--commit-only`).
    pub fn set_commit_only(&mut self, commit_only: bool) {
        self.commit_only = commit_only;
    }

    /// Whether an object was reached.
    pub fn contains(&self, id: &ObjectId, ty: ObjectType) -> bool {
        let name = (*id, ty);
        self.set.contains(&name, object_name_hash(&name))
    }

    /// The number of objects reached.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing was reached.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The objects in ostree's iteration order.
    pub fn iter(&self) -> impl Iterator<Item = &ObjName> {
        self.set.iter()
    }

    /// The bytes of a commit or dirtree read during the walk (when kept).
    pub fn cached(&self, name: &ObjName) -> Option<&[u8]> {
        self.cache.as_ref()?.get(name).map(Vec::as_slice)
    }

    /// The commits containing `name`, in the order ostree lists them (`In commits ...`).
    pub fn containing_commits(&self, name: &ObjName) -> Vec<ObjectId> {
        let mut res: HashOrder<String> = HashOrder::default();
        let mut seen = std::collections::HashSet::new();
        self.collect_commits(name, &mut res, &mut seen);
        res.iter()
            .filter_map(|s| ObjectId::from_hex(s).ok())
            .collect()
    }

    fn collect_commits(
        &self,
        name: &ObjName,
        res: &mut HashOrder<String>,
        seen: &mut std::collections::HashSet<ObjName>,
    ) {
        if name.1 == ObjectType::Commit {
            let s = name.0.to_string();
            let h = g_str_hash(s.as_bytes());
            res.insert(s, h);
            return;
        }
        // A corrupt repository could make the parent graph cyclic; visit each object once
        // (ostree's result is a set, so this changes nothing else).
        if !seen.insert(*name) {
            return;
        }
        let Some(parents) = self.parents.as_ref().and_then(|p| p.get(name)) else {
            return;
        };
        for p in parents {
            self.collect_commits(p, res, seen);
        }
    }

    fn add(&mut self, name: ObjName) {
        let h = object_name_hash(&name);
        self.set.insert(name, h);
    }

    fn add_parent(&mut self, key: ObjName, parent: ObjName) {
        let Some(parents) = self.parents.as_mut() else {
            return;
        };
        let list = parents.entry(key).or_default();
        list.retain(|p| *p != parent);
        list.push(parent);
    }

    fn load(&mut self, id: &ObjectId, ty: ObjectType) -> Result<Option<Vec<u8>>, Failure> {
        let name = (*id, ty);
        if let Some(b) = self.cache.as_ref().and_then(|c| c.get(&name)) {
            return Ok(Some(b.clone()));
        }
        let bytes = read_meta(self.repo, id, ty)?;
        if let (Some(cache), Some(b)) = (self.cache.as_mut(), bytes.as_ref()) {
            cache.insert(name, b.clone());
        }
        Ok(bytes)
    }

    /// Adds `commit` and, unless commit-only, everything in its tree; then its parents up to
    /// `maxdepth` of them (-1: all). A missing commit ends the walk silently; a missing dirtree
    /// is an error unless the commit is partial.
    pub fn traverse_commit(&mut self, commit: &ObjectId, maxdepth: i32) -> Result<(), Failure> {
        let mut csum = *commit;
        let mut depth = maxdepth;
        loop {
            let key = (csum, ObjectType::Commit);
            if self.set.contains(&key, object_name_hash(&key)) {
                break;
            }
            let Some(bytes) = self.load(&csum, ObjectType::Commit)? else {
                break;
            };
            let (partial, _) = commit_state(self.repo, &csum)?;
            self.add(key);
            let view = CommitView::read(&bytes);
            if !self.commit_only {
                let root_tree = checksum_of(gv::Data::Bytes(&view.root_tree))?;
                let root_meta = checksum_of(gv::Data::Bytes(&view.root_meta))?;
                self.walk_commit_root(key, &root_tree, &root_meta, partial)?;
            }
            if depth == -1 || depth > 0 {
                if let Some(parent) = view.parent()? {
                    csum = parent;
                    if depth > 0 {
                        depth -= 1;
                    }
                    continue;
                }
            }
            break;
        }
        Ok(())
    }

    /// The commit iterator: the root directory first (walked whole), then the root dirtree's
    /// entries again with the commit as their parent.
    fn walk_commit_root(
        &mut self,
        key: ObjName,
        root_tree: &ObjectId,
        root_meta: &ObjectId,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let Some(root_bytes) = self.load(root_tree, ObjectType::DirTree)? else {
            if ignore_missing {
                return Ok(());
            }
            return fail(format!("No such metadata object {root_tree}.dirtree"));
        };
        self.dir_entry(key, root_tree, root_meta, ignore_missing)?;
        self.walk_entries(&root_bytes, key, ignore_missing)
    }

    fn dir_entry(
        &mut self,
        parent: ObjName,
        tree: &ObjectId,
        meta: &ObjectId,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let meta_key = (*meta, ObjectType::DirMeta);
        self.add_parent(meta_key, parent);
        self.add(meta_key);
        let tree_key = (*tree, ObjectType::DirTree);
        self.add_parent(tree_key, parent);
        if !self.set.contains(&tree_key, object_name_hash(&tree_key)) {
            self.traverse_dirtree(tree, ignore_missing)?;
            self.add(tree_key);
        }
        Ok(())
    }

    fn traverse_dirtree(&mut self, tree: &ObjectId, ignore_missing: bool) -> Result<(), Failure> {
        if self.in_progress.contains(tree) || self.in_progress.len() >= MAX_TREE_DEPTH {
            return fail(format!(
                "Corrupted dirtree object {tree}: directory nesting loops or is too deep"
            ));
        }
        let Some(bytes) = self.load(tree, ObjectType::DirTree)? else {
            if ignore_missing {
                return Ok(());
            }
            return fail(format!("No such metadata object {tree}.dirtree"));
        };
        self.in_progress.push(*tree);
        let r = self.walk_entries(&bytes, (*tree, ObjectType::DirTree), ignore_missing);
        self.in_progress.pop();
        r
    }

    fn walk_entries(
        &mut self,
        bytes: &[u8],
        parent: ObjName,
        ignore_missing: bool,
    ) -> Result<(), Failure> {
        let (files, dirs) = dirtree_entries(bytes);
        for f in files {
            let key = (checksum_of(f)?, ObjectType::File);
            self.add_parent(key, parent);
            self.add(key);
        }
        for (t, m) in dirs {
            let tree = checksum_of(t)?;
            let meta = checksum_of(m)?;
            self.dir_entry(parent, &tree, &meta, ignore_missing)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Checking one object
// ---------------------------------------------------------------------------------------------

/// The outcome of verifying one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectCheck {
    /// Checksum and structure are right.
    Ok,
    /// The object is not stored.
    Missing,
    /// Anything else, with ostree's message (`fsck <csum>.<type>: ...`).
    Corrupt(String),
}

/// `validate_stat_mode_perms`.
fn check_perms(mode: u32) -> Result<(), String> {
    if mode & !(S_IFMT | 0o7777) != 0 {
        return Err(format!("Invalid mode {mode}; invalid bits in mode"));
    }
    Ok(())
}

/// `ot_util_filename_validate` (the empty name is accepted, as in ostree).
fn check_filename(name: &str) -> Result<(), String> {
    if name == "." {
        return Err("Invalid self-referential filename '.'".into());
    }
    if name == ".." {
        return Err("Invalid path uplink filename '..'".into());
    }
    if name.contains('/') {
        return Err(format!("Invalid / in filename {name}"));
    }
    Ok(())
}

fn check_csum_len(v: &Value) -> Result<(), String> {
    let n = v.as_bytes().map(<[u8]>::len).unwrap_or(0);
    if n != 32 {
        return Err(format!("Invalid checksum of length {n} expected 32"));
    }
    Ok(())
}

/// `_ostree_validate_structureof_metadata`: normal form, then the per-type rules.
pub fn validate_metadata_structure(ty: ObjectType, bytes: &[u8]) -> Result<(), String> {
    let vtype: &Type = match ty {
        ObjectType::Commit => &crate::format::COMMIT_TYPE,
        ObjectType::DirTree => &crate::format::DIRTREE_TYPE,
        ObjectType::DirMeta => &crate::format::DIRMETA_TYPE,
        _ => return Ok(()),
    };
    let v = match Value::from_bytes(vtype, bytes) {
        Ok(v) if v.to_bytes() == bytes => v,
        _ => return Err("Not normal form".into()),
    };
    let items = v.items().unwrap_or_default();
    match ty {
        ObjectType::Commit => {
            for entry in items.first().and_then(|m| m.as_array()).unwrap_or(&[]) {
                if let Value::DictEntry(k, _) = entry
                    && k.as_str().is_none_or(str::is_empty)
                {
                    return Err("Empty metadata key".into());
                }
            }
            if let Some(parent) = items.get(1)
                && parent.as_bytes().is_some_and(|b| !b.is_empty())
            {
                check_csum_len(parent)?;
            }
            for i in [6, 7] {
                if let Some(c) = items.get(i) {
                    check_csum_len(c)?;
                }
            }
        }
        ObjectType::DirTree => {
            for (n, list) in items.iter().enumerate().take(2) {
                for entry in list.as_array().unwrap_or(&[]) {
                    let parts = entry.items().unwrap_or_default();
                    check_filename(parts.first().and_then(|p| p.as_str()).unwrap_or(""))?;
                    for c in parts.iter().skip(1).take(if n == 0 { 1 } else { 2 }) {
                        check_csum_len(c)?;
                    }
                }
            }
        }
        ObjectType::DirMeta => {
            let mode = match items.get(2) {
                Some(Value::Uint32(m)) => u32::from_be(*m),
                _ => 0,
            };
            if mode & S_IFMT != S_IFDIR {
                return Err(format!(
                    "Invalid directory metadata mode {mode}; not a directory"
                ));
            }
            check_perms(mode)?;
        }
        _ => {}
    }
    Ok(())
}

/// `_ostree_verify_metadata_object`, with `fsck_metadata_object`'s prefix.
fn check_metadata_bytes(id: &ObjectId, ty: ObjectType, bytes: &[u8]) -> ObjectCheck {
    let tn = ostree_type_name(ty);
    let actual = ObjectId::digest(bytes);
    if actual != *id {
        return ObjectCheck::Corrupt(format!(
            "fsck {id}.{tn}: Corrupted {tn} object; checksum expected='{id}' actual='{actual}'"
        ));
    }
    match validate_metadata_structure(ty, bytes) {
        Ok(()) => ObjectCheck::Ok,
        Err(why) => ObjectCheck::Corrupt(format!("fsck {id}.{tn}: {id}.{tn}: {why}")),
    }
}

/// Verifies one object as `ostree_repo_fsck_object` does. `cached` may hold a metadata
/// object's bytes already read.
pub fn check_object(
    repo: &Repo,
    id: &ObjectId,
    ty: ObjectType,
    cached: Option<&[u8]>,
) -> ObjectCheck {
    if ty.is_meta() {
        if let Some(b) = cached {
            return check_metadata_bytes(id, ty, b);
        }
        return match read_meta(repo, id, ty) {
            Ok(Some(b)) => check_metadata_bytes(id, ty, &b),
            Ok(None) => ObjectCheck::Missing,
            Err(Failure(m)) => {
                ObjectCheck::Corrupt(format!("fsck {id}.{}: {m}", ostree_type_name(ty)))
            }
        };
    }
    CONTENT_BUF.with(|buf| match check_content(repo, id, &mut buf.borrow_mut()) {
        Ok(()) => ObjectCheck::Ok,
        Err(Bad::Missing) => ObjectCheck::Missing,
        Err(Bad::Why(why)) => ObjectCheck::Corrupt(format!("fsck content object {id}: {why}")),
    })
}

/// Why a content object failed: absent, or ostree's reason.
enum Bad {
    Missing,
    Why(String),
}

impl From<String> for Bad {
    fn from(s: String) -> Self {
        Bad::Why(s)
    }
}

thread_local! {
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
fn check_content(repo: &Repo, id: &ObjectId, buf: &mut Vec<u8>) -> Result<(), Bad> {
    let rel = loose_path(repo, id, ObjectType::File);
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
            let items = refs(&OSTREEMETA_ITEMS);
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
    let read_err = |e: std::io::Error| Bad::Why(format!("read: {}", strip_os_error(e.to_string())));
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
    let items = refs(&FILEZ_ITEMS);
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

// ---------------------------------------------------------------------------------------------
// Refs and commits, listed in ostree's order
// ---------------------------------------------------------------------------------------------

fn read_dir_entries(dir: impl AsFd) -> Vec<(Vec<u8>, rustix::fs::FileType)> {
    let mut out = Vec::new();
    let Ok(fd) = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return out;
    };
    let Ok(iter) = rustix::fs::Dir::read_from(&fd) else {
        return out;
    };
    for entry in iter.flatten() {
        let name = entry.file_name().to_bytes().to_vec();
        if name == b"." || name == b".." {
            continue;
        }
        let mut ft = entry.file_type();
        if ft == rustix::fs::FileType::Unknown
            && let Ok(st) = rustix::fs::statat(&fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
        {
            ft = rustix::fs::FileType::from_raw_mode(st.st_mode);
        }
        out.push((name, ft));
    }
    out
}

fn open_subdir(dir: impl AsFd, name: &str) -> Option<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

fn is_ref_fragment(name: &[u8]) -> bool {
    !name.is_empty()
        && name[0] != b'-'
        && name[0] != b'.'
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn enumerate_refs(
    dir: &OwnedFd,
    prefix: &str,
    label: &dyn Fn(&str) -> String,
    out: &mut Vec<(String, String)>,
) {
    for (name, ft) in read_dir_entries(dir) {
        if !is_ref_fragment(&name) {
            continue;
        }
        let name = String::from_utf8_lossy(&name).into_owned();
        let path = format!("{prefix}{name}");
        if ft == rustix::fs::FileType::Directory {
            if let Some(sub) = open_subdir(dir, &name) {
                enumerate_refs(&sub, &format!("{path}/"), label, out);
            }
        } else if ft == rustix::fs::FileType::RegularFile || ft == rustix::fs::FileType::Symlink {
            let mut bytes = Vec::new();
            if let Ok(Some(file)) = open_read(dir, &name)
                && read_all(file, &mut bytes).is_ok()
            {
                let text = String::from_utf8_lossy(&bytes).trim_end().to_string();
                out.push((label(&path), text));
            }
        }
    }
}

/// `ostree_repo_list_refs(NULL)`: local refs then `remote:ref`s, in the order ostree's hash
/// table iterates them, with their (unvalidated) targets.
pub fn list_refs_ostree_order(repo: &Repo) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Some(heads) = open_subdir(&repo.root, "refs/heads") {
        enumerate_refs(&heads, "", &|p| p.to_string(), &mut found);
    }
    if let Some(remotes) = open_subdir(&repo.root, "refs/remotes") {
        for (remote, ft) in read_dir_entries(&remotes) {
            if ft != rustix::fs::FileType::Directory {
                continue;
            }
            let remote = String::from_utf8_lossy(&remote).into_owned();
            if let Some(rdir) = open_subdir(&remotes, &remote) {
                enumerate_refs(&rdir, "", &|p| format!("{remote}:{p}"), &mut found);
            }
        }
    }
    order_pairs(found, |k| g_str_hash(k.as_bytes()))
}

/// `ostree_repo_list_collection_refs(EXCLUDE_REMOTES)`: `((collection, ref), target)`.
fn list_collection_refs(repo: &Repo) -> Vec<((String, String), String)> {
    let mut found = Vec::new();
    if let Some(cid) = repo.config().get("core", "collection-id")
        && let Some(heads) = open_subdir(&repo.root, "refs/heads")
    {
        let mut local = Vec::new();
        enumerate_refs(&heads, "", &|p| p.to_string(), &mut local);
        found.extend(local.into_iter().map(|(r, t)| ((cid.to_string(), r), t)));
    }
    if let Some(mirrors) = open_subdir(&repo.root, "refs/mirrors") {
        for (cid, ft) in read_dir_entries(&mirrors) {
            if ft != rustix::fs::FileType::Directory {
                continue;
            }
            let cid = String::from_utf8_lossy(&cid).into_owned();
            if let Some(cdir) = open_subdir(&mirrors, &cid) {
                let mut refs = Vec::new();
                enumerate_refs(&cdir, "", &|p| p.to_string(), &mut refs);
                found.extend(refs.into_iter().map(|(r, t)| ((cid.clone(), r), t)));
            }
        }
    }
    order_pairs(found, |(c, r)| {
        g_str_hash(c.as_bytes()) ^ g_str_hash(r.as_bytes())
    })
}

fn order_pairs<K: PartialEq + Clone, V: Clone>(
    pairs: Vec<(K, V)>,
    hash: impl Fn(&K) -> u32,
) -> Vec<(K, V)> {
    let mut t: HashOrder<K> = HashOrder::default();
    let mut values: Vec<(K, V)> = Vec::new();
    for (k, v) in pairs {
        if let Some(slot) = values.iter_mut().find(|(key, _)| *key == k) {
            slot.1 = v;
        } else {
            values.push((k.clone(), v));
        }
        let h = hash(&k);
        t.insert(k, h);
    }
    t.iter()
        .filter_map(|k| values.iter().find(|(key, _)| key == k).cloned())
        .collect()
}

/// Every loose `.commit` object, in the order ostree's `list_loose_objects` fills its table:
/// directories `00`..`ff`, entries in `readdir` order.
fn list_commit_objects(repo: &Repo) -> Vec<ObjectId> {
    let mut out = Vec::new();
    for c in 0..=255u8 {
        let prefix = format!("{c:02x}");
        let Some(dir) = open_subdir(&repo.objects, &prefix) else {
            continue;
        };
        for (name, _) in read_dir_entries(&dir) {
            let Some(stem) = name.strip_suffix(b".commit") else {
                continue;
            };
            if stem.len() != 62 {
                continue;
            }
            if let Ok(id) =
                ObjectId::from_hex(&format!("{prefix}{}", String::from_utf8_lossy(stem)))
            {
                out.push(id);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// fsck
// ---------------------------------------------------------------------------------------------

/// Options of [`fsck`].
#[derive(Clone, Copy, Debug, Default)]
pub struct FsckOptions {
    /// Omit the four phase lines (`-q`).
    pub quiet: bool,
    /// Report every corrupt object instead of stopping at the first (`--all`).
    pub all: bool,
    /// Delete corrupt objects and mark the commits containing them partial (`--delete`).
    pub delete: bool,
}

/// Where [`fsck`] writes what ostree prints, as it happens.
pub trait FsckSink {
    /// A line for standard output (no trailing newline).
    fn out(&mut self, line: &str);
    /// A line for standard error (no trailing newline).
    fn err(&mut self, line: &str);
    /// Called after each object is checked: `done` of `total`.
    fn progress(&mut self, done: usize, total: usize) {
        let _ = (done, total);
    }
}

/// A sink that only records lines (for library callers and tests).
#[derive(Debug, Default)]
pub struct Recorder {
    /// Standard-output lines.
    pub out: Vec<String>,
    /// Standard-error lines.
    pub err: Vec<String>,
}

impl FsckSink for Recorder {
    fn out(&mut self, line: &str) {
        self.out.push(line.to_string());
    }
    fn err(&mut self, line: &str) {
        self.err.push(line.to_string());
    }
}

/// A problem [`fsck`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// An object that should be stored is not.
    Missing {
        /// The object.
        name: ObjName,
        /// The commits containing it (empty for a ref's commit).
        commits: Vec<ObjectId>,
    },
    /// An object whose checksum or structure is wrong, with ostree's message.
    Corrupt {
        /// The object.
        name: ObjName,
        /// The message as printed.
        message: String,
        /// Whether `--delete` removed it.
        deleted: bool,
    },
}

/// What [`fsck`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Non-partial commits verified.
    pub commits: usize,
    /// Objects reachable from them, each checked.
    pub objects: usize,
    /// Commits that were already partial (not verified).
    pub partial_commits: usize,
    /// Problems in the order reported.
    pub problems: Vec<Problem>,
    /// Commits this run marked partial.
    pub marked_partial: Vec<ObjectId>,
}

struct Run<'a, 'r> {
    repo: &'r Repo,
    opts: FsckOptions,
    sink: &'a mut dyn FsckSink,
    report: FsckReport,
    found_corruption: bool,
}

impl Run<'_, '_> {
    /// `fsck_one_object` after the check: report, delete, mark partial, or abort.
    fn handle(
        &mut self,
        name: ObjName,
        check: ObjectCheck,
        commits: Option<Vec<ObjectId>>,
    ) -> Result<(), Failure> {
        let (id, ty) = name;
        let tn = ostree_type_name(ty);
        let joined = commits.as_ref().map(|c| {
            c.iter()
                .map(ObjectId::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        });
        let missing = match check {
            ObjectCheck::Ok => return Ok(()),
            ObjectCheck::Missing => {
                self.sink.err(&match &joined {
                    Some(j) => format!("Object missing in commits {j}: {id}.{tn}"),
                    None => format!("Object missing: {id}.{tn}"),
                });
                self.report.problems.push(Problem::Missing {
                    name,
                    commits: commits.clone().unwrap_or_default(),
                });
                true
            }
            ObjectCheck::Corrupt(msg) => {
                let msg = match &joined {
                    Some(j) => format!("In commits {j}: {msg}"),
                    None => msg,
                };
                if self.opts.delete {
                    self.sink.err(&msg);
                    let _ = delete_object(self.repo, &id, ty);
                    self.report.problems.push(Problem::Corrupt {
                        name,
                        message: msg,
                        deleted: true,
                    });
                    true
                } else if self.opts.all {
                    self.found_corruption = true;
                    self.sink.err(&msg);
                    self.report.problems.push(Problem::Corrupt {
                        name,
                        message: msg,
                        deleted: false,
                    });
                    false
                } else {
                    return fail(msg);
                }
            }
        };
        if missing {
            self.found_corruption = true;
            if let Some(commits) = commits
                && ty != ObjectType::Commit
            {
                for c in commits {
                    let (partial, _) = load_commit_state(self.repo, &c)?;
                    if !partial {
                        self.sink.err(&format!("Marking commit as partial: {c}"));
                        mark_commit_partial(self.repo, &c, true)?;
                        self.report.marked_partial.push(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// `fsck_commit_for_ref`.
    fn check_ref_commit(&mut self, target: &str, label: &str) -> Result<(), Failure> {
        let Ok(id) = ObjectId::from_hex(target) else {
            self.sink.err(&format!("Object missing: {target}.commit"));
            self.found_corruption = true;
            return fail(format!(
                "Loading commit for ref {label}: No such metadata object {target}.commit"
            ));
        };
        let check = check_object(self.repo, &id, ObjectType::Commit, None);
        self.handle((id, ObjectType::Commit), check, None)?;
        if !self
            .repo
            .has_object(&id, ObjectType::Commit)
            .unwrap_or(false)
        {
            return fail(format!(
                "Loading commit for ref {label}: No such metadata object {id}.commit"
            ));
        }
        Ok(())
    }
}

/// Checks the repository as `ostree fsck` does, writing ostree's lines to `sink` as they
/// happen. On success returns the report; on failure the error ostree prints
/// (`Repository corruption encountered`, or the first corruption without `--all`).
pub fn fsck(
    repo: &Repo,
    opts: &FsckOptions,
    sink: &mut dyn FsckSink,
) -> Result<FsckReport, Failure> {
    let mut run = Run {
        repo,
        opts: *opts,
        sink,
        report: FsckReport::default(),
        found_corruption: false,
    };
    if !opts.quiet {
        run.sink.out("Validating refs...");
    }
    for (refspec, target) in list_refs_ostree_order(repo) {
        let name = refspec.split_once(':').map(|(_, r)| r).unwrap_or(&refspec);
        run.check_ref_commit(&target, name)?;
    }
    if !opts.quiet {
        run.sink.out("Validating refs in collections...");
    }
    for ((cid, name), target) in list_collection_refs(repo) {
        run.check_ref_commit(&target, &format!("({cid}, {name})"))?;
    }
    if !opts.quiet {
        run.sink.out("Enumerating commits...");
    }
    let mut all: HashOrder<ObjName> = HashOrder::default();
    for id in list_commit_objects(repo) {
        let name = (id, ObjectType::Commit);
        all.insert(name, object_name_hash(&name));
    }
    let mut commits: HashOrder<ObjName> = HashOrder::default();
    let (mut n_partial, mut n_fsck_partial) = (0usize, 0usize);
    for name in all.iter() {
        let (partial, fsck_partial) = load_commit_state(repo, &name.0)?;
        if partial {
            n_partial += 1;
            if fsck_partial {
                n_fsck_partial += 1;
            }
        } else {
            commits.insert(*name, object_name_hash(name));
        }
    }
    run.report.commits = commits.len();
    run.report.partial_commits = n_partial;
    if !opts.quiet {
        run.sink.out(&format!(
            "Verifying content integrity of {} commit objects...",
            commits.len()
        ));
    }
    let mut reach = Reachable::new(repo, true, true);
    for name in commits.iter() {
        reach.traverse_commit(&name.0, 0)?;
    }
    verify_reachable(&mut run, &reach)?;
    if n_partial > 0 {
        run.sink
            .out(&format!("{n_partial} partial commits not verified"));
    }
    if run.found_corruption {
        return fail("Repository corruption encountered");
    }
    if n_fsck_partial > 0 {
        return fail(format!(
            "{n_partial} partial commits from fsck-detected corruption"
        ));
    }
    run.sink.out(&format!(
        "object fsck of {} commits completed successfully - no errors found.",
        commits.len()
    ));
    Ok(run.report)
}

/// Worker threads for checking objects: `RAYON_NUM_THREADS` when set, else 8 per core
/// (between 8 and 32).
fn io_threads() -> usize {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return rayon::current_num_threads().max(1);
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 8).clamp(8, 32)
}

/// Checks every reached object on a rayon pool; reports in order on this thread.
fn verify_reachable(run: &mut Run<'_, '_>, reach: &Reachable<'_>) -> Result<(), Failure> {
    use parking_lot::{Condvar, Mutex};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};

    let items: Vec<ObjName> = reach.iter().copied().collect();
    let total = items.len();
    run.report.objects = total;
    if total == 0 {
        return Ok(());
    }
    let results: Vec<OnceLock<ObjectCheck>> = (0..total).map(|_| OnceLock::new()).collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    // The index the reporting thread sleeps on (usize::MAX: none); workers wake it only then.
    let wanted = AtomicUsize::new(usize::MAX);
    let lock = Mutex::new(());
    let ready = Condvar::new();
    let repo = run.repo;
    let work = || {
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                break;
            }
            let (id, ty) = items[i];
            let check = check_object(repo, &id, ty, reach.cached(&items[i]));
            let _ = results[i].set(check);
            fence(Ordering::SeqCst);
            if wanted.load(Ordering::SeqCst) == i {
                let _guard = lock.lock();
                ready.notify_all();
            }
        }
    };
    // Checking is bound by file-system latency as much as by hashing: more threads than
    // cores keep the disk (or the kernel's inode and page caches) busy.
    let mut threads = io_threads();
    let pool = match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fsck-{i}"))
        .build()
    {
        Ok(p) => p,
        Err(_) => {
            threads = rayon::current_num_threads().max(1);
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| Failure(format!("Starting threads: {e}")))?
        }
    };
    pool.in_place_scope(|s| {
        for _ in 0..threads {
            s.spawn(|_| work());
        }
        let mut outcome = Ok(());
        for (i, name) in items.iter().enumerate() {
            let check = loop {
                if let Some(c) = results[i].get() {
                    break c;
                }
                let mut guard = lock.lock();
                wanted.store(i, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                if results[i].get().is_none() {
                    ready.wait(&mut guard);
                }
                wanted.store(usize::MAX, Ordering::SeqCst);
            };
            let commits = (*check != ObjectCheck::Ok).then(|| reach.containing_commits(name));
            if let Err(e) = run.handle(*name, check.clone(), commits) {
                outcome = Err(e);
                break;
            }
            run.sink.progress(i + 1, total);
        }
        stop.store(true, Ordering::Relaxed);
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn str_set_order(keys: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut t = HashOrder::default();
        for k in keys {
            let h = g_str_hash(k.as_bytes());
            t.insert(k, h);
        }
        t.iter().cloned().collect()
    }

    #[test]
    fn hash_order_matches_string_emulation() {
        let names: Vec<String> = ["foo/bar", "foo/baz", "alpha", "beta", "main", "zeta"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            str_set_order(names),
            ["foo/bar", "alpha", "beta", "foo/baz", "zeta", "main"]
        );
    }

    #[test]
    fn lenient_reader_on_good_and_bad_dirtrees() {
        let mut t = crate::format::DirTree::default();
        t.files.insert("a".into(), ObjectId::digest(b"1"));
        t.dirs
            .insert("d".into(), (ObjectId::digest(b"2"), ObjectId::digest(b"3")));
        let bytes = t.to_bytes();
        let (files, dirs) = dirtree_entries(&bytes);
        assert_eq!(files.len(), 1);
        assert_eq!(checksum_of(files[0]).unwrap(), ObjectId::digest(b"1"));
        assert_eq!(checksum_of(dirs[0].1).unwrap(), ObjectId::digest(b"3"));
        // Every truncation and garbage suffix reads without panicking.
        for n in 0..bytes.len() {
            let _ = dirtree_entries(&bytes[..n]);
            let _ = CommitView::read(&bytes[..n]);
        }
        let mut junk = bytes.clone();
        junk.extend_from_slice(b"junkjunk\n");
        let (files, _) = dirtree_entries(&junk);
        assert!(files.iter().all(|f| checksum_of(*f).is_err()) || files.is_empty());
    }

    #[test]
    fn lenient_reader_never_panics_on_random_bytes() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let filez = refs(&FILEZ_ITEMS);
        for round in 0..8_000 {
            let len = (next() % if round % 10 == 0 { 70_000 } else { 300 }) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let (files, dirs) = dirtree_entries(&data);
            for f in files {
                let _ = checksum_of(f);
            }
            for (t, m) in dirs {
                let _ = (checksum_of(t), checksum_of(m));
            }
            let c = CommitView::read(&data);
            let _ = c.parent();
            for i in 0..8 {
                let d = gv::tuple_child(&filez, gv::Data::Bytes(&data), i);
                let _ = (d.u32_be(), d.u64_be(), d.str_bytes());
            }
            let _ = validate_metadata_structure(ObjectType::DirTree, &data);
            let _ = validate_metadata_structure(ObjectType::Commit, &data);
            let _ = validate_metadata_structure(ObjectType::DirMeta, &data);
        }
    }

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
