//! Making a new list of deployments the one that boots (`ostree_sysroot_write_deployments`).
//!
//! When the boot entries change (count, kernel, arguments, version), everything for the other
//! bootversion N is written from scratch: `boot/loader.N/entries/*.conf`, kernels in
//! `boot/ostree/<os>-<bootcsum>/`, bootlinks in `ostree/boot.N.M/`; then the filesystem is
//! synced, and one rename of `boot/loader.tmp` over `boot/loader` switches to it. When only
//! the deployments behind unchanged entries change, the bootlinks alone are swapped
//! (`ostree/boot.N` -> `boot.N.<other M>`). Either way a crash leaves the old or the new
//! configuration complete. No boot loader configuration (grub2, syslinux, u-boot) is generated:
//! BLS entries only, as ostree does when it detects no boot loader.

use super::Sysroot;
use super::deployment::Deployment;
use super::dirs::mkdir_p;
use super::kargs::KernelArgs;
use super::kernel::{KernelLayout, find_kernel};
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;

/// Makes `new` the list of deployments, in boot order; `postclean` runs a cleanup (with prune)
/// afterwards. Reloads `sysroot`.
pub fn write_deployments(
    sysroot: &mut Sysroot,
    mut new: Vec<Deployment>,
    postclean: bool,
) -> anyhow::Result<()> {
    assign_bootserials(&mut new);
    let mut requires_new_bootversion = new.len() != sysroot.deployments.len();
    if !requires_new_bootversion {
        let mut is_noop = true;
        for (cur, next) in sysroot.deployments.iter().zip(&new) {
            if !bootconfigs_equal(sysroot, cur, next) {
                requires_new_bootversion = true;
                is_noop = false;
                break;
            }
            if !cur.same_as(next) || cur.bootserial != next.bootserial {
                is_noop = false;
            }
        }
        if is_noop {
            return Ok(());
        }
    }
    let mut found_booted = false;
    for (i, d) in new.iter_mut().enumerate() {
        if let Some(b) = sysroot.booted_deployment()
            && b.same_as(d)
        {
            found_booted = true;
        }
        let root = sysroot.join(&d.dirpath());
        if !root.exists() {
            bail!(
                "Unable to find expected deployment root: {}",
                root.display()
            );
        }
        d.index = i;
    }
    if sysroot.booted.is_some() && !found_booted {
        bail!("Attempting to remove booted deployment");
    }

    if requires_new_bootversion {
        check_bootloader_supported(sysroot)?;
    }
    let new_subbootdir;
    let atomic;
    if requires_new_bootversion {
        let bootversion = 1 - sysroot.bootversion;
        write_boot_entries(sysroot, bootversion, &mut new)?;
        create_bootlinks(sysroot, bootversion, &new)?;
        new_subbootdir = swap_bootlinks(sysroot, bootversion)?;
        prepare_loader_link(sysroot, bootversion)?;
        sync_fs(sysroot)?;
        swap_loader(sysroot)?;
        atomic = false;
    } else {
        create_bootlinks(sysroot, sysroot.bootversion, &new)?;
        sync_fs(sysroot)?;
        new_subbootdir = swap_bootlinks(sysroot, sysroot.bootversion)?;
        atomic = true;
    }
    println!(
        "{}; bootconfig swap: {}; bootversion: {}, deployment count change: {}",
        if atomic {
            "Transaction complete"
        } else {
            "Bootloader updated"
        },
        if requires_new_bootversion {
            "yes"
        } else {
            "no"
        },
        new_subbootdir,
        new.len() as i64 - sysroot.deployments.len() as i64
    );
    sysroot.bump_mtime()?;
    sysroot
        .reload()
        .context("Reloading deployments after commit")?;
    // A "current" symlink per stateroot was an old, non-atomic convenience: drop it.
    for d in &sysroot.deployments {
        let p = sysroot.join(&format!("ostree/deploy/{}/current", d.osname));
        if std::fs::symlink_metadata(&p).is_ok() {
            std::fs::remove_file(&p).with_context(|| p.display().to_string())?;
        }
    }
    if postclean {
        super::cleanup::cleanup(sysroot, true).context("Performing final cleanup")?;
    }
    Ok(())
}

