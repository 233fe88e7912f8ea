//! The GPG signature block `show` prints after a commit, as ot-builtin-show.c prints it.

use rostree_store::gpg::{self, TrustedKeys};
use rostree_store::{ObjectId, Repo};
use std::io::Write;
use std::path::PathBuf;

/// Which keys `show` checks signatures with.
#[derive(clap::Args, Debug, Default)]
pub struct GpgArgs {
    /// GPG Homedir to use when looking for keyrings.
    #[arg(long, value_name = "HOMEDIR")]
    pub gpg_homedir: Option<PathBuf>,
    /// Use REMOTE name for GPG configuration.
    #[arg(long, value_name = "REMOTE")]
    pub gpg_verify_remote: Option<String>,
}

/// Prints "Found N signature(s):" and each signature's description, when the commit `id`
/// (object bytes `commit_bytes`) is signed; nothing when it is not.
pub fn print_signatures(
    out: &mut dyn Write,
    repo: &Repo,
    id: &ObjectId,
    commit_bytes: &[u8],
    args: &GpgArgs,
) -> anyhow::Result<()> {
    let detached = repo.read_detached_metadata(id)?;
    let signed = rostree_store::detached::signatures(detached.as_deref(), gpg::GPGSIGS_KEY)
        .is_some_and(|sigs| !sigs.is_empty());
    if !signed {
        return Ok(());
    }
    let keys = match &args.gpg_verify_remote {
        Some(remote) => TrustedKeys::for_remote(repo, remote)?,
        None => TrustedKeys::all_remotes(repo, args.gpg_homedir.as_deref())?,
    };
    let Some(result) = gpg::verify_signed(&keys, commit_bytes, detached.as_deref())? else {
        return Ok(());
    };
    let text = format!(
        "Found {} {}:\n{}",
        result.signatures.len(),
        result.noun(),
        result.describe_all()
    );
    out.write_all(rostree_store::time::for_console(&text).as_bytes())?;
    Ok(())
}
