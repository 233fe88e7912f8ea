//! Live FUSE mounts for end-to-end tests: mounting as a daemon or in the foreground, and
//! unmounting whatever happens (a failing test leaves no mount behind).

use super::{rostree, rostree_bin};
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
