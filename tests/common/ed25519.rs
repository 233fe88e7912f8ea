//! Throw-away ed25519 keys made by openssl, in ostree's formats, and openssl as the
//! independent signer and verifier (Debian's ostree is built without ed25519).

use super::sh;
use std::path::{Path, PathBuf};

/// DER prefix of an ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// An ed25519 key pair.
pub struct Ed25519Key {
    /// openssl's private key (PEM).
    pub pem: PathBuf,
    /// ostree's secret key: base64 of seed || public key.
    pub secret: String,
    /// ostree's public key: base64 of the 32 bytes.
    pub public: String,
    /// The public key as hex, as ostree's messages name it.
    pub hex: String,
    /// The public key as DER, built from the raw 32 bytes.
    pub public_der: PathBuf,
}

/// Standard base64 with padding, by coreutils.
pub fn base64(dir: &Path, bytes: &[u8]) -> String {
    let tmp = dir.join("base64.in");
    std::fs::write(&tmp, bytes).unwrap();
    sh("base64", &["-w0", tmp.to_str().unwrap()])
        .ok()
        .trim()
        .to_string()
}

impl Ed25519Key {
    /// Generates a key named `name` under `dir`.
    pub fn new(dir: &Path, name: &str) -> Ed25519Key {
        let pem = dir.join(format!("{name}.pem"));
        let p = pem.to_str().unwrap();
        sh("openssl", &["genpkey", "-algorithm", "ed25519", "-out", p]).ok();
        // PKCS#8 and SPKI DER end with the raw seed and the raw public key.
        let der = |args: &[&str]| -> Vec<u8> {
            let out = dir.join(format!("{name}.der"));
            let mut all = vec!["pkey", "-in", p, "-outform", "DER", "-out"];
            all.push(out.to_str().unwrap());
            all.extend_from_slice(args);
            sh("openssl", &all).ok();
            std::fs::read(out).unwrap()
        };
        let private = der(&[]);
        let seed = &private[private.len() - 32..];
        let spki = der(&["-pubout"]);
        let public = &spki[spki.len() - 32..];
        let mut pair = seed.to_vec();
        pair.extend_from_slice(public);
        let mut rebuilt = SPKI_PREFIX.to_vec();
        rebuilt.extend_from_slice(public);
        let public_der = dir.join(format!("{name}.pub.der"));
        std::fs::write(&public_der, rebuilt).unwrap();
        Ed25519Key {
            secret: base64(dir, &pair),
            public: base64(dir, public),
            hex: public.iter().map(|b| format!("{b:02x}")).collect(),
            pem,
            public_der,
        }
    }

    /// openssl's signature of a file.
    pub fn openssl_sign(&self, data: &Path, dir: &Path) -> Vec<u8> {
        let out = dir.join("openssl.sig");
        sh(
            "openssl",
            &[
                "pkeyutl",
                "-sign",
                "-inkey",
                self.pem.to_str().unwrap(),
                "-rawin",
                "-in",
                data.to_str().unwrap(),
                "-out",
                out.to_str().unwrap(),
            ],
        )
        .ok();
        std::fs::read(out).unwrap()
    }

    /// Whether openssl accepts `sig` as this key's signature of the file `data`, the key
    /// being read from the DER built from its raw 32 bytes.
    pub fn openssl_verifies(&self, data: &Path, sig: &[u8], dir: &Path) -> bool {
        let sig_path = dir.join("check.sig");
        std::fs::write(&sig_path, sig).unwrap();
        sh(
            "openssl",
            &[
                "pkeyutl",
                "-verify",
                "-pubin",
                "-keyform",
                "DER",
                "-inkey",
                self.public_der.to_str().unwrap(),
                "-rawin",
                "-in",
                data.to_str().unwrap(),
                "-sigfile",
                sig_path.to_str().unwrap(),
            ],
        )
        .out
        .status
        .success()
    }
}

/// The byte strings of `ostree show --print-detached-metadata-key=KEY` output: GLib prints
/// an `aay` as `[[byte 0x01, ...], ...]`, or an element that ends with its only nul as a
/// bytestring, `b'...'` (C escapes, the nul left out).
pub fn parse_aay(text: &str) -> Vec<Vec<u8>> {
    let s = text.trim().as_bytes();
    assert!(
        s.first() == Some(&b'[') && s.last() == Some(&b']'),
        "{text}"
    );
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() - 1 {
        match s[i] {
            b' ' | b',' => i += 1,
            b'[' => {
                let end = i + s[i..].iter().position(|&c| c == b']').unwrap();
                let inner = std::str::from_utf8(&s[i + 1..end]).unwrap();
                out.push(
                    inner
                        .trim_start_matches("byte ")
                        .split(", ")
                        .map(|b| u8::from_str_radix(b.trim_start_matches("0x"), 16).unwrap())
                        .collect(),
                );
                i = end + 1;
            }
            b'b' => {
                let quote = s[i + 1];
                let mut bytes = Vec::new();
                i += 2;
                while s[i] != quote {
                    if s[i] != b'\\' {
                        bytes.push(s[i]);
                        i += 1;
                        continue;
                    }
                    let c = s[i + 1];
                    i += 2;
                    bytes.push(match c {
                        b'a' => 7,
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 11,
                        b'0'..=b'7' => {
                            let mut v = u32::from(c - b'0');
                            for _ in 0..2 {
                                if s[i].is_ascii_digit() && s[i] < b'8' {
                                    v = v * 8 + u32::from(s[i] - b'0');
                                    i += 1;
                                }
                            }
                            v as u8
                        }
                        other => other,
                    });
                }
                bytes.push(0);
                out.push(bytes);
                i += 1;
            }
            other => panic!("unexpected {:?} in {text}", other as char),
        }
    }
    out
}
