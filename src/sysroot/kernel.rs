//! Finding a deployment's kernel, initramfs and devicetree, and their `bootcsum`, as ostree
//! 2022.7 does: first `usr/lib/modules/<kver>/vmlinuz` (the first such directory in readdir
//! order), else the legacy `usr/lib/ostree-boot/` or `boot/` with `vmlinuz-<ver>-<sha256>` names.

use super::dirs::subdirectories_if_exist;
use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where a deployment's boot files are and what they are called in `/boot`.
#[derive(Clone, Debug)]
pub struct KernelLayout {
    /// The directory holding them, inside the deployment.
    pub dir: PathBuf,
    /// Kernel file name in `dir`, and its name in `/boot/ostree/<os>-<bootcsum>/`.
    pub kernel: (String, String),
    /// Initramfs, if any.
    pub initramfs: Option<(String, String)>,
    /// Devicetree file, if any.
    pub devicetree: Option<(String, String)>,
    /// A `dtb/` directory of device trees (instead of one devicetree file), copied whole.
    pub devicetree_dir: Option<String>,
    /// The kernel's FIPS HMAC file, if any.
    pub kernel_hmac: Option<(String, String)>,
    /// sha256 of kernel, initramfs and devicetree, in hex.
    pub bootcsum: String,
}

/// Finds the kernel in a checked-out deployment.
pub fn find_kernel(deployment: &Path) -> anyhow::Result<KernelLayout> {
    let modules = from_usr_lib_modules(deployment)?;
    let legacy = from_legacy_dirs(deployment)?;
    match (modules, legacy) {
        (None, None) => {
            bail!("Failed to find kernel in /usr/lib/modules, /usr/lib/ostree-boot or /boot")
        }
        (Some(m), None) => Ok(m),
        // rpm-ostree's Fedora layout: the initramfs only in the legacy place wins.
        (Some(m), Some(l)) if m.initramfs.is_none() && l.initramfs.is_some() => Ok(l),
        (Some(m), Some(_)) => Ok(m),
        (None, Some(l)) => Ok(l),
    }
}

fn hash_file(hasher: &mut Sha256, path: &Path) -> anyhow::Result<()> {
    let mut f = std::fs::File::open(path).with_context(|| format!("openat({})", path.display()))?;
    std::io::copy(&mut f, hasher).with_context(|| format!("read({})", path.display()))?;
    Ok(())
}

fn exists(path: &Path) -> anyhow::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("fstatat({})", path.display())),
    }
}

fn from_usr_lib_modules(deployment: &Path) -> anyhow::Result<Option<KernelLayout>> {
    let mut found = None;
    for entry in subdirectories_if_exist(&deployment.join("usr/lib/modules"))? {
        let vmlinuz = entry.path().join("vmlinuz");
        match std::fs::metadata(&vmlinuz) {
            Ok(m) if m.is_file() => {
                found = Some((
                    entry.path(),
                    entry.file_name().to_string_lossy().into_owned(),
                ));
                break;
            }
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("fstatat({})", vmlinuz.display())),
        }
    }
    let Some((dir, kver)) = found else {
        return Ok(None);
    };
    let mut hasher = Sha256::new();
    hash_file(&mut hasher, &dir.join("vmlinuz"))?;
    let mut initramfs = None;
    for name in ["initramfs.img", "initramfs"] {
        if exists(&dir.join(name))? {
            hash_file(&mut hasher, &dir.join(name))?;
            initramfs = Some((name.to_string(), format!("initramfs-{kver}.img")));
            break;
        }
    }
    let mut devicetree = None;
    let mut devicetree_dir = None;
    if exists(&dir.join("devicetree"))? {
        hash_file(&mut hasher, &dir.join("devicetree"))?;
        devicetree = Some(("devicetree".to_string(), format!("devicetree-{kver}")));
    } else if dir.join("dtb").is_dir() {
        hash_dir(&mut hasher, &dir.join("dtb"))?;
        devicetree_dir = Some("dtb".to_string());
    }
    let kernel_namever = format!("vmlinuz-{kver}");
    let kernel_hmac = exists(&dir.join(".vmlinuz.hmac"))?.then(|| {
        (
            ".vmlinuz.hmac".to_string(),
            format!(".{kernel_namever}.hmac"),
        )
    });
    Ok(Some(KernelLayout {
        dir,
        kernel: ("vmlinuz".to_string(), kernel_namever),
        initramfs,
        devicetree,
        devicetree_dir,
        kernel_hmac,
        bootcsum: hex(&hasher.finalize()),
    }))
}

