//! Directory-relative file helpers on `OwnedFd`s (rustix *at syscalls).

use crate::{IoContext, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// Opens a directory relative to `dir`, following a final symlink only when `follow`; the
/// caller words the error (a path, ostree's own message, or "absent").
pub fn openat_dir<P: rustix::path::Arg>(
    dir: impl AsFd,
    name: P,
    follow: bool,
) -> rustix::io::Result<OwnedFd> {
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    rustix::fs::openat(dir, name, flags, Mode::empty())
}

/// Opens a directory relative to `dir`.
pub fn open_dir_at(dir: impl AsFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    openat_dir(dir, name, true).at(shown)
}

/// Opens a directory by path.
pub fn open_dir(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(path)
}

/// Creates a directory (mode 0755) unless it exists.
pub fn ensure_dir_at(dir: impl AsFd, name: &str, shown: &Path) -> Result<()> {
    match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e).at(shown),
    }
}

/// Opens the directory `name` in `dir`, creating it (mode 0755) first unless it exists.
pub fn ensure_open_dir_at(dir: impl AsFd, name: &str, shown: &Path) -> Result<OwnedFd> {
    let dir = dir.as_fd();
    ensure_dir_at(dir, name, shown)?;
    open_dir_at(dir, name, shown)
}

/// Reads a whole file relative to `dir`; `Ok(None)` when it does not exist.
pub fn read_file_at(dir: impl AsFd, name: &str, shown: &Path) -> Result<Option<Vec<u8>>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(e).at(shown),
    };
    let mut buf = Vec::new();
    std::fs::File::from(fd).read_to_end(&mut buf).at(shown)?;
    Ok(Some(buf))
}

/// Whether `name` exists relative to `dir` (without following a final symlink).
pub fn exists_at(dir: impl AsFd, name: &str, shown: &Path) -> Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e).at(shown),
    }
}

/// A name for a temporary file that no other writer, thread or process, will pick.
pub fn unique_tmp_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces `name` in `dir` with `data` atomically: temp file, optional fsync, rename, and
/// (with `sync`) an fsync of the directory so the rename itself is durable.
pub fn replace_file_at(
    dir: impl AsFd,
    name: &str,
    data: &[u8],
    mode: u32,
    sync: bool,
    shown: &Path,
) -> Result<()> {
    let dir = dir.as_fd();
    let tmp = unique_tmp_name(".tmp-");
    let fd = rustix::fs::openat(
        dir,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )
    .at(shown)?;
    let result = (|| {
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).at(shown)?;
        write_all(&fd, data).at(shown)?;
        if sync {
            rustix::fs::fsync(&fd).at(shown)?;
        }
        rustix::fs::renameat(dir, &tmp, dir, name).at(shown)?;
        if sync {
            rustix::fs::fsync(dir).at(shown)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dir, &tmp, AtFlags::empty());
    }
    result
}

/// Writes all of `data` to `fd`.
pub fn write_all(fd: impl AsFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(&fd, data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Lists the names in a directory (without `.` and `..`).
pub fn list_dir(dir: impl AsFd, shown: &Path) -> Result<Vec<(String, rustix::fs::FileType)>> {
    // A fresh descriptor of its own, since reading moves its offset; `Dir::new` takes it
    // as is, where `read_from` would reopen the folder once more.
    let fd = openat_dir(dir, ".", true).at(shown)?;
    let mut out = Vec::new();
    for entry in rustix::fs::Dir::new(fd).at(shown)? {
        let entry = entry.at(shown)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        match std::str::from_utf8(name) {
            Ok(n) => out.push((n.to_string(), entry.file_type())),
            Err(_) => {
                return Err(crate::Error::invalid(
                    shown.join(String::from_utf8_lossy(name).as_ref()),
                    "Invalid UTF-8 in filename",
                ));
            }
        }
    }
    Ok(out)
}

/// Lists a directory the way ostree's own walks (fsck, prune) see it: names as bytes, types
/// from `lstat` where `readdir` gives none, and nothing at all for a directory or entry that
/// cannot be read, since those walks skip what they cannot read rather than fail.
pub fn dir_entries_lenient(dir: impl AsFd) -> Vec<(Vec<u8>, FileType)> {
    let mut out = Vec::new();
    let Ok(fd) = openat_dir(dir, ".", true) else {
        return out;
    };
    let Ok(mut iter) = rustix::fs::Dir::new(fd) else {
        return out;
    };
    for entry in iter.by_ref().flatten() {
        let name = entry.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push((name, entry.file_type()));
        }
    }
    if let Ok(fd) = iter.fd() {
        for (name, ft) in out.iter_mut().filter(|(_, ft)| *ft == FileType::Unknown) {
            if let Ok(st) = rustix::fs::statat(fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                *ft = FileType::from_raw_mode(st.st_mode);
            }
        }
    }
    out
}

/// `/proc/self/fd/N/name`: a path to an entry of an open directory that does not depend on
/// the directory's own path, for the calls with no `*at` form (xattrs of symlinks).
pub fn proc_path(dir: impl AsFd, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_fd().as_raw_fd()))
}

/// Sets a file's mtime to 0 (the epoch), leaving its atime: ostree's canonical mtime.
pub fn zero_mtime(fd: impl AsFd) -> rustix::io::Result<()> {
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    rustix::fs::futimens(fd, &ts)
}

/// The process umask, read once without changing it (`Umask:` of `/proc/self/status`);
/// files are created with their final mode and chmod-ed only where the umask interferes.
pub fn umask() -> u32 {
    static UMASK: std::sync::LazyLock<u32> = std::sync::LazyLock::new(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            })
            // Unknown: assume the strictest, so modes are always set explicitly.
            .unwrap_or(0o777)
    });
    *UMASK
}
