//! Creating a deployment (`ostree_sysroot_deploy_tree`): a hardlink checkout of the commit in
//! `ostree/deploy/<os>/deploy/<csum>.<serial>`, `/etc` copied from `/usr/etc` and merged with
//! the merge deployment's local changes, the `.origin` file, and the immutable flag. Nothing
//! here changes what boots: that is [`super::bootloader::write_deployments`]'s job.

use super::Sysroot;
use super::bootconfig::BootConfig;
use super::bootloader::write_deployments;
use super::cleanup::cleanup;
use super::deployment::{Deployment, parse_deploy_dir_name};
use super::dirs::subdirectories_if_exist;
use super::etc_merge::{merge_etc, remove_all};
use super::kargs::KernelArgs;
use super::kernel::find_kernel;
use super::retention::{Retention, new_deployment_list};
use anyhow::{Context, bail};
use rostree_store::ObjectId;
use rostree_store::checkout::{CheckoutOptions, checkout};
use rostree_store::config::KeyFile;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// What to deploy.
pub struct DeployRequest<'a> {
    /// The stateroot.
    pub osname: &'a str,
    /// The commit.
    pub revision: ObjectId,
    /// The origin to record.
    pub origin: KeyFile,
    /// Kernel arguments; `None` inherits the merge deployment's.
    pub kargs: Option<KernelArgs>,
    /// Where configuration (`/etc`, kernel arguments) is merged from.
    pub merge: Option<&'a Deployment>,
}

/// Deploys `req` and makes it the boot list's default (or where `retention` puts it), keeping
/// what `retention` keeps (`ostree_sysroot_deploy_tree` then
/// `ostree_sysroot_simple_write_deployment`); then cleans up, pruning the repository if
/// `prune`.
pub fn deploy_and_write(
    sysroot: &mut Sysroot,
    req: &DeployRequest,
    retention: Retention,
    prune: bool,
) -> anyhow::Result<()> {
    let new = deploy_tree(sysroot, req)?;
    let new_dir = new.dirpath();
    let list = new_deployment_list(sysroot, req.osname, new.clone(), req.merge, retention);
    if let Err(e) = write_deployments(sysroot, list, false) {
        // Failed before the switch (out of space in /boot, say): nothing boots the new
        // deployment, so it goes, as when preparing it fails. After the switch it stays.
        let booted =
            sysroot.reload().is_err() || sysroot.deployments.iter().any(|d| d.dirpath() == new_dir);
        if !booted {
            discard(sysroot, &new);
        }
        return Err(e);
    }
    // Past the switch the new deployment boots: a failure now (such as ENOSPC writing the
    // deployment refs) must not read as if the deploy had not happened.
    cleanup(sysroot, prune)
        .context("Deployment complete, but cleanup after it failed (`admin cleanup` retries it)")
}

/// Checks out and prepares a new deployment; returns it (not yet in the boot list).
pub fn deploy_tree(sysroot: &Sysroot, req: &DeployRequest) -> anyhow::Result<Deployment> {
    if !super::layout::is_valid_osname(req.osname) {
        bail!("Invalid OS name '{}'", req.osname);
    }
    let stateroot = sysroot.join(&format!("ostree/deploy/{}", req.osname));
    if !stateroot.join("var").is_dir() {
        bail!(
            "{}: no such stateroot '{}' (create it with `admin os-init {}`)",
            stateroot.display(),
            req.osname,
            req.osname
        );
    }
    let csum = req.revision.to_hex();
    let deployserial = allocate_deployserial(sysroot, req.osname, &csum)?;
    let mut d = Deployment {
        index: 0,
        osname: req.osname.to_string(),
        csum,
        deployserial,
        bootcsum: String::new(),
        bootserial: 0,
        bootconfig: BootConfig::default(),
        origin: Some(req.origin.clone()),
        unlocked: "none",
    };
    let root = sysroot.join(&d.dirpath());
    // A failure leaves nothing behind: what boots never referenced this directory.
    let result = initialize(sysroot, req, &mut d, &root);
    if result.is_err() {
        discard(sysroot, &d);
    }
    result.map(|()| d)
}

