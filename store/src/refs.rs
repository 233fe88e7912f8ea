//! Refs: names of commits under `refs/heads`, `refs/remotes/<remote>` and `refs/mirrors`,
//! and revision parsing (`rev-parse`).

use crate::fsutil;
use crate::repo::Repo;
use crate::{Error, IoContext, ObjectId, ObjectType, Result};
use rustix::fs::AtFlags;

/// Whether `name` is a valid ref: `/`-separated fragments of `[-._A-Za-z0-9]`, each starting
/// with neither `-` nor `.` (ostree's `OSTREE_REF_REGEXP`).
pub fn is_valid_ref_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('/').all(|frag| {
            !frag.is_empty()
                && !frag.starts_with(['-', '.'])
                && frag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        })
}

/// Splits a refspec `[REMOTE:]REF`.
pub fn parse_refspec(spec: &str) -> Result<(Option<&str>, &str)> {
    let (remote, name) = match spec.split_once(':') {
        Some((r, n)) => (Some(r), n),
        None => (None, spec),
    };
    if remote.is_some_and(|r| !is_valid_ref_name(r) || r.contains('/')) || !is_valid_ref_name(name)
    {
        return Err(Error::InvalidRefspec(spec.to_string()));
    }
    Ok((remote, name))
}

/// Parses the contents of a ref file: a checksum, trailing whitespace allowed.
pub fn parse_ref_file(bytes: &[u8]) -> std::result::Result<ObjectId, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    ObjectId::from_hex(text.trim_end()).map_err(|e| e.to_string())
}

/// One ref as stored: its target, or the ref it aliases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefTarget {
    /// A commit checksum.
    Commit(ObjectId),
    /// A symlink to another local ref (`refs --alias`).
    Alias(String),
}

impl Repo {
    fn refs_dir(remote: Option<&str>) -> String {
        match remote {
            None => "refs/heads".to_string(),
            Some(r) => format!("refs/remotes/{r}"),
        }
    }

