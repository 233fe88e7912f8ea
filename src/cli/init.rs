//! `init`: create a repository.

use rostree_store::{Repo, RepoMode};
use std::path::Path;
use std::process::ExitCode;

/// Options of `init`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Initialize repository in given mode (bare, bare-user, bare-user-only, archive).
    #[arg(long, default_value = "bare", value_name = "MODE")]
    mode: String,
    /// Initialize repository with the given collection ID (recorded in the config).
    #[arg(long, value_name = "COLLECTION-ID")]
    collection_id: Option<String>,
}

/// Runs `init`. Like ostree, an existing repository is left as it is.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mode: RepoMode = args.mode.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let path = rostree_store::repo::default_repo_path(repo);
    let mut repo = Repo::init(&path, mode)?;
    if let Some(id) = args.collection_id {
        let mut config = repo.config().clone();
        config.set("core", "collection-id", &id);
        repo.write_config(config)?;
    }
    Ok(ExitCode::SUCCESS)
}
