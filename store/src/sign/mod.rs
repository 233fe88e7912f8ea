//! Commit signatures of ostree's signing framework (`ostree sign`, remotes' `sign-verify`):
//! ed25519, the one type ostree 2022.7 ships besides its test-only `dummy`. Signatures
//! live in the commit's detached metadata, beside GPG's (see [`crate::detached`]).

pub mod ed25519;
mod remote;

pub use remote::RemoteVerifier;

use crate::{Error, ObjectId, ObjectType, Repo, Result};
use ed25519::{Keyring, PublicKey, SecretKey};

/// Refuses a signature type other than ed25519, in ostree's words.
pub fn check_type(name: &str) -> Result<()> {
    if name == ed25519::NAME {
        return Ok(());
    }
    Err(Error::Sign(format!(
        "Requested signature type is not implemented: '{name}'"
    )))
}

/// Signs the stored commit `id` with each key and adds the signatures to its detached
/// metadata (one already there is not added again: ed25519 signatures are deterministic).
pub fn sign_commit(repo: &Repo, id: &ObjectId, keys: &[SecretKey]) -> Result<()> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    let sigs: Vec<Vec<u8>> = keys.iter().map(|k| k.sign(&bytes)).collect();
    repo.update_detached_metadata(id, |meta| {
        Ok((
            crate::detached::add_signatures(meta, ed25519::METADATA_KEY, &sigs),
            (),
        ))
    })
}

/// Checks the stored commit `id` against `keys` (the system's when empty); returns ostree's
/// success message naming the key.
pub fn verify_commit(repo: &Repo, id: &ObjectId, keys: &Keyring) -> Result<String> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    let meta = repo.read_detached_metadata(id)?;
    let sigs = crate::detached::signatures(meta.as_deref(), ed25519::METADATA_KEY);
    keys.verify(&bytes, sigs.as_deref())
}

/// Removes the commit's ed25519 signatures that any of `keys` made; returns how many.
pub fn delete_signatures(repo: &Repo, id: &ObjectId, keys: &[PublicKey]) -> Result<usize> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    repo.update_detached_metadata(id, |meta| {
        let removed = crate::detached::remove_signatures(meta, ed25519::METADATA_KEY, |sig| {
            keys.iter().any(|k| k.verifies(&bytes, sig))
        });
        Ok((removed > 0, removed))
    })
}
