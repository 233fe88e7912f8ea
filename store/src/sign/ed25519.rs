//! ed25519 signatures as ostree 2022.7 built with libsodium makes and checks them.
//!
//! A secret key is the base64 of libsodium's 64-byte secret key (the 32-byte seed, then the
//! public key); a public key is the base64 of its 32 bytes. A signature is the 64-byte
//! detached signature of the commit object's bytes, listed under `ostree.sign.ed25519`
//! (`aay`) in the commit's detached metadata. Checks are as strict as libsodium's
//! (canonical S, no small-order public key or R). Messages are ostree's.

use crate::{Error, Result};
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// The signature type's name (`--sign-type`, `sign-verify`).
pub const NAME: &str = "ed25519";
/// The detached-metadata key holding ed25519 signatures.
pub const METADATA_KEY: &str = "ostree.sign.ed25519";
/// Bytes in a signature.
pub const SIGNATURE_LEN: usize = 64;
/// Where ostree looks for trusted and revoked keys when none are given.
const SYSTEM_KEY_DIRS: [&str; 2] = ["/etc/ostree", "/usr/share/ostree"];

fn sign_error(why: impl Into<String>) -> Error {
    Error::Sign(why.into())
}

/// Decodes base64 (standard alphabet, padding optional), ignoring surrounding whitespace.
fn decode_base64(text: &str) -> std::result::Result<Vec<u8>, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine
        .decode(text.trim())
        .map_err(|e| format!("not base64 ({e})"))
}

/// A malformed `kind` ("secret" or "public") key. The key itself is never repeated: it
/// might be a secret given by mistake.
fn key_error(kind: &str, why: &str) -> Error {
    sign_error(format!("Incorrect ed25519 {kind} key: {why}"))
}

/// The `N` bytes a base64 `kind` key must decode to.
fn decode_key<const N: usize>(text: &str, kind: &str) -> Result<[u8; N]> {
    let bytes = decode_base64(text).map_err(|why| key_error(kind, &why))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| key_error(kind, &format!("{} bytes, expected {N}", bytes.len())))
}

/// A secret key to sign with.
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// Reads a secret key as ostree takes it: base64 of libsodium's 64 bytes. The key is
    /// never repeated in the error.
    pub fn from_base64(text: &str) -> Result<SecretKey> {
        let pair: [u8; 64] = decode_key(text, "secret")?;
        SigningKey::from_keypair_bytes(&pair)
            .map(SecretKey)
            .map_err(|_| {
                key_error(
                    "secret",
                    "its last 32 bytes are not the public key of its first 32",
                )
            })
    }

    /// Builds a key from libsodium's 64 secret-key bytes.
    pub fn from_keypair_bytes(pair: &[u8; 64]) -> Result<SecretKey> {
        SigningKey::from_keypair_bytes(pair)
            .map(SecretKey)
            .map_err(|_| sign_error("Incorrect ed25519 secret key"))
    }

    /// Its public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The detached signature of `data`.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.0.sign(data).to_bytes().to_vec()
    }
}

/// The non-blank lines of a key file, numbered from 1.
pub fn read_key_lines(path: &Path) -> Result<Vec<(usize, String)>> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(sign_error(format!(
            "File object '{}' is not a regular file",
            path.display()
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(String::from_utf8_lossy(&bytes)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect())
}

/// Reads a file of secret keys (`--keys-file` when signing): one a line, blank lines
/// skipped; a line that is not a key is an error naming the file and line.
pub fn read_secret_keys(path: &Path) -> Result<Vec<SecretKey>> {
    read_key_lines(path)?
        .into_iter()
        .map(|(n, line)| {
            SecretKey::from_base64(&line)
                .map_err(|e| sign_error(format!("{}: line {n}: {e}", path.display())))
        })
        .collect()
}

/// A public key to check signatures with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Reads a public key as ostree takes it: base64 of 32 bytes, a point of the curve. The
    /// text is not repeated in the error: it might be a secret key given by mistake.
    pub fn from_base64(text: &str) -> Result<PublicKey> {
        let raw: [u8; 32] = decode_key(text, "public")?;
        VerifyingKey::from_bytes(&raw)
            .map(PublicKey)
            .map_err(|_| key_error("public", "not a point of the curve"))
    }

    /// Reads a public key, or a secret key whose public half is taken.
    pub fn from_public_or_secret_base64(text: &str) -> Result<PublicKey> {
        PublicKey::from_base64(text).or_else(|e| {
            SecretKey::from_base64(text)
                .map(|k| k.public_key())
                .map_err(|_| e)
        })
    }

    /// Lower-case hex of its 32 bytes, as ostree names keys in messages.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Base64 of its 32 bytes, as keys are written in files and remote options.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    /// Whether `signature` is a valid signature of `data` by this key.
    pub fn verifies(&self, data: &[u8], signature: &[u8]) -> bool {
        Signature::from_slice(signature).is_ok_and(|sig| self.0.verify_strict(data, &sig).is_ok())
    }
}

/// Which list a key file feeds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyList {
    Trusted,
    Revoked,
}

