//! The sysroot: a root filesystem holding `/ostree/repo`, deployments of commits under
//! `/ostree/deploy/<os>/deploy/`, and the boot loader entries that make them bootable, laid out
//! exactly as `ostree admin` 2022.7 lays them out (see `docs/ostree-format.md`, "Sysroot and
//! deployments"), so either tool can manage what the other made.
//!
//! The boot loader entries are the source of truth: the current bootversion is the target of
//! the `boot/loader` symlink, and every `boot/loader.N/entries/ostree-*.conf` names one
//! deployment through its `ostree=/ostree/boot.N/<os>/<bootcsum>/<bootserial>` argument.
//! Changing what boots means writing a complete new `loader.<other>` and then renaming one
//! symlink over `boot/loader`, so a crash at any point boots the old or the new set, never a mix.
//!
//! Layout: `layout` (init-fs, os-init, the sysroot lock), `deployment`, `dirs` (directory helpers), `bootconfig` (BLS
//! entries), `kargs`, `kernel` (finding the kernel and its bootcsum), `deploy` (checking out a
//! new deployment), `edit` (pin, origin, kernel arguments in place), `etc_merge` (the 3-way `/etc` merge), `bootloader` (writing a new list of
//! deployments: entries, bootlinks, the atomic swap), `cleanup`, `status`, `upgrade` (following an origin: pull, then deploy).
//!
//! Objects are only ever read through rostree-store's read and checkout APIs.

pub mod bootconfig;
pub mod bootloader;
pub mod cleanup;
pub mod deploy;
pub mod deployment;
pub mod dirs;
pub mod edit;
pub mod etc_merge;
pub mod kargs;
pub mod kernel;
pub mod layout;
pub mod retention;
pub mod status;
pub mod upgrade;

use anyhow::{Context, anyhow, bail};
use bootconfig::BootConfig;
use deployment::{Deployment, parse_deploy_dir_name};
use rostree_store::Repo;
use rostree_store::config::KeyFile;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A loaded sysroot.
pub struct Sysroot {
    /// The sysroot's path (`/` for the running system).
    pub path: PathBuf,
    /// 0 or 1: which `boot/loader.N` is current.
    pub bootversion: u32,
    /// 0 or 1: which `ostree/boot.N.M` the current `ostree/boot.N` points to.
    pub subbootversion: u32,
    /// The deployments, in boot order.
    pub deployments: Vec<Deployment>,
    /// The index of the deployment the running system booted, when it is this sysroot.
    pub booted: Option<usize>,
    /// The system repository.
    pub repo: Repo,
    _lock: Option<layout::SysrootLock>,
}

/// Whether to take the sysroot lock while loading (every command that writes does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Locking {
    /// Read-only commands (`status`).
    Unlocked,
    /// Commands that change deployments.
    Locked,
}

impl Sysroot {
    /// Loads the sysroot at `path`: its repository, bootversions and deployments.
    pub fn load(path: &Path, locking: Locking) -> anyhow::Result<Sysroot> {
        std::fs::metadata(path).with_context(|| format!("opendir({})", path.display()))?;
        let lock = match locking {
            Locking::Locked => Some(layout::SysrootLock::acquire(path)?),
            Locking::Unlocked => None,
        };
        let repo = Repo::open(&path.join("ostree/repo")).context("loading sysroot")?;
        let deploy_dir = path.join("ostree/deploy");
        std::fs::metadata(&deploy_dir)
            .with_context(|| format!("loading sysroot: {}", deploy_dir.display()))?;
        let mut sysroot = Sysroot {
            path: path.to_path_buf(),
            bootversion: 0,
            subbootversion: 0,
            deployments: Vec::new(),
            booted: None,
            repo,
            _lock: lock,
        };
        sysroot.reload().context("loading sysroot")?;
        Ok(sysroot)
    }

    /// Re-reads bootversions and deployments from disk.
    pub fn reload(&mut self) -> anyhow::Result<()> {
        self.bootversion = self.read_bootversion()?;
        self.subbootversion = self.read_subbootversion(self.bootversion)?;
        let mut configs = self.read_boot_entries(self.bootversion)?;
        sort_entries_by_version(&mut configs);
        let mut deployments = Vec::new();
        for (name, config) in configs {
            let d = self
                .parse_deployment(config)
                .with_context(|| format!("Parsing {name}"))?;
            deployments.push(d);
        }
        for (i, d) in deployments.iter_mut().enumerate() {
            d.index = i;
        }
        self.booted = self.find_booted(&deployments);
        self.deployments = deployments;
        Ok(())
    }

