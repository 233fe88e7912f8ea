//! Remotes, kept in the repository's `config` as ostree keeps them: a group
//! `[remote "NAME"]` with `url`, optional `branches=a;b;`, `gpg-verify` and other options.

use crate::config::KeyFile;
use crate::{Error, IoContext, Repo, Result};
use std::path::{Path, PathBuf};

/// A configured remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// Its name.
    pub name: String,
    /// Where its repository is served.
    pub url: String,
    /// Branches pulled when `pull` names none.
    pub branches: Vec<String>,
    /// Whether commits must carry a valid GPG signature (ostree's default: yes).
    pub gpg_verify: bool,
    /// Whether the summary must carry a valid GPG signature in `summary.sig`
    /// (`gpg-verify-summary`, off by default as in ostree).
    pub gpg_verify_summary: bool,
    /// How long the server may stay silent before a fetch fails (`timeout-secs`, a rostree
    /// option ostree ignores).
    pub timeout: std::time::Duration,
    /// `tls-ca-path` and `tls-permissive`.
    pub tls: super::fetch::TlsOptions,
}

/// What `remote add` writes besides the URL.
#[derive(Clone, Debug, Default)]
pub struct RemoteOptions {
    /// Branches to remember.
    pub branches: Vec<String>,
    /// `--set=KEY=VALUE` options, in order.
    pub settings: Vec<(String, String)>,
    /// `--no-gpg-verify`.
    pub no_gpg_verify: bool,
    /// `--no-sign-verify`: no signature checks at all (GPG's included, as in ostree).
    pub no_sign_verify: bool,
    /// `--sign-verify=KEYTYPE=inline:PUBKEY` or `KEYTYPE=file:PATH`, in order.
    pub sign_verify: Vec<String>,
}

/// The config entries for `--sign-verify` specs: one `verification-TYPE-key` or `-file`
/// each, then `sign-verify` listing the types (each once; ostree repeats them, and then
/// cannot read the list back).
fn sign_verify_settings(specs: &[String]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    for spec in specs {
        let unparsable = || {
            Error::Pull(format!(
                "Failed to parse KEYTYPE=[inline|file]:DATA in {spec}"
            ))
        };
        let (keytype, rest) = spec.split_once('=').ok_or_else(unparsable)?;
        let sign_type = crate::sign::SignType::from_name(keytype)?;
        let (keyref, data) = rest.split_once(':').ok_or_else(unparsable)?;
        let option = match keyref {
            "inline" => {
                crate::sign::Verifier::new(sign_type).add_key(data)?;
                format!("verification-{keytype}-key")
            }
            "file" => format!("verification-{keytype}-file"),
            other => {
                return Err(Error::Pull(format!(
                    "Invalid key reference {other}, expected inline|file"
                )));
            }
        };
        out.push((option, data.to_string()));
        if !types.contains(&keytype) {
            types.push(keytype);
        }
    }
    if !types.is_empty() {
        out.push(("sign-verify".to_string(), types.join(",")));
    }
    Ok(out)
}

fn group(name: &str) -> String {
    format!("remote \"{name}\"")
}

/// Whether `name` is a valid remote name: one ref fragment (`[-._A-Za-z0-9]+`).
pub fn is_valid_remote_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

impl Repo {
    /// Every key file remotes are configured in: the repository's `config`, then, for the
    /// running system's repository, each file of [`crate::repo::SYSTEM_REMOTES_DIR`].
    fn remote_keyfiles(&self) -> impl Iterator<Item = &KeyFile> {
        let system = self.system_remotes.iter().flatten().map(|(_, k)| k);
        std::iter::once(self.config()).chain(system)
    }

    /// The key file that configures remote `name` (the repository's `config` first).
    pub fn remote_keyfile(&self, name: &str) -> Option<&KeyFile> {
        let g = group(name);
        self.remote_keyfiles()
            .find(|k| k.groups().contains(&g.as_str()))
    }

