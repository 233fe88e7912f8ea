//! The filesystem's helpers on small repositories written through the store, without FUSE:
//! lookups, attributes, links, xattrs, reads (in memory and spilled), faults, forget.

use crate::content::ContentBudgets;
use crate::fs::{RostreeFs, Tuning};
use crate::inode::{Kind, ROOT, VDir};
use fuser::{Errno, FileType, OpenFlags};
use rostree_store::format::{
    Commit, DirMeta, DirTree, FileHeader, S_IFDIR, S_IFLNK, S_IFREG, Xattrs,
};
use rostree_store::{ContentSource, ObjectId, ObjectType, Repo, RepoMode, Transaction};
use std::ffi::OsStr;

struct Fixture {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    commit: ObjectId,
    big: Vec<u8>,
}

fn header(mode: u32, target: &str, xattrs: Xattrs) -> FileHeader {
    FileHeader {
        uid: 1000,
        gid: 100,
        mode,
        symlink_target: target.into(),
        xattrs,
    }
}

fn put(tx: &Transaction<'_>, h: &FileHeader, data: &[u8]) -> ObjectId {
    let src = ContentSource::Bytes(data);
    let id = Transaction::checksum_content(h, &src).unwrap();
    tx.write_content(&id, h, data.len() as u64, ContentSource::Bytes(data))
        .unwrap();
    id
}

/// `/a.txt` (xattr user.k=v), `/link -> a.txt`, `/big`, `/sub/` and `/sub2/` (same tree).
fn fixture(mode: RepoMode) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("repo");
    let repo = Repo::init(&path, mode).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let tx = repo.begin().unwrap();
    let xattrs = Xattrs::new(vec![(b"user.k".to_vec(), b"v".to_vec())]);
    let mut root = DirTree::default();
    root.files.insert(
        "a.txt".into(),
        put(
            &tx,
            &header(S_IFREG | 0o4755, "", xattrs.clone()),
            b"hello\n",
        ),
    );
    root.files.insert(
        "link".into(),
        put(
            &tx,
            &header(S_IFLNK | 0o777, "a.txt", Xattrs::default()),
            b"",
        ),
    );
    root.files.insert(
        "big".into(),
        put(&tx, &header(S_IFREG | 0o644, "", Xattrs::default()), &big),
    );
    let meta = DirMeta {
        uid: 0,
        gid: 0,
        mode: S_IFDIR | 0o1777,
        xattrs,
    };
    let meta_id = tx
        .write_meta(ObjectType::DirMeta, &meta.to_bytes())
        .unwrap();
    let empty = tx
        .write_meta(ObjectType::DirTree, &DirTree::default().to_bytes())
        .unwrap();
    root.dirs.insert("sub".into(), (empty, meta_id));
    root.dirs.insert("sub2".into(), (empty, meta_id));
    let root_tree = tx
        .write_meta(ObjectType::DirTree, &root.to_bytes())
        .unwrap();
    let commit = Commit {
        subject: "s".into(),
        ..Commit::of_tree(root_tree, meta_id)
    };
    let commit = rostree_store::commit::write_commit(&tx, &commit).unwrap();
    tx.set_ref(None, "main", Some(commit));
    tx.commit().unwrap();
    Fixture {
        _dir: dir,
        path,
        commit,
        big,
    }
}

fn mount(f: &Fixture, budgets: ContentBudgets) -> RostreeFs {
    let repo = Repo::open(&f.path).unwrap();
    let c = repo.read_commit(&f.commit).unwrap();
    let tuning = Tuning {
        content: budgets,
        ..Tuning::default()
    };
    RostreeFs::new(
        repo,
        Kind::Tree {
            tree: c.root_tree,
            meta: c.root_meta,
        },
        tuning,
    )
}

fn no_backing(_: &std::fs::File) -> std::io::Result<fuser::BackingId> {
    Err(std::io::Error::from_raw_os_error(libc::EPERM))
}

fn open(fs: &RostreeFs, ino: u64) -> Result<u64, Errno> {
    fs.do_open(ino, OpenFlags(libc::O_RDONLY), no_backing)
        .map(|o| o.fh)
}

