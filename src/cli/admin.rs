//! `admin`: sysroot and deployment management, as `ostree admin` 2022.7 (`init-fs`, `os-init`,
//! `deploy`, `status`, `undeploy`, `cleanup`, `pin`, `set-origin`, `kargs edit-in-place`,
//! `config-diff`; `upgrade` and `switch` in `admin_upgrade`). The work is in `crate::sysroot`.

use crate::cli::util::with_stdout;
use crate::sysroot::bootloader::write_deployments;
use crate::sysroot::cleanup::cleanup;
use crate::sysroot::deploy::{DeployRequest, deploy_and_write};
use crate::sysroot::deployment::ORIGIN_GROUP;
use crate::sysroot::edit;
use crate::sysroot::kargs::{Edits, KernelArgs};
use crate::sysroot::layout;
use crate::sysroot::retention::{Retention, rollback_list};
use crate::sysroot::status;
use crate::sysroot::{Locking, Sysroot};
use anyhow::{Context, anyhow, bail};
use rostree_store::config::KeyFile;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `admin`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Create a new sysroot at PATH (default: /).
    #[arg(long, global = true, value_name = "PATH")]
    sysroot: Option<PathBuf>,
    /// The admin command.
    #[command(subcommand)]
    command: Command,
}

/// The `admin` commands.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Initialize a root filesystem.
    #[command(name = "init-fs")]
    InitFs {
        /// The directory (it must exist).
        path: PathBuf,
        /// Only create /boot and /ostree.
        #[arg(long)]
        modern: bool,
    },
    /// Initialize empty state for given operating system.
    #[command(name = "os-init")]
    OsInit {
        /// The OS (stateroot) name.
        osname: String,
    },
    /// Checkout revision REFSPEC as the new default deployment.
    Deploy(Box<DeployArgs>),
    /// List deployments.
    Status {
        /// Print the deployments as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete deployment INDEX.
    Undeploy {
        /// The deployment's index, as `admin status` lists them (0 first).
        #[arg(allow_hyphen_values = true)]
        index: String,
    },
    /// Delete untagged deployments and repository objects.
    Cleanup,
    /// Change the "pinning" state of deployments (pinned ones are never garbage collected).
    Pin {
        /// Deployment indices, as `admin status` lists them.
        #[arg(required = true)]
        indices: Vec<String>,
        /// Unset pin.
        #[arg(short = 'u', long)]
        unpin: bool,
    },
    /// Change the "origin" (remote and branch) of a deployment.
    #[command(name = "set-origin")]
    SetOrigin {
        /// The remote's name.
        remote: String,
        /// The remote's URL (used when the remote is added).
        url: String,
        /// The branch (default: the current origin's).
        branch: Option<String>,
        /// Set config option KEY=VALUE for the remote (when it is added).
        #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Operate on the deployment INDEX, starting from zero (default: the booted one).
        #[arg(long, allow_hyphen_values = true)]
        index: Option<i64>,
    },
    /// Change kernel arguments.
    Kargs {
        /// The kargs command.
        #[command(subcommand)]
        command: KargsCommand,
    },
    /// Make the previous deployment the default again (not in ostree 2022.7: rpm-ostree's
    /// semantics).
    Rollback {
        /// The stateroot (default: the booted one's).
        #[arg(long = "os", value_name = "OSNAME")]
        osname: Option<String>,
    },
    /// Construct new tree from current origin and deploy it, if it changed.
    Upgrade(Box<super::admin_upgrade::UpgradeArgs>),
    /// Construct new tree from REFSPEC and deploy it.
    Switch(Box<super::admin_upgrade::SwitchArgs>),
    /// Diff current /etc configuration versus default.
    #[command(name = "config-diff")]
    ConfigDiff {
        /// Use a different operating system root than the current one.
        #[arg(long = "os", value_name = "OSNAME")]
        osname: Option<String>,
    },
}

