//! Which signatures a remote's commits (`sign-verify`) and summaries (`sign-verify-summary`)
//! must carry, as ostree 2022.7 reads its options: `true` means every type, each with the
//! keys configured for it (ed25519 without keys: the system's); a list of types means those,
//! each needing keys. A type's keys are `verification-TYPE-key` (one key, inline) and
//! `verification-TYPE-file` (a file of them, one a line).

use super::{SignType, Verifier};
use crate::gvariant::Value;
use crate::{Error, ObjectId, Repo, Result};
use std::path::Path;

/// The checks a remote asks for, on commits or on its summary.
#[derive(Clone, Debug)]
pub struct RemoteVerifier {
    remote: String,
    verifiers: Vec<Verifier>,
}

fn config_error(remote: &str, why: impl std::fmt::Display) -> Error {
    Error::Config(format!("remote \"{remote}\": {why}"))
}

impl RemoteVerifier {
    /// The remote's commit verifier (`sign-verify`), or None when its commits need no
    /// signature of this framework.
    pub fn for_remote(repo: &Repo, remote: &str) -> Result<Option<RemoteVerifier>> {
        Self::from_option(repo, remote, "sign-verify")
    }

    /// The remote's summary verifier (`sign-verify-summary`), or None when its summary
    /// needs no signature of this framework.
    pub fn for_remote_summary(repo: &Repo, remote: &str) -> Result<Option<RemoteVerifier>> {
        Self::from_option(repo, remote, "sign-verify-summary")
    }

    fn from_option(repo: &Repo, remote: &str, option: &str) -> Result<Option<RemoteVerifier>> {
        let (types, required) = match repo.remote_option(remote, option)?.as_deref() {
            None | Some("" | "false" | "0") => return Ok(None),
            // GKeyFile's truths: accept every type, each with whatever keys it has.
            Some("true" | "1") => (SignType::ALL.to_vec(), false),
            Some(list) => {
                let types = list
                    .split([';', ','])
                    .filter(|s| !s.is_empty())
                    .map(|name| SignType::from_name(name).map_err(|e| config_error(remote, e)))
                    .collect::<Result<Vec<_>>>()?;
                (types, true)
            }
        };
        let verifiers = types
            .into_iter()
            .map(|t| load_keys(repo, remote, t, required))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(RemoteVerifier {
            remote: remote.to_string(),
            verifiers,
        }))
    }

    /// ostree's `_sign_verify_for_remote`: the first type whose signatures `meta` lists and
    /// one of which verifies `data` wins; otherwise the first failure (with how many other
    /// types failed), or `No signatures found` when `meta` lists none of these types.
    pub fn verify(&self, data: &[u8], meta: &[(String, Value)]) -> Result<String> {
        let mut first_error: Option<Error> = None;
        let mut invalid = 0;
        for verifier in &self.verifiers {
            let key = verifier.sign_type().metadata_key();
            let Some(sigs) = crate::detached::signatures(Some(meta), key) else {
                continue;
            };
            match verifier.verify(data, Some(&sigs)) {
                Ok(message) => return Ok(message),
                Err(e) => {
                    invalid += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            None => Err(Error::Sign("No signatures found".into())),
            Some(e) if invalid > 1 => Err(Error::Sign(format!(
                "({} other invalid signatures): {e}",
                invalid - 1
            ))),
            Some(e) => Err(e),
        }
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
        self.verify(commit_bytes, meta)
            .map_err(|e| refuse(format!("Can't verify commit: {e}")))
    }
}

/// A verifier of `sign_type` with the remote's keys for it (`verification-TYPE-file`, then
/// `-key`); with `required`, having neither is an error.
fn load_keys(repo: &Repo, remote: &str, sign_type: SignType, required: bool) -> Result<Verifier> {
    let name = sign_type.name();
    let file = repo.remote_option(remote, &format!("verification-{name}-file"))?;
    let inline = repo.remote_option(remote, &format!("verification-{name}-key"))?;
    let mut verifier = Verifier::new(sign_type);
    if file.is_none() && inline.is_none() {
        if required {
            return Err(config_error(
                remote,
                format!("No keys found for required signapi type {name}"),
            ));
        }
        return Ok(verifier);
    }
    if let Some(path) = file {
        let loaded = match &mut verifier {
            Verifier::Ed25519(ring) => ring.load_file(Path::new(&path)).map(drop),
            // ostree's dummy type cannot load keys from a file.
            Verifier::Dummy(_) => Err(Error::Sign("not implemented".into())),
        };
        loaded.map_err(|e| {
            config_error(
                remote,
                format!("Failed loading '{name}' keys from '{path}': {e}"),
            )
        })?;
    }
    if let Some(text) = inline {
        verifier.add_key(&text).map_err(|e| {
            config_error(
                remote,
                format!("Failed loading '{name}' keys from inline `verification-key`: {e}"),
            )
        })?;
    }
    Ok(verifier)
}
