//! `rev-parse`: print the checksum a revision names.

use super::util::open_repo;
use rostree_store::ObjectType;
use std::path::Path;
use std::process::ExitCode;

/// Options of `rev-parse`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Revisions: ref, `remote:ref`, checksum, unique prefix, `REV^`.
    revs: Vec<String>,
    /// If the repository has exactly one commit, print it; else fail.
    #[arg(short = 'S', long)]
    single: bool,
}

/// Runs `rev-parse`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    if args.single {
        anyhow::ensure!(
            args.revs.is_empty(),
            "Cannot specify arguments with --single"
        );
        let commits: Vec<_> = repo
            .list_objects()?
            .into_iter()
            .filter(|(_, ty)| *ty == ObjectType::Commit)
            .collect();
        match commits.as_slice() {
            [] => anyhow::bail!("No commit objects found"),
            [(id, _)] => println!("{id}"),
            _ => anyhow::bail!("Multiple commit objects found"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(!args.revs.is_empty(), "REV must be specified");
    for rev in &args.revs {
        println!("{}", repo.resolve_rev(rev)?);
    }
    Ok(ExitCode::SUCCESS)
}
