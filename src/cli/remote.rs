//! `remote add|delete|list|show-url|refs`: remotes kept in the repository's config.

use super::util::open_repo;
use rostree_store::pull::{Fetcher, RemoteOptions, parse_summary};
use std::path::Path;
use std::process::ExitCode;

/// Options of `remote`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: RemoteCommand,
}

#[derive(clap::Subcommand, Debug)]
enum RemoteCommand {
    /// Add a remote repository.
    Add {
        /// Set config option KEY=VALUE for remote.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Disable GPG verification.
        #[arg(long)]
        no_gpg_verify: bool,
        /// Do nothing if the provided remote exists.
        #[arg(long)]
        if_not_exists: bool,
        /// The remote's name.
        name: String,
        /// Its URL.
        url: String,
        /// Branches to pull when none are named.
        branches: Vec<String>,
    },
    /// Delete a remote repository.
    Delete {
        /// Do nothing if the provided remote does not exist.
        #[arg(long)]
        if_exists: bool,
        /// The remote's name.
        name: String,
    },
    /// Show remote repository URL.
    #[command(name = "show-url")]
    ShowUrl {
        /// The remote's name.
        name: String,
    },
    /// List remote repository names.
    List {
        /// Show remote URLs in list.
        #[arg(short = 'u', long = "show-urls")]
        show_urls: bool,
    },
    /// List remote refs.
    Refs {
        /// The remote's name.
        name: String,
    },
}

/// Runs `remote`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    match args.command {
        RemoteCommand::Add {
            set,
            no_gpg_verify,
            if_not_exists,
            name,
            url,
            branches,
        } => {
            let settings = set
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .ok_or_else(|| anyhow::anyhow!("Missing '=' in KEY=VALUE for --set"))
                })
                .collect::<anyhow::Result<_>>()?;
            let options = RemoteOptions {
                branches,
                settings,
                no_gpg_verify,
            };
            repo.add_remote(&name, &url, &options, if_not_exists)?;
        }
        RemoteCommand::Delete { if_exists, name } => repo.delete_remote(&name, if_exists)?,
        RemoteCommand::ShowUrl { name } => println!("{}", repo.remote(&name)?.url),
        RemoteCommand::List { show_urls } => {
            let names = repo.remote_names();
            let width = names.iter().map(String::len).max().unwrap_or(0);
            for name in names {
                if show_urls {
                    println!("{name:<width$}  {}", repo.remote(&name)?.url);
                } else {
                    println!("{name}");
                }
            }
        }
        RemoteCommand::Refs { name } => {
            let remote = repo.remote(&name)?;
            let fetcher = Fetcher::new(&remote.url, 1)?;
            let bytes = fetcher
                .get("summary", rostree_store::pull::objects::MAX_METADATA_SIZE)?
                .ok_or_else(|| {
                    anyhow::anyhow!("Remote refs not available; server has no summary file")
                })?;
            let refs = parse_summary(&bytes)
                .map_err(|why| anyhow::anyhow!("{}: {why}", fetcher.url("summary")))?;
            for r in refs {
                println!("{name}:{}", r.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
