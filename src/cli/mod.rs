//! Command-line parsing and dispatch: one file per command, mirroring `ostree`.

mod admin;
mod admin_upgrade;
mod cat;
mod checkout;
mod checksum;
mod commit;
mod config;
pub mod datetime;
mod diff;
mod fsck;
mod gpg_sign;
mod init;
mod log;
mod ls;
mod mount;
mod prune;
mod pull;
mod pull_local;
mod refs;
mod remote;
mod reset;
mod rev_parse;
mod show;
mod sign;
mod signatures;
mod summary;
pub mod util;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// OSTree-compatible repository tool.
#[derive(Parser, Debug)]
#[command(name = "rostree", version, about, propagate_version = true)]
pub struct Cli {
    /// Path to the OSTree repository (default: $OSTREE_REPO, the current directory if it is a
    /// repository, else /ostree/repo).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands, named as ostree names them.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage the sysroot and its deployments.
    Admin(admin::Args),
    /// Concatenate the contents of files in a commit.
    Cat(cat::Args),
    /// Check out a commit into a filesystem tree.
    Checkout(checkout::Args),
    /// Checksum a file or directory as ostree would.
    Checksum(checksum::Args),
    /// Commit a new revision.
    Commit(Box<commit::Args>),
    /// Change repository configuration.
    Config(config::Args),
    /// Compare two commits, or a commit and a directory.
    Diff(diff::Args),
    /// Check the repository for consistency.
    Fsck(fsck::Args),
    /// Sign a commit.
    #[command(name = "gpg-sign")]
    GpgSign(gpg_sign::Args),
    /// Initialize a new empty repository.
    Init(init::Args),
    /// Show the log of a branch or commit.
    Log(log::Args),
    /// List the contents of a commit's tree.
    Ls(ls::Args),
    /// Mount a commit, or the whole repository, as a read-only FUSE filesystem.
    Mount(mount::Args),
    /// Delete unreachable objects.
    Prune(prune::Args),
    /// Download data from a remote repository.
    Pull(pull::Args),
    /// Copy data from another local repository.
    #[command(name = "pull-local")]
    PullLocal(pull_local::Args),
    /// List, create, delete or alias refs.
    Refs(refs::Args),
    /// Remote commands that may involve internet access.
    Remote(remote::Args),
    /// Reset a ref to a previous commit.
    Reset(reset::Args),
    /// Output the target of a rev.
    #[command(name = "rev-parse")]
    RevParse(rev_parse::Args),
    /// Output a metadata object.
    Show(show::Args),
    /// Sign a commit.
    Sign(sign::Args),
    /// Manage the summary metadata.
    Summary(summary::Args),
    /// Unmount a filesystem mounted by `rostree mount`.
    Umount(mount::UmountArgs),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let repo = cli.repo.as_deref();
    match cli.command {
        Command::Admin(a) => admin::run(a),
        Command::Cat(a) => cat::run(repo, a),
        Command::Checkout(a) => checkout::run(repo, a),
        Command::Checksum(a) => checksum::run(repo, a),
        Command::Commit(a) => commit::run(repo, *a),
        Command::Config(a) => config::run(repo, a),
        Command::Diff(a) => diff::run(repo, a),
        Command::Fsck(a) => fsck::run(repo, a),
        Command::GpgSign(a) => gpg_sign::run(repo, a),
        Command::Init(a) => init::run(repo, a),
        Command::Log(a) => log::run(repo, a),
        Command::Ls(a) => ls::run(repo, a),
        Command::Mount(a) => mount::run(repo, a),
        Command::Prune(a) => prune::run(repo, a),
        Command::Pull(a) => pull::run(repo, a),
        Command::PullLocal(a) => pull_local::run(repo, a),
        Command::Umount(a) => mount::umount(a),
        Command::Refs(a) => refs::run(repo, a),
        Command::Remote(a) => remote::run(repo, a),
        Command::Reset(a) => reset::run(repo, a),
        Command::RevParse(a) => rev_parse::run(repo, a),
        Command::Show(a) => show::run(repo, a),
        Command::Sign(a) => sign::run(repo, a),
        Command::Summary(a) => summary::run(repo, a),
    }
}

/// The error and its causes on one line, as `ostree` prints them (`a: b: c`).
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        let s = match s.rfind(" (os error ") {
            Some(i) => s[..i].to_string(),
            None => s,
        };
        if parts.last().is_none_or(|last| !last.ends_with(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}
