//! `admin cleanup` (`ostree_sysroot_cleanup`): delete what no boot entry references — the
//! other bootversion's entries and bootlinks, deployment directories and `/boot` kernel
//! directories not in the list — then reset the `ostree/<bootversion>/<subbootversion>/<index>`
//! refs that keep deployed commits from being pruned, and (with `prune`) prune the repository
//! from its refs, depth 0.

use super::Sysroot;
use super::deploy::{list_deployment_dirs, set_immutable};
use super::dirs::subdirectories_if_exist;
use super::etc_merge::remove_all;
use anyhow::Context;
use rostree_store::prune::{PruneOptions, prune};
use std::collections::HashSet;

/// Runs the cleanup; `prune` also prunes the repository, printing what it freed.
pub fn cleanup(sysroot: &Sysroot, do_prune: bool) -> anyhow::Result<()> {
    cleanup_other_bootversions(sysroot).context("Cleaning bootversions")?;
    cleanup_old_deployments(sysroot).context("Cleaning deployments")?;
    generate_deployment_refs(sysroot).context("Generating deployment refs")?;
    if do_prune {
        let opts = PruneOptions {
            refs_only: true,
            depth: 0,
            ..PruneOptions::default()
        };
        let stats = prune(&sysroot.repo, &opts)
            .map_err(|e| anyhow::anyhow!("Pruning system repository: {e}"))?;
        if stats.freed_bytes > 0 {
            println!(
                "Freed objects: {}",
                crate::cli::util::format_size(stats.freed_bytes)
            );
        }
    }
    Ok(())
}

/// Of the four (bootversion, subbootversion) pairs only the current one is kept.
fn cleanup_other_bootversions(sysroot: &Sysroot) -> anyhow::Result<()> {
    let other = 1 - sysroot.bootversion;
    let other_sub = 1 - sysroot.subbootversion;
    for rel in [
        format!("boot/loader.{other}"),
        format!("ostree/boot.{other}"),
        format!("ostree/boot.{other}.0"),
        format!("ostree/boot.{other}.1"),
        format!("ostree/boot.{}.{other_sub}", sysroot.bootversion),
    ] {
        remove_all(&sysroot.join(&rel))?;
    }
    Ok(())
}

/// Deletes deployment directories (with their origin) and `/boot/ostree/<os>-<bootcsum>`
/// directories no current deployment uses.
fn cleanup_old_deployments(sysroot: &Sysroot) -> anyhow::Result<()> {
    let active_dirs: HashSet<String> = sysroot.deployments.iter().map(|d| d.dirpath()).collect();
    let active_bootcsums: HashSet<&str> = sysroot
        .deployments
        .iter()
        .map(|d| d.bootcsum.as_str())
        .collect();
    let booted = sysroot.booted_deployment().map(|d| d.dirpath());
    for stateroot in subdirectories_if_exist(&sysroot.join("ostree/deploy"))? {
        let os = stateroot.file_name().to_string_lossy().into_owned();
        for (csum, serial) in list_deployment_dirs(sysroot, &os)? {
            let rel = format!("ostree/deploy/{os}/deploy/{csum}.{serial}");
            if active_dirs.contains(&rel) || booted.as_deref() == Some(rel.as_str()) {
                continue;
            }
            let root = sysroot.join(&rel);
            set_immutable(&root, false)?;
            remove_all(&sysroot.join(&format!("{rel}.origin")))?;
            remove_all(&root)?;
        }
    }
    for entry in subdirectories_if_exist(&sysroot.join("boot/ostree"))? {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only `<os>-<sha256>` directories are ours to delete.
        let Some((_, csum)) = name.rsplit_once('-') else {
            continue;
        };
        let is_csum =
            csum.len() == 64 && csum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if is_csum && !active_bootcsums.contains(csum) {
            remove_all(&entry.path())?;
        }
    }
    Ok(())
}

/// Deletes the deployment refs of the inactive bootversions and writes
/// `ostree/<bootversion>/<subbootversion>/<index>` for each deployment.
fn generate_deployment_refs(sysroot: &Sysroot) -> anyhow::Result<()> {
    let repo = &sysroot.repo;
    let (bv, sub) = (sysroot.bootversion, sysroot.subbootversion);
    let stale = [
        format!("ostree/{}/0", 1 - bv),
        format!("ostree/{}/1", 1 - bv),
        format!("ostree/{bv}/{}", 1 - sub),
    ];
    for (name, _) in repo.list_refs(None)? {
        let is_stale = stale.iter().any(|p| {
            name.strip_prefix(p.as_str())
                .is_some_and(|r| r.starts_with('/'))
        });
        if is_stale {
            repo.write_ref(None, &name, None)?;
        }
    }
    for (i, d) in sysroot.deployments.iter().enumerate() {
        let id = rostree_store::ObjectId::from_hex(&d.csum)
            .map_err(|e| anyhow::anyhow!("deployment {}: {e}", d.csum))?;
        repo.write_ref(None, &format!("ostree/{bv}/{sub}/{i}"), Some(&id))?;
    }
    Ok(())
}
