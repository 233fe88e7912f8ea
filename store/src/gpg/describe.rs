//! A signature described as ostree's `ostree_gpg_verify_result_describe` describes it (a
//! simplified form of gpg's own verify output), dates in local time.

use super::verify::{Signature, Verdict, VerifyResult};
use crate::time::format_local_c;

/// The last 16 hex digits of a fingerprint: its long key ID.
fn key_id(fingerprint: &str) -> &str {
    &fingerprint[fingerprint.len().saturating_sub(16)..]
}

impl Signature {
    /// Its description, each line after `prefix`; OpenPGP timestamps are 32-bit, always
    /// within the dates GLib can represent.
    pub fn describe(&self, prefix: &str) -> String {
        let mut out = format!(
            "{prefix}Signature made {} using {} key ID {}\n",
            format_local_c(self.timestamp),
            self.pubkey_algo,
            key_id(&self.fingerprint)
        );
        let who = format!("\"{} <{}>\"", self.user_name, self.user_email);
        let verdict = match self.verdict {
            Verdict::MissingKey => "Can't check signature: public key not found".to_string(),
            Verdict::Good => format!("Good signature from {who}"),
            Verdict::RevokedKey => "Key revoked".to_string(),
            Verdict::ExpiredSignature => format!("Expired signature from {who}"),
            Verdict::Bad | Verdict::ExpiredKey | Verdict::Error => {
                format!("BAD signature from {who}")
            }
        };
        out += &format!("{prefix}{verdict}\n");
        let missing = self.verdict == Verdict::MissingKey;
        let subkey = self.fingerprint != self.primary_fingerprint;
        if !missing && subkey {
            out += &format!(
                "{prefix}Primary key ID {}\n",
                key_id(&self.primary_fingerprint)
            );
        }
        let key_expired = self.verdict == Verdict::ExpiredKey;
        let mut expiry = |what: &str, when: i64, expired: bool| {
            if when > 0 {
                let verb = if expired { "expired" } else { "expires" };
                out += &format!("{prefix}{what} {verb} {}\n", format_local_c(when));
            }
        };
        expiry(
            "Signature",
            self.expires,
            self.verdict == Verdict::ExpiredSignature,
        );
        expiry("Key", self.key_expires, key_expired);
        if subkey {
            expiry("Primary key", self.primary_key_expires, key_expired);
        }
        out
    }
}

impl VerifyResult {
    /// Every signature's description, each after a blank line and indented by two spaces,
    /// as ostree prints them under its "Found N signatures:" headers.
    pub fn describe_all(&self) -> String {
        self.signatures
            .iter()
            .map(|sig| format!("\n{}", sig.describe("  ")))
            .collect()
    }

    /// "signature" or "signatures", for those headers.
    pub fn noun(&self) -> &'static str {
        if self.signatures.len() == 1 {
            "signature"
        } else {
            "signatures"
        }
    }
}