/// A boot loader ostree would configure besides the BLS entries (its `auto` probe: syslinux,
/// grub2, u-boot, or the repository's `sysroot.bootloader`), which rostree does not support
/// yet. Writing entries it would not pick up could leave the system booting stale entries, so
/// commands refuse instead: `sysroot.bootloader=none` says BLS entries are all that is read.
pub fn check_bootloader_supported(sysroot: &Sysroot) -> anyhow::Result<()> {
    let configured = sysroot
        .repo
        .config()
        .get("sysroot", "bootloader")
        .unwrap_or("auto");
    let found = match configured {
        "none" => None,
        "auto" => {
            let probes = [
                ("syslinux", "boot/syslinux/syslinux.cfg"),
                ("grub2", "boot/grub/grub.cfg"),
                ("grub2", "boot/grub2/grub.cfg"),
                ("u-boot", "boot/loader/uEnv.txt"),
            ];
            let mut found = probes
                .iter()
                .find(|(_, rel)| std::fs::symlink_metadata(sysroot.join(rel)).is_ok())
                .map(|(name, rel)| (name.to_string(), rel.to_string()));
            if found.is_none()
                && let Ok(vendors) = std::fs::read_dir(sysroot.join("boot/efi/EFI"))
            {
                for v in vendors.flatten() {
                    if v.path().join("grub.cfg").exists() {
                        let rel =
                            format!("boot/efi/EFI/{}/grub.cfg", v.file_name().to_string_lossy());
                        found = Some(("grub2".to_string(), rel));
                        break;
                    }
                }
            }
            found
        }
        other => Some((
            other.to_string(),
            "ostree/repo/config: sysroot.bootloader".to_string(),
        )),
    };
    match found {
        None => Ok(()),
        Some((name, rel)) => bail!(
            "{}: {name} boot loader configuration is not supported yet (rostree writes BLS \
             entries only; set sysroot.bootloader=none in the repository config to boot from \
             them alone)",
            sysroot.join(&rel).display()
        ),
    }
}

/// Deployments sharing a bootcsum are numbered 0, 1, ... in list order.
fn assign_bootserials(deployments: &mut [Deployment]) {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for d in deployments {
        let n = counts.entry(d.bootcsum.clone()).or_insert(0);
        d.bootserial = *n;
        *n += 1;
    }
}

/// The kernel arguments other than `ostree=`.
fn nonostree_kargs(d: &Deployment) -> String {
    let mut k = KernelArgs::from_string(d.bootconfig.get("options").unwrap_or(""));
    k.replace("ostree");
    k.to_string()
}

/// The commit's `version` metadata.
pub fn commit_version(sysroot: &Sysroot, csum: &str) -> Option<String> {
    let id = rostree_store::ObjectId::from_hex(csum).ok()?;
    let commit = sysroot.repo.read_commit(&id).ok()?;
    commit
        .metadata
        .iter()
        .find(|(k, _)| k == "version")
        .and_then(|(_, v)| v.as_str().map(str::to_string))
}

/// Whether two deployments would get the same boot entry (apart from the `ostree=` link).
fn bootconfigs_equal(sysroot: &Sysroot, a: &Deployment, b: &Deployment) -> bool {
    a.bootcsum == b.bootcsum
        && a.bootconfig.overlay_initrds() == b.bootconfig.overlay_initrds()
        && nonostree_kargs(a) == nonostree_kargs(b)
        && commit_version(sysroot, &a.csum) == commit_version(sysroot, &b.csum)
}

/// Writes `boot/loader.N/entries` afresh, installing kernels as needed.
fn write_boot_entries(
    sysroot: &Sysroot,
    bootversion: u32,
    deployments: &mut [Deployment],
) -> anyhow::Result<()> {
    let entries = sysroot.join(&format!("boot/loader.{bootversion}/entries"));
    super::etc_merge::remove_all(&entries)?;
    mkdir_p(&entries, 0o755)?;
    // The OS name goes in titles only when several stateroots are listed.
    let show_osname = deployments
        .iter()
        .skip(1)
        .any(|d| d.osname != deployments[0].osname);
    let n = deployments.len();
    for d in deployments.iter_mut() {
        install_deployment_kernel(sysroot, bootversion, d, n, show_osname)
            .context("Installing kernel")?;
    }
    Ok(())
}

