//! `sign COMMIT [KEY-ID...]`: add ed25519 signatures to a commit, check them (`--verify`)
//! or remove them (`-d`), as `ostree sign` does.

use super::util::open_repo;
use anyhow::{Context, bail};
use rostree_store::sign::ed25519::{self, Keyring, PublicKey, SecretKey};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `sign`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Delete signatures having any of the KEY-IDs.
    #[arg(short = 'd', long, conflicts_with = "verify")]
    delete: bool,
    /// Verify signatures.
    #[arg(long)]
    verify: bool,
    /// Signature type to use (defaults to 'ed25519').
    #[arg(short = 's', long, value_name = "NAME")]
    sign_type: Option<String>,
    /// Read key(s) from file.
    #[arg(long, value_name = "NAME")]
    keys_file: Option<PathBuf>,
    /// Redefine system-wide directories with public and revoked keys for verification.
    #[arg(long, value_name = "NAME")]
    keys_dir: Option<PathBuf>,
    /// The commit to sign or verify.
    commit: Option<String>,
    /// Keys: base64 secret keys to sign with, public keys to verify with or delete by.
    key_ids: Vec<String>,
}

/// Runs `sign`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let Some(commit) = &args.commit else {
        bail!("Need a COMMIT to sign or verify");
    };
    // Verification can do with the system's keys.
    if !args.verify && args.keys_file.is_none() && args.key_ids.is_empty() {
        bail!("Need at least one KEY-ID to sign with");
    }
    let id = repo.resolve_rev(commit)?;
    rostree_store::sign::check_type(args.sign_type.as_deref().unwrap_or(ed25519::NAME))?;
    if args.verify {
        println!("{}", verify(&repo, &id, &args)?);
    } else if args.delete {
        let keys = keys_to_delete(&args)?;
        let removed = rostree_store::sign::delete_signatures(&repo, &id, &keys)?;
        if removed == 0 {
            bail!("Commit {id} has no ed25519 signature by the given keys");
        }
    } else {
        let mut keys = args
            .key_ids
            .iter()
            .map(|k| SecretKey::from_base64(k))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(file) = &args.keys_file {
            keys.extend(ed25519::read_secret_keys(file)?);
        }
        rostree_store::sign::sign_commit(&repo, &id, &keys)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// ostree's order: each KEY-ID alone (unusable ones passed over); then, without KEY-IDs or
/// with `--keys-file`, the file's keys or the system's (`--keys-dir`).
fn verify(
    repo: &rostree_store::Repo,
    id: &rostree_store::ObjectId,
    args: &Args,
) -> anyhow::Result<String> {
    let mut last_error = None;
    for text in &args.key_ids {
        let attempt = PublicKey::from_base64(text).and_then(|key| {
            let mut ring = Keyring::default();
            ring.add(key);
            rostree_store::sign::verify_commit(repo, id, &ring)
        });
        match attempt {
            Ok(message) => return Ok(message),
            Err(e) => last_error = Some(e),
        }
    }
    if args.key_ids.is_empty() || args.keys_file.is_some() {
        let mut ring = Keyring::default();
        match &args.keys_file {
            Some(file) => {
                ring.load_file(file)?;
            }
            None => ring.load_system(args.keys_dir.as_deref())?,
        }
        return Ok(rostree_store::sign::verify_commit(repo, id, &ring)?);
    }
    // ostree says only this; the last key's failure tells why.
    match last_error {
        Some(e) => Err(anyhow::Error::from(e).context("No valid signatures found")),
        None => bail!("No valid signatures found"),
    }
}

/// `-d`: the keys whose signatures go, public or secret (whose public half is used).
fn keys_to_delete(args: &Args) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for (i, text) in args.key_ids.iter().enumerate() {
        let key = PublicKey::from_public_or_secret_base64(text)
            .with_context(|| format!("KEY-ID {}", i + 1))?;
        keys.push(key);
    }
    if let Some(file) = &args.keys_file {
        for (n, line) in ed25519::read_key_lines(file)? {
            let key = PublicKey::from_public_or_secret_base64(&line)
                .with_context(|| format!("{}: line {n}", file.display()))?;
            keys.push(key);
        }
    }
    Ok(keys)
}
