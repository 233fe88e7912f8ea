//! One deployment: a checkout of a commit for a stateroot (OS name), with its boot entry and
//! origin, as listed by the current boot loader entries.

use super::bootconfig::BootConfig;
use rostree_store::config::KeyFile;

/// The origin group and key saying where upgrades come from.
pub const ORIGIN_GROUP: &str = "origin";
/// The origin group of settings that do not survive a redeploy (`pinned`).
pub const TRANSIENT_GROUP: &str = "libostree-transient";

/// A deployment.
#[derive(Clone, Debug)]
pub struct Deployment {
    /// Position in the deployment list (0 is the default boot).
    pub index: usize,
    /// The stateroot (`ostree/deploy/<osname>`).
    pub osname: String,
    /// The deployed commit, in hex.
    pub csum: String,
    /// Tells apart deployments of the same commit (`<csum>.<deployserial>`).
    pub deployserial: u32,
    /// sha256 of the kernel, initramfs and devicetree: names `/boot/ostree/<os>-<bootcsum>`.
    pub bootcsum: String,
    /// Tells apart deployments sharing a bootcsum in `ostree/boot.N.M/<os>/<bootcsum>/<serial>`.
    pub bootserial: u32,
    /// The boot entry (for a new deployment, only `options` so far).
    pub bootconfig: BootConfig,
    /// The `.origin` key file, if there is one.
    pub origin: Option<KeyFile>,
    /// `ostree admin unlock` state: `none`, `hotfix`, `development` or `transient`.
    pub unlocked: &'static str,
}

impl Deployment {
    /// `ostree/deploy/<os>/deploy/<csum>.<serial>`, relative to the sysroot.
    pub fn dirpath(&self) -> String {
        format!(
            "ostree/deploy/{}/deploy/{}.{}",
            self.osname, self.csum, self.deployserial
        )
    }

    /// The origin file's path, relative to the sysroot.
    pub fn origin_relpath(&self) -> String {
        format!("{}.origin", self.dirpath())
    }

    /// Whether this is the same deployment (stateroot, commit and serial).
    pub fn same_as(&self, other: &Deployment) -> bool {
        self.osname == other.osname
            && self.csum == other.csum
            && self.deployserial == other.deployserial
    }

    /// Pinned deployments are kept when others are garbage collected.
    pub fn is_pinned(&self) -> bool {
        self.origin
            .as_ref()
            .and_then(|o| o.get_bool(TRANSIENT_GROUP, "pinned").ok().flatten())
            .unwrap_or(false)
    }

    /// The unlock state: a transient one is a flag file under `/run` (it ends with the boot),
    /// a hotfix is recorded in the origin.
    pub fn read_unlocked_state(&self) -> &'static str {
        let run = format!(
            "/run/ostree/deployment-state/{}.{}",
            self.csum, self.deployserial
        );
        let run = std::path::Path::new(&run);
        if std::fs::symlink_metadata(run.join("unlocked-development")).is_ok() {
            "development"
        } else if std::fs::symlink_metadata(run.join("unlocked-transient")).is_ok() {
            "transient"
        } else if self
            .origin
            .as_ref()
            .and_then(|o| o.get(ORIGIN_GROUP, "unlocked"))
            == Some("hotfix")
        {
            "hotfix"
        } else {
            "none"
        }
    }

    /// The origin's refspec, if any.
    pub fn origin_refspec(&self) -> Option<&str> {
        self.origin.as_ref()?.get(ORIGIN_GROUP, "refspec")
    }
}

/// Parses a deployment directory name, `<hex csum>.<serial>`.
pub fn parse_deploy_dir_name(name: &str) -> Option<(String, u32)> {
    let (csum, serial) = name.rsplit_once('.')?;
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !hex(csum) || serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((csum.to_string(), serial.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::parse_deploy_dir_name;

    #[test]
    fn deploy_dir_names() {
        assert_eq!(parse_deploy_dir_name("ab12.3"), Some(("ab12".into(), 3)));
        assert_eq!(parse_deploy_dir_name("ab12.3.origin"), None);
        assert_eq!(parse_deploy_dir_name("AB.1"), None);
        assert_eq!(parse_deploy_dir_name("ab."), None);
    }
}
