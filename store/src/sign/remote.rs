//! Which signatures a remote's commits must carry, as ostree 2022.7 reads its options:
//! `sign-verify` (`true`: any type whose keys are configured, else the system's keys; or a
//! list of types, each needing keys) and the keys, `verification-ed25519-key` (one base64
//! public key) and `verification-ed25519-file` (a file of them, one a line).

use super::ed25519::{self, Keyring, PublicKey};
use crate::gvariant::Value;
use crate::{Error, ObjectId, Repo, Result};
use std::path::Path;

/// The check a pull applies to every commit of a remote with `sign-verify` on.
#[derive(Clone, Debug)]
pub struct RemoteVerifier {
    remote: String,
    keys: Keyring,
}

fn config_error(remote: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("remote \"{remote}\": {why}"))
}

impl RemoteVerifier {
    /// The remote's verifier, or None when its commits need no signature of this kind.
    pub fn for_remote(repo: &Repo, remote: &str) -> Result<Option<RemoteVerifier>> {
        // Summaries are not checked: refuse rather than pull what the remote meant to guard.
        if let Some(v) = repo.remote_option(remote, "sign-verify-summary")?
            && !matches!(v.as_str(), "" | "false" | "0")
        {
            return Err(config_error(
                remote,
                "sign-verify-summary is not supported (rostree does not check summary signatures)",
            ));
        }
        let required = match repo.remote_option(remote, "sign-verify")?.as_deref() {
            None | Some("" | "false" | "0") => return Ok(None),
            // GKeyFile's truths: accept every type that has keys, or the system's keys.
            Some("true" | "1") => false,
            Some(list) => {
                for name in list.split([';', ',']).filter(|s| !s.is_empty()) {
                    super::check_type(name).map_err(|e| config_error(remote, e))?;
                }
                true
            }
        };
        let keys = load_keys(repo, remote, required)?;
        Ok(Some(RemoteVerifier {
            remote: remote.to_string(),
            keys,
        }))
    }

    /// Checks that the commit `id` (object bytes `commit_bytes`, detached metadata
    /// `detached`) carries a valid signature by a key the remote trusts; the error names
    /// the commit and the remote.
    pub fn verify_commit(
        &self,
        id: &ObjectId,
        commit_bytes: &[u8],
        detached: Option<&[(String, Value)]>,
    ) -> Result<String> {
        let refuse = |why: String| {
            Error::Sign(format!(
                "Commit {id} from remote \"{}\": {why}",
                self.remote
            ))
        };
        let Some(meta) = detached else {
            return Err(refuse(
                "Can't verify commit without detached metadata".into(),
            ));
        };
        let Some(sigs) = crate::detached::signatures(Some(meta), ed25519::METADATA_KEY) else {
            return Err(refuse("Can't verify commit: No signatures found".into()));
        };
        self.keys
            .verify(commit_bytes, Some(&sigs))
            .map_err(|e| refuse(format!("Can't verify commit: {e}")))
    }
}

/// The remote's ed25519 keys (`verification-ed25519-file`, then `-key`); with `required`,
/// having neither is an error.
fn load_keys(repo: &Repo, remote: &str, required: bool) -> Result<Keyring> {
    let file = repo.remote_option(remote, "verification-ed25519-file")?;
    let inline = repo.remote_option(remote, "verification-ed25519-key")?;
    let mut keys = Keyring::default();
    if file.is_none() && inline.is_none() {
        if required {
            return Err(config_error(
                remote,
                "No keys found for required signapi type ed25519",
            ));
        }
        return Ok(keys);
    }
    if let Some(path) = file {
        keys.load_file(Path::new(&path)).map_err(|e| {
            config_error(
                remote,
                format!("Failed loading 'ed25519' keys from '{path}': {e}"),
            )
        })?;
    }
    if let Some(text) = inline {
        let key = PublicKey::from_base64(&text).map_err(|e| {
            config_error(
                remote,
                format!("Failed loading 'ed25519' keys from inline `verification-key`: {e}"),
            )
        })?;
        keys.add(key);
    }
    Ok(keys)
}
