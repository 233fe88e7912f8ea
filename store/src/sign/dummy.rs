//! ostree 2022.7's test-only `dummy` signature type, as `ostree-sign-dummy.c` defines it:
//! a signature is the secret key's text itself, and a signature verifies when it equals the
//! public key's text. Signing and verifying work only with `OSTREE_DUMMY_SIGN_ENABLED=1` in
//! the environment, as in ostree; without it they fail with ostree's message. It proves
//! nothing about the data and exists so that tests can exercise the signing framework
//! (ostree's own test suite and Debian's ostree, built without ed25519, rely on it).

use crate::{Error, Result};

/// The signature type's name (`--sign-type`, `sign-verify`).
pub const NAME: &str = "dummy";
/// The detached-metadata key holding dummy signatures.
pub const METADATA_KEY: &str = "ostree.sign.dummy";
/// The environment variable that enables the type.
pub const ENABLE_VAR: &str = "OSTREE_DUMMY_SIGN_ENABLED";

/// Refuses unless `OSTREE_DUMMY_SIGN_ENABLED=1`, in ostree's words.
pub fn check_enabled() -> Result<()> {
    if std::env::var_os(ENABLE_VAR).is_some_and(|v| v == "1") {
        return Ok(());
    }
    Err(Error::Sign(
        "dummy signature type is only for ostree testing".into(),
    ))
}

/// The signature `key` makes (of any data): the key's bytes.
pub fn sign(key: &str) -> Result<Vec<u8>> {
    check_enabled()?;
    Ok(key.as_bytes().to_vec())
}

/// ostree's dummy check: one of `signatures` (None when the metadata has none of this type)
/// must equal the public key's text. `public` is None when no key was configured: then no
/// signature matches.
pub fn verify(public: Option<&str>, signatures: Option<&[&[u8]]>) -> Result<String> {
    check_enabled()?;
    compare(public, signatures)
}

/// The comparison [`verify`] makes once the type is enabled.
fn compare(public: Option<&str>, signatures: Option<&[&[u8]]>) -> Result<String> {
    let fail = |why: String| Err(Error::Sign(format!("signature: dummy: {why}")));
    let Some(signatures) = signatures else {
        return fail("commit have no signatures of my type".into());
    };
    // ostree compares up to the first NUL, as C strings.
    let text = |sig: &[u8]| -> Vec<u8> { sig.iter().copied().take_while(|&b| b != 0).collect() };
    if let Some(public) = public
        && signatures.iter().any(|sig| text(sig) == public.as_bytes())
    {
        return Ok("dummy: Signature verified".into());
    }
    if signatures.is_empty() {
        return fail("no signatures".into());
    }
    fail(format!("incorrect signatures found: {}", signatures.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_key_text() {
        let sig = b"k1".to_vec();
        assert_eq!(
            compare(Some("k1"), Some(&[b"x", &sig])).unwrap(),
            "dummy: Signature verified"
        );
        let err = compare(Some("k2"), Some(&[&sig])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature: dummy: incorrect signatures found: 1"
        );
        let err = compare(None, Some(&[&sig])).unwrap_err();
        assert!(err.to_string().ends_with("incorrect signatures found: 1"));
        let err = compare(Some("k1"), Some(&[])).unwrap_err();
        assert_eq!(err.to_string(), "signature: dummy: no signatures");
        let err = compare(Some("k1"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "signature: dummy: commit have no signatures of my type"
        );
    }
}