    /// The configured remotes' names, sorted.
    pub fn remote_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .remote_keyfiles()
            .flat_map(|k| k.groups())
            .filter_map(|g| g.strip_prefix("remote \"")?.strip_suffix('"'))
            .map(str::to_string)
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// A configured remote, or `Remote "NAME" not found`.
    pub fn remote(&self, name: &str) -> Result<Remote> {
        let g = group(name);
        let config = self
            .remote_keyfile(name)
            .ok_or_else(|| Error::RemoteNotFound(name.to_string()))?;
        let url = config
            .get(&g, "url")
            .ok_or_else(|| Error::RemoteNotFound(name.to_string()))?;
        let branches = config
            .get(&g, "branches")
            .map(|b| {
                b.split(';')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let gpg_verify = config
            .get_bool(&g, "gpg-verify")
            .map_err(Error::Config)?
            .unwrap_or(true);
        let gpg_verify_summary = config
            .get_bool(&g, "gpg-verify-summary")
            .map_err(Error::Config)?
            .unwrap_or(false);
        let timeout = match config.get(&g, "timeout-secs") {
            None => super::fetch::DEFAULT_TIMEOUT,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(secs) if secs > 0 => std::time::Duration::from_secs(secs),
                _ => {
                    return Err(Error::Config(format!(
                        "remote \"{name}\": timeout-secs must be a positive number of seconds, not \"{v}\""
                    )));
                }
            },
        };
        let tls = super::fetch::TlsOptions {
            ca_path: config.get(&g, "tls-ca-path").map(std::path::PathBuf::from),
            permissive: config
                .get_bool(&g, "tls-permissive")
                .map_err(Error::Config)?
                .unwrap_or(false),
        };
        Ok(Remote {
            name: name.to_string(),
            url: url.to_string(),
            branches,
            gpg_verify,
            gpg_verify_summary,
            timeout,
            tls,
        })
    }

    /// One option of a configured remote (`ostree_repo_get_remote_option`): None when unset.
    pub fn remote_option(&self, name: &str, key: &str) -> Result<Option<String>> {
        self.remote(name)?;
        let config = self.remote_keyfile(name);
        Ok(config
            .and_then(|k| k.get(&group(name), key))
            .map(str::to_string))
    }

    /// Adds a remote (`remote add`); with `if_not_exists`, an existing one is left alone.
    pub fn add_remote(
        &mut self,
        name: &str,
        url: &str,
        options: &RemoteOptions,
        if_not_exists: bool,
    ) -> Result<()> {
        if !is_valid_remote_name(name) {
            return Err(Error::Pull(format!("Invalid remote name {name}")));
        }
        if self.remote_keyfile(name).is_some() {
            if if_not_exists {
                return Ok(());
            }
            let place = self
                .system_remote_file(name)
                .map_or_else(|| "(in config)".to_string(), |p| p.display().to_string());
            return Err(Error::Pull(format!(
                "Remote configuration for \"{name}\" already exists: {place}"
            )));
        }
        if options.no_sign_verify && !options.sign_verify.is_empty() {
            return Err(Error::Pull(
                "Cannot specify both --sign-verify and --no-sign-verify".into(),
            ));
        }
        let sign_settings = sign_verify_settings(&options.sign_verify)?;
        let g = group(name);
        // The running system's repository takes new remotes in a file of their own.
        let mut config = match self.system_remotes {
            Some(_) => KeyFile::default(),
            None => self.config().clone(),
        };
        config.set(&g, "url", url);
        if !options.branches.is_empty() {
            let list: String = options.branches.iter().map(|b| format!("{b};")).collect();
            config.set(&g, "branches", &list);
        }
        for (k, v) in &options.settings {
            config.set(&g, k, v);
        }
        if options.no_gpg_verify || options.no_sign_verify {
            config.set(&g, "gpg-verify", "false");
        }
        if options.no_sign_verify {
            config.set(&g, "sign-verify", "false");
        }
        for (k, v) in &sign_settings {
            config.set(&g, k, v);
        }
        if self.system_remotes.is_some() {
            return self.write_system_remote(name, &config);
        }
        self.write_config(config)
    }

    /// The file of the system's remotes directory that configures remote `name`, unless the
    /// repository's `config` does.
    fn system_remote_file(&self, name: &str) -> Option<PathBuf> {
        let g = group(name);
        if self.config().groups().contains(&g.as_str()) {
            return None;
        }
        let mut files = self.system_remotes.iter().flatten();
        files
            .find(|(_, k)| k.groups().contains(&g.as_str()))
            .map(|(path, _)| path.clone())
    }

    /// Writes `SYSTEM_REMOTES_DIR/NAME.conf` durably, creating the directory as ostree does.
    fn write_system_remote(&mut self, name: &str, config: &KeyFile) -> Result<()> {
        let dir = Path::new(crate::repo::SYSTEM_REMOTES_DIR);
        std::fs::create_dir_all(dir).at(dir)?;
        let dirfd = crate::fsutil::open_dir(dir)?;
        let file = format!("{name}.conf");
        let text = config.to_text();
        crate::fsutil::replace_file_at(
            &dirfd,
            &file,
            text.as_bytes(),
            0o644,
            true,
            &dir.join(&file),
        )?;
        self.system_remotes = Some(crate::repo::read_system_remotes(dir)?);
        Ok(())
    }

    /// Deletes a remote (`remote delete`) and its keyring; with `if_exists`, a missing one
    /// is fine. One configured in a file of the system's remotes directory goes with its
    /// file.
    pub fn delete_remote(&mut self, name: &str, if_exists: bool) -> Result<()> {
        if let Some(path) = self.system_remote_file(name) {
            std::fs::remove_file(&path).at(&path)?;
            let dir = Path::new(crate::repo::SYSTEM_REMOTES_DIR);
            self.system_remotes = Some(crate::repo::read_system_remotes(dir)?);
        } else {
            let mut config = self.config().clone();
            if !config.remove_group(&group(name)) {
                if if_exists {
                    return Ok(());
                }
                return Err(Error::RemoteNotFound(name.to_string()));
            }
            self.write_config(config)?;
        }
        // As ostree, the remote's imported keys go with it.
        let keyring = crate::gpg::remote_keyring(self, name);
        match std::fs::remove_file(&keyring) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&keyring, e)),
        }
    }
}