/// Removes a deployment no boot entry references, with its origin (best effort: this runs
/// on the way out of a failure, which is what gets reported; `admin cleanup` retries).
fn discard(sysroot: &Sysroot, d: &Deployment) {
    let root = sysroot.join(&d.dirpath());
    let _ = set_immutable(&root, false);
    let _ = remove_all(&root);
    let _ = std::fs::remove_file(sysroot.join(&d.origin_relpath()));
}

fn initialize(
    sysroot: &Sysroot,
    req: &DeployRequest,
    d: &mut Deployment,
    root: &Path,
) -> anyhow::Result<()> {
    let osdeploy = root.parent().expect("deployment paths have a parent");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o775)
        .create(osdeploy)
        .with_context(|| format!("mkdir({})", osdeploy.display()))?;
    // Leftovers of an interrupted deployment with the same name.
    if root.exists() {
        let _ = set_immutable(root, false);
        remove_all(root)?;
    }
    let repo = &sysroot.repo;
    repo.read_commit(&req.revision)
        .and_then(|commit| checkout(repo, commit.root(), root, &CheckoutOptions::default()))
        .context("Checking out deployment tree")?;

    let kernel = find_kernel(root)?;
    d.bootcsum = kernel.bootcsum;
    if let Some(k) = &req.kargs {
        d.bootconfig.set("options", &k.to_string());
    }
    prepare_etc(sysroot, &req.revision, root).context("Preparing /etc")?;
    // ostree only finds a missing os-release when writing boot entries; failing here keeps
    // a half-written deployment out of the sysroot.
    super::bootloader::os_name(root).context("Installing kernel")?;
    lint_var(d, root);

    // Finalize: configuration from the merge deployment.
    if let Some(merge) = req.merge {
        if d.bootconfig.get("options").is_none()
            && let Some(opts) = merge.bootconfig.get("options")
        {
            d.bootconfig.set("options", opts);
        }
        merge_etc(repo, &sysroot.join(&merge.dirpath()), root).context("During /etc merge")?;
    }
    let stateroot_var = sysroot.join(&format!("ostree/deploy/{}/var", d.osname));
    // Booted into this stateroot, its /var is mounted at /var (possibly its own filesystem).
    let live_var = match sysroot.booted_deployment() {
        Some(b) if b.osname == d.osname => std::path::PathBuf::from("/var"),
        _ => stateroot_var.clone(),
    };
    // systemd's ConditionNeedsUpdate= units must run after booting the new deployment.
    unlink_if_present(&root.join("etc/.updated"))?;
    unlink_if_present(&live_var.join(".updated"))?;
    stamp_var_labeled(&stateroot_var)?;
    write_origin(sysroot, d)?;
    set_immutable(root, true)
}

/// The next serial for `csum` in this stateroot: one more than the highest on disk.
fn allocate_deployserial(sysroot: &Sysroot, osname: &str, csum: &str) -> anyhow::Result<u32> {
    let mut serial = 0;
    for (c, s) in list_deployment_dirs(sysroot, osname)? {
        if c == csum {
            serial = serial.max(s + 1);
        }
    }
    Ok(serial)
}

/// The deployment directories of a stateroot, as `(csum, serial)`.
pub fn list_deployment_dirs(sysroot: &Sysroot, osname: &str) -> anyhow::Result<Vec<(String, u32)>> {
    let dir = sysroot.join(&format!("ostree/deploy/{osname}/deploy"));
    let mut out = Vec::new();
    for entry in subdirectories_if_exist(&dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        match parse_deploy_dir_name(&name) {
            Some(parsed) => out.push(parsed),
            None => bail!("Invalid deploy name '{name}', expected CHECKSUM.TREESERIAL"),
        }
    }
    Ok(out)
}