/// Copies (hardlinks when possible) the deployment's kernel into `/boot` and writes its entry.
fn install_deployment_kernel(
    sysroot: &Sysroot,
    bootversion: u32,
    d: &mut Deployment,
    n_deployments: usize,
    show_osname: bool,
) -> anyhow::Result<()> {
    let root = sysroot.join(&d.dirpath());
    let layout = find_kernel(&root)?;
    let bootcsumdir = format!("ostree/{}-{}", d.osname, d.bootcsum);
    let boot = sysroot.join("boot");
    let dest_dir = boot.join(&bootcsumdir);
    mkdir_p(&dest_dir, 0o775)?;
    mkdir_p(&boot.join(format!("loader.{bootversion}/entries")), 0o775)?;
    install_boot_files(&layout, &dest_dir)?;
    if let Some(dir) = &layout.devicetree_dir {
        // Copied (over what is there) at every install, as ostree does.
        super::etc_merge::copy_dir_recurse(&layout.dir.join(dir), &dest_dir.join(dir))?;
    }

    let name = os_name(&root)?;
    let mut title = name.clone();
    if let Some(v) = commit_version(sysroot, &d.csum)
        && !v.is_empty()
        && !name.contains(&v)
    {
        title.push(' ');
        title.push_str(&v);
    }
    title.push_str(" (ostree");
    if show_osname {
        title.push(':');
        title.push_str(&d.osname);
    }
    title.push_str(&format!(":{})", d.index));
    let bc = &mut d.bootconfig;
    bc.set("title", &title);
    bc.set("version", &(n_deployments - d.index).to_string());
    bc.set("linux", &format!("/{bootcsumdir}/{}", layout.kernel.1));
    let mut kargs = KernelArgs::from_string(bc.get("options").unwrap_or(""));
    let link = format!(
        "/ostree/boot.{bootversion}/{}/{}/{}",
        d.osname, d.bootcsum, d.bootserial
    );
    match &layout.initramfs {
        Some((_, initramfs)) => bc.set("initrd", &format!("/{bootcsumdir}/{initramfs}")),
        // Without an initramfs the kernel runs ostree-prepare-root itself.
        None => kargs.replace(&format!("init={link}/usr/lib/ostree/ostree-prepare-root")),
    }
    if let Some((_, dt)) = &layout.devicetree {
        bc.set("devicetree", &format!("/{bootcsumdir}/{dt}"));
    } else if let Some(dir) = &layout.devicetree_dir {
        bc.set("fdtdir", &format!("/{bootcsumdir}/{dir}"));
    }
    kargs.replace(&format!("ostree={link}"));
    bc.set("options", &kargs.to_string());
    // Keys only the fallback entries get (say `grub_users ""` so only the default boots
    // without a password).
    if d.index != 0 {
        for (key, value) in bls_append_except_default(sysroot)? {
            bc.set(&key, &value);
        }
    }
    let entry = boot.join(format!(
        "loader.{bootversion}/entries/ostree-{}-{}.conf",
        n_deployments - d.index,
        d.osname
    ));
    super::deploy::write_file_atomic(&entry, bc.to_text().as_bytes(), false)
}

/// `sysroot.bls-append-except-default` (`key1=value1;key2=value2`), in the order ostree's
/// hash table of them iterates.
fn bls_append_except_default(sysroot: &Sysroot) -> anyhow::Result<Vec<(String, String)>> {
    let Some(list) = sysroot
        .repo
        .config()
        .get("sysroot", "bls-append-except-default")
    else {
        return Ok(Vec::new());
    };
    let mut values: HashMap<String, String> = HashMap::new();
    let mut keys = Vec::new();
    for item in list.split(';').filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            bail!(
                "Unable to parse bls-append-except-default: bls-append-except-default key must be of the form \"key1=value1;key2=value2...\""
            );
        };
        keys.push(k.to_string());
        values.insert(k.to_string(), v.to_string());
    }
    Ok(rostree_store::ghash::ghash_order(&keys)
        .into_iter()
        .map(|k| {
            let v = values[&k].clone();
            (k, v)
        })
        .collect())
}

