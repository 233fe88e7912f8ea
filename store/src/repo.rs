//! Opening and creating repositories: layout, config and mode.

use crate::config::KeyFile;
use crate::fsutil::{self, ensure_dir_at, open_dir, open_dir_at, read_file_at};
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How a repository stores file content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RepoMode {
    /// Objects carry real owner, mode and xattrs; needs root.
    Bare,
    /// Objects owned by the user; real metadata in the `user.ostreemeta` xattr.
    BareUser,
    /// Like bare-user with canonical permissions and no xattrs: nothing to remember.
    BareUserOnly,
    /// Compressed `.filez` objects, for serving over HTTP.
    Archive,
}

impl RepoMode {
    /// The suffix of content objects in this mode.
    pub fn file_suffix(self) -> &'static str {
        match self {
            RepoMode::Archive => "filez",
            _ => "file",
        }
    }

    /// The suffix of objects of type `ty` in this mode.
    pub fn suffix(self, ty: ObjectType) -> &'static str {
        match ty {
            ObjectType::File => self.file_suffix(),
            other => other.suffix(),
        }
    }
}

impl fmt::Display for RepoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::Archive => "archive-z2",
        })
    }
}

impl FromStr for RepoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "bare" => RepoMode::Bare,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "archive" | "archive-z2" => RepoMode::Archive,
            other => {
                return Err(format!(
                    "Invalid mode '{other}' in repository configuration"
                ));
            }
        })
    }
}

/// An open repository.
pub struct Repo {
    path: PathBuf,
    pub(crate) root: OwnedFd,
    pub(crate) objects: OwnedFd,
    mode: RepoMode,
    config: KeyFile,
    /// For the running system's repository: the remotes configured in
    /// [`SYSTEM_REMOTES_DIR`], one key file each, by file name.
    pub(crate) system_remotes: Option<Vec<(PathBuf, KeyFile)>>,
    disable_fsync: bool,
}

/// Where the running system's repository (the one at `/ostree/repo`) also keeps remotes, one
/// `NAME.conf` key file each, as ostree reads and adds them.
pub const SYSTEM_REMOTES_DIR: &str = "/etc/ostree/remotes.d";

impl fmt::Debug for Repo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Repo {
    /// Creates a repository at `path` (the directory may exist, empty or not, as with ostree).
    pub fn init(path: &Path, mode: RepoMode) -> Result<Repo> {
        match std::fs::create_dir(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let root = open_dir(path)?;
        if read_file_at(&root, "config", path)?.is_none() {
            let text = format!("[core]\nrepo_version=1\nmode={mode}\n");
            fsutil::replace_file_at(&root, "config", text.as_bytes(), 0o644, true, path)?;
        }
        for dir in [
            "objects",
            "tmp",
            "tmp/cache",
            "extensions",
            "state",
            "refs",
            "refs/heads",
            "refs/mirrors",
            "refs/remotes",
        ] {
            ensure_dir_at(&root, dir, &path.join(dir))?;
        }
        Repo::open(path)
    }

    /// Opens the repository at `path`.
    pub fn open(path: &Path) -> Result<Repo> {
        let root = open_dir(path).map_err(|e| match e {
            Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Error::NotARepo(path.to_path_buf())
            }
            other => other,
        })?;
        let text = read_file_at(&root, "config", path)?
            .ok_or_else(|| Error::NotARepo(path.to_path_buf()))?;
        let config = KeyFile::parse(&String::from_utf8_lossy(&text)).map_err(Error::Config)?;
        match config.get("core", "repo_version") {
            Some("1") => {}
            other => {
                return Err(Error::Config(format!(
                    "Unsupported repository version {}",
                    other.unwrap_or("(none)")
                )));
            }
        }
        let mode: RepoMode = config
            .get("core", "mode")
            .unwrap_or("bare")
            .parse()
            .map_err(Error::Config)?;
        let objects = open_dir_at(&root, "objects", &path.join("objects"))?;
        let system_remotes = if is_system_repo(&root) {
            Some(read_system_remotes(Path::new(SYSTEM_REMOTES_DIR))?)
        } else {
            None
        };
        Ok(Repo {
            path: path.to_path_buf(),
            root,
            objects,
            mode,
            config,
            system_remotes,
            disable_fsync: false,
        })
    }

    /// The repository's path, as given when opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The storage mode.
    pub fn mode(&self) -> RepoMode {
        self.mode
    }

    /// The parsed `config` file.
    pub fn config(&self) -> &KeyFile {
        &self.config
    }

