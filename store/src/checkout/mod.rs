//! Checking out a tree (or one path inside it) into the filesystem, as `ostree checkout` 2022.7.
//!
//! Semantics follow `ostree-repo-checkout.c`:
//! * Regular files are hardlinked from `objects/` when the repo and checkout modes agree on
//!   ownership: a `bare` repo in normal mode, or a `bare-user`/`bare-user-only` repo in user mode
//!   (`bare-user-only` always checks out in user mode). Symlinks of user-mode repos are
//!   recreated, symlinks of `bare` repos are linked too. Zero-sized files are always copied, and in
//!   user mode so are files their owner cannot read (with `u+r` added).
//! * `archive` repos copy, except in user mode with the uncompressed cache (what `ostree checkout`
//!   does without any `checkout_at` option): objects are decompressed once into
//!   `uncompressed-objects-cache/` and hardlinked from there.
//! * Copies get the object's owner and xattrs (not in user mode) and mode (user mode strips
//!   setuid/setgid); their mtime is the checkout time.
//! * Directories are created 0700, filled, then get their mode, owner (not in user mode) and an
//!   mtime of 0 (not with `force_copy`). Directories that already existed (union modes) are left
//!   alone.
//!
//! Safety: everything below the destination is created with `*at` calls relative to directory
//! descriptors; existing directories are opened with `O_NOFOLLOW`, files are created with
//! `O_EXCL`, links never follow, and replacing (`--union`) renames over the entry itself, so a
//! symlink planted in the destination is never written through (ostree follows a symlink found
//! where the tree has a directory; rostree refuses it). Every name comes from a validated dirtree
//! (no `/`, `.`, `..` or empty names), so nothing escapes the destination. Depth is bounded.
//!
//! Speed: a directory is created, then its files and subdirectories are checked out in parallel
//! (rayon), then its metadata is set; bare copies use `copy_file_range`; a file costs only the
//! syscalls its result needs (a stat and a link, or a stat, two opens and a copy).
//!
//! Layout: this file has the options, the entry point and subpath resolution; `ctx` the
//! per-checkout state and object reads; `dir` directories; `file` content objects by repo
//! mode (and archive's uncompressed cache); `write` creating one entry (hardlink, symlink,
//! regular file) and resolving an existing one per [`OverwriteMode`]; `fsops` content copies
//! and small fd helpers.

mod ctx;
mod dir;
mod file;
mod fsops;
mod write;

use crate::fsutil::openat_dir;
use crate::repo::Repo;
use crate::{Error, IoContext, Result, TreeEntry};
use ctx::{Ctx, DirPath, Slot};
use rustix::fs::Mode;
use rustix::io::Errno;
use std::os::fd::AsFd;
use std::path::Path;

/// What to do with entries that already exist in the destination.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverwriteMode {
    /// Fail on any existing entry (the default).
    #[default]
    None,
    /// `--union`: keep existing directories, replace existing files.
    UnionFiles,
    /// `--union-add`: keep existing files and directories, add only what is missing.
    AddFiles,
    /// `--union-identical`: like `UnionFiles`, but an existing file must have the same content.
    /// Requires `require_hardlinks`.
    UnionIdentical,
}

/// Options of a checkout, mirroring `OstreeRepoCheckoutAtOptions`.
#[derive(Clone, Debug)]
pub struct CheckoutOptions {
    /// `-U`: do not change ownership or set xattrs; strip setuid/setgid from copies.
    /// Forced on for `bare-user-only` repos.
    pub user_mode: bool,
    /// How to treat existing entries.
    pub overwrite: OverwriteMode,
    /// The path inside the tree to check out, resolved as ostree does (default `/`).
    pub subpath: String,
    /// Succeed without doing anything when `subpath` does not exist.
    pub allow_noent: bool,
    /// `-C`: never hardlink.
    pub force_copy: bool,
    /// `-H`: fail instead of copying when a file cannot be hardlinked.
    pub require_hardlinks: bool,
    /// `-M`: directory modes are masked with 0775 (always so for `bare-user-only` repos).
    pub bareuseronly_dirs: bool,
    /// Use the repository's uncompressed object cache for `archive` repos in user mode.
    pub uncompressed_cache: bool,
    /// Sync files written into the uncompressed cache (also subject to `core.fsync`).
    pub fsync: bool,
}

impl Default for CheckoutOptions {
    fn default() -> Self {
        CheckoutOptions {
            user_mode: false,
            overwrite: OverwriteMode::None,
            subpath: "/".into(),
            allow_noent: false,
            force_copy: false,
            require_hardlinks: false,
            bareuseronly_dirs: false,
            uncompressed_cache: false,
            fsync: true,
        }
    }
}

/// Directories nested deeper than this are refused rather than risking the stack.
pub const MAX_DEPTH: usize = 8192;
/// Stack of the checkout threads: room for [`MAX_DEPTH`] levels of recursion (only touched
/// pages are ever allocated).
const STACK_SIZE: usize = 256 << 20;

