//! `gpg-sign COMMIT KEY-ID...`: add GPG signatures to a commit's detached metadata.

use super::util::open_repo;
use rostree_store::ObjectType;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `gpg-sign`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// GPG Homedir to use when looking for keyrings.
    #[arg(long, value_name = "HOMEDIR")]
    gpg_homedir: Option<PathBuf>,
    /// The commit to sign.
    commit: String,
    /// Keys to sign with.
    #[arg(required = true)]
    key_ids: Vec<String>,
}

/// Runs `gpg-sign`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let id = repo.resolve_rev(&args.commit)?;
    sign_commit(&repo, &id, &args.key_ids, args.gpg_homedir.as_deref())?;
    Ok(ExitCode::SUCCESS)
}

/// Signs a stored commit with each key; shared with `commit --gpg-sign`.
pub fn sign_commit(
    repo: &rostree_store::Repo,
    id: &rostree_store::ObjectId,
    keys: &[String],
    homedir: Option<&Path>,
) -> anyhow::Result<()> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    let sigs = keys
        .iter()
        .map(|k| rostree_store::gpg::sign(&bytes, k, homedir))
        .collect::<Result<Vec<_>, _>>()?;
    rostree_store::gpg::add_signatures(repo, id, sigs)?;
    Ok(())
}
