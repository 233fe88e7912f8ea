//! `sign COMMIT [KEY-ID...]`: add ed25519 (or ostree's test-only `dummy`) signatures to a
//! commit, check them (`--verify`) or remove them (`-d`), as `ostree sign` does.

use super::util::open_repo;
use anyhow::{Context, bail};
use rostree_store::sign::ed25519::{self, Keyring, PublicKey};
use rostree_store::sign::{SignType, Signer, Verifier};
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
    let sign_type = rostree_store::sign::type_or_default(args.sign_type.as_deref())?;
    if args.verify {
        println!("{}", verify(&repo, &id, sign_type, &args)?);
    } else if args.delete {
        anyhow::ensure!(
            sign_type == SignType::Ed25519,
            "-d removes ed25519 signatures only"
        );
        let keys = keys_to_delete(&args)?;
        let removed = rostree_store::sign::delete_signatures(&repo, &id, &keys)?;
        if removed == 0 {
            bail!("Commit {id} has no ed25519 signature by the given keys");
        }
    } else {
        let mut keys = rostree_store::sign::signers(sign_type, &args.key_ids)?;
        if let Some(file) = &args.keys_file {
            match sign_type {
                SignType::Ed25519 => keys.extend(
                    ed25519::read_secret_keys(file)?
                        .into_iter()
                        .map(Signer::Ed25519),
                ),
                SignType::Dummy => {
                    for (n, line) in ed25519::read_key_lines(file)? {
                        let key = Signer::from_text(sign_type, &line)
                            .with_context(|| format!("{}: line {n}", file.display()))?;
                        keys.push(key);
                    }
                }
            }
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
    sign_type: SignType,
    args: &Args,
) -> anyhow::Result<String> {
    let mut last_error = None;
    for text in &args.key_ids {
        let mut verifier = Verifier::new(sign_type);
        let attempt = verifier
            .add_key(text)
            .and_then(|()| rostree_store::sign::verify_commit(repo, id, &verifier));
        match attempt {
            Ok(message) => return Ok(message),
            Err(e) => last_error = Some(e),
        }
    }
    if args.key_ids.is_empty() || args.keys_file.is_some() {
        // ostree's dummy type cannot load keys from files.
        anyhow::ensure!(sign_type == SignType::Ed25519, "not implemented");
        let mut ring = Keyring::default();
        match &args.keys_file {
            Some(file) => {
                ring.load_file(file)?;
            }
            None => ring.load_system(args.keys_dir.as_deref())?,
        }
        let verifier = Verifier::Ed25519(ring);
        return Ok(rostree_store::sign::verify_commit(repo, id, &verifier)?);
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