/// `admin kargs` commands.
#[derive(clap::Subcommand, Debug)]
enum KargsCommand {
    /// Set new kernel command line arguments in place (applies to all deployments).
    #[command(name = "edit-in-place")]
    EditInPlace {
        /// Append kernel arguments if they do not exist.
        #[arg(long = "append-if-missing", value_name = "NAME=VALUE")]
        append_if_missing: Vec<String>,
        /// Append a kernel argument (not in ostree 2022.7).
        #[arg(long, value_name = "NAME=VALUE")]
        append: Vec<String>,
        /// Delete a kernel argument; the value is needed when the key repeats (not in ostree
        /// 2022.7).
        #[arg(long, value_name = "NAME[=VALUE]")]
        delete: Vec<String>,
        /// Change a kernel argument's value; NAME=OLD=NEW picks one of several (not in ostree
        /// 2022.7).
        #[arg(long, value_name = "NAME=[OLD=]NEW")]
        replace: Vec<String>,
    },
}

/// Options of `admin deploy`.
#[derive(clap::Args, Debug)]
struct DeployArgs {
    /// The ref or commit to deploy.
    refspec: String,
    /// Use a different operating system root than the current one.
    #[arg(long = "os", value_name = "OSNAME")]
    osname: Option<String>,
    /// Specify origin file.
    #[arg(long, value_name = "FILENAME")]
    origin_file: Option<PathBuf>,
    /// Don't prune the repo when done.
    #[arg(long)]
    no_prune: bool,
    /// Do not apply configuration (/etc and kernel arguments) from booted deployment.
    #[arg(long)]
    no_merge: bool,
    /// Do not delete previous deployments.
    #[arg(long)]
    retain: bool,
    /// Do not delete pending deployments.
    #[arg(long)]
    retain_pending: bool,
    /// Do not delete rollback deployments.
    #[arg(long)]
    retain_rollback: bool,
    /// Append rather than prepend new deployment.
    #[arg(long)]
    not_as_default: bool,
    /// Import current /proc/cmdline.
    #[arg(long)]
    karg_proc_cmdline: bool,
    /// Set kernel argument, like root=/dev/sda1; this overrides any earlier argument with the
    /// same name.
    #[arg(long = "karg", value_name = "NAME=VALUE")]
    karg: Vec<String>,
    /// Append kernel argument; useful with e.g. console= that can be used multiple times.
    #[arg(long = "karg-append", value_name = "NAME=VALUE")]
    karg_append: Vec<String>,
    /// Do not import kernel arguments.
    #[arg(long)]
    karg_none: bool,
    /// Delete kernel argument if exists.
    #[arg(long = "karg-delete", value_name = "NAME=VALUE")]
    karg_delete: Option<String>,
}