    /// The absolute path of something relative to the sysroot.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The booted deployment, if the running system is one of this sysroot's deployments.
    pub fn booted_deployment(&self) -> Option<&Deployment> {
        self.booted.map(|i| &self.deployments[i])
    }

    /// `boot/loader` -> `loader.N` (none yet: 0).
    fn read_bootversion(&self) -> anyhow::Result<u32> {
        let link = self.join("boot/loader");
        let meta = match std::fs::symlink_metadata(&link) {
            Ok(m) => m,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| link.display().to_string()),
        };
        if !meta.file_type().is_symlink() {
            bail!("Not a symbolic link: boot/loader");
        }
        let target = std::fs::read_link(&link).with_context(|| link.display().to_string())?;
        match target.to_str() {
            Some("loader.0") => Ok(0),
            Some("loader.1") => Ok(1),
            _ => bail!("Invalid target '{}' in boot/loader", target.display()),
        }
    }

    /// `ostree/boot.N` -> `boot.N.M` (none yet: 0).
    pub fn read_subbootversion(&self, bootversion: u32) -> anyhow::Result<u32> {
        let name = format!("ostree/boot.{bootversion}");
        let link = self.join(&name);
        let target = match std::fs::read_link(&link) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e).with_context(|| link.display().to_string()),
        };
        let t = target.to_string_lossy();
        if t.ends_with(".0") {
            Ok(0)
        } else if t.ends_with(".1") {
            Ok(1)
        } else {
            bail!("Invalid target '{t}' in {name}")
        }
    }

    /// The `ostree-*.conf` entries of `boot/loader.N/entries`, with their file names.
    fn read_boot_entries(&self, bootversion: u32) -> anyhow::Result<Vec<(String, BootConfig)>> {
        let dir = self.join(&format!("boot/loader.{bootversion}/entries"));
        let mut out = Vec::new();
        for entry in dirs::entries_if_exists(&dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let meta = std::fs::metadata(&path).with_context(|| path.display().to_string())?;
            if name.starts_with("ostree-") && name.ends_with(".conf") && meta.is_file() {
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("Parsing {name}"))?;
                out.push((name, BootConfig::parse(&text)));
            }
        }
        Ok(out)
    }

    /// Builds the deployment a boot entry's `ostree=` argument names.
    fn parse_deployment(&self, config: BootConfig) -> anyhow::Result<Deployment> {
        let options = config.get("options").unwrap_or("");
        let Some(bootlink) = options.split(' ').find_map(|o| o.strip_prefix("ostree=")) else {
            bail!("No ostree= kernel argument found");
        };
        let (osname, bootcsum, bootserial) = parse_bootlink(bootlink).ok_or_else(|| {
            anyhow!(
                "Invalid ostree= argument '{bootlink}', expected ostree=/ostree/boot.BOOTVERSION/OSNAME/BOOTCSUM/TREESERIAL"
            )
        })?;
        let prefix = format!("Parsing deployment {bootlink} in stateroot '{osname}'");
        let rel = bootlink.trim_start_matches('/');
        let link = self.join(rel);
        let target =
            std::fs::read_link(&link).with_context(|| format!("{prefix}: readlinkat({rel})"))?;
        let base = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (csum, deployserial) = parse_deploy_dir_name(&base).ok_or_else(|| {
            anyhow!("{prefix}: Invalid deploy name '{base}', expected CHECKSUM.TREESERIAL")
        })?;
        std::fs::read_dir(&link).with_context(|| format!("{prefix}: opendir({rel})"))?;
        let mut d = Deployment {
            index: 0,
            osname,
            csum,
            deployserial,
            bootcsum,
            bootserial,
            bootconfig: config,
            origin: None,
            unlocked: "none",
        };
        d.origin = self.load_origin(&d).with_context(|| prefix.clone())?;
        d.unlocked = d.read_unlocked_state();
        Ok(d)
    }

    /// Reads a deployment's `.origin`, if it has one.
    pub fn load_origin(&self, d: &Deployment) -> anyhow::Result<Option<KeyFile>> {
        let rel = d.origin_relpath();
        match std::fs::read_to_string(self.join(&rel)) {
            Ok(text) => Ok(Some(
                KeyFile::parse(&text).map_err(|e| anyhow!("Parsing {rel}: {e}"))?,
            )),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| rel),
        }
    }

    /// The booted deployment: only when `/run/ostree-booted` exists and this sysroot is `/`;
    /// then it is the deployment whose directory is the root directory.
    fn find_booted(&self, deployments: &[Deployment]) -> Option<usize> {
        std::fs::metadata("/run/ostree-booted").ok()?;
        let root = std::fs::metadata("/").ok()?;
        let me = std::fs::metadata(&self.path).ok()?;
        if (root.dev(), root.ino()) != (me.dev(), me.ino()) {
            return None;
        }
        deployments.iter().position(|d| {
            std::fs::metadata(self.join(&d.dirpath()))
                .map(|m| (m.dev(), m.ino()) == (root.dev(), root.ino()))
                .unwrap_or(false)
        })
    }

    /// The deployment configuration is merged from: the booted one if it is of `osname`,
    /// else the first deployment of `osname`.
    pub fn merge_deployment(&self, osname: &str) -> Option<&Deployment> {
        if let Some(b) = self.booted_deployment()
            && b.osname == osname
        {
            return Some(b);
        }
        self.query_pending_rollback(osname).0
    }

    /// The pending (first before the booted) and rollback (first after it) deployments of
    /// `osname`; without a booted deployment, the first one is "pending".
    pub fn query_pending_rollback(
        &self,
        osname: &str,
    ) -> (Option<&Deployment>, Option<&Deployment>) {
        let mut pending = None;
        let mut rollback = None;
        let mut found_booted = false;
        for (i, d) in self.deployments.iter().enumerate() {
            if d.osname != osname {
                continue;
            }
            if self.booted == Some(i) {
                found_booted = true;
                continue;
            }
            if !found_booted && pending.is_none() {
                pending = Some(d);
            } else if found_booted && rollback.is_none() {
                rollback = Some(d);
            }
        }
        (pending, rollback)
    }

    /// Updates the mtime of `ostree/deploy`, which tools watch for changes.
    pub fn bump_mtime(&self) -> anyhow::Result<()> {
        let p = self.join("ostree/deploy");
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &p,
            &rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: 0,
                    tv_nsec: rustix::fs::UTIME_NOW,
                },
            },
            rustix::fs::AtFlags::empty(),
        )
        .with_context(|| format!("futimens({})", p.display()))
    }
}

