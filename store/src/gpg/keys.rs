//! Which public keys a verification trusts, gathered as ostree's
//! `_ostree_repo_gpg_prepare_verifier` gathers them.

use super::remote_keyring;
use crate::{Error, Repo, Result};
use std::path::{Path, PathBuf};

/// The system-wide keyring directory, unless `OSTREE_GPG_HOME` names another.
const GLOBAL_KEYRINGS: &str = "/usr/share/ostree/trusted.gpg.d";

/// Where the trusted public keys come from.
#[derive(Debug, Default)]
pub struct TrustedKeys {
    /// Binary keyring files, used as they are.
    pub keyrings: Vec<PathBuf>,
    /// Key files (armored or binary) named by a remote's `gpgkeypath`, imported first.
    pub key_files: Vec<PathBuf>,
}

impl TrustedKeys {
    /// The keys of one remote: its keyring (`<repo>/<remote>.trustedkeys.gpg`, else
    /// `/etc/ostree/remotes.d/<remote>.trustedkeys.gpg`) or, when it has none, the global
    /// keyrings; plus every key its `gpgkeypath` names (files, or directories of them).
    pub fn for_remote(repo: &Repo, remote: &str) -> Result<TrustedKeys> {
        repo.remote(remote)?;
        let mut keys = TrustedKeys::default();
        let own = remote_keyring(repo, remote);
        let in_remotes_d =
            Path::new("/etc/ostree/remotes.d").join(own.file_name().unwrap_or_default());
        match [own, in_remotes_d].into_iter().find(|p| p.is_file()) {
            Some(found) => keys.keyrings.push(found),
            None => keys.add_keyring_dir(&global_dir(), false)?,
        }
        let group = format!("remote \"{remote}\"");
        let config = repo.remote_keyfile(remote);
        if let Some(paths) = config.and_then(|k| k.get(&group, "gpgkeypath")) {
            for part in paths
                .split([';', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                keys.add_key_path(Path::new(part))?;
            }
        }
        Ok(keys)
    }

    /// The keys `show` checks a commit with, as ostree's `verify_commit_ext` does: every
    /// `*.gpg` keyring in the repo directory (all remotes' keyrings), the global keyrings,
    /// and the `*.gpg` keyrings of `--gpg-homedir`.
    pub fn all_remotes(repo: &Repo, homedir: Option<&Path>) -> Result<TrustedKeys> {
        let mut keys = TrustedKeys::default();
        keys.add_keyring_dir(repo.path(), true)?;
        keys.add_keyring_dir(&global_dir(), false)?;
        if let Some(dir) = homedir {
            keys.add_keyring_dir(dir, true)?;
        }
        Ok(keys)
    }

    /// Adds the keyrings of `dir`: its regular `*.gpg` files but GnuPG's `trustdb.gpg` and
    /// `secring.gpg`. A missing directory (or not a directory) is an error only when `required`.
    fn add_keyring_dir(&mut self, dir: &Path, required: bool) -> Result<()> {
        if !required && !dir.is_dir() {
            return Ok(());
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                // ostree's words, with the directory made absolute as GFile makes it.
                let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
                let why = crate::io_message(&e);
                return Err(Error::Pull(format!("opendir({}): {why}", shown.display())));
            }
        };
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && name.ends_with(".gpg") && name != "trustdb.gpg" && name != "secring.gpg" {
                found.push(entry.path());
            }
        }
        found.sort();
        self.keyrings.extend(found);
        Ok(())
    }

    /// Adds a `gpgkeypath` entry: a key file, or every regular file of a directory.
    fn add_key_path(&mut self, path: &Path) -> Result<()> {
        if !path.is_dir() {
            self.key_files.push(path.to_path_buf());
            return Ok(());
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                found.push(entry.path());
            }
        }
        found.sort();
        self.key_files.extend(found);
        Ok(())
    }
}

fn global_dir() -> PathBuf {
    std::env::var_os("OSTREE_GPG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(GLOBAL_KEYRINGS))
}
