//! `remote add|delete|list|show-url|refs|summary|gpg-import`: remotes kept in the repository's
//! config.

use super::util::open_repo;
use rostree_store::gpg::VerifyResult;
use rostree_store::pull::{
    Fetcher, RemoteOptions, SummaryUse, parse_summary, verify_remote_summary,
};
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
        /// Disable signature verification.
        #[arg(long)]
        no_sign_verify: bool,
        /// Verify signatures using KEYTYPE=inline:PUBKEY or KEYTYPE=file:/path/to/key.
        #[arg(long, value_name = "KEYTYPE=[inline|file]:PUBKEY")]
        sign_verify: Vec<String>,
        /// Do nothing if the provided remote exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Import GPG key from FILE.
        #[arg(long, value_name = "FILE")]
        gpg_import: Option<std::path::PathBuf>,
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
    /// Import GPG keys.
    #[command(name = "gpg-import")]
    GpgImport {
        /// Import keys from a keyring file (repeatable).
        #[arg(short = 'k', long = "keyring", value_name = "FILE")]
        keyrings: Vec<std::path::PathBuf>,
        /// Import keys from standard input.
        #[arg(long)]
        stdin: bool,
        /// The remote's name.
        name: String,
        /// Keys to export from the user's own keyring.
        key_ids: Vec<String>,
    },
    /// List remote refs.
    Refs {
        /// The remote's name.
        name: String,
    },
    /// Show remote summary.
    Summary {
        /// Show raw variant data.
        #[arg(long)]
        raw: bool,
        /// The remote's name.
        name: String,
    },
}

/// A remote's summary (`None`: the server has none), checked against `summary.sig` when the
/// remote has `gpg-verify-summary=true` or `sign-verify-summary`, as
/// `ostree_repo_remote_fetch_summary` checks it.
fn fetch_summary(
    repo: &rostree_store::Repo,
    name: &str,
) -> anyhow::Result<(Fetcher, Option<Vec<u8>>, Option<VerifyResult>)> {
    let remote = repo.remote(name)?;
    let sign = rostree_store::sign::RemoteVerifier::for_remote_summary(repo, name)?;
    let fetcher = Fetcher::for_remote(&remote, 1)?;
    let bytes = fetcher.get("summary", rostree_store::pull::objects::MAX_METADATA_SIZE)?;
    let verified = verify_remote_summary(
        repo,
        &remote,
        sign.as_ref(),
        &fetcher,
        bytes.as_deref(),
        SummaryUse::Fetch,
    )?;
    Ok((fetcher, bytes, verified))
}

fn read_key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Public keys from the user's own gpg keyring.
fn export_user_keys(ids: &[String]) -> anyhow::Result<Vec<u8>> {
    let out = std::process::Command::new("gpg")
        .args(["--batch", "--export"])
        .args(ids)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run gpg: {e}"))?;
    anyhow::ensure!(
        out.status.success() && !out.stdout.is_empty(),
        "No GPG keys found for {}",
        ids.join(", ")
    );
    Ok(out.stdout)
}

/// ostree's words for an import.
fn print_imported(n: usize, remote: &str) {
    let keys = if n == 1 { "key" } else { "keys" };
    println!("Imported {n} GPG {keys} to remote \"{remote}\"");
}

/// Runs `remote`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    match args.command {
        RemoteCommand::Add {
            set,
            no_gpg_verify,
            no_sign_verify,
            sign_verify,
            if_not_exists,
            gpg_import,
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
                no_sign_verify,
                sign_verify,
            };
            repo.add_remote(&name, &url, &options, if_not_exists)?;
            if let Some(file) = gpg_import {
                let data = read_key_file(&file)?;
                let n = rostree_store::gpg::import_keys(&repo, &name, &[data])?;
                print_imported(n, &name);
            }
        }
        RemoteCommand::GpgImport {
            keyrings,
            stdin,
            name,
            key_ids,
        } => {
            let mut inputs = Vec::new();
            for file in &keyrings {
                inputs.push(read_key_file(file)?);
            }
            if stdin {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut data)?;
                inputs.push(data);
            }
            if !key_ids.is_empty() {
                inputs.push(export_user_keys(&key_ids)?);
            }
            let n = rostree_store::gpg::import_keys(&repo, &name, &inputs)?;
            print_imported(n, &name);
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
            let (fetcher, bytes, _) = fetch_summary(&repo, &name)?;
            let bytes = bytes.ok_or_else(|| {
                anyhow::anyhow!("Remote refs not available; server has no summary file")
            })?;
            let refs = parse_summary(&bytes)
                .map_err(|why| anyhow::anyhow!("{}: {why}", fetcher.url("summary")))?;
            for r in refs {
                println!("{name}:{}", r.name);
            }
        }
        RemoteCommand::Summary { raw, name } => {
            let (fetcher, bytes, verified) = fetch_summary(&repo, &name)?;
            let bytes =
                bytes.ok_or_else(|| anyhow::anyhow!("Remote server has no summary file"))?;
            let text = super::summary::dump_summary(&bytes, raw, &fetcher.url("summary"))?;
            print!("{text}");
            // As ostree, no signatures after raw data.
            if let Some(result) = verified.filter(|_| !raw) {
                let block = format!(
                    "\nGPG: Verification enabled, found {} {}:\n{}",
                    result.signatures.len(),
                    result.noun(),
                    result.describe_all()
                );
                print!("{}", rostree_store::time::for_console(&block));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
