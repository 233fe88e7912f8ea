//! The 3-way `/etc` merge of `ostree admin deploy`: the changes an admin made to the merge
//! deployment's `/etc` (compared with its pristine `/usr/etc`) are applied to the new
//! deployment's `/etc`, a fresh copy of the new `/usr/etc`. Local edits win over new defaults,
//! local deletions stay deleted, local additions are carried over. The old deployment is only
//! read. Xattrs are not compared (SELinux labels of `/etc` and `/usr/etc` always differ), but
//! copies keep them, with owner, mode and (files) timestamps.

use anyhow::{Context, bail};
use rostree_store::Repo;
use rostree_store::diff::{DiffOptions, DiffSide};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// What the merge changed, as ostree reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeCounts {
    /// Files or directories the admin modified.
    pub modified: usize,
    /// Files or directories the admin removed.
    pub removed: usize,
    /// Files or directories the admin added (a directory and each thing inside it).
    pub added: usize,
}

/// Merges the local changes of `merge_root`'s `/etc` into `new_root`'s `/etc`.
pub fn merge_etc(repo: &Repo, merge_root: &Path, new_root: &Path) -> anyhow::Result<MergeCounts> {
    let orig_etc = merge_root.join("usr/etc");
    let modified_etc = merge_root.join("etc");
    let new_etc = new_root.join("etc");
    let opts = DiffOptions {
        ignore_xattrs: true,
        ..DiffOptions::default()
    };
    let diff = repo
        .diff(
            &DiffSide::Dir(orig_etc.clone()),
            &DiffSide::Dir(modified_etc.clone()),
            &opts,
        )
        .context("While computing configuration diff")?;
    let counts = MergeCounts {
        modified: diff.modified.len(),
        removed: diff.removed.len(),
        added: diff.added.len(),
    };
    println!(
        "Copying /etc changes: {} modified, {} removed, {} added",
        counts.modified, counts.removed, counts.added
    );
    for item in &diff.removed {
        if !through_symlink(&new_etc, &item.path, "remove") {
            remove_all(&new_etc.join(&item.path))?;
        }
    }
    for item in diff.modified.iter().chain(&diff.added) {
        if !through_symlink(&new_etc, &item.path, "copy") {
            copy_modified_config_file(&modified_etc, &new_etc, &item.path)?;
        }
    }
    Ok(counts)
}

/// Whether reaching `rel` in the new `/etc` would go through a symlink the new commit put
/// there (say `/usr/etc/d -> ../share/d`, where the admin had a directory). ostree follows it
/// and writes wherever it points, even outside `/etc`; rostree leaves that change out, with a
/// warning, so the merge never writes outside the new `/etc`.
fn through_symlink(new_etc: &Path, rel: &Path, what: &str) -> bool {
    let mut prefix = std::path::PathBuf::new();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        prefix.push(part);
        match std::fs::symlink_metadata(new_etc.join(&prefix)) {
            Ok(m) if m.file_type().is_symlink() => {
                eprintln!(
                    "warning: /etc merge: not following symlink /etc/{} to {what} /etc/{}",
                    prefix.display(),
                    rel.display()
                );
                return true;
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// `rm -rf`, quiet when nothing is there.
pub fn remove_all(path: &Path) -> anyhow::Result<()> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => Err(e),
    };
    r.with_context(|| format!("rm -rf {}", path.display()))
}

/// Copies `rel` from the modified `/etc` over the new one, creating its parent directories
/// with the modified `/etc`'s attributes.
fn copy_modified_config_file(
    modified_etc: &Path,
    new_etc: &Path,
    rel: &Path,
) -> anyhow::Result<()> {
    let src = modified_etc.join(rel);
    let src_meta = std::fs::symlink_metadata(&src)
        .with_context(|| format!("Reading modified config file: {}", src.display()))?;
    if let Some(parent) = rel.parent()
        && !parent.as_os_str().is_empty()
    {
        ensure_dir_from_template(modified_etc, new_etc, parent)?;
    }
    let dest = new_etc.join(rel);
    match std::fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {
            if !src_meta.is_dir() {
                bail!(
                    "Modified config file newly defaults to directory '{}', cannot merge",
                    rel.display()
                );
            }
            // Its parent was copied recursively already, or it is a directory whose own
            // metadata changed: nothing to do, as in ostree.
            return Ok(());
        }
        Ok(_) => {
            std::fs::remove_file(&dest).with_context(|| format!("unlinkat({})", dest.display()))?
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("fstatat({})", dest.display())),
    }
    let ft = src_meta.file_type();
    if ft.is_dir() {
        copy_dir_recurse(&src, &dest)
    } else if ft.is_symlink() || ft.is_file() {
        copy_file(&src, &src_meta, &dest).with_context(|| format!("Copying {}", rel.display()))
    } else {
        // Sockets, fifos and devices are not carried over; ostree only tells the journal.
        Ok(())
    }
}