fn read_all(fs: &RostreeFs, ino: u64) -> Result<Vec<u8>, Errno> {
    let fh = open(fs, ino)?;
    let mut out = Vec::new();
    loop {
        let chunk = fs.do_read(fh, out.len() as u64, 65536)?;
        if chunk.as_slice().is_empty() {
            break;
        }
        out.extend_from_slice(chunk.as_slice());
    }
    fs.do_release(fh);
    Ok(out)
}

fn lookup(fs: &RostreeFs, parent: u64, name: &str) -> Result<fuser::FileAttr, Errno> {
    fs.do_lookup(parent, OsStr::new(name)).map(|e| e.attr)
}

fn check_tree(mode: RepoMode, budgets: ContentBudgets) {
    let f = fixture(mode);
    let fs = mount(&f, budgets);
    let root = fs.do_getattr(ROOT).unwrap();
    assert_eq!(root.kind, FileType::Directory);
    assert_eq!(root.perm, 0o1777);
    assert_eq!(root.nlink, 4);
    let a = lookup(&fs, ROOT, "a.txt").unwrap();
    assert_eq!(
        (a.kind, a.perm, a.uid, a.gid, a.size),
        (FileType::RegularFile, 0o4755, 1000, 100, 6)
    );
    assert_eq!(a.mtime, std::time::UNIX_EPOCH);
    let l = lookup(&fs, ROOT, "link").unwrap();
    assert_eq!((l.kind, l.size), (FileType::Symlink, 5));
    assert_eq!(fs.do_readlink(l.ino.0).unwrap(), b"a.txt");
    assert_eq!(fs.do_readlink(a.ino.0), Err(Errno::EINVAL));
    assert_eq!(lookup(&fs, ROOT, "nope").err(), Some(Errno::ENOENT));
    assert_eq!(lookup(&fs, a.ino.0, "x").err(), Some(Errno::ENOTDIR));
    let sub = lookup(&fs, ROOT, "sub").unwrap();
    let sub2 = lookup(&fs, ROOT, "sub2").unwrap();
    assert_ne!(sub.ino, sub2.ino);
    assert_eq!(sub.nlink, 2);

    assert_eq!(read_all(&fs, a.ino.0).unwrap(), b"hello\n");
    let big = lookup(&fs, ROOT, "big").unwrap();
    assert_eq!(read_all(&fs, big.ino.0).unwrap(), f.big);
    // Random reads, also once the content left the caches.
    let fh = open(&fs, big.ino.0).unwrap();
    for off in [299_990u64, 5, 150_000, 0, 400_000] {
        let got = fs.do_read(fh, off, 100).unwrap();
        let start = (off as usize).min(f.big.len());
        let end = (start + 100).min(f.big.len());
        assert_eq!(got.as_slice(), &f.big[start..end], "at {off}");
    }
    fs.do_release(fh);
    assert_eq!(fs.do_read(fh, 0, 1).err(), Some(Errno::EBADF));
    assert_eq!(
        fs.do_open(a.ino.0, OpenFlags(libc::O_WRONLY), no_backing)
            .err(),
        Some(Errno::EROFS)
    );
    assert_eq!(open(&fs, sub.ino.0).err(), Some(Errno::EISDIR));

    // Xattrs, with the size == 0 protocol.
    use crate::fs::XattrAnswer;
    let get = |ino: u64, name: &str, size| fs.do_getxattr(ino, OsStr::new(name), size);
    assert!(matches!(
        get(a.ino.0, "user.k", 0),
        Ok(XattrAnswer::Size(1))
    ));
    assert!(matches!(get(a.ino.0, "user.k", 1), Ok(XattrAnswer::Data(d)) if d == b"v"));
    assert_eq!(get(a.ino.0, "user.none", 0).err(), Some(Errno::NO_XATTR));
    assert!(matches!(get(ROOT, "user.k", 10), Ok(XattrAnswer::Data(d)) if d == b"v"));
    assert!(matches!(
        fs.do_listxattr(a.ino.0, 0),
        Ok(XattrAnswer::Size(7))
    ));
    assert_eq!(fs.do_listxattr(a.ino.0, 3).err(), Some(Errno::ERANGE));
    assert!(matches!(
        fs.do_listxattr(l.ino.0, 0),
        Ok(XattrAnswer::Size(0))
    ));

    // Forget: nodes go, numbers stay.
    let before = fs.node_count();
    fs.do_forget(sub.ino.0, 1);
    assert_eq!(fs.node_count(), before - 1);
    assert_eq!(fs.do_getattr(sub.ino.0).err(), Some(Errno::ESTALE));
    assert_eq!(lookup(&fs, ROOT, "sub").unwrap().ino, sub.ino);
}