/// Links (else copies) each boot file into `dest_dir` unless already there.
fn install_boot_files(layout: &KernelLayout, dest_dir: &Path) -> anyhow::Result<()> {
    let files = [
        Some(&layout.kernel),
        layout.initramfs.as_ref(),
        layout.devicetree.as_ref(),
        layout.kernel_hmac.as_ref(),
    ];
    for (src_name, dest_name) in files.into_iter().flatten() {
        let dest = dest_dir.join(dest_name);
        if std::fs::metadata(&dest).is_ok() {
            continue;
        }
        let src = layout.dir.join(src_name);
        match std::fs::hard_link(&src, &dest) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EMLINK)) => {
                copy_into_boot(&src, &dest)?;
            }
            Err(e) => return Err(e).with_context(|| format!("linkat({dest_name})")),
        }
    }
    Ok(())
}

/// A durable copy with the source's owner and mode, renamed into place.
fn copy_into_boot(src: &Path, dest: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(src).with_context(|| src.display().to_string())?;
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dest.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let copy = || -> anyhow::Result<()> {
        std::fs::copy(src, &tmp)
            .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
        std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()))
            .with_context(|| format!("fchown({})", tmp.display()))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_data())
            .with_context(|| format!("fdatasync({})", tmp.display()))?;
        std::fs::rename(&tmp, dest).with_context(|| format!("renameat({})", dest.display()))
    };
    // A partial copy (out of space, say) must not stay behind in a small /boot.
    copy().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The OS's name for boot menus: `PRETTY_NAME`, else `ID`, of its os-release.
pub fn os_name(root: &Path) -> anyhow::Result<String> {
    let os_release = read_os_release(root)?;
    match os_release
        .get("PRETTY_NAME")
        .or_else(|| os_release.get("ID"))
    {
        Some(name) => Ok(name.clone()),
        None => bail!("No PRETTY_NAME or ID in /etc/os-release"),
    }
}

/// `usr/lib/os-release`, else `etc/os-release`, as `KEY=value` pairs (shell-unquoted).
fn read_os_release(root: &Path) -> anyhow::Result<HashMap<String, String>> {
    let (path, shown) = if std::fs::metadata(root.join("usr/lib/os-release")).is_ok() {
        (root.join("usr/lib/os-release"), "/usr/lib/os-release")
    } else {
        (root.join("etc/os-release"), "/etc/os-release")
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("Reading {shown}"))?;
    let mut out = HashMap::new();
    for line in text.split('\n') {
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if let Some(v) = shell_unquote(v) {
            out.insert(k.to_string(), v);
        }
    }
    Ok(out)
}

/// `g_shell_unquote`: single quotes are literal, double quotes honour `\` before `$ \` " \\`
/// and newline, a bare `\` escapes the next character. `None` on an unterminated quote.
pub fn shell_unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    x => out.push(x),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        x @ ('"' | '\\' | '`' | '$') => out.push(x),
                        '\n' => {}
                        x => {
                            out.push('\\');
                            out.push(x);
                        }
                    },
                    x => out.push(x),
                }
            },
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(x) => out.push(x),
                None => out.push('\\'),
            },
            x => out.push(x),
        }
    }
    Some(out)
}

