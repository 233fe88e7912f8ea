//! Following an origin (`OstreeSysrootUpgrader`): read the merge deployment's `.origin`
//! (`refspec=REMOTE:REF`), pull that ref from the remote into the sysroot repository, and, if
//! it moved, deploy the new commit with the merge deployment's `/etc` and kernel arguments.
//! Used by `admin upgrade` and `admin switch`.

use super::Sysroot;
use super::deploy::{DeployRequest, deploy_and_write};
use super::deployment::{Deployment, ORIGIN_GROUP, TRANSIENT_GROUP};
use super::retention::Retention;
use anyhow::{anyhow, bail};
use rostree_store::ObjectId;
use rostree_store::config::KeyFile;
use rostree_store::pull::{PullOptions, PullStats, check_timestamps, pull};
use rostree_store::refs::parse_refspec;

/// The commit metadata key naming the ref an end-of-life ref's users move to.
const ENDOFLIFE_REBASE: &str = "ostree.endoflife-rebase";

/// An upgrade of one stateroot, from its merge deployment's origin.
pub struct Upgrader {
    /// The stateroot.
    pub osname: String,
    /// The deployment configuration is merged from (and whose commit is "current").
    pub merge: Deployment,
    /// The origin the new deployment gets.
    pub origin: KeyFile,
    /// The origin's remote, if its refspec names one.
    pub origin_remote: Option<String>,
    /// The origin's ref.
    pub origin_ref: String,
    /// `origin/override-commit`: deploy this commit instead of the ref's.
    override_commit: Option<ObjectId>,
    /// The commit to deploy, once pulled.
    new_revision: Option<ObjectId>,
}

/// How [`Upgrader::pull`] runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct PullMode {
    /// Do not pull: use what the repository has (`--deploy-only`).
    pub synthetic: bool,
    /// Accept a commit older than the merge deployment's (`--allow-downgrade`, `switch`).
    pub allow_older: bool,
}

impl Upgrader {
    /// Reads the merge deployment of `osname` (default: the booted deployment's stateroot)
    /// and its origin. `ignore_unconfigured` accepts an origin with `unconfigured-state`.
    pub fn new(
        sysroot: &Sysroot,
        osname: Option<&str>,
        ignore_unconfigured: bool,
    ) -> anyhow::Result<Upgrader> {
        let osname = match (osname, sysroot.booted_deployment()) {
            (Some(""), _) => bail!("Invalid empty osname"),
            (Some(os), _) => os.to_string(),
            (None, Some(b)) => b.osname.clone(),
            (None, None) => {
                bail!("Not currently booted into an OSTree system and no OS specified")
            }
        };
        let merge = sysroot
            .merge_deployment(&osname)
            .cloned()
            .ok_or_else(|| anyhow!("No previous deployment for OS '{osname}'"))?;
        let origin = merge.origin.clone().ok_or_else(|| {
            anyhow!(
                "No origin known for deployment {}.{}",
                merge.csum,
                merge.deployserial
            )
        })?;
        let mut up = Upgrader {
            osname,
            merge,
            origin: KeyFile::default(),
            origin_remote: None,
            origin_ref: String::new(),
            override_commit: None,
            new_revision: None,
        };
        up.set_origin(origin, ignore_unconfigured)?;
        Ok(up)
    }

    /// Replaces the origin the new deployment gets (and what is pulled).
    pub fn set_origin(&mut self, origin: KeyFile, ignore_unconfigured: bool) -> anyhow::Result<()> {
        if !ignore_unconfigured && let Some(state) = origin.get(ORIGIN_GROUP, "unconfigured-state")
        {
            bail!("origin unconfigured-state: {state}");
        }
        let refspec = origin.get(ORIGIN_GROUP, "refspec").ok_or_else(|| {
            anyhow!("No origin/refspec in current deployment origin; cannot upgrade via ostree")
        })?;
        let (remote, name) = parse_refspec(refspec)?;
        self.origin_remote = remote.map(str::to_string);
        self.origin_ref = name.to_string();
        self.override_commit = match origin.get(ORIGIN_GROUP, "override-commit") {
            Some(c) => Some(ObjectId::from_hex(c).map_err(|e| anyhow!("{c}: {e}"))?),
            None => None,
        };
        self.origin = origin;
        Ok(())
    }

    /// The origin's refspec as written in it.
    pub fn origin_refspec(&self) -> String {
        match &self.origin_remote {
            Some(r) => format!("{r}:{}", self.origin_ref),
            None => self.origin_ref.clone(),
        }
    }