/// `/etc` as a copy of `/usr/etc` (ostree refuses trees with both). A tree with only `/etc`
/// (not yet moved by its builder) is accepted: it is moved to `/usr/etc` and copied back from
/// the commit's `/etc` (ostree 2022.7 moves it but then fails looking for the commit's
/// `/usr/etc`).
fn prepare_etc(sysroot: &Sysroot, revision: &ObjectId, root: &Path) -> anyhow::Result<()> {
    let etc = root.join("etc");
    let usr_etc = root.join("usr/etc");
    let etc_exists = std::fs::symlink_metadata(&etc).is_ok();
    let usr_etc_exists = std::fs::symlink_metadata(&usr_etc).is_ok();
    let subpath = match (etc_exists, usr_etc_exists) {
        (true, true) => bail!("Tree contains both /etc and /usr/etc"),
        (true, false) => {
            std::fs::rename(&etc, &usr_etc)
                .with_context(|| format!("renameat({})", etc.display()))?;
            "/etc"
        }
        (false, true) => "/usr/etc",
        (false, false) => return Ok(()),
    };
    let repo = &sysroot.repo;
    let commit = repo.read_commit(revision)?;
    let opts = CheckoutOptions {
        force_copy: true,
        subpath: subpath.to_string(),
        ..CheckoutOptions::default()
    };
    checkout(repo, commit.root(), &etc, &opts)?;
    Ok(())
}

/// Content in the commit's `/var` is never used (the stateroot's `/var` is): say so.
fn lint_var(d: &Deployment, root: &Path) {
    if let Ok(iter) = std::fs::read_dir(root.join("var")) {
        for entry in iter.flatten() {
            eprintln!(
                "note: Deploying commit {} which contains content in /var/{} that will be ignored.",
                d.csum,
                entry.file_name().to_string_lossy()
            );
        }
    }
}

fn unlink_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("unlinkat({})", path.display())),
    }
}

/// ostree's one-time `/var` relabeling stamp. Without SELinux there is nothing to relabel, but
/// the stamp and the message are kept so both tools leave the same `/var`.
fn stamp_var_labeled(var: &Path) -> anyhow::Result<()> {
    let stamp = var.join(".ostree-selabeled");
    if std::fs::symlink_metadata(&stamp).is_ok() {
        return Ok(());
    }
    println!("Relabeling /var (no stamp file 'var/.ostree-selabeled' found)");
    write_file_atomic(&stamp, b"", true)
}

/// Writes a deployment's `.origin` next to its directory.
pub fn write_origin(sysroot: &Sysroot, d: &Deployment) -> anyhow::Result<()> {
    let Some(origin) = &d.origin else {
        return Ok(());
    };
    let path = sysroot.join(&d.origin_relpath());
    write_file_atomic(&path, origin.to_text().as_bytes(), false).context("Writing out origin file")
}

/// Writes `data` to a temporary file in the same directory, syncs it if `sync`, and renames
/// it over `path` (mode 0644): readers see the old or the new content, never a part.
pub fn write_file_atomic(path: &Path, data: &[u8], sync: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".tmp-{name}-{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        if sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
        .with_context(|| format!("writing {}", path.display()))
}

/// Sets or clears the immutable flag (`chattr +i`) of a deployment's root directory, which
/// keeps anything from adding or removing top-level entries of a running system.
pub fn set_immutable(root: &Path, immutable: bool) -> anyhow::Result<()> {
    use rustix::fs::IFlags;
    let fd = rustix::fs::open(
        root,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW,
        rustix::fs::Mode::empty(),
    )
    .with_context(|| format!("opendir({})", root.display()))?;
    let flags = match rustix::fs::ioctl_getflags(&fd) {
        Ok(f) => f,
        // Filesystems without flags (tmpfs) have nothing to set, as in ostree.
        Err(rustix::io::Errno::NOTTY) | Err(rustix::io::Errno::OPNOTSUPP) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("ioctl(GETFLAGS) {}", root.display())),
    };
    let new = if immutable {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    if new != flags {
        rustix::fs::ioctl_setflags(&fd, new)
            .with_context(|| format!("ioctl(SETFLAGS) {}", root.display()))?;
    }
    Ok(())
}
