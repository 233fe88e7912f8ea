//! `reset`: point a ref at an earlier commit.

use super::util::open_repo;
use rostree_store::refs::parse_refspec;
use std::path::Path;
use std::process::ExitCode;

/// Options of `reset`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The ref to move.
    #[arg(value_name = "REF")]
    reference: String,
    /// The commit to move it to.
    #[arg(value_name = "COMMIT")]
    commit: String,
}

/// Runs `reset`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    // The ref must exist.
    repo.resolve_rev(&args.reference)?;
    let target = repo.resolve_rev(&args.commit)?;
    let (remote, name) = parse_refspec(&args.reference)?;
    let tx = repo.begin()?;
    tx.set_ref(remote, name, Some(target));
    tx.commit()?;
    Ok(ExitCode::SUCCESS)
}
