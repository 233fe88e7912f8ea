//! Mounts for end-to-end tests: live FUSE mounts (as a daemon or in the foreground), tmpfs and
//! bind mounts, and files that fill a filesystem; each undone when dropped, whatever happens (a
//! failing test leaves no mount behind).

use super::{rostree, rostree_bin, sh};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether FUSE can be tested here; says why not when it can't (the only reason a mount
/// test may skip).
pub fn fuse_available() -> bool {
    if Path::new("/dev/fuse").exists() {
        true
    } else {
        eprintln!("skipping: /dev/fuse is absent on this machine");
        false
    }
}

/// A path as a str (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether `path` is a mount point now.
pub fn is_mounted(path: &Path) -> bool {
    let path = path.canonicalize().unwrap_or(path.to_path_buf());
    let want = s(&path).replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A live mount, unmounted (and its foreground process reaped) when dropped, so a failing
/// test leaves no mount behind.
pub struct Mount {
    /// The mountpoint.
    pub path: PathBuf,
    /// The foreground process serving the mount, if any.
    pub child: Option<Child>,
}

impl Mount {
    /// `rostree mount -d ARGS... MOUNTPOINT`: returns once the mount is live.
    pub fn daemon(repo: &Path, args: &[&str], mnt: &Path) -> Mount {
        std::fs::create_dir_all(mnt).unwrap();
        let mut all = vec!["mount", "-d"];
        all.extend_from_slice(args);
        all.push(s(mnt));
        rostree(repo, &all).ok();
        assert!(
            is_mounted(mnt),
            "{} not mounted after mount -d",
            mnt.display()
        );
        Mount {
            path: mnt.to_path_buf(),
            child: None,
        }
    }

    /// `rostree mount ARGS... MOUNTPOINT` in the foreground, stderr to `log`.
    pub fn foreground(repo: &Path, args: &[&str], mnt: &Path, log: &Path) -> Mount {
        std::fs::create_dir_all(mnt).unwrap();
        let child = Command::new(rostree_bin())
            .arg(format!("--repo={}", s(repo)))
            .arg("mount")
            .args(args)
            .arg(mnt)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut m = Mount {
            path: mnt.to_path_buf(),
            child: Some(child),
        };
        let start = Instant::now();
        while !is_mounted(mnt) {
            if let Some(status) = m.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "mount exited ({status}): {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                );
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mount never went live"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        m
    }

    /// Waits for the foreground process to end, returning whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        let child = self.child.as_mut().expect("a foreground mount");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.success();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mount process still running"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if is_mounted(&self.path) {
            let _ = Command::new(rostree_bin())
                .args(["umount", "--lazy"])
                .arg(&self.path)
                .output();
        }
        if is_mounted(&self.path) {
            let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A mount held for the test's life and unmounted when dropped, even when the test fails, so
/// no mount outlives it. Declare it after the temporary directory it lies in: it goes first.
pub struct Mounted(PathBuf);

impl Mounted {
    /// A tmpfs at `at`, or `None` (saying why) where this machine cannot mount one.
    pub fn tmpfs(at: &Path) -> Option<Self> {
        Self::mount(&["-t", "tmpfs", "tmpfs"], at)
    }

    /// A tmpfs with mount options `opts` (such as `size=4m` or `size=4m,nr_inodes=64`) at
    /// `at`, or `None` (saying why).
    pub fn tmpfs_with(at: &Path, opts: &str) -> Option<Self> {
        Self::mount(&["-t", "tmpfs", "-o", opts, "tmpfs"], at)
    }

    /// A fresh ext4 filesystem of `mib` MiB (with at least `inodes` inodes where given, else
    /// mkfs's default) in the image file `image`, loop-mounted at `at` (no blocks reserved for
    /// root, so a filler fills it for root too), or `None` (saying why) where this machine
    /// cannot.
    pub fn ext4_image(image: &Path, mib: u64, inodes: Option<u32>, at: &Path) -> Option<Self> {
        std::fs::File::create(image)
            .and_then(|f| f.set_len(mib << 20))
            .unwrap();
        let n = inodes.map(|n| n.to_string());
        let mut args = vec!["-q", "-F", "-m", "0"];
        if let Some(n) = &n {
            args.extend_from_slice(&["-N", n]);
        }
        args.push(s(image));
        let mkfs = sh("mkfs.ext4", &args);
        if !mkfs.out.status.success() {
            eprintln!("skipping: mkfs.ext4 failed: {}", mkfs.stderr());
            return None;
        }
        Self::mount(&["-o", "loop", s(image)], at)
    }

    /// `src` bind-mounted at `at`, or `None` (saying why) where this machine cannot mount.
    pub fn bind(src: &Path, at: &Path) -> Option<Self> {
        Self::mount(&["--bind", src.to_str().unwrap()], at)
    }

    fn mount(args: &[&str], at: &Path) -> Option<Self> {
        let mut all = args.to_vec();
        all.push(at.to_str().unwrap());
        let r = sh("mount", &all);
        if !r.out.status.success() {
            eprintln!(
                "skipping: cannot mount {args:?} at {}: {}",
                at.display(),
                r.stderr()
            );
            return None;
        }
        Some(Mounted(at.to_path_buf()))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        // Busy (a process of the test still in it): detach it now, the kernel ends it later.
        if is_mounted(&self.0) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
}

/// A file taking all but `free` bytes of the filesystem of `dir`, or a directory of empty
/// files taking all but `free` inodes; deleted when dropped.
pub struct Filler(PathBuf);

impl Filler {
    /// `dir/filler`, allocated to leave `free` bytes available (`fallocate`, so the blocks
    /// are really taken).
    pub fn leaving(dir: &Path, free: usize) -> Filler {
        let path = dir.join("filler");
        let f = std::fs::File::create(&path).unwrap();
        let available = || {
            let st = rustix::fs::statvfs(dir).unwrap();
            st.f_bavail * st.f_frsize
        };
        // In chunks, re-reading what is left: the filesystem's own bookkeeping of the
        // filler (ext4 extent blocks) takes space too.
        let mut offset = 0;
        loop {
            let want = available().saturating_sub(free as u64).min(1 << 20);
            if want == 0 {
                break;
            }
            let flags = rustix::fs::FallocateFlags::empty();
            match rustix::fs::fallocate(&f, flags, offset, want) {
                Ok(()) => offset += want,
                Err(rustix::io::Errno::NOSPC) => break,
                Err(e) => panic!("fallocate {}: {e}", path.display()),
            }
        }
        Filler(path)
    }

    /// `dir/filler/`, holding empty files until `free` inodes are left.
    pub fn leaving_inodes(dir: &Path, free: u64) -> Filler {
        let path = dir.join("filler");
        std::fs::create_dir(&path).unwrap();
        let available = || rustix::fs::statvfs(dir).unwrap().f_favail;
        let mut made = 0u64;
        // Re-read after each batch: a directory growing can cost the filesystem more.
        while available() > free {
            for _ in free..available() {
                match std::fs::File::create(path.join(made.to_string())) {
                    Ok(_) => made += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return Filler(path),
                    Err(e) => panic!("filling {}: {e}", path.display()),
                }
            }
        }
        Filler(path)
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0).or_else(|_| std::fs::remove_file(&self.0));
    }
}