    /// Replaces the `config` file atomically and durably.
    pub fn write_config(&mut self, config: KeyFile) -> Result<()> {
        let path = self.path.join("config");
        fsutil::replace_file_at(
            &self.root,
            "config",
            config.to_text().as_bytes(),
            0o644,
            true,
            &path,
        )?;
        self.config = config;
        Ok(())
    }

    /// Whether object writes and ref updates are synced to disk (`core.fsync`, default true,
    /// and not turned off by [`Repo::set_disable_fsync`]).
    pub fn fsync_enabled(&self) -> bool {
        !self.disable_fsync
            && self
                .config
                .get_bool("core", "fsync")
                .ok()
                .flatten()
                .unwrap_or(true)
    }

    /// Turns syncing off for this handle (`--fsync=false`, `--disable-fsync`).
    pub fn set_disable_fsync(&mut self, disable: bool) {
        self.disable_fsync = disable;
    }

    /// The compression level of archive objects (`archive.zlib-level`, default 6).
    pub fn zlib_level(&self) -> u32 {
        self.config
            .get("archive", "zlib-level")
            .and_then(|s| s.parse().ok())
            .filter(|&l| (1..=9).contains(&l))
            .unwrap_or(6)
    }

    /// The path of an object below `objects/`.
    pub fn object_relpath(&self, id: &ObjectId, ty: ObjectType) -> String {
        id.loose_path(self.mode.suffix(ty))
    }

    /// The absolute path of an object, for messages and hardlinks.
    pub fn object_path(&self, id: &ObjectId, ty: ObjectType) -> PathBuf {
        self.path.join("objects").join(self.object_relpath(id, ty))
    }

    /// Whether an object is stored.
    pub fn has_object(&self, id: &ObjectId, ty: ObjectType) -> Result<bool> {
        let rel = self.object_relpath(id, ty);
        fsutil::exists_at(&self.objects, &rel, &self.object_path(id, ty))
    }

    /// Lists every loose object in the repository.
    pub fn list_objects(&self) -> Result<Vec<(ObjectId, ObjectType)>> {
        let objdir = self.path.join("objects");
        let mut out = Vec::new();
        for (prefix, ftype) in fsutil::list_dir(&self.objects, &objdir)? {
            if !ftype.is_dir() || prefix.len() != 2 {
                continue;
            }
            let sub = open_dir_at(&self.objects, &prefix, &objdir.join(&prefix))?;
            for (name, _) in fsutil::list_dir(&sub, &objdir.join(&prefix))? {
                let Some((rest, suffix)) = name.split_once('.') else {
                    continue;
                };
                let Some(ty) = ObjectType::from_suffix(suffix) else {
                    continue;
                };
                if ty == ObjectType::File && suffix != self.mode.file_suffix() {
                    continue;
                }
                if let Ok(id) = ObjectId::from_hex(&format!("{prefix}{rest}")) {
                    out.push((id, ty));
                }
            }
        }
        Ok(out)
    }
}

/// Finds the repository as ostree does: `--repo`, else `$OSTREE_REPO`, else the current
/// directory when it holds a repo config with `objects/`, else `/ostree/repo`.
pub fn default_repo_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("OSTREE_REPO") {
        return PathBuf::from(p);
    }
    if Path::new("config").is_file() && Path::new("objects").is_dir() {
        return PathBuf::from(".");
    }
    PathBuf::from("/ostree/repo")
}

impl Repo {
    /// The path below the repo root, for messages.
    pub(crate) fn root_path(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// Checks that a stored config is consistent with this build (used by `fsck`).
    pub fn check_config(&self) -> Result<()> {
        self.config
            .get_bool("core", "fsync")
            .map_err(Error::Config)
            .map(|_| ())
    }
}

/// Whether the repository open at `root` is the running system's, `/ostree/repo` (on a booted
/// system a link into the physical sysroot), as ostree decides it: by device and inode.
fn is_system_repo(root: &OwnedFd) -> bool {
    let Ok(system) = rustix::fs::stat("/ostree/repo") else {
        return false;
    };
    rustix::fs::fstat(root).is_ok_and(|me| (me.st_dev, me.st_ino) == (system.st_dev, system.st_ino))
}

/// The `*.conf` key files of `dir` (none when it does not exist), sorted by name.
pub(crate) fn read_system_remotes(dir: &Path) -> Result<Vec<(PathBuf, KeyFile)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).at(&path)?;
            let keyfile = KeyFile::parse(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            Ok((path, keyfile))
        })
        .collect()
}