#[test]
fn archive_tree_in_memory_and_spilled() {
    check_tree(RepoMode::Archive, ContentBudgets::default());
    // Everything over 1 KiB inflated to a temporary file, the memory cache nearly empty.
    check_tree(
        RepoMode::Archive,
        ContentBudgets {
            memory: 100,
            max_in_memory: 1024,
            spilled: 1,
            verified: 1,
        },
    );
}

#[test]
fn bare_user_tree() {
    check_tree(RepoMode::BareUser, ContentBudgets::default());
}

#[test]
fn corrupt_content_fails_with_eio_and_no_bytes() {
    let f = fixture(RepoMode::Archive);
    let fs = mount(&f, ContentBudgets::default());
    let big = lookup(&fs, ROOT, "big").unwrap();
    let a = lookup(&fs, ROOT, "a.txt").unwrap();
    // Recompress other bytes under big's name: a valid deflate stream, wrong content.
    let repo = Repo::open(&f.path).unwrap();
    let id = match fs.kind_of(big.ino.0).unwrap() {
        Kind::File(id) => id,
        other => panic!("{other:?}"),
    };
    let path = repo.object_path(&id, ObjectType::File);
    let h = header(S_IFREG | 0o644, "", Xattrs::default());
    let mut bytes = h.to_filez_header(f.big.len() as u64);
    let mut wrong = f.big.clone();
    wrong[1234] ^= 1;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &wrong).unwrap();
    bytes.extend_from_slice(&enc.finish().unwrap());
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(open(&fs, big.ino.0).err(), Some(Errno::EIO));
    assert_eq!(read_all(&fs, a.ino.0).unwrap(), b"hello\n");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(open(&fs, big.ino.0).err(), Some(Errno::EIO));
}

#[test]
fn whole_repository_nodes() {
    let f = fixture(RepoMode::BareUser);
    let repo = Repo::open(&f.path).unwrap();
    let fs = RostreeFs::new(repo, Kind::Virtual(VDir::Root), Tuning::default());
    let refs = lookup(&fs, ROOT, "refs").unwrap();
    let heads = lookup(&fs, refs.ino.0, "heads").unwrap();
    let main = lookup(&fs, heads.ino.0, "main").unwrap();
    assert_eq!(main.kind, FileType::Symlink);
    let target = format!("../../commits/{}", f.commit);
    assert_eq!(fs.do_readlink(main.ino.0).unwrap(), target.as_bytes());
    let commits = lookup(&fs, ROOT, "commits").unwrap();
    let c = lookup(&fs, commits.ino.0, &f.commit.to_string()).unwrap();
    assert_eq!((c.kind, c.perm), (FileType::Directory, 0o1777));
    assert_eq!(
        lookup(&fs, commits.ino.0, &ObjectId::digest(b"x").to_string()).err(),
        Some(Errno::ENOENT)
    );
    assert_eq!(
        lookup(&fs, commits.ino.0, "main").err(),
        Some(Errno::ENOENT)
    );
    let a = lookup(&fs, c.ino.0, "a.txt").unwrap();
    assert_eq!(read_all(&fs, a.ino.0).unwrap(), b"hello\n");
    let history = lookup(&fs, ROOT, "history").unwrap();
    let hmain = lookup(&fs, history.ino.0, "main").unwrap();
    let zero = lookup(&fs, hmain.ino.0, "0").unwrap();
    assert_eq!(fs.do_readlink(zero.ino.0).unwrap(), target.as_bytes());
    for bad in ["1", "00", "-1", "x"] {
        assert_eq!(
            lookup(&fs, hmain.ino.0, bad).err(),
            Some(Errno::ENOENT),
            "{bad}"
        );
    }
}
