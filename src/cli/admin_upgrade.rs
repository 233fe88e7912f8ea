//! `admin upgrade` and `admin switch`, as `ostree admin` 2022.7: pull the origin's ref (or a
//! new one) and deploy it. The work is in `crate::sysroot::upgrade`.

use crate::sysroot::cleanup::cleanup;
use crate::sysroot::deployment::ORIGIN_GROUP;
use crate::sysroot::upgrade::{PullMode, Upgrader, remove_transient_state};
use crate::sysroot::{Locking, Sysroot};
use anyhow::bail;
use rostree_store::config::KeyFile;
use rostree_store::refs::parse_refspec;
use std::path::Path;

/// Options of `admin upgrade`.
#[derive(clap::Args, Debug)]
pub struct UpgradeArgs {
    /// Use a different operating system root than the current one.
    #[arg(long = "os", value_name = "OSNAME")]
    osname: Option<String>,
    /// Reboot after a successful upgrade (not supported: reboot yourself).
    #[arg(short = 'r', long)]
    reboot: bool,
    /// Permit deployment of chronologically older trees.
    #[arg(long)]
    allow_downgrade: bool,
    /// Deploy CHECKSUM instead of the latest tree.
    #[arg(long, value_name = "CHECKSUM")]
    override_commit: Option<String>,
    /// Do not create a deployment, just download.
    #[arg(long)]
    pull_only: bool,
    /// Do not pull, only deploy.
    #[arg(long)]
    deploy_only: bool,
    /// Enable staging (not supported yet).
    #[arg(long)]
    stage: bool,
}

/// Options of `admin switch`.
#[derive(clap::Args, Debug)]
pub struct SwitchArgs {
    /// The new `[REMOTE:]REF` (`REMOTE:` alone keeps the ref and changes the remote).
    refspec: String,
    /// Use a different operating system root than the current one.
    #[arg(long = "os", value_name = "OSNAME")]
    osname: Option<String>,
    /// The remote to pull REF from (the same as giving REMOTE:REF; not in ostree 2022.7).
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Reboot after switching trees (not supported: reboot yourself).
    #[arg(short = 'r', long)]
    reboot: bool,
}

/// Refuses what rostree does not do, before anything changes.
fn refuse_unsupported(reboot: bool, stage: bool) -> anyhow::Result<()> {
    if reboot {
        bail!("--reboot is not supported by rostree: reboot once the command has succeeded");
    }
    if stage {
        bail!("--stage is not supported by rostree yet: deploy without it");
    }
    Ok(())
}

/// `admin upgrade`: pull the origin's ref; if it moved, deploy it.
pub fn upgrade(sysroot_path: &Path, a: UpgradeArgs) -> anyhow::Result<()> {
    if a.pull_only && a.deploy_only {
        bail!("Cannot simultaneously specify --pull-only and --deploy-only");
    }
    if a.pull_only && a.reboot {
        bail!("Cannot simultaneously specify --pull-only and --reboot");
    }
    refuse_unsupported(a.reboot, a.stage)?;
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    let mut up = Upgrader::new(&sysroot, a.osname.as_deref(), false)?;
    let mut origin = up.origin.clone();
    remove_transient_state(&mut origin);
    if let Some(c) = &a.override_commit {
        origin.set(ORIGIN_GROUP, "override-commit", c);
    }
    up.set_origin(origin, false)?;
    let mode = PullMode {
        synthetic: a.deploy_only,
        allow_older: a.allow_downgrade,
    };
    let changed = match up.pull(&sysroot, mode) {
        Ok(c) => c,
        Err(e) => {
            // As ostree: with --pull-only, drop what a failed pull left before the next one.
            if a.pull_only {
                let _ = cleanup(&sysroot, true);
            }
            return Err(e);
        }
    };
    if !changed {
        println!("No update available.");
    } else if !a.pull_only {
        up.deploy(&mut sysroot)?;
    }
    Ok(())
}

/// `admin switch`: point the origin at another ref (or remote), pull it and deploy it, then
/// delete the old ref.
pub fn switch(sysroot_path: &Path, a: SwitchArgs) -> anyhow::Result<()> {
    refuse_unsupported(a.reboot, false)?;
    let (mut new_remote, given_ref) = match a.refspec.strip_suffix(':') {
        Some(remote) => (Some(remote.to_string()), None),
        None => {
            let (r, n) = parse_refspec(&a.refspec)?;
            (r.map(str::to_string), Some(n.to_string()))
        }
    };
    if let Some(r) = &a.remote {
        match &new_remote {
            Some(given) if given != r => {
                bail!(
                    "--remote={r} conflicts with the remote of refspec {}",
                    a.refspec
                )
            }
            _ => new_remote = Some(r.clone()),
        }
    }
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    let mut up = Upgrader::new(&sysroot, a.osname.as_deref(), true)?;
    let old_remote = up.origin_remote.clone();
    let old_ref = up.origin_ref.clone();
    let old_refspec = up.origin_refspec();
    // `REMOTE:` alone keeps the ref.
    let new_ref = given_ref.unwrap_or_else(|| old_ref.clone());
    let new_refspec = match new_remote.or(old_remote.clone()) {
        Some(r) => format!("{r}:{new_ref}"),
        None => new_ref,
    };
    if new_refspec == old_refspec {
        bail!("Old and new refs are equal: {new_refspec}");
    }
    let mut origin = KeyFile::default();
    origin.set(ORIGIN_GROUP, "refspec", &new_refspec);
    up.set_origin(origin, true)?;
    let mode = PullMode {
        synthetic: false,
        // There is no chronological relationship between two branches.
        allow_older: true,
    };
    up.pull(&sysroot, mode)?;
    up.deploy(&mut sysroot)?;
    // ostree prints a missing remote as glibc prints a NULL string.
    println!(
        "Deleting ref '{}:{old_ref}'",
        old_remote.as_deref().unwrap_or("(null)")
    );
    let tx = sysroot.repo.begin()?;
    tx.set_ref(old_remote.as_deref(), &old_ref, None);
    tx.commit()?;
    Ok(())
}
