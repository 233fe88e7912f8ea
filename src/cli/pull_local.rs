//! `pull-local SRC [REF|COMMIT...]`: copy commits from another local repository.

use super::util::{format_size, open_repo};
use rostree_store::Repo;
use rostree_store::pull::{LocalPullOptions, pull_local};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `pull-local`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fetch only the commit metadata.
    #[arg(long)]
    commit_metadata_only: bool,
    /// Add REMOTE to refspec.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
    /// Do not invoke fsync().
    #[arg(long)]
    disable_fsync: bool,
    /// Verify checksums of local sources (copies every object rather than hardlinking).
    #[arg(long)]
    untrusted: bool,
    /// Traverse DEPTH parents (-1=infinite) (default: 0).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    depth: i64,
    /// The source repository.
    #[arg(value_name = "SRC_REPO")]
    src: PathBuf,
    /// Refs or commits to copy (default: every local ref of the source).
    refs: Vec<String>,
}

/// Runs `pull-local`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    if args.disable_fsync {
        repo.set_disable_fsync(true);
    }
    anyhow::ensure!(args.depth >= -1, "Invalid depth {}", args.depth);
    let src = Repo::open(&args.src)?;
    let options = LocalPullOptions {
        refs: args.refs,
        remote: args.remote,
        depth: args.depth,
        untrusted: args.untrusted,
        commit_metadata_only: args.commit_metadata_only,
    };
    let report = pull_local(&repo, &src, &options)?;
    println!(
        "{} metadata, {} content objects imported; {} content written",
        report.metadata,
        report.content,
        format_size(report.content_bytes_written)
    );
    Ok(ExitCode::SUCCESS)
}