/// Splits `/ostree/boot.N/<os>/<bootcsum>/<serial>` into its parts.
fn parse_bootlink(link: &str) -> Option<(String, String, u32)> {
    let rest = link.strip_prefix("/ostree/boot.")?;
    let mut parts = rest.split('/');
    let version = parts.next()?;
    let os = parts.next()?;
    let csum = parts.next()?;
    let serial = parts.next()?;
    if parts.next().is_some()
        || !matches!(version, "0" | "1")
        || os.is_empty()
        || csum.is_empty()
        || serial.is_empty()
        || !serial.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some((os.to_string(), csum.to_string(), serial.parse().ok()?))
}

/// Sorts boot entries by their `version` key, highest first, as ostree does with
/// `strverscmp`; entries without a version go last.
fn sort_entries_by_version(configs: &mut [(String, BootConfig)]) {
    configs.sort_by(
        |(_, a), (_, b)| match (a.get("version"), b.get("version")) {
            (Some(x), Some(y)) => strverscmp(y, x),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        },
    );
}

/// glibc's `strverscmp` for the strings boot entries carry: runs of digits compare by value
/// (leading zeros aside), everything else bytewise.
fn strverscmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let strip = |d: &[u8]| -> usize { d.iter().take_while(|&&c| c == b'0').count() };
                let (ta, tb) = (&da[strip(da)..], &db[strip(db)..]);
                let ord = ta.len().cmp(&tb.len()).then(ta.cmp(tb));
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootlinks_and_versions() {
        assert_eq!(
            parse_bootlink("/ostree/boot.1/os/abc/0"),
            Some(("os".into(), "abc".into(), 0))
        );
        assert_eq!(parse_bootlink("/ostree/boot.2/os/abc/0"), None);
        assert_eq!(parse_bootlink("/ostree/boot.1/os/abc/0/x"), None);
        assert_eq!(strverscmp("10", "9"), std::cmp::Ordering::Greater);
        assert_eq!(strverscmp("2", "2"), std::cmp::Ordering::Equal);
    }
}