/// Replaces `link` by a symlink to `target` atomically (temp link + rename).
fn symlink_replace(target: &str, link: &Path) -> anyhow::Result<()> {
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = link.with_file_name(format!("{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("symlinkat({})", tmp.display()))?;
    std::fs::rename(&tmp, link).with_context(|| format!("renameat({})", link.display()))
}

/// The subbootversion the bootlinks of `bootversion` will switch to.
fn next_subbootversion(sysroot: &Sysroot, bootversion: u32) -> anyhow::Result<u32> {
    let old = if bootversion == sysroot.bootversion {
        sysroot.subbootversion
    } else {
        sysroot.read_subbootversion(bootversion)?
    };
    Ok(1 - old)
}

/// Fills `ostree/boot.N.M/<os>/<bootcsum>/<bootserial>` -> the deployment directories.
fn create_bootlinks(
    sysroot: &Sysroot,
    bootversion: u32,
    deployments: &[Deployment],
) -> anyhow::Result<()> {
    let sub = next_subbootversion(sysroot, bootversion)?;
    let dir = sysroot.join(&format!("ostree/boot.{bootversion}.{sub}"));
    super::etc_merge::remove_all(&dir).context("Creating new current bootlinks")?;
    mkdir_p(&dir, 0o755)?;
    for d in deployments {
        let parent = dir.join(format!("{}/{}", d.osname, d.bootcsum));
        mkdir_p(&parent, 0o755)?;
        let target = format!(
            "../../../deploy/{}/deploy/{}.{}",
            d.osname, d.csum, d.deployserial
        );
        symlink_replace(&target, &parent.join(d.bootserial.to_string()))
            .context("Creating new current bootlinks")?;
    }
    Ok(())
}

/// Points `ostree/boot.N` at the bootlinks just created; returns `boot.N.M`.
fn swap_bootlinks(sysroot: &Sysroot, bootversion: u32) -> anyhow::Result<String> {
    let sub = next_subbootversion(sysroot, bootversion)?;
    let name = format!("boot.{bootversion}.{sub}");
    symlink_replace(&name, &sysroot.join(&format!("ostree/boot.{bootversion}")))
        .context("Swapping new version bootlinks")?;
    Ok(name)
}

/// `boot/boot -> .` (for boot loaders reading `/boot` as its own filesystem) and
/// `boot/loader.tmp -> loader.N`, ready to be renamed over `boot/loader`.
fn prepare_loader_link(sysroot: &Sysroot, bootversion: u32) -> anyhow::Result<()> {
    let boot_link = sysroot.join("boot/boot");
    match std::os::unix::fs::symlink(".", &boot_link) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "Preparing final bootloader swap: symlinkat({})",
                    boot_link.display()
                )
            });
        }
    }
    let tmp = sysroot.join("boot/loader.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("loader.{bootversion}"), &tmp).with_context(|| {
        format!(
            "Preparing final bootloader swap: symlinkat({})",
            tmp.display()
        )
    })
}

/// Everything written so far reaches the disk before the switch.
fn sync_fs(sysroot: &Sysroot) -> anyhow::Result<()> {
    let fd = rustix::fs::open(
        &sysroot.path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .context("Full sync")?;
    rustix::fs::syncfs(&fd).context("Full sync: syncfs(sysroot)")?;
    // /boot may be another filesystem.
    if let Ok(boot) = rustix::fs::open(
        sysroot.join("boot"),
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    ) {
        rustix::fs::syncfs(&boot).context("Full sync: syncfs(boot)")?;
    }
    Ok(())
}

/// The switch: `boot/loader.tmp` renamed over `boot/loader`, then `/boot` fsynced.
fn swap_loader(sysroot: &Sysroot) -> anyhow::Result<()> {
    let boot = sysroot.join("boot");
    std::fs::rename(boot.join("loader.tmp"), boot.join("loader"))
        .context("Final bootloader swap")?;
    std::fs::File::open(&boot)
        .and_then(|f| f.sync_all())
        .context("Final bootloader swap: fsync(boot)")
}

#[cfg(test)]
mod tests {
    use super::shell_unquote;

    #[test]
    fn os_release_values_unquote_like_glib() {
        assert_eq!(shell_unquote("\"Test OS 1\"").as_deref(), Some("Test OS 1"));
        assert_eq!(shell_unquote("'a b'").as_deref(), Some("a b"));
        assert_eq!(shell_unquote("plain").as_deref(), Some("plain"));
        assert_eq!(
            shell_unquote("\"a \\\"q\\\" \\n\"").as_deref(),
            Some("a \"q\" \\n")
        );
        assert_eq!(shell_unquote("\"open"), None);
    }
}