/// Trusted and revoked public keys, as ostree's ed25519 engine holds them.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    /// Trusted keys in the order added; tried newest first, as ostree does.
    trusted: Vec<PublicKey>,
    revoked: Vec<PublicKey>,
}

impl Keyring {
    /// Trusts `key` (once).
    pub fn add(&mut self, key: PublicKey) {
        if !self.trusted.contains(&key) {
            self.trusted.push(key);
        }
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.trusted.is_empty()
    }

    /// Trusts the keys of a file: one base64 public key a line (blank lines skipped). As in
    /// ostree, a line that is not a key is passed over, but a file without any valid key is
    /// an error. Returns how many keys it held.
    pub fn load_file(&mut self, path: &Path) -> Result<usize> {
        self.load_list(path, KeyList::Trusted)
    }

    fn load_list(&mut self, path: &Path, list: KeyList) -> Result<usize> {
        let mut loaded = 0;
        let mut first_error = None;
        for (n, line) in read_key_lines(path)? {
            match PublicKey::from_base64(&line) {
                Ok(key) => {
                    let keys = match list {
                        KeyList::Trusted => &mut self.trusted,
                        KeyList::Revoked => &mut self.revoked,
                    };
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                    loaded += 1;
                }
                Err(e) => {
                    first_error.get_or_insert(format!(" (line {n}: {e})"));
                }
            }
        }
        if loaded == 0 {
            return Err(sign_error(format!(
                "signature: ed25519: no valid keys in file '{}'{}",
                path.display(),
                first_error.unwrap_or_default()
            )));
        }
        Ok(loaded)
    }

    /// Loads the well-known key files of `basedir` (default: `/etc/ostree` and
    /// `/usr/share/ostree`): `trusted.ed25519` and the files of `trusted.ed25519.d/`, and
    /// likewise `revoked.ed25519`. Unreadable or empty files are passed over; finding no
    /// trusted key at all is an error.
    pub fn load_system(&mut self, basedir: Option<&Path>) -> Result<()> {
        let dirs: Vec<PathBuf> = match basedir {
            Some(d) => vec![d.to_path_buf()],
            None => SYSTEM_KEY_DIRS.iter().map(PathBuf::from).collect(),
        };
        let mut any_trusted = false;
        for (list, name) in [
            (KeyList::Trusted, "trusted.ed25519"),
            (KeyList::Revoked, "revoked.ed25519"),
        ] {
            for file in well_known_files(&dirs, name) {
                let loaded = self.load_list(&file, list).is_ok();
                any_trusted |= loaded && list == KeyList::Trusted;
            }
        }
        if !any_trusted {
            return Err(sign_error("signature: ed25519: no keys loaded"));
        }
        Ok(())
    }

    /// Checks that one of `signatures` (those under `ostree.sign.ed25519`; None when the
    /// metadata has none) is a valid signature of `data` by a trusted key that is not
    /// revoked; with no trusted key, the system's are loaded first. Returns ostree's success
    /// message, naming the key.
    pub fn verify(&self, data: &[u8], signatures: Option<&[&[u8]]>) -> Result<String> {
        let signatures = signatures
            .ok_or_else(|| sign_error("ed25519: commit have no signatures of my type"))?;
        let system;
        let ring = if self.trusted.is_empty() {
            let mut loaded = Keyring::default();
            loaded.load_system(None)?;
            system = loaded;
            &system
        } else {
            self
        };
        let mut failed: Vec<String> = Vec::new();
        for sig in signatures {
            if sig.len() != SIGNATURE_LEN {
                return Err(sign_error(format!(
                    "Invalid signature length of {} bytes, expected {SIGNATURE_LEN}",
                    sig.len()
                )));
            }
            for key in ring.trusted.iter().rev() {
                if ring.revoked.contains(key) {
                    continue;
                }
                if key.verifies(data, sig) {
                    return Ok(format!(
                        "ed25519: Signature verified successfully with key '{}'",
                        key.to_hex()
                    ));
                }
                failed.push(format!("key '{}'", key.to_hex()));
            }
        }
        Err(sign_error(match failed.len() {
            0 => "ed25519: no signatures found".to_string(),
            // ostree caps the list at three keys.
            n if n > 3 => format!("ed25519: Signature couldn't be verified; tried {n} keys"),
            _ => format!(
                "ed25519: Signature couldn't be verified with: {}",
                failed.join("; ")
            ),
        }))
    }
}

