//! Directory helpers the sysroot code shares: listing a directory that may be absent, and
//! `mkdir -p` with a mode.

use anyhow::Context;
use std::fs::DirEntry;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// The entries of `dir` in the order the filesystem lists them (ostree's choices, such as
/// which kernel directory wins, follow that order), or none where `dir` does not exist. Other
/// errors name the directory.
pub fn entries_if_exists(dir: &Path) -> anyhow::Result<Vec<DirEntry>> {
    let iter = match std::fs::read_dir(dir) {
        Ok(it) => it,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("opendir({})", dir.display())),
    };
    iter.map(|e| e.with_context(|| format!("readdir({})", dir.display())))
        .collect()
}

/// The directories among [`entries_if_exists`] (symlinks to directories are not followed).
pub fn subdirectories_if_exist(dir: &Path) -> anyhow::Result<Vec<DirEntry>> {
    let mut entries = entries_if_exists(dir)?;
    entries.retain(|e| e.file_type().is_ok_and(|t| t.is_dir()));
    Ok(entries)
}

/// `mkdir -p` with `mode` for the created directories (the umask applies, as in ostree).
pub fn mkdir_p(path: &Path, mode: u32) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .with_context(|| format!("mkdir({})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_directory_has_no_entries_and_files_are_not_subdirectories() {
        let scratch = tempfile::tempdir().unwrap();
        let tmp = scratch.path();
        assert!(entries_if_exists(&tmp.join("absent")).unwrap().is_empty());
        mkdir_p(&tmp.join("a/b"), 0o755).unwrap();
        std::fs::write(tmp.join("file"), b"").unwrap();
        std::os::unix::fs::symlink("a", tmp.join("link")).unwrap();
        assert_eq!(entries_if_exists(tmp).unwrap().len(), 3);
        let dirs: Vec<_> = subdirectories_if_exist(tmp)
            .unwrap()
            .iter()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(dirs, ["a"]);
        let err = entries_if_exists(&tmp.join("file")).unwrap_err();
        assert!(format!("{err:#}").starts_with("opendir("), "{err:#}");
    }
}