/// Creates `rel` (and missing parents) in `new_etc`, each taking owner, mode and xattrs from
/// the same directory in `modified_etc`.
fn ensure_dir_from_template(modified_etc: &Path, new_etc: &Path, rel: &Path) -> anyhow::Result<()> {
    let dest = new_etc.join(rel);
    if !dest.is_dir() {
        if let Some(parent) = rel.parent()
            && !parent.as_os_str().is_empty()
        {
            ensure_dir_from_template(modified_etc, new_etc, parent)?;
        }
        mkdir_private(&dest)?;
    }
    copy_dir_attributes(&modified_etc.join(rel), &dest)
}

fn mkdir_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("mkdirat({})", path.display())),
    }
}

fn copy_dir_attributes(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let xattrs = rostree_store::xattr::read_path(src)
        .map_err(std::io::Error::from)
        .with_context(|| format!("Copying attributes of {}", src.display()))?;
    rostree_store::xattr::set_path(dest, &xattrs)
        .map_err(std::io::Error::from)
        .with_context(|| format!("Copying attributes of {}", src.display()))?;
    let m = std::fs::symlink_metadata(src).with_context(|| src.display().to_string())?;
    std::os::unix::fs::lchown(dest, Some(m.uid()), Some(m.gid()))
        .with_context(|| format!("fchown({})", dest.display()))?;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(m.mode() & 0o7777))
        .with_context(|| format!("fchmod({})", dest.display()))
}

/// Copies a directory tree with owners, modes and xattrs, over what `dest` already holds.
pub fn copy_dir_recurse(src: &Path, dest: &Path) -> anyhow::Result<()> {
    mkdir_private(dest)?;
    copy_dir_attributes(src, dest)?;
    for entry in std::fs::read_dir(src).with_context(|| src.display().to_string())? {
        let entry = entry.with_context(|| src.display().to_string())?;
        let child = entry.path();
        let meta =
            std::fs::symlink_metadata(&child).with_context(|| child.display().to_string())?;
        let target = dest.join(entry.file_name());
        if meta.is_dir() {
            copy_dir_recurse(&child, &target)?;
        } else {
            if std::fs::symlink_metadata(&target).is_ok() {
                std::fs::remove_file(&target).with_context(|| target.display().to_string())?;
            }
            copy_file(&child, &meta, &target)
                .with_context(|| format!("Copying {}", entry.file_name().to_string_lossy()))?;
        }
    }
    Ok(())
}

/// Copies a regular file or symlink with owner, mode, xattrs and (files) timestamps.
fn copy_file(src: &Path, meta: &std::fs::Metadata, dest: &Path) -> anyhow::Result<()> {
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(src).with_context(|| src.display().to_string())?;
        std::os::unix::fs::symlink(&target, dest).with_context(|| dest.display().to_string())?;
    } else {
        std::fs::copy(src, dest).with_context(|| dest.display().to_string())?;
    }
    std::os::unix::fs::lchown(dest, Some(meta.uid()), Some(meta.gid()))
        .with_context(|| format!("fchown({})", dest.display()))?;
    let xattrs = rostree_store::xattr::read_path(src).map_err(std::io::Error::from)?;
    rostree_store::xattr::set_path(dest, &xattrs).map_err(std::io::Error::from)?;
    if meta.is_file() {
        // chown cleared setuid/setgid: set the mode last.
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .with_context(|| format!("fchmod({})", dest.display()))?;
        let ts = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: meta.atime(),
                tv_nsec: meta.atime_nsec() as _,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: meta.mtime(),
                tv_nsec: meta.mtime_nsec() as _,
            },
        };
        rustix::fs::utimensat(
            rustix::fs::CWD,
            dest,
            &ts,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .with_context(|| format!("futimens({})", dest.display()))?;
    }
    Ok(())
}