/// Runs an `admin` command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let sysroot = args.sysroot.unwrap_or_else(|| PathBuf::from("/"));
    match args.command {
        Command::InitFs { path, modern } => layout::init_fs(&path, modern)?,
        Command::OsInit { osname } => {
            // The sysroot itself must exist; what is inside is created as needed.
            std::fs::read_dir(&sysroot)
                .with_context(|| format!("opendir({})", sysroot.display()))?;
            layout::ensure_initialized(&sysroot)?;
            layout::init_osname(&sysroot, &osname)?;
            println!("ostree/deploy/{osname} initialized as OSTree root");
        }
        Command::Deploy(a) => deploy(&sysroot, *a)?,
        Command::Status { json } => {
            let s = Sysroot::load(&sysroot, Locking::Unlocked)?;
            with_stdout(|out| {
                if json {
                    status::print_json(&s, out)?;
                } else {
                    status::print_text(&s, out)?;
                }
                Ok(())
            })?;
        }
        Command::Undeploy { index } => undeploy(&sysroot, &index)?,
        Command::Cleanup => {
            let s = Sysroot::load(&sysroot, Locking::Locked)?;
            cleanup(&s, true)?;
        }
        Command::Pin { indices, unpin } => pin(&sysroot, &indices, !unpin)?,
        Command::SetOrigin {
            remote,
            url,
            branch,
            set,
            index,
        } => {
            let mut s = Sysroot::load(&sysroot, Locking::Locked)?;
            edit::set_origin(&mut s, index, &remote, &url, branch.as_deref(), &set)?;
        }
        Command::Kargs {
            command:
                KargsCommand::EditInPlace {
                    append_if_missing,
                    append,
                    delete,
                    replace,
                },
        } => {
            let s = Sysroot::load(&sysroot, Locking::Locked)?;
            let edits = Edits {
                delete,
                replace,
                append,
                append_if_missing,
            };
            edit::kargs_edit_in_place(&s, &edits)?;
        }
        Command::ConfigDiff { osname } => config_diff(&sysroot, osname.as_deref())?,
        Command::Rollback { osname } => rollback(&sysroot, osname.as_deref())?,
        Command::Upgrade(a) => super::admin_upgrade::upgrade(&sysroot, *a)?,
        Command::Switch(a) => super::admin_upgrade::switch(&sysroot, *a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// GLib's key-file writer drops comments and blank lines it did not keep, and separates
/// groups with one blank line: an origin file given with `--origin-file` is rewritten so.
fn normalize_keyfile(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if t.starts_with('[') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(line.trim_start());
        out.push('\n');
    }
    out
}

fn deploy(sysroot_path: &Path, a: DeployArgs) -> anyhow::Result<()> {
    if a.karg_proc_cmdline && a.karg_none {
        bail!("Can't specify both --karg-proc-cmdline and --karg-none");
    }
    if a.karg_none && a.karg_delete.is_some() {
        bail!("Can't specify both --karg-none and --karg-delete");
    }
    if a.no_merge && a.karg_delete.is_some() {
        bail!("Can't specify both --no-merge and --karg-delete");
    }
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    let osname = match (&a.osname, sysroot.booted_deployment()) {
        (Some(os), _) => os.clone(),
        (None, Some(b)) => b.osname.clone(),
        (None, None) => bail!(
            "Looking for booted deployment: Not currently booted into an OSTree system and no --os= argument given"
        ),
    };
    let origin = match &a.origin_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("Failed to open file “{}”", path.display()))?;
            KeyFile::parse(&normalize_keyfile(&text))
                .map_err(|e| anyhow!("{}: {e}", path.display()))?
        }
        None => {
            let mut k = KeyFile::default();
            k.set(ORIGIN_GROUP, "refspec", &a.refspec);
            k
        }
    };
    let revision = sysroot.repo.resolve_rev(&a.refspec)?;
    // Before any work: a deploy always writes new boot entries.
    crate::sysroot::bootloader::check_bootloader_supported(&sysroot)?;
    let merge = if a.no_merge {
        None
    } else {
        sysroot.merge_deployment(&osname).cloned()
    };
    cleanup(&sysroot, false).context("Performing initial cleanup")?;

    let mut kargs: Option<KernelArgs> = None;
    if a.karg_none {
        kargs = Some(KernelArgs::default());
    } else if a.karg_proc_cmdline {
        let cmdline = std::fs::read_to_string("/proc/cmdline").context("/proc/cmdline")?;
        let mut k = KernelArgs::default();
        // Arguments the boot loader adds itself.
        k.append_all(
            cmdline
                .trim_end()
                .split(' ')
                .filter(|s| !s.starts_with("BOOT_IMAGE=") && !s.starts_with("initrd=")),
        );
        kargs = Some(k);
    } else if let Some(m) = &merge
        && (!a.karg.is_empty() || !a.karg_append.is_empty() || a.karg_delete.is_some())
    {
        kargs = Some(KernelArgs::from_string(
            m.bootconfig.get("options").unwrap_or(""),
        ));
    }
    for arg in &a.karg {
        kargs.get_or_insert_with(KernelArgs::default).replace(arg);
    }
    for arg in &a.karg_append {
        kargs.get_or_insert_with(KernelArgs::default).append(arg);
    }
    if let Some(arg) = &a.karg_delete {
        kargs
            .get_or_insert_with(KernelArgs::default)
            .delete(arg)
            .map_err(|e| anyhow!(e))?;
    }

    let req = DeployRequest {
        osname: &osname,
        revision,
        origin,
        kargs,
        merge: merge.as_ref(),
    };
    let retention = Retention {
        all: a.retain,
        pending: a.retain_pending,
        rollback: a.retain_rollback,
        not_as_default: a.not_as_default,
    };
    deploy_and_write(&mut sysroot, &req, retention, !a.no_prune)
}