/// `DIR/NAME` and the files of `DIR/NAME.d/` (sorted), for each dir.
fn well_known_files(dirs: &[PathBuf], name: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in dirs {
        out.push(dir.join(name));
        if let Ok(entries) = std::fs::read_dir(dir.join(format!("{name}.d"))) {
            let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            files.sort();
            out.extend(files);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        let signing = SigningKey::from_bytes(&[seed; 32]);
        SecretKey::from_keypair_bytes(&signing.to_keypair_bytes()).unwrap()
    }

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn signs_and_verifies_with_ostree_messages() {
        let sk = key(1);
        let sig = sk.sign(b"commit");
        let mut ring = Keyring::default();
        ring.add(sk.public_key());
        let msg = ring.verify(b"commit", Some(&[&sig])).unwrap();
        assert_eq!(
            msg,
            format!(
                "ed25519: Signature verified successfully with key '{}'",
                sk.public_key().to_hex()
            )
        );
        let err = ring.verify(b"other", Some(&[&sig])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "ed25519: Signature couldn't be verified with: key '{}'",
                sk.public_key().to_hex()
            )
        );
        let err = ring.verify(b"commit", Some(&[&sig[..10]])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid signature length of 10 bytes, expected 64"
        );
        let err = ring.verify(b"commit", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ed25519: commit have no signatures of my type"
        );
        let err = ring.verify(b"commit", Some(&[])).unwrap_err();
        assert_eq!(err.to_string(), "ed25519: no signatures found");
    }

    #[test]
    fn many_failed_keys_are_counted() {
        let mut ring = Keyring::default();
        for seed in 1..=4 {
            ring.add(key(seed).public_key());
        }
        let sig = key(9).sign(b"x");
        let err = ring.verify(b"x", Some(&[&sig])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ed25519: Signature couldn't be verified; tried 4 keys"
        );
    }

    #[test]
    fn revoked_keys_are_skipped() {
        let sk = key(3);
        let mut ring = Keyring::default();
        ring.add(sk.public_key());
        ring.revoked.push(sk.public_key());
        let sig = sk.sign(b"x");
        let err = ring.verify(b"x", Some(&[&sig])).unwrap_err();
        assert_eq!(err.to_string(), "ed25519: no signatures found");
    }

    #[test]
    fn malformed_keys_are_named() {
        let err = SecretKey::from_base64("!!!").err().unwrap().to_string();
        assert!(
            err.starts_with("Incorrect ed25519 secret key: not base64"),
            "{err}"
        );
        let err = SecretKey::from_base64(&b64(&[0; 32])).err().unwrap();
        assert_eq!(
            err.to_string(),
            "Incorrect ed25519 secret key: 32 bytes, expected 64"
        );
        // A seed followed by another key's public half.
        let mut pair = key(1).0.to_keypair_bytes();
        pair[32..].copy_from_slice(key(2).public_key().0.as_bytes());
        let err = SecretKey::from_base64(&b64(&pair))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not the public key"), "{err}");
        let err = PublicKey::from_base64(&b64(&[1; 31])).unwrap_err();
        assert!(err.to_string().ends_with("31 bytes, expected 32"), "{err}");
        let pk = key(5).public_key();
        assert_eq!(PublicKey::from_base64(&pk.to_base64()).unwrap(), pk);
        // Padding may be left out.
        let unpadded = pk.to_base64().trim_end_matches('=').to_string();
        assert_eq!(PublicKey::from_base64(&unpadded).unwrap(), pk);
    }

    #[test]
    fn key_files_skip_bad_lines_but_need_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys");
        let pk = key(7).public_key();
        std::fs::write(&file, format!("garbage\n\n{}\n", pk.to_base64())).unwrap();
        let mut ring = Keyring::default();
        assert_eq!(ring.load_file(&file).unwrap(), 1);
        assert_eq!(ring.trusted, vec![pk]);
        std::fs::write(&file, "garbage\n").unwrap();
        let err = Keyring::default().load_file(&file).unwrap_err().to_string();
        assert!(err.contains("no valid keys in file"), "{err}");
        assert!(
            err.contains("line 1: Incorrect ed25519 public key"),
            "{err}"
        );
        let err = Keyring::default().load_file(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is not a regular file"), "{err}");
    }

    #[test]
    fn system_dirs_hold_trusted_and_revoked_keys() {
        let dir = tempfile::tempdir().unwrap();
        let (good, revoked) = (key(1), key(2));
        std::fs::create_dir(dir.path().join("trusted.ed25519.d")).unwrap();
        std::fs::write(
            dir.path().join("trusted.ed25519.d/a"),
            good.public_key().to_base64(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("trusted.ed25519"),
            revoked.public_key().to_base64(),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("revoked.ed25519"),
            revoked.public_key().to_base64(),
        )
        .unwrap();
        let mut ring = Keyring::default();
        ring.load_system(Some(dir.path())).unwrap();
        assert!(ring.verify(b"x", Some(&[&good.sign(b"x")])).is_ok());
        assert!(ring.verify(b"x", Some(&[&revoked.sign(b"x")])).is_err());
        let empty = tempfile::tempdir().unwrap();
        let err = Keyring::default()
            .load_system(Some(empty.path()))
            .unwrap_err();
        assert_eq!(err.to_string(), "signature: ed25519: no keys loaded");
    }
}
