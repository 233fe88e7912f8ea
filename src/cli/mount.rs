//! `mount` and `umount`: a commit, or the whole repository, as a read-only FUSE filesystem.

use anyhow::Context;
use rostree_mount::{MountOptions, MountSpec, Root};
use rostree_store::Repo;
use rostree_store::repo::default_repo_path;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Set in the environment of the process a `--daemon` mount runs in.
const DAEMON_CHILD: &str = "ROSTREE_MOUNT_DAEMON_CHILD";

/// Options of `mount`.
#[derive(clap::Args, Debug)]
#[command(
    override_usage = "rostree mount [OPTIONS] [REV] <MOUNTPOINT>",
    after_help = "Without REV, the whole repository is mounted: refs/heads/<ref> and \
refs/remotes/<remote>/<ref> link into commits/<checksum>/ (every commit of the repository), \
and history/<ref>/0, 1, ... (history/<remote>:<ref>/... for remote refs) walk each ref's \
parents. Refs moved while mounted show within a second. Unmount with `rostree umount`, \
or Ctrl-C a foreground mount."
)]
pub struct Args {
    /// `[REV] MOUNTPOINT`: the commit to mount (anything rev-parse takes), then the
    /// directory to mount it on.
    #[arg(value_name = "[REV] MOUNTPOINT", num_args = 1..=2, required = true)]
    args: Vec<OsString>,
    /// Return once the mount is live, serving it from a background process.
    #[arg(short, long)]
    daemon: bool,
    /// Stay in the foreground (the default; for sshfs-style command lines).
    #[arg(short, long, conflicts_with = "daemon")]
    foreground: bool,
    /// Mount options, comma-separated: allow_other, allow_root, auto_unmount, suid, noexec,
    /// noatime, fsname=NAME, ... (always read-only).
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Check bare content objects against their checksums when first opened.
    #[arg(long)]
    verify: bool,
    /// Serve every read from the daemon, even where the kernel could read the object files
    /// directly (FUSE passthrough).
    #[arg(long)]
    no_passthrough: bool,
    /// Neither read nor write the commit's metadata cache (`tmp/cache/rostree/meta/`): stat
    /// every file from its object.
    #[arg(long)]
    no_meta_cache: bool,
    /// Threads serving requests.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Where a daemon writes its log lines (default: nowhere).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
}

/// Options of `umount`.
#[derive(clap::Args, Debug)]
pub struct UmountArgs {
    /// The directory a `rostree mount` is mounted on.
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
    /// Detach now even if files are open; the mount goes when they are closed.
    #[arg(short, long)]
    lazy: bool,
}

/// Runs `mount`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let (rev, mountpoint) = match args.args.as_slice() {
        [m] => (None, PathBuf::from(m)),
        [r, m] => {
            let rev = r
                .to_str()
                .with_context(|| format!("invalid revision {}", r.to_string_lossy()))?;
            (Some(rev.to_string()), PathBuf::from(m))
        }
        _ => anyhow::bail!("usage: rostree mount [REV] MOUNTPOINT"),
    };
    let mut spec = MountSpec::new(Root::Repository);
    let mut options = MountOptions::default();
    for list in &args.options {
        options.parse(list)?;
    }
    spec.options = options;
    spec.verify = args.verify;
    spec.passthrough = !args.no_passthrough;
    spec.meta_cache = !args.no_meta_cache;
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        spec.threads = n;
    }
    let daemon_child = args.daemon && std::env::var_os(DAEMON_CHILD).is_some();
    if args.daemon && !daemon_child {
        return spawn_daemon();
    }
    if daemon_child {
        rostree_mount::detach_from_terminal();
    }
    // An absolute repository path: a daemon leaves its working directory.
    let path = default_repo_path(repo);
    let path = path.canonicalize().unwrap_or(path);
    let repo = Repo::open(&path)?;
    if let Some(rev) = rev {
        spec.root = Root::Commit(repo.resolve_rev(&rev)?);
    }
    let log_file = args.log_file.as_deref();
    rostree_mount::mount(repo, &mountpoint, &spec, || {
        if daemon_child {
            rostree_mount::daemon_ready(log_file);
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Runs this same command line in a detached child and returns once it says the mount is
/// live, or relays its error.
fn spawn_daemon() -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("finding the rostree executable")?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(DAEMON_CHILD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the mount daemon")?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    if line.trim_end() == "ready" {
        return Ok(ExitCode::SUCCESS);
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait()?;
    if err.trim().is_empty() {
        anyhow::bail!("mount daemon exited before the mount was live ({status})");
    }
    // The child already worded its error as `error: ...`.
    eprint!("{err}");
    Ok(ExitCode::FAILURE)
}

/// Runs `umount`.
pub fn umount(args: UmountArgs) -> anyhow::Result<ExitCode> {
    rostree_mount::unmount(&args.mountpoint, args.lazy)?;
    Ok(ExitCode::SUCCESS)
}