fn undeploy(sysroot_path: &Path, index: &str) -> anyhow::Result<()> {
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    let n = sysroot.deployments.len();
    let i: i64 = index
        .trim()
        .parse()
        .map_err(|_| anyhow!("Invalid index {index}"))?;
    if i < 0 {
        bail!("Invalid index {i}");
    }
    if i as usize >= n {
        bail!("Out of range deployment index {i}, expected < {n}");
    }
    let i = i as usize;
    if sysroot.booted == Some(i) {
        bail!("Cannot undeploy currently booted deployment {i}");
    }
    let mut list = sysroot.deployments.clone();
    let target = list.remove(i);
    write_deployments(&mut sysroot, list, true)?;
    println!("Deleted deployment {}.{}", target.csum, target.deployserial);
    cleanup(&sysroot, true).context("Performing final cleanup")
}

fn pin(sysroot_path: &Path, indices: &[String], pinned: bool) -> anyhow::Result<()> {
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    for text in indices {
        let index: i64 = match text.parse::<u64>() {
            Ok(i) => i64::try_from(i).map_err(|_| anyhow!("Index too large: {text}"))?,
            Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => {
                bail!("Index too large: {text}")
            }
            Err(_) => bail!("Invalid index: {text}"),
        };
        let state = if pinned { "pinned" } else { "unpinned" };
        if edit::set_pinned(&sysroot, index, pinned)? {
            println!("Deployment {text} is now {state}");
            sysroot.reload()?;
        } else {
            println!("Deployment {text} is already {state}");
        }
    }
    Ok(())
}

/// `admin config-diff`: the changes made to `/etc` of the booted (or `--os`'s merge)
/// deployment, relative to its `/usr/etc`, as `M`/`D`/`A` lines.
fn config_diff(sysroot_path: &Path, osname: Option<&str>) -> anyhow::Result<()> {
    let sysroot = Sysroot::load(sysroot_path, Locking::Unlocked)?;
    let d = match (osname, sysroot.booted_deployment()) {
        (Some(os), _) => sysroot
            .merge_deployment(os)
            .ok_or_else(|| anyhow!("No deployment for OS '{os}'"))?,
        (None, Some(b)) => b,
        (None, None) => {
            bail!("Not currently booted into an OSTree system and no --os= argument given")
        }
    };
    let root = sysroot.join(&d.dirpath());
    let opts = rostree_store::diff::DiffOptions {
        ignore_xattrs: true,
        ..Default::default()
    };
    let diff = sysroot.repo.diff(
        &rostree_store::diff::DiffSide::Dir(root.join("usr/etc")),
        &rostree_store::diff::DiffSide::Dir(root.join("etc")),
        &opts,
    )?;
    with_stdout(|out| {
        for (c, list) in [
            ('M', &diff.modified),
            ('D', &diff.removed),
            ('A', &diff.added),
        ] {
            for p in list {
                write!(out, "{c}    ")?;
                out.write_all(&p.display_bytes())?;
                out.write_all(b"\n")?;
            }
        }
        Ok(())
    })
}

fn rollback(sysroot_path: &Path, osname: Option<&str>) -> anyhow::Result<()> {
    let mut sysroot = Sysroot::load(sysroot_path, Locking::Locked)?;
    let osname = match (osname, sysroot.booted_deployment()) {
        (Some(os), _) => os.to_string(),
        (None, Some(b)) => b.osname.clone(),
        (None, None) => {
            bail!("Not currently booted into an OSTree system and no --os= argument given")
        }
    };
    let Some(list) = rollback_list(&sysroot, &osname) else {
        bail!("No rollback deployment found for OS '{osname}'");
    };
    let target = format!("{}.{}", list[0].csum, list[0].deployserial);
    write_deployments(&mut sysroot, list, true)?;
    println!("Moving '{target}' to be first deployment");
    Ok(())
}
