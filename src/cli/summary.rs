//! `summary -u`: write the repository's `summary` file, as `ostree summary -u` does.

use super::util::open_repo;
use std::path::Path;
use std::process::ExitCode;

/// Options of `summary`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Update the summary.
    #[arg(short = 'u', long)]
    update: bool,
}

/// Runs `summary`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    anyhow::ensure!(
        args.update,
        "No option specified; use -u to update the summary"
    );
    // ostree stamps the summary with the current time, not SOURCE_DATE_EPOCH.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    repo.update_summary(now)?;
    Ok(ExitCode::SUCCESS)
}
