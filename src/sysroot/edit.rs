//! Changes to existing deployments that need no new checkout: pinning, the origin, and kernel
//! arguments rewritten in the current boot entries.

use super::Sysroot;
use super::deploy::write_file_atomic;
use super::deployment::{Deployment, ORIGIN_GROUP, TRANSIENT_GROUP};
use super::kargs::{Edits, KernelArgs};
use anyhow::{Context, anyhow, bail};
use rostree_store::config::KeyFile;
use rostree_store::pull::RemoteOptions;

/// The deployment at `index` as `admin status` numbers them, with ostree's errors.
pub fn indexed_deployment(sysroot: &Sysroot, index: i64) -> anyhow::Result<&Deployment> {
    let n = sysroot.deployments.len();
    if index < 0 {
        bail!("Invalid index {index}");
    }
    if index as u64 >= n as u64 {
        bail!("Out of range deployment index {index}, expected < {n}");
    }
    Ok(&sysroot.deployments[index as usize])
}

/// Replaces a deployment's origin file durably and tells watchers (`ostree/deploy` mtime).
pub fn write_origin_file(
    sysroot: &Sysroot,
    d: &Deployment,
    origin: &KeyFile,
) -> anyhow::Result<()> {
    let path = sysroot.join(&d.origin_relpath());
    write_file_atomic(&path, origin.to_text().as_bytes(), true)
        .context("Writing out origin file")?;
    sysroot.bump_mtime()
}

/// Pins (kept whatever the retention rules say) or unpins deployment `index`; returns whether
/// that changed anything.
pub fn set_pinned(sysroot: &Sysroot, index: i64, pinned: bool) -> anyhow::Result<bool> {
    let d = indexed_deployment(sysroot, index)?;
    if d.is_pinned() == pinned {
        return Ok(false);
    }
    let mut origin = d.origin.clone().unwrap_or_default();
    if pinned {
        origin.set(TRANSIENT_GROUP, "pinned", "true");
    } else {
        // GLib keeps the (now empty) group, and so do we, byte for byte.
        origin.remove(TRANSIENT_GROUP, "pinned");
    }
    write_origin_file(sysroot, d, &origin)?;
    Ok(true)
}

/// `admin set-origin`: adds the remote if it is not configured (with `options` as `KEY=VALUE`
/// strings; in the repository config, or on a booted system in `/etc/ostree/remotes.d`),
/// then points deployment `index`'s origin at `REMOTE:BRANCH` (default: the ref of its
/// current origin). The new origin has only the refspec, as ostree writes it.
pub fn set_origin(
    sysroot: &mut Sysroot,
    index: Option<i64>,
    remote: &str,
    url: &str,
    branch: Option<&str>,
    options: &[String],
) -> anyhow::Result<()> {
    let d = match index {
        Some(i) => indexed_deployment(sysroot, i)?.clone(),
        None => sysroot
            .booted_deployment()
            .cloned()
            .ok_or_else(|| anyhow!("Not currently booted into an OSTree system"))?,
    };
    let mut settings = Vec::new();
    for kv in options {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("Missing '=' in KEY=VALUE pair '{kv}'");
        };
        settings.push((k.to_string(), v.to_string()));
    }
    let options = RemoteOptions {
        settings,
        ..Default::default()
    };
    sysroot.repo.add_remote(remote, url, &options, true)?;
    let current = d.origin_refspec().unwrap_or_default().to_string();
    let (_, current_ref) = rostree_store::refs::parse_refspec(&current)?;
    let mut origin = KeyFile::default();
    origin.set(
        ORIGIN_GROUP,
        "refspec",
        &format!("{remote}:{}", branch.unwrap_or(current_ref)),
    );
    write_origin_file(sysroot, &d, &origin)
}

/// `admin kargs edit-in-place`: applies `edits` to every deployment's entry of the current
/// bootversion, rewriting each entry file atomically (no new bootversion: the same
/// deployments boot, with new arguments). An edit that fails for any deployment (deleting or
/// replacing what it lacks) changes no entry.
pub fn kargs_edit_in_place(sysroot: &Sysroot, edits: &Edits) -> anyhow::Result<()> {
    if sysroot.deployments.is_empty() {
        bail!("Unable to find a deployment in sysroot");
    }
    let n = sysroot.deployments.len();
    let mut entries = Vec::new();
    for d in &sysroot.deployments {
        let mut kargs = KernelArgs::from_string(d.bootconfig.get("options").unwrap_or(""));
        kargs
            .apply(edits)
            .map_err(|e| anyhow!("Deployment {}.{}: {e}", d.csum, d.deployserial))?;
        let mut bootconfig = d.bootconfig.clone();
        bootconfig.set("options", &kargs.to_string());
        let entry = sysroot.join(&format!(
            "boot/loader.{}/entries/ostree-{}-{}.conf",
            sysroot.bootversion,
            n - d.index,
            d.osname
        ));
        entries.push((entry, bootconfig.to_text()));
    }
    for (entry, text) in entries {
        write_file_atomic(&entry, text.as_bytes(), false)?;
    }
    Ok(())
}