/// Hashes the files below `dir` in name order (bytewise), depth first, so the bootcsum does
/// not depend on the order the filesystem lists them in. Symlinks count as their target's
/// content; dangling ones and special files are skipped.
fn hash_dir(hasher: &mut Sha256, dir: &Path) -> anyhow::Result<()> {
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
        .with_context(|| format!("opendir({})", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .with_context(|| dir.display().to_string())?;
    names.sort_by(|a, b| {
        use std::os::unix::ffi::OsStrExt;
        a.as_bytes().cmp(b.as_bytes())
    });
    for name in names {
        let path = dir.join(&name);
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("fstatat({})", path.display()))?;
        if meta.is_dir() {
            hash_dir(hasher, &path)?;
        } else if let Ok(mut f) = std::fs::File::open(&path) {
            std::io::copy(&mut f, hasher).with_context(|| format!("read({})", path.display()))?;
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `<prefix><ver>-<sha256>`: the name without the checksum, and the checksum.
fn split_checksummed(name: &str, prefix: &str) -> Option<(String, String)> {
    if !name.starts_with(prefix) {
        return None;
    }
    let (base, csum) = name.rsplit_once('-')?;
    let valid = csum.len() == 64 && csum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then(|| (base.to_string(), csum.to_string()))
}

fn from_legacy_dirs(deployment: &Path) -> anyhow::Result<Option<KernelLayout>> {
    let mut dir = None;
    for rel in ["usr/lib/ostree-boot", "boot"] {
        let p = deployment.join(rel);
        match std::fs::read_dir(&p) {
            Ok(it) => {
                dir = Some((p, it));
                break;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("openat({rel})")),
        }
    }
    let Some((dir, iter)) = dir else {
        return Ok(None);
    };
    let mut kernel: Option<(String, String, String)> = None;
    let mut initramfs: Option<(String, String, String)> = None;
    let mut devicetree: Option<(String, String, String)> = None;
    for entry in iter {
        let entry = entry.with_context(|| dir.display().to_string())?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if kernel.is_none() && name.starts_with("vmlinuz-") {
            if let Some((base, csum)) = split_checksummed(&name, "vmlinuz-") {
                kernel = Some((name, base, csum));
            }
        } else if initramfs.is_none() && name.starts_with("initramfs-") {
            if let Some((base, csum)) = split_checksummed(&name, "initramfs-") {
                initramfs = Some((name, base, csum));
            }
        } else if devicetree.is_none()
            && name.starts_with("devicetree-")
            && let Some((base, csum)) = split_checksummed(&name, "devicetree-")
        {
            devicetree = Some((name, base, csum));
        }
        if kernel.is_some() && initramfs.is_some() && devicetree.is_some() {
            break;
        }
    }
    let Some((kname, kbase, kcsum)) = kernel else {
        return Ok(None);
    };
    if let Some((_, _, c)) = &initramfs
        && *c != kcsum
    {
        bail!("Mismatched kernel checksum vs initrd");
    }
    if let Some((_, _, c)) = &devicetree
        && *c != kcsum
    {
        bail!("Mismatched kernel checksum vs device tree in tree");
    }
    Ok(Some(KernelLayout {
        dir,
        kernel: (kname, kbase),
        initramfs: initramfs.map(|(n, b, _)| (n, b)),
        devicetree: devicetree.map(|(n, b, _)| (n, b)),
        devicetree_dir: None,
        kernel_hmac: None,
        bootcsum: kcsum,
    }))
}