    /// Reads one ref; `Ok(None)` when it does not exist. Aliases are followed.
    pub fn read_ref(&self, remote: Option<&str>, name: &str) -> Result<Option<ObjectId>> {
        if remote.is_none()
            && let Some(target) = self.read_alias(None, name)?
        {
            return self.read_ref(None, &target);
        }
        let rel = format!("{}/{name}", Self::refs_dir(remote));
        let bytes = match fsutil::read_file_at(&self.root, &rel, &self.root_path(&rel)) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Ok(None),
            // A folder of refs (`foo` when `foo/bar` exists) is not a ref.
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EISDIR) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        parse_ref_file(&bytes)
            .map(Some)
            .map_err(|why| Error::Config(format!("ref {rel}: {why}")))
    }

    fn read_alias(&self, remote: Option<&str>, name: &str) -> Result<Option<String>> {
        let rel = format!("{}/{name}", Self::refs_dir(remote));
        match rustix::fs::readlinkat(&self.root, &rel, Vec::new()) {
            Ok(target) => {
                let t = target.to_string_lossy().into_owned();
                // Alias symlinks are relative to the ref's folder; resolve to a ref name.
                let base = std::path::Path::new(name).parent().map(|p| p.to_path_buf());
                let joined = match base {
                    Some(b) if !b.as_os_str().is_empty() => b.join(&t),
                    _ => std::path::PathBuf::from(&t),
                };
                Ok(Some(normalize(&joined.to_string_lossy())))
            }
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::INVAL) => Ok(None),
            Err(e) => Err(e).at(self.root_path(&rel)),
        }
    }

    /// Lists refs: local ones (`remote = None`) or one remote's, with their targets, in
    /// directory order (depth first), which is what ostree's listings are built from.
    pub fn list_refs(&self, remote: Option<&str>) -> Result<Vec<(String, RefTarget)>> {
        let mut out = Vec::new();
        let dir = Self::refs_dir(remote);
        self.collect_refs(&dir, "", &mut out)?;
        Ok(out)
    }

    /// Lists all remote refs as `remote:ref` names, in directory order.
    pub fn list_remote_refs(&self) -> Result<Vec<(String, ObjectId)>> {
        let mut out = Vec::new();
        let dir = "refs/remotes";
        let fd = match fsutil::open_dir_at(&self.root, dir, &self.root_path(dir)) {
            Ok(fd) => fd,
            Err(_) => return Ok(out),
        };
        for (remote, ft) in fsutil::list_dir(&fd, &self.root_path(dir))? {
            if !ft.is_dir() {
                continue;
            }
            for (name, target) in self.list_refs(Some(&remote))? {
                if let RefTarget::Commit(id) = target {
                    out.push((format!("{remote}:{name}"), id));
                }
            }
        }
        Ok(out)
    }

    fn collect_refs(
        &self,
        dir: &str,
        prefix: &str,
        out: &mut Vec<(String, RefTarget)>,
    ) -> Result<()> {
        let rel = if prefix.is_empty() {
            dir.to_string()
        } else {
            format!("{dir}/{prefix}")
        };
        let fd = match rustix::fs::openat(
            &self.root,
            &rel,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e).at(self.root_path(&rel)),
        };
        for (name, ft) in fsutil::list_dir(&fd, &self.root_path(&rel))? {
            let full = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if ft.is_dir() {
                self.collect_refs(dir, &full, out)?;
            } else if ft.is_symlink() {
                let remote = dir.strip_prefix("refs/remotes/");
                if let Some(target) = self.read_alias(remote, &full)? {
                    out.push((full, RefTarget::Alias(target)));
                }
            } else if !name.starts_with('.') {
                let remote = dir.strip_prefix("refs/remotes/");
                if let Some(id) = self.read_ref(remote, &full)? {
                    out.push((full, RefTarget::Commit(id)));
                }
            }
        }
        Ok(())
    }

    /// Points a ref at `target`, or deletes it when `None`. Atomic: temp file + rename.
    pub fn write_ref(
        &self,
        remote: Option<&str>,
        name: &str,
        target: Option<&ObjectId>,
    ) -> Result<()> {
        if !is_valid_ref_name(name) {
            return Err(Error::InvalidRefName(name.to_string()));
        }
        let dir = Self::refs_dir(remote);
        let rel = format!("{dir}/{name}");
        let (parent, leaf) = match rel.rsplit_once('/') {
            Some(p) => p,
            None => (".", rel.as_str()),
        };
        match target {
            Some(id) => {
                let mut built = String::new();
                for part in parent.split('/') {
                    if !built.is_empty() {
                        built.push('/');
                    }
                    built.push_str(part);
                    fsutil::ensure_dir_at(&self.root, &built, &self.root_path(&built))?;
                }
                let pfd = fsutil::open_dir_at(&self.root, parent, &self.root_path(parent))?;
                let text = format!("{id}\n");
                fsutil::replace_file_at(
                    &pfd,
                    leaf,
                    text.as_bytes(),
                    0o644,
                    self.fsync_enabled(),
                    &self.root_path(&rel),
                )
            }
            None => match rustix::fs::unlinkat(&self.root, &rel, AtFlags::empty()) {
                Ok(()) => Ok(()),
                Err(rustix::io::Errno::NOENT) => Err(Error::RefNotFound(name.to_string())),
                Err(e) => Err(e).at(self.root_path(&rel)),
            },
        }
    }

    /// Creates `name` as a symlink alias of the local ref `target`.
    pub fn write_alias(&self, name: &str, target: &str) -> Result<()> {
        if !is_valid_ref_name(name) || !is_valid_ref_name(target) {
            return Err(Error::InvalidRefName(name.to_string()));
        }
        let rel = format!("refs/heads/{name}");
        let depth = name.matches('/').count();
        let link = format!("{}{target}", "../".repeat(depth));
        if let Some((parent, _)) = rel.rsplit_once('/') {
            let mut built = String::new();
            for part in parent.split('/') {
                if !built.is_empty() {
                    built.push('/');
                }
                built.push_str(part);
                fsutil::ensure_dir_at(&self.root, &built, &self.root_path(&built))?;
            }
        }
        rustix::fs::symlinkat(link.as_str(), &self.root, &rel).at(self.root_path(&rel))
    }

    /// Resolves a revision: full checksum, unique checksum prefix, `[REMOTE:]REF`, `REV^`.
    pub fn resolve_rev(&self, rev: &str) -> Result<ObjectId> {
        self.resolve_rev_opt(rev)?
            .ok_or_else(|| Error::RefNotFound(rev.to_string()))
    }

    /// Like [`Repo::resolve_rev`], `Ok(None)` when nothing matches. Follows ostree's order:
    /// full checksum (unchecked), unique commit prefix, `REV^`, then refs: `refs/heads/REF`,
    /// `refs/remotes/REF`, `refs/remotes/*/REF`.
    pub fn resolve_rev_opt(&self, rev: &str) -> Result<Option<ObjectId>> {
        if let Ok(id) = ObjectId::from_hex(rev) {
            return Ok(Some(id));
        }
        if let Some(id) = self.resolve_partial_checksum(rev)? {
            return Ok(Some(id));
        }
        if let Some(base) = rev.strip_suffix('^') {
            let id = self.resolve_rev(base)?;
            let commit = self.read_commit(&id)?;
            return match commit.parent {
                Some(p) => Ok(Some(p)),
                None => Err(Error::NoParent(id)),
            };
        }
        let (remote, name) = parse_refspec(rev)?;
        if let Some(id) = self.read_ref(remote, name)? {
            return Ok(Some(id));
        }
        if remote.is_none() {
            if let Some((r, n)) = name.split_once('/')
                && let Some(id) = self.read_ref(Some(r), n)?
            {
                return Ok(Some(id));
            }
            let dir = "refs/remotes";
            if let Ok(fd) = fsutil::open_dir_at(&self.root, dir, &self.root_path(dir)) {
                for (remote, ft) in fsutil::list_dir(&fd, &self.root_path(dir))? {
                    if ft.is_dir()
                        && let Some(id) = self.read_ref(Some(&remote), name)?
                    {
                        return Ok(Some(id));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A unique commit whose checksum starts with `prefix` (hex, shorter than 64).
    fn resolve_partial_checksum(&self, prefix: &str) -> Result<Option<ObjectId>> {
        if prefix.len() > 64
            || !prefix
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Ok(None);
        }
        if prefix.len() < 2 {
            // Too short to name one objects/ folder: search them all.
            let mut found = None;
            for (id, ty) in self.list_objects()? {
                if ty == ObjectType::Commit && id.to_hex().starts_with(prefix) {
                    if found.is_some() {
                        return Err(Error::AmbiguousPrefix(prefix.to_string()));
                    }
                    found = Some(id);
                }
            }
            return Ok(found);
        }
        let (dir, rest) = prefix.split_at(2);
        let path = self.root_path(&format!("objects/{dir}"));
        let fd = match rustix::fs::openat(
            &self.objects,
            dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e).at(path),
        };
        let suffix = format!(".{}", ObjectType::Commit.suffix());
        let mut found = None;
        for (name, _) in fsutil::list_dir(&fd, &path)? {
            if let Some(hex) = name.strip_suffix(&suffix)
                && hex.starts_with(rest)
            {
                if found.is_some() {
                    return Err(Error::AmbiguousPrefix(prefix.to_string()));
                }
                found = Some(ObjectId::from_hex(&format!("{dir}{hex}"))?);
            }
        }
        Ok(found)
    }
}

fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_names() {
        assert!(is_valid_ref_name("foo"));
        assert!(is_valid_ref_name("exampleos/x86_64/stable"));
        assert!(!is_valid_ref_name("a//b"));
        assert!(!is_valid_ref_name("a b"));
        assert!(!is_valid_ref_name(""));
        assert_eq!(
            parse_refspec("origin:a/b").unwrap(),
            (Some("origin"), "a/b")
        );
    }
}