    /// Pulls the origin's ref (or override commit) and finds the commit to deploy; returns
    /// whether it differs from the merge deployment's. Follows `ostree.endoflife-rebase`.
    pub fn pull(&mut self, sysroot: &Sysroot, mode: PullMode) -> anyhow::Result<bool> {
        let repo = &sysroot.repo;
        let from = ObjectId::from_hex(&self.merge.csum)
            .map_err(|e| anyhow!("deployment {}: {e}", self.merge.csum))?;
        let to_fetch = match &self.override_commit {
            Some(c) => c.to_hex(),
            None => self.origin_ref.clone(),
        };
        let remote = self.origin_remote.clone();
        let do_pull = |name: &str, timestamp_check: bool| -> anyhow::Result<()> {
            let Some(remote) = remote.as_deref().filter(|_| !mode.synthetic) else {
                return Ok(());
            };
            let options = PullOptions {
                refs: vec![name.to_string()],
                timestamp_check_from_rev: timestamp_check.then_some(from),
                ..PullOptions::default()
            };
            // The store's errors name the remote's URL, ref or commit.
            pull(repo, remote, &options, &PullStats::default())?;
            Ok(())
        };
        do_pull(&to_fetch, !mode.allow_older)?;

        let refspec = self.origin_refspec();
        let pulled = repo.resolve_rev(&refspec)?;
        let commit = repo.read_commit(&pulled)?;
        let rebase = commit
            .metadata
            .iter()
            .find(|(k, _)| k == ENDOFLIFE_REBASE)
            .and_then(|(_, v)| v.as_str().map(str::to_string));
        if let Some(new_ref) = rebase {
            do_pull(&new_ref, false)?;
            self.origin_ref = new_ref;
            let refspec = self.origin_refspec();
            self.origin.set(ORIGIN_GROUP, "refspec", &refspec);
        }

        let new = match self.override_commit {
            Some(c) => {
                let tx = repo.begin()?;
                tx.set_ref(self.origin_remote.as_deref(), &self.origin_ref, Some(c));
                tx.commit()?;
                c
            }
            None => repo.resolve_rev(&self.origin_refspec())?,
        };
        self.new_revision = Some(new);
        if new == from {
            return Ok(false);
        }
        if !mode.allow_older {
            let old_ts = repo.read_commit(&from)?.timestamp;
            let new_ts = repo.read_commit(&new)?.timestamp;
            check_timestamps(&from, old_ts, &new, new_ts)?;
        }
        Ok(true)
    }

    /// Deploys the pulled commit with the merge deployment's configuration and makes it the
    /// default, as `ostree_sysroot_upgrader_deploy` does (then cleans up and prunes).
    pub fn deploy(&self, sysroot: &mut Sysroot) -> anyhow::Result<()> {
        let Some(revision) = self.new_revision else {
            bail!("nothing pulled for {}", self.origin_refspec());
        };
        super::bootloader::check_bootloader_supported(sysroot)?;
        let req = DeployRequest {
            osname: &self.osname,
            revision,
            origin: self.origin.clone(),
            kargs: None,
            merge: Some(&self.merge),
        };
        deploy_and_write(sysroot, &req, Retention::default(), true)
    }
}

/// What `admin upgrade` keeps of the merge deployment's origin: everything but the transient
/// state (pinning, `override-commit`, `unlocked`).
pub fn remove_transient_state(origin: &mut KeyFile) {
    origin.remove_group(TRANSIENT_GROUP);
    origin.remove(ORIGIN_GROUP, "override-commit");
    origin.remove(ORIGIN_GROUP, "unlocked");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downgrades_are_judged_by_timestamp_as_ostree_does() {
        let a = ObjectId::from_hex(&"a".repeat(64)).unwrap();
        let b = ObjectId::from_hex(&"b".repeat(64)).unwrap();
        assert!(check_timestamps(&a, 10, &b, 11).is_ok());
        // Equal timestamps pass (ostree compares `>` then `==`).
        assert!(check_timestamps(&a, 10, &b, 10).is_ok());
        assert!(check_timestamps(&a, 10, &a, 9).is_ok());
        let err = check_timestamps(&a, 10, &b, 9).unwrap_err().to_string();
        assert!(
            err.contains(&b.to_hex()) && err.contains("--allow-downgrade"),
            "{err}"
        );
    }

    #[test]
    fn transient_state_is_dropped() {
        let mut origin = KeyFile::parse(
            "[origin]\nrefspec=r:x\noverride-commit=abc\nunlocked=development\n\n\
             [libostree-transient]\npinned=true\n",
        )
        .unwrap();
        remove_transient_state(&mut origin);
        assert_eq!(origin.to_text(), "[origin]\nrefspec=r:x\n");
    }
}
