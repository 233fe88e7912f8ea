//! `pull --subpath=PATH`: which files and directories of a commit's tree a pull with
//! subpaths takes, as ostree's `matches_pull_dir` decides. Paths are absolute (`/usr/bin`);
//! a directory on the way to a subpath is taken (its dirtree and dirmeta, not its other
//! entries), and everything below a subpath is.

/// The subpaths a pull is limited to; empty means the whole tree.
#[derive(Clone, Debug, Default)]
pub struct Subpaths(Vec<String>);

impl Subpaths {
    /// Subpaths from `--subpath` arguments; each must be absolute.
    pub fn new(paths: &[String]) -> crate::Result<Subpaths> {
        for p in paths {
            if !p.starts_with('/') {
                return Err(crate::Error::Pull(format!(
                    "Invalid subpath '{p}': must start with '/'"
                )));
            }
        }
        Ok(Subpaths(paths.to_vec()))
    }

    /// Whether the pull takes every object of the commit.
    pub fn is_whole_tree(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the entry at `path` (a directory when `is_dir`) is taken.
    pub fn matches(&self, path: &str, is_dir: bool) -> bool {
        self.0.is_empty() || self.0.iter().any(|sp| matches_pull_dir(path, sp, is_dir))
    }

    /// Whether everything below the directory at `path` is taken.
    pub fn covers(&self, path: &str) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|sp| {
                path.strip_prefix(sp.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }
}

/// ostree's rule: `file` matches `pull_dir` when they are equal, when `file` is a directory
/// whose path leads to `pull_dir`, or when `file` lies below `pull_dir`.
fn matches_pull_dir(file: &str, pull_dir: &str, file_is_dir: bool) -> bool {
    if let Some(rest) = pull_dir.strip_prefix(file) {
        return rest.is_empty() || (rest.starts_with('/') && file_is_dir);
    }
    file.strip_prefix(pull_dir)
        .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_as_ostree_does() {
        let s = Subpaths::new(&["/usr/share".into()]).unwrap();
        assert!(s.matches("/usr", true));
        assert!(!s.matches("/usr", false));
        assert!(s.matches("/usr/share", false));
        assert!(s.matches("/usr/share/doc/x", false));
        assert!(!s.matches("/usr/sharex", true));
        assert!(!s.matches("/usr/lib", true));
        assert!(!s.matches("/etc", true));
        assert!(s.covers("/usr/share") && s.covers("/usr/share/doc"));
        assert!(!s.covers("/usr") && !s.covers("/usr/sharex"));
        assert!(Subpaths::default().matches("/anything", false));
        assert!(Subpaths::new(&["usr".into()]).is_err());
    }
}