/// Checks out `source` (a commit's root, a directory, or a file) at `dest_dir`.
///
/// `opts.subpath` is resolved inside `source` first. A directory becomes `dest_dir` itself
/// (created; it must not exist unless a union mode is used). A file is put inside `dest_dir`,
/// which is created (mode 0700) if needed, under the name it has in its directory (a `source`
/// that is itself a file is named by its checksum).
pub fn checkout(
    repo: &Repo,
    source: TreeEntry,
    dest_dir: &Path,
    opts: &CheckoutOptions,
) -> Result<()> {
    if opts.force_copy && opts.require_hardlinks {
        return Err(Error::invalid(
            dest_dir,
            "Cannot specify both --require-hardlinks and --force-copy",
        ));
    }
    if opts.overwrite == OverwriteMode::UnionIdentical && !opts.require_hardlinks {
        return Err(Error::invalid(
            dest_dir,
            "--union-identical requires --require-hardlinks",
        ));
    }
    let (entry, name) = match resolve_subpath(repo, source, &opts.subpath) {
        Ok(found) => found,
        Err(Error::NoSuchPath(_)) if opts.allow_noent => return Ok(()),
        Err(e) => return Err(e),
    };
    let ctx = Ctx::new(repo, opts, dest_dir, matches!(entry, TreeEntry::Dir { .. }))?;
    let top = DirPath {
        parent: None,
        name: dest_dir,
    };
    match entry {
        TreeEntry::Dir { tree, meta } => {
            let run = || ctx.checkout_dir(rustix::fs::CWD, &top, &tree, &meta, 0);
            match rayon::ThreadPoolBuilder::new()
                .stack_size(STACK_SIZE)
                .thread_name(|i| format!("checkout-{i}"))
                .build()
            {
                Ok(pool) => pool.install(run),
                // No room for big stacks: the global pool still works for common depths.
                Err(_) => run(),
            }
        }
        TreeEntry::File(id) => {
            let name = name.unwrap_or_else(|| id.to_hex());
            let owned;
            let dfd = if dest_dir == Path::new(".") {
                rustix::fs::CWD
            } else {
                let mode = Mode::from_raw_mode(0o700);
                match rustix::fs::mkdirat(rustix::fs::CWD, dest_dir, mode) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e).at(dest_dir),
                }
                owned = openat_dir(rustix::fs::CWD, dest_dir, true).at(dest_dir)?;
                owned.as_fd()
            };
            let slot = Slot {
                dfd,
                name: &name,
                dir: &top,
            };
            ctx.checkout_file(&slot, &id)
        }
    }
}

/// Resolves `subpath` inside `root` exactly as ostree's `OstreeRepoFile` does: a leading `/` is
/// optional, `//` restarts from the root, a trailing `/` names an empty (missing) child, `.` and
/// `..` are ordinary (missing) names. Returns the entry and, unless it is `root` itself, its name.
pub fn resolve_subpath(
    repo: &Repo,
    root: TreeEntry,
    subpath: &str,
) -> Result<(TreeEntry, Option<String>)> {
    let chain = subpath_chain(subpath);
    let mut entry = root;
    let mut shown = String::new();
    for name in &chain {
        let TreeEntry::Dir { tree, .. } = entry else {
            return Err(Error::NotADirectory(shown));
        };
        shown.push('/');
        shown.push_str(name);
        entry = match repo.dir_child(&tree, name)? {
            Some(child) => child,
            None => return Err(Error::NoSuchPath(shown)),
        };
    }
    Ok((entry, chain.last().map(|s| s.to_string())))
}

/// The child names ostree's `ostree_repo_file_resolve_relative_path` walks for `subpath`.
fn subpath_chain(subpath: &str) -> Vec<&str> {
    let mut chain: Vec<&str> = Vec::new();
    let mut rel = subpath;
    loop {
        if let Some(rest) = rel.strip_prefix('/') {
            if rest.is_empty() {
                chain.clear();
                return chain;
            }
            if !chain.is_empty() {
                // An absolute path below a child restarts from the root, checked again.
                chain.clear();
                rel = rest;
                continue;
            }
            rel = rest;
        }
        match rel.find('/') {
            Some(pos) => {
                chain.push(&rel[..pos]);
                rel = &rel[pos + 1..];
            }
            None => {
                chain.push(rel);
                return chain;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::subpath_chain;

    #[test]
    fn subpaths_resolve_like_ostree() {
        let root: Vec<&str> = Vec::new();
        assert_eq!(subpath_chain("/"), root);
        assert_eq!(subpath_chain("/sub"), vec!["sub"]);
        assert_eq!(subpath_chain("sub"), vec!["sub"]);
        assert_eq!(subpath_chain("/sub/a"), vec!["sub", "a"]);
        assert_eq!(subpath_chain(""), vec![""]);
        assert_eq!(subpath_chain("."), vec!["."]);
        assert_eq!(subpath_chain("sub/"), vec!["sub", ""]);
        assert_eq!(subpath_chain("//sub"), vec!["", "sub"]);
        assert_eq!(subpath_chain("sub//deep"), vec!["deep"]);
        assert_eq!(subpath_chain("/a/b/"), vec!["a", "b", ""]);
        assert_eq!(subpath_chain("/sub/../x"), vec!["sub", "..", "x"]);
    }
}
