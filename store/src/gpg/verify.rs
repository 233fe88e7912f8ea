//! The one OpenPGP verifier: `gpgv` checks detached signatures against the trusted keys and
//! reports each on its status channel; `gpg --list-keys` then supplies what ostree shows of
//! the signing keys (user ID, primary key, expiry). The result carries what ostree's
//! `OstreeGpgVerifyResult` carries, so callers describe or require signatures as ostree does.

use super::keys::TrustedKeys;
use super::{gpg_error, run, temp_home};
use crate::{Error, Result};
use std::path::Path;
use std::process::{Command, Stdio};

/// How gpg judged one signature (its status keyword).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// `GOODSIG`.
    Good,
    /// `BADSIG`: the data or the signature was altered.
    Bad,
    /// `EXPSIG`: the signature itself has expired.
    ExpiredSignature,
    /// `EXPKEYSIG`: made by a key that has since expired.
    ExpiredKey,
    /// `REVKEYSIG`: made by a revoked key.
    RevokedKey,
    /// `ERRSIG` with `NO_PUBKEY`: no trusted key can check it.
    MissingKey,
    /// `ERRSIG` for another reason (unsupported algorithm, ...).
    Error,
}

/// One signature, with the attributes ostree's `ostree_gpg_verify_result_get_all` gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// gpg's verdict.
    pub verdict: Verdict,
    /// The signing key's fingerprint (its long key ID when gpg gave no more).
    pub fingerprint: String,
    /// The fingerprint of the signing key's primary key ("" when the key is unknown).
    pub primary_fingerprint: String,
    /// When it was made (0 when gpg did not say, as for a bad signature).
    pub timestamp: i64,
    /// When it expires (0: never).
    pub expires: i64,
    /// The public-key algorithm's name as GPGME names it.
    pub pubkey_algo: String,
    /// The name of the key's first user ID.
    pub user_name: String,
    /// The email of the key's first user ID.
    pub user_email: String,
    /// When the signing (sub)key expires (0: never or unknown).
    pub key_expires: i64,
    /// When the primary key expires (0: never or unknown).
    pub primary_key_expires: i64,
}

impl Signature {
    /// Whether ostree counts it as valid: a good signature (gpg's trust model plays no part,
    /// as the keys come from keyrings, not a trust database).
    pub fn is_valid(&self) -> bool {
        self.verdict == Verdict::Good
    }

    fn new() -> Signature {
        Signature {
            verdict: Verdict::Error,
            fingerprint: String::new(),
            primary_fingerprint: String::new(),
            timestamp: 0,
            expires: 0,
            pubkey_algo: algo_name(0).to_string(),
            user_name: UNKNOWN_NAME.to_string(),
            user_email: UNKNOWN_EMAIL.to_string(),
            key_expires: 0,
            primary_key_expires: 0,
        }
    }
}

const UNKNOWN_NAME: &str = "[unknown name]";
const UNKNOWN_EMAIL: &str = "[unknown email]";

/// The outcome of checking a set of signatures over some data.
#[derive(Clone, Debug, Default)]
pub struct VerifyResult {
    /// Every signature gpg examined, in order.
    pub signatures: Vec<Signature>,
}

impl VerifyResult {
    /// How many signatures are valid.
    pub fn count_valid(&self) -> usize {
        self.signatures.iter().filter(|s| s.is_valid()).count()
    }

    /// Ok when at least one signature is valid; else ostree's message: the description of
    /// every signature, last first (`ostree_gpg_verify_result_require_valid_signature`).
    pub fn require_valid(&self) -> std::result::Result<(), String> {
        if self.count_valid() > 0 {
            return Ok(());
        }
        if self.signatures.is_empty() {
            return Err("No GPG signatures found".to_string());
        }
        let mut text = String::new();
        for sig in self.signatures.iter().rev() {
            text += &sig.describe("");
        }
        Err(text.trim_end().to_string())
    }
}

/// Checks `signatures` (binary OpenPGP signature packets) over `data` against `keys`.
pub fn verify(keys: &TrustedKeys, data: &[u8], signatures: &[Vec<u8>]) -> Result<VerifyResult> {
    let home = temp_home()?;
    let keyring = home.path().join("pubring.gpg");
    write_keyring(keys, home.path(), &keyring)?;
    let data_path = home.path().join("data");
    std::fs::write(&data_path, data).map_err(|e| Error::io(&data_path, e))?;
    // gpg checks concatenated signature packets one after the other, as ostree has it do.
    let sig_path = home.path().join("data.sig");
    std::fs::write(&sig_path, signatures.concat()).map_err(|e| Error::io(&sig_path, e))?;
    let mut cmd = Command::new("gpgv");
    cmd.arg("--homedir")
        .arg(home.path())
        .args(["--status-fd", "1", "--keyring"])
        .arg(&keyring)
        .arg(&sig_path)
        .arg(&data_path);
    let status = run_for_status(cmd)?;
    let mut sigs = parse_status(&status);
    if sigs.is_empty() {
        return Err(gpg_error(
            "gpgv",
            "no OpenPGP signature in the signature data",
        ));
    }
    if sigs.iter().any(|s| s.verdict != Verdict::MissingKey) {
        let blocks = list_keys(home.path(), &keyring)?;
        for sig in &mut sigs {
            if sig.verdict != Verdict::MissingKey {
                fill_key_details(sig, &blocks);
            }
        }
    }
    Ok(VerifyResult { signatures: sigs })
}

