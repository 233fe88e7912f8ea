//! A throw-away GPG signing key in its own home directory, for signed-commit tests.

use super::sh;
use std::path::{Path, PathBuf};

/// An ed25519 signing key; its agent is stopped when dropped.
pub struct GpgKey {
    /// The key's GPG home (`--gpg-homedir`).
    pub home: PathBuf,
    /// Its fingerprint.
    pub id: String,
    /// The armored public key (for `remote add --gpg-import`).
    pub public: PathBuf,
}

impl GpgKey {
    /// Generates a key for `name` under `dir`.
    pub fn new(dir: &Path, name: &str) -> GpgKey {
        GpgKey::new_with(dir, name, "never", None)
    }

    /// Generates a key for `name` under `dir` that expires after `expires` (gpg's form:
    /// `never`, `1y`, ...), living at `faked_time` (`YYYYMMDDThhmmss`, for keys and
    /// signatures made in the past: the time stays in the home's `gpg.conf`, so every
    /// signature made with this key, by either tool, carries it).
    pub fn new_with(dir: &Path, name: &str, expires: &str, faked_time: Option<&str>) -> GpgKey {
        let home = dir.join(format!("gnupg-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        if let Some(time) = faked_time {
            std::fs::write(home.join("gpg.conf"), format!("faked-system-time {time}\n")).unwrap();
        }
        let h = home.to_str().unwrap();
        let uid = format!("{name} <{name}@example.com>");
        let gen_args = [
            "--batch",
            "--homedir",
            h,
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-gen-key",
            &uid,
            "ed25519",
            "sign",
            expires,
        ];
        sh("gpg", &gen_args).ok();
        let listing = sh("gpg", &["--homedir", h, "--with-colons", "--list-keys"]).ok();
        let id = listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .unwrap()
            .to_string();
        let public = dir.join(format!("{name}.asc"));
        let exported = sh("gpg", &["--homedir", h, "--armor", "--export", &id]).ok();
        std::fs::write(&public, exported).unwrap();
        GpgKey { home, id, public }
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = std::process::Command::new("gpgconf")
            .arg("--homedir")
            .arg(&self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
