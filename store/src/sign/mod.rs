//! Signatures of ostree's signing framework (`ostree sign`, `summary --sign`, remotes'
//! `sign-verify` and `sign-verify-summary`): ed25519 and the test-only `dummy`, the two
//! types ostree 2022.7 ships. A commit's signatures live in its detached metadata, beside
//! GPG's; a summary's in `summary.sig` (see [`crate::detached`]): each type lists its
//! signatures (`aay`) under its own key.

pub mod dummy;
pub mod ed25519;
mod remote;

pub use remote::RemoteVerifier;

use crate::gvariant::Value;
use crate::{Error, ObjectId, ObjectType, Repo, Result};
use ed25519::{Keyring, PublicKey, SecretKey};

/// A signature type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignType {
    /// ed25519 (libsodium's formats).
    Ed25519,
    /// ostree's test-only type (see [`dummy`]).
    Dummy,
}

impl SignType {
    /// Every type, in the order ostree (built with libsodium) tries them.
    pub const ALL: [SignType; 2] = [SignType::Ed25519, SignType::Dummy];

    /// The type called `name`, or ostree's refusal.
    pub fn from_name(name: &str) -> Result<SignType> {
        SignType::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                Error::Sign(format!(
                    "Requested signature type is not implemented: '{name}'"
                ))
            })
    }

    /// Its name (`--sign-type`, `sign-verify`, `verification-NAME-key`).
    pub fn name(self) -> &'static str {
        match self {
            SignType::Ed25519 => ed25519::NAME,
            SignType::Dummy => dummy::NAME,
        }
    }

    /// The metadata key listing its signatures.
    pub fn metadata_key(self) -> &'static str {
        match self {
            SignType::Ed25519 => ed25519::METADATA_KEY,
            SignType::Dummy => dummy::METADATA_KEY,
        }
    }
}

/// The type `--sign-type` names (default ed25519), or ostree's refusal.
pub fn type_or_default(name: Option<&str>) -> Result<SignType> {
    SignType::from_name(name.unwrap_or(ed25519::NAME))
}

/// Secret keys given as text, all of one type.
pub fn signers(sign_type: SignType, keys: &[String]) -> Result<Vec<Signer>> {
    keys.iter()
        .map(|k| Signer::from_text(sign_type, k))
        .collect()
}

/// Refuses an unknown signature type, in ostree's words.
pub fn check_type(name: &str) -> Result<()> {
    SignType::from_name(name).map(drop)
}

/// A secret key of some type.
pub enum Signer {
    /// An ed25519 secret key.
    Ed25519(SecretKey),
    /// A dummy "key": its text is the signature.
    Dummy(String),
}

impl Signer {
    /// Reads a secret key given as text (ed25519: base64 of libsodium's 64 bytes). A dummy
    /// key is refused unless the type is enabled, as ostree refuses it.
    pub fn from_text(sign_type: SignType, text: &str) -> Result<Signer> {
        match sign_type {
            SignType::Ed25519 => SecretKey::from_base64(text).map(Signer::Ed25519),
            SignType::Dummy => {
                dummy::check_enabled()?;
                Ok(Signer::Dummy(text.to_string()))
            }
        }
    }

    /// Its type.
    pub fn sign_type(&self) -> SignType {
        match self {
            Signer::Ed25519(_) => SignType::Ed25519,
            Signer::Dummy(_) => SignType::Dummy,
        }
    }

    /// The signature of `data`.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            Signer::Ed25519(key) => Ok(key.sign(data)),
            Signer::Dummy(key) => dummy::sign(key),
        }
    }
}

/// The public keys of one type a check accepts.
#[derive(Clone, Debug)]
pub enum Verifier {
    /// ed25519 keys; none means the system's.
    Ed25519(Keyring),
    /// The dummy public key (the last one given, as ostree keeps one), if any.
    Dummy(Option<String>),
}

impl Verifier {
    /// A verifier of `sign_type` without keys yet.
    pub fn new(sign_type: SignType) -> Verifier {
        match sign_type {
            SignType::Ed25519 => Verifier::Ed25519(Keyring::default()),
            SignType::Dummy => Verifier::Dummy(None),
        }
    }

    /// Its type.
    pub fn sign_type(&self) -> SignType {
        match self {
            Verifier::Ed25519(_) => SignType::Ed25519,
            Verifier::Dummy(_) => SignType::Dummy,
        }
    }

    /// Adds a public key given as text.
    pub fn add_key(&mut self, text: &str) -> Result<()> {
        match self {
            Verifier::Ed25519(ring) => ring.add(PublicKey::from_base64(text)?),
            Verifier::Dummy(key) => *key = Some(text.to_string()),
        }
        Ok(())
    }

    /// Checks `signatures` (this type's, from metadata; None when it lists none) over
    /// `data`; returns ostree's success message.
    pub fn verify(&self, data: &[u8], signatures: Option<&[&[u8]]>) -> Result<String> {
        match self {
            Verifier::Ed25519(ring) => ring.verify(data, signatures),
            Verifier::Dummy(key) => dummy::verify(key.as_deref(), signatures),
        }
    }

    /// Checks the signatures of this type in `meta` (detached metadata or `summary.sig`).
    pub fn verify_metadata(&self, data: &[u8], meta: Option<&[(String, Value)]>) -> Result<String> {
        let sigs = crate::detached::signatures(meta, self.sign_type().metadata_key());
        self.verify(data, sigs.as_deref())
    }
}

/// Signs the stored commit `id` with each key and adds the signatures to its detached
/// metadata (one already there is not added again: signatures are deterministic).
pub fn sign_commit(repo: &Repo, id: &ObjectId, keys: &[Signer]) -> Result<()> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    let sigs = keys
        .iter()
        .map(|k| Ok((k.sign_type(), k.sign(&bytes)?)))
        .collect::<Result<Vec<_>>>()?;
    repo.update_detached_metadata(id, |meta| {
        let mut added = false;
        for (sign_type, sig) in sigs {
            added |= crate::detached::add_signatures(meta, sign_type.metadata_key(), &[sig]);
        }
        Ok((added, ()))
    })
}

/// Signs the repository's `summary` with each key into `summary.sig`, as ostree's
/// `ostree_sign_summary` does.
pub fn sign_summary(repo: &Repo, keys: &[Signer]) -> Result<()> {
    repo.update_summary_signatures(|summary| {
        keys.iter()
            .map(|k| Ok((k.sign_type().metadata_key(), k.sign(summary)?)))
            .collect()
    })
}

/// Checks the stored commit `id` with `verifier`; returns ostree's success message.
pub fn verify_commit(repo: &Repo, id: &ObjectId, verifier: &Verifier) -> Result<String> {
    let bytes = repo.read_meta_bytes(id, ObjectType::Commit)?;
    let meta = repo.read_detached_metadata(id)?;
    verifier.verify_metadata(&bytes, meta.as_deref())
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