/// Writes one binary keyring holding every trusted key: keyrings concatenated (OpenPGP
/// packets concatenate), key files imported and exported through a scratch gpg home.
fn write_keyring(keys: &TrustedKeys, home: &Path, keyring: &Path) -> Result<()> {
    let mut all = Vec::new();
    for path in &keys.keyrings {
        all.extend(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    }
    if !keys.key_files.is_empty() {
        let scratch = home.join("import");
        std::fs::create_dir(&scratch).map_err(|e| Error::io(&scratch, e))?;
        for path in &keys.key_files {
            let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
            let mut cmd = Command::new("gpg");
            cmd.args(["--batch", "--no-autostart", "--import", "--homedir"])
                .arg(&scratch);
            run(cmd, &bytes, &format!("gpg --import {}", path.display()))?;
        }
        let mut cmd = Command::new("gpg");
        cmd.args(["--batch", "--no-autostart", "--export", "--homedir"])
            .arg(&scratch);
        all.extend(run(cmd, b"", "gpg --export")?);
    }
    std::fs::write(keyring, all).map_err(|e| Error::io(keyring, e))
}

/// Runs gpgv and returns its status lines; a failing exit only means a signature failed.
fn run_for_status(mut cmd: Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .output()
        .map_err(|e| gpg_error("gpgv", format!("cannot run gpgv: {e}")))?;
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() && !status.contains("[GNUPG:] ") {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(gpg_error("gpgv", stderr.trim()));
    }
    Ok(status)
}

/// The signatures gpg reports on its status channel (`NEWSIG` starts each).
fn parse_status(status: &str) -> Vec<Signature> {
    let mut sigs: Vec<Signature> = Vec::new();
    for line in status.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let mut fields = rest.split(' ');
        let keyword = fields.next().unwrap_or_default();
        let args: Vec<&str> = fields.collect();
        let arg = |i: usize| args.get(i).copied().unwrap_or_default();
        let verdict = match keyword {
            "NEWSIG" => {
                sigs.push(Signature::new());
                continue;
            }
            "GOODSIG" => Verdict::Good,
            "BADSIG" => Verdict::Bad,
            "EXPSIG" => Verdict::ExpiredSignature,
            "EXPKEYSIG" => Verdict::ExpiredKey,
            "REVKEYSIG" => Verdict::RevokedKey,
            "ERRSIG" if arg(5) == "9" => Verdict::MissingKey,
            "ERRSIG" => Verdict::Error,
            "VALIDSIG" => {
                if let Some(sig) = sigs.last_mut() {
                    sig.fingerprint = arg(0).to_string();
                    sig.timestamp = arg(2).parse().unwrap_or(0);
                    sig.expires = arg(3).parse().unwrap_or(0);
                    sig.pubkey_algo = algo_name(arg(6).parse().unwrap_or(0)).to_string();
                }
                continue;
            }
            _ => continue,
        };
        if sigs.is_empty() {
            sigs.push(Signature::new());
        }
        let Some(sig) = sigs.last_mut() else { continue };
        sig.verdict = verdict;
        sig.fingerprint = arg(0).to_string();
        if keyword == "ERRSIG" {
            // ERRSIG <keyid> <pkalgo> <hashalgo> <class> <time> <rc> [<fpr>]
            sig.pubkey_algo = algo_name(arg(1).parse().unwrap_or(0)).to_string();
            sig.timestamp = arg(4).parse().unwrap_or(0);
            if !arg(6).is_empty() && arg(6) != "-" {
                sig.fingerprint = arg(6).to_string();
            }
        }
    }
    sigs
}

/// GPGME's name for an OpenPGP public-key algorithm number (`gpgme_pubkey_algo_name`).
fn algo_name(algo: u32) -> &'static str {
    match algo {
        1 => "RSA",
        2 => "RSA-E",
        3 => "RSA-S",
        16 => "ELG-E",
        17 => "DSA",
        18 => "ECDH",
        19 => "ECDSA",
        20 => "ELG",
        22 => "EdDSA",
        _ => UNKNOWN_NAME,
    }
}

/// One key of the keyring: its primary key and subkeys, then its user IDs.
#[derive(Debug, Default)]
struct KeyBlock {
    /// (fingerprint, long key ID, expiry) of the primary key, then of each subkey.
    keys: Vec<(String, String, i64)>,
    /// User IDs, in keyring order.
    uids: Vec<String>,
}

