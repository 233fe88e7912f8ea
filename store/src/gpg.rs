//! OpenPGP signatures on commits, as ostree keeps them: binary detached signatures over the
//! commit object's bytes, listed in the `.commitmeta` key `ostree.gpgsigs` (`aay`).
//!
//! Verification runs `gpgv` (as apt does: a verifier that only checks signatures against
//! the keyrings it is given) with the remote's keyring `<repo>/<remote>.trustedkeys.gpg`,
//! the remote's `gpgkeypath`, and the system's `/usr/share/ostree/trusted.gpg.d/*.gpg`.
//! Importing keys and signing use `gpg` with a private, temporary home.

use crate::gvariant::Value;
use crate::{Error, ObjectId, Repo, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The detached-metadata key holding GPG signatures.
pub const GPGSIGS_KEY: &str = "ostree.gpgsigs";
/// Keyrings every remote trusts.
const SYSTEM_KEYRINGS: &str = "/usr/share/ostree/trusted.gpg.d";

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
    repo.remote(remote)?;
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

/// The keyrings a remote's signatures are checked against.
fn keyrings(repo: &Repo, remote: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let own = remote_keyring(repo, remote);
    if own.exists() {
        out.push(own);
    }
    let mut dirs = vec![PathBuf::from(SYSTEM_KEYRINGS)];
    if let Some(p) = repo
        .config()
        .get(&format!("remote \"{remote}\""), "gpgkeypath")
    {
        for part in p.split([';', ',']).filter(|s| !s.is_empty()) {
            let path = PathBuf::from(part);
            if path.is_dir() {
                dirs.push(path);
            } else if path.exists() {
                out.push(path);
            }
        }
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gpg"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// Checks that at least one signature of the commit `id` (whose object bytes are
/// `commit_bytes`) is good and made by a key the remote trusts.
pub fn verify_commit(
    repo: &Repo,
    remote: &str,
    id: &ObjectId,
    commit_bytes: &[u8],
    detached: Option<&[(String, Value)]>,
) -> Result<()> {
    let sigs = crate::detached::signatures(detached, GPGSIGS_KEY).unwrap_or_default();
    let refuse = |why: &str| Err(Error::Pull(format!("Commit {id}: {why}")));
    if sigs.is_empty() {
        return refuse(
            "GPG verification enabled, but no signatures found (use gpg-verify=false in remote config to disable)",
        );
    }
    let keyrings = keyrings(repo, remote);
    if keyrings.is_empty() {
        return refuse(&format!(
            "GPG signatures found, but none are in trusted keyring (no keys imported for remote \"{remote}\")"
        ));
    }
    let home = temp_home()?;
    let data = home.path().join("commit");
    std::fs::write(&data, commit_bytes).map_err(|e| Error::io(&data, e))?;
    for (i, sig) in sigs.iter().enumerate() {
        let sig_path = home.path().join(format!("sig{i}"));
        std::fs::write(&sig_path, sig).map_err(|e| Error::io(&sig_path, e))?;
        let mut cmd = Command::new("gpgv");
        cmd.arg("--homedir").arg(home.path());
        for k in &keyrings {
            cmd.arg("--keyring").arg(k);
        }
        cmd.arg(&sig_path).arg(&data);
        if run(cmd, b"", "gpgv").is_ok() {
            return Ok(());
        }
    }
    refuse("GPG signatures found, but none are in trusted keyring")
}

/// Signs a commit with `key_id` from the gpg home `homedir` (default: the user's) and
/// returns the binary detached signature.
pub fn sign(commit_bytes: &[u8], key_id: &str, homedir: Option<&Path>) -> Result<Vec<u8>> {
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
    run(cmd, commit_bytes, &format!("Signing with GPG key {key_id}"))
}

/// Adds signatures to a commit's detached metadata and writes it back.
pub fn add_signatures(repo: &Repo, id: &ObjectId, new: Vec<Vec<u8>>) -> Result<()> {
    repo.update_detached_metadata(id, |meta| {
        Ok((crate::detached::add_signatures(meta, GPGSIGS_KEY, &new), ()))
    })
}
