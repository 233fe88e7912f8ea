//! OpenPGP signatures on commits and summaries, as ostree keeps them: binary detached
//! signatures over the commit object's bytes (or the `summary` file's), listed under the key
//! `ostree.gpgsigs` (`aay`) of the commit's `.commitmeta` (or of `summary.sig`).
//!
//! Verification ([`verify`]) runs `gpgv` (as apt does: a verifier that only checks
//! signatures against the keyrings it is given) with the keys [`keys::TrustedKeys`] gathers
//! as ostree does; pull, `show` and summary checks all go through it. Importing keys and
//! signing use `gpg` with a private, temporary home.

mod describe;
pub mod keys;
pub mod verify;

pub use keys::TrustedKeys;
pub use verify::{Signature, Verdict, VerifyResult};

use crate::gvariant::Value;
use crate::{Error, ObjectId, Repo, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The detached-metadata key holding GPG signatures.
pub const GPGSIGS_KEY: &str = "ostree.gpgsigs";

fn gpg_error(what: &str, why: impl std::fmt::Display) -> Error {
    Error::Pull(format!("{what}: {why}"))
}

/// Runs a gpg tool, feeding `input`, returning stdout; the error carries its stderr.
fn run(mut cmd: Command, input: &[u8], what: &str) -> Result<Vec<u8>> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| gpg_error(what, format!("cannot run {:?}: {e}", cmd.get_program())))?;
    let mut stdin = child.stdin.take();
    let writer = std::thread::scope(|s| {
        let w = s.spawn(move || stdin.as_mut().map(|i| i.write_all(input)));
        let out = child.wait_with_output();
        let _ = w.join();
        out
    });
    let out = writer.map_err(|e| gpg_error(what, e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(gpg_error(what, stderr.trim()));
    }
    Ok(out.stdout)
}

/// A private gpg home for one operation.
fn temp_home() -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("rostree-gpg-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))
}

/// Where a remote's imported keys live.
pub fn remote_keyring(repo: &Repo, remote: &str) -> PathBuf {
    repo.path().join(format!("{remote}.trustedkeys.gpg"))
}

/// How many public keys a gpg home holds.
fn key_count(home: &Path) -> Result<usize> {
    let mut cmd = Command::new("gpg");
    cmd.args([
        "--batch",
        "--no-autostart",
        "--with-colons",
        "--list-keys",
        "--homedir",
    ])
    .arg(home);
    let out = run(cmd, b"", "gpg --list-keys")?;
    Ok(String::from_utf8_lossy(&out)
        .lines()
        .filter(|l| l.starts_with("pub:"))
        .count())
}

/// Imports OpenPGP public keys (armored or binary, several per input) into the remote's
/// keyring; returns how many keys are new.
pub fn import_keys(repo: &Repo, remote: &str, inputs: &[Vec<u8>]) -> Result<usize> {
    // ostree prefixes the errors of an import with "GPG: ".
    repo.remote(remote)
        .map_err(|e| Error::Pull(format!("GPG: {e}")))?;
    let home = temp_home()?;
    let keyring = remote_keyring(repo, remote);
    let import = |data: &[u8]| -> Result<()> {
        let mut cmd = Command::new("gpg");
        cmd.args(["--batch", "--no-autostart", "--import", "--homedir"])
            .arg(home.path());
        run(cmd, data, "gpg --import").map(drop)
    };
    if let Ok(existing) = std::fs::read(&keyring) {
        import(&existing)?;
    }
    let before = key_count(home.path())?;
    for data in inputs {
        import(data)?;
    }
    let added = key_count(home.path())? - before;
    let mut cmd = Command::new("gpg");
    cmd.args(["--batch", "--no-autostart", "--export", "--homedir"])
        .arg(home.path());
    let exported = run(cmd, b"", "gpg --export")?;
    let file = keyring
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("trustedkeys.gpg")
        .to_string();
    crate::fsutil::replace_file_at(&repo.root, &file, &exported, 0o644, true, &keyring)?;
    Ok(added)
}

/// Checks the signatures in `detached` over `data` against `keys`; `None` when there are
/// none (ostree's `OSTREE_GPG_ERROR_NO_SIGNATURE`).
pub fn verify_signed(
    keys: &TrustedKeys,
    data: &[u8],
    detached: Option<&[(String, Value)]>,
) -> Result<Option<VerifyResult>> {
    let sigs: Vec<Vec<u8>> = crate::detached::signatures(detached, GPGSIGS_KEY)
        .unwrap_or_default()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect();
    if sigs.is_empty() {
        return Ok(None);
    }
    verify::verify(keys, data, &sigs).map(Some)
}

/// Refuses the commit `id` (object bytes `commit_bytes`) unless one of its signatures is
/// good and made by a key the remote trusts; the error is ostree's.
pub fn verify_commit(
    repo: &Repo,
    remote: &str,
    id: &ObjectId,
    commit_bytes: &[u8],
    detached: Option<&[(String, Value)]>,
) -> Result<()> {
    let keys = TrustedKeys::for_remote(repo, remote)?;
    match verify_signed(&keys, commit_bytes, detached)? {
        None => Err(Error::Pull(format!(
            "Commit {id}: GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)"
        ))),
        Some(result) => result
            .require_valid()
            .map_err(|why| Error::Pull(format!("Commit {id}: {why}"))),
    }
}

/// Signs `data` (a commit object or a summary) with `key_id` from the gpg home `homedir`
/// (default: the user's) and returns the binary detached signature.
pub fn sign(data: &[u8], key_id: &str, homedir: Option<&Path>) -> Result<Vec<u8>> {
    let mut cmd = Command::new("gpg");
    cmd.args([
        "--batch",
        "--detach-sign",
        "--local-user",
        key_id,
        "--output",
        "-",
    ]);
    if let Some(h) = homedir {
        cmd.arg("--homedir").arg(h);
    }
    run(cmd, data, &format!("Signing with GPG key {key_id}"))
}

/// Adds signatures to a commit's detached metadata and writes it back.
pub fn add_signatures(repo: &Repo, id: &ObjectId, new: Vec<Vec<u8>>) -> Result<()> {
    repo.update_detached_metadata(id, |meta| {
        Ok((crate::detached::add_signatures(meta, GPGSIGS_KEY, &new), ()))
    })
}

pub use crate::detached::SUMMARY_SIG;
use crate::detached::parse_summary_sig;

/// Signs the repository's `summary` with each key and adds the signatures to `summary.sig`,
/// as ostree's `ostree_repo_add_gpg_signature_summary` does.
pub fn sign_summary(repo: &Repo, key_ids: &[String], homedir: Option<&Path>) -> Result<()> {
    repo.update_summary_signatures(|summary| {
        key_ids
            .iter()
            .map(|key| Ok((GPGSIGS_KEY, sign(summary, key, homedir)?)))
            .collect()
    })
}

/// Checks a summary's signatures (`summary.sig` bytes) against the keys of `remote`, as
/// ostree's `ostree_repo_verify_summary` does; the caller decides what a result must hold.
pub fn verify_summary(
    repo: &Repo,
    remote: &str,
    summary: &[u8],
    summary_sig: &[u8],
) -> Result<VerifyResult> {
    let meta = parse_summary_sig(summary_sig).map_err(Error::Pull)?;
    let keys = TrustedKeys::for_remote(repo, remote)?;
    verify_signed(&keys, summary, Some(&meta))?.ok_or_else(|| {
        Error::Pull(
            "GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)"
                .to_string(),
        )
    })
}