/// Every key of `keyring`, from gpg's colon listing.
fn list_keys(home: &Path, keyring: &Path) -> Result<Vec<KeyBlock>> {
    let mut cmd = Command::new("gpg");
    cmd.arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--no-autostart",
            "--no-auto-check-trustdb",
            "--no-default-keyring",
            "--keyring",
        ])
        .arg(keyring)
        .args(["--with-colons", "--fixed-list-mode", "--list-keys"]);
    let out = run(cmd, b"", "gpg --list-keys")?;
    let mut blocks: Vec<KeyBlock> = Vec::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let f: Vec<&str> = line.split(':').collect();
        let field = |i: usize| f.get(i).copied().unwrap_or_default();
        if field(0) == "pub" {
            blocks.push(KeyBlock::default());
        }
        let Some(block) = blocks.last_mut() else {
            continue;
        };
        match field(0) {
            // A key's fpr record follows its pub or sub record.
            "pub" | "sub" => block.keys.push((
                String::new(),
                field(4).to_string(),
                field(6).parse().unwrap_or(0),
            )),
            "fpr" => {
                if let Some(key) = block.keys.last_mut().filter(|k| k.0.is_empty()) {
                    key.0 = field(9).to_string();
                }
            }
            "uid" => block.uids.push(unescape_colons(field(9))),
            _ => {}
        }
    }
    Ok(blocks)
}

/// gpg's colon listings escape bytes as `\xHH`.
fn unescape_colons(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && bytes.get(i + 1) == Some(&b'x')
            && let Some(b) = s
                .get(i + 2..i + 4)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Fills in what ostree reads from the signing key (`gpgme_get_key` on the signature's
/// fingerprint or key ID): the first key holding it wins.
fn fill_key_details(sig: &mut Signature, blocks: &[KeyBlock]) {
    let wanted = sig.fingerprint.to_ascii_uppercase();
    let matches = |(fpr, keyid, _): &(String, String, i64)| {
        *fpr == wanted || (wanted.len() == 16 && *keyid == wanted)
    };
    let Some(block) = blocks.iter().find(|b| b.keys.iter().any(matches)) else {
        return;
    };
    if let Some(uid) = block.uids.first() {
        let (name, email) = split_user_id(uid);
        sig.user_name = name;
        sig.user_email = email;
    }
    if let Some((fpr, _, expires)) = block.keys.first() {
        sig.primary_fingerprint = fpr.clone();
        sig.primary_key_expires = *expires;
    }
    // As GPGME, the signing key's own expiry is found by full fingerprint only.
    if let Some((_, _, expires)) = block.keys.iter().find(|k| k.0 == wanted) {
        sig.key_expires = *expires;
    }
}

/// A user ID's name and email as GPGME splits `Name (Comment) <email>`.
fn split_user_id(uid: &str) -> (String, String) {
    let name_end = uid.find(['<', '(']).unwrap_or(uid.len());
    let name = uid[..name_end].trim().to_string();
    let email = uid
        .find('<')
        .and_then(|start| {
            let rest = &uid[start + 1..];
            rest.find('>').map(|end| rest[..end].to_string())
        })
        .unwrap_or_default();
    (name, email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_make_signatures() {
        let status = "[GNUPG:] NEWSIG\n\
            [GNUPG:] GOODSIG CE686F3DEE9DA7C4 Bob <bob@example.com>\n\
            [GNUPG:] VALIDSIG 7BC09117CE0B48ECA919187FCE686F3DEE9DA7C4 2026-01-05 1767574923 0 4 0 1 10 00 7BC09117CE0B48ECA919187FCE686F3DEE9DA7C4\n\
            [GNUPG:] NEWSIG\n\
            [GNUPG:] ERRSIG CE686F3DEE9DA7C4 22 10 00 1767574923 9 7BC09117CE0B48ECA919187FCE686F3DEE9DA7C4\n\
            [GNUPG:] NO_PUBKEY CE686F3DEE9DA7C4\n\
            [GNUPG:] NEWSIG\n\
            [GNUPG:] BADSIG CE686F3DEE9DA7C4 Bob <bob@example.com>\n";
        let sigs = parse_status(status);
        assert_eq!(sigs.len(), 3);
        assert_eq!(sigs[0].verdict, Verdict::Good);
        assert_eq!(sigs[0].timestamp, 1_767_574_923);
        assert_eq!(sigs[0].pubkey_algo, "RSA");
        assert_eq!(sigs[0].fingerprint.len(), 40);
        assert_eq!(sigs[1].verdict, Verdict::MissingKey);
        assert_eq!(sigs[1].pubkey_algo, "EdDSA");
        assert_eq!(sigs[2].verdict, Verdict::Bad);
        assert_eq!(sigs[2].timestamp, 0);
        assert_eq!(sigs[2].pubkey_algo, "[unknown name]");
        assert_eq!(sigs[2].fingerprint, "CE686F3DEE9DA7C4");
    }

    #[test]
    fn user_ids_split_like_gpgme() {
        let split = |s: &str| split_user_id(s);
        assert_eq!(
            split("Carol C (test key) <carol@example.com>"),
            ("Carol C".into(), "carol@example.com".into())
        );
        assert_eq!(split("Just A Name"), ("Just A Name".into(), String::new()));
        assert_eq!(unescape_colons("a\\x3ab"), "a:b");
    }
}
