//! `diff`: compare two commits, or a commit and a directory, as ot-builtin-diff.c does.

use super::ls::{content_error, read_root};
use super::util::{format_size, open_repo};
use super::util::{usage_error, with_stdout};
use rostree_store::diff::{DiffOptions, DiffSide, gio_message};
use rostree_store::read::parse_dirtree;
use rostree_store::{Error, ObjectId, ObjectType, Repo};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `diff`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print various statistics.
    #[arg(long)]
    stats: bool,
    /// Print filesystem diff.
    #[arg(long)]
    fs_diff: bool,
    /// Skip output of extended attributes.
    #[arg(long)]
    no_xattrs: bool,
    /// Use file ownership user id for local files.
    #[arg(long, value_name = "UID", allow_negative_numbers = true)]
    owner_uid: Option<i32>,
    /// Use file ownership group id for local files.
    #[arg(long, value_name = "GID", allow_negative_numbers = true)]
    owner_gid: Option<i32>,
    /// `REV_OR_DIR [REV_OR_DIR]`: with one, compares `REV^` with `REV`. Arguments starting
    /// with `/` or `./` are directories.
    args: Vec<String>,
}

/// `ostree diff`'s help, printed on stderr before a usage error.
const USAGE: &str = "\
Usage:\n\
\x20 ostree diff [OPTION…] REV_OR_DIR REV_OR_DIR\n\
\n\
Compare directory TARGETDIR against revision REV\n\
\n\
Help Options:\n\
\x20 -h, --help          Show help options\n\
\n\
Application Options:\n\
\x20 --repo=PATH         Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)\n\
\x20 --stats             Print various statistics\n\
\x20 --fs-diff           Print filesystem diff\n\
\x20 --no-xattrs         Skip output of extended attributes\n\
\x20 --owner-uid=UID     Use file ownership user id for local files\n\
\x20 --owner-gid=GID     Use file ownership group id for local files\n\
\x20 -v, --verbose       Print debug information during command processing\n\
\x20 --version           Print version information and exit\n\
\n\
\n\
";

/// Runs `diff`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let (src, target) = match args.args.as_slice() {
        [] => return Err(usage_error(USAGE, "REV must be specified")),
        [one] => (format!("{one}^"), one.clone()),
        [a, b, ..] => (a.clone(), b.clone()),
    };
    let fs_diff = args.fs_diff || !args.stats;
    with_stdout(|out| {
        if fs_diff {
            let a = side(&repo, &src)?;
            let b = side(&repo, &target)?;
            let opts = DiffOptions {
                ignore_xattrs: args.no_xattrs,
                owner_uid: args.owner_uid.filter(|&u| u >= 0).map(|u| u as u32),
                owner_gid: args.owner_gid.filter(|&g| g >= 0).map(|g| g as u32),
            };
            let d = repo
                .diff(&a, &b, &opts)
                .map_err(|e| match gio_message(&e) {
                    Some(m) => anyhow::anyhow!("{m}"),
                    None => content_error(&repo, e),
                })?;
            for (c, list) in [('M', &d.modified), ('D', &d.removed), ('A', &d.added)] {
                for p in list {
                    write!(out, "{c}    ")?;
                    out.write_all(&p.display_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
        }
        if args.stats {
            stats(out, &repo, &src, &target)?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `parse_file_or_commit`: a directory when the argument starts with `/` or `./`.
fn side(repo: &Repo, arg: &str) -> anyhow::Result<DiffSide> {
    if arg.starts_with('/') || arg.starts_with("./") {
        return Ok(DiffSide::Dir(PathBuf::from(arg)));
    }
    Ok(DiffSide::Commit(read_root(repo, arg)?))
}

/// `--stats`: objects reachable from each commit (not its parents), and those in common.
fn stats(out: &mut dyn Write, repo: &Repo, src: &str, target: &str) -> anyhow::Result<()> {
    let a = repo.resolve_rev(src)?;
    let b = repo.resolve_rev(target)?;
    let ra = reachable(repo, &a)?;
    let rb = reachable(repo, &b)?;
    writeln!(out, "[A] Object Count: {}", ra.len())?;
    writeln!(out, "[B] Object Count: {}", rb.len())?;
    let common: Vec<_> = ra.intersection(&rb).collect();
    writeln!(out, "Common Object Count: {}", common.len())?;
    let mut total = 0u64;
    for (id, ty) in common {
        let path = repo.object_path(id, *ty);
        total += std::fs::symlink_metadata(&path)
            .map_err(|e| Error::io(&path, e))?
            .len();
    }
    writeln!(out, "Common Object Size: {}", format_size(total))?;
    Ok(())
}

/// `ostree_repo_traverse_commit (maxdepth 0)`: the commit and its whole tree; nothing when
/// the commit is absent.
fn reachable(repo: &Repo, commit: &ObjectId) -> anyhow::Result<HashSet<(ObjectId, ObjectType)>> {
    let mut set = HashSet::new();
    if !repo.has_object(commit, ObjectType::Commit)? {
        return Ok(set);
    }
    let c = repo.read_commit(commit)?;
    let partial = repo.is_commit_partial(commit)?;
    set.insert((*commit, ObjectType::Commit));
    let mut stack = vec![(c.root_tree, c.root_meta)];
    set.insert((c.root_meta, ObjectType::DirMeta));
    set.insert((c.root_tree, ObjectType::DirTree));
    while let Some((tree, _)) = stack.pop() {
        let bytes = match repo.read_meta_bytes(&tree, ObjectType::DirTree) {
            Ok(b) => b,
            Err(Error::MissingObject { .. }) if partial => continue,
            Err(e) => return Err(e.into()),
        };
        let dt = parse_dirtree(&tree, &bytes)?;
        for (_, f) in &dt.files {
            set.insert((*f, ObjectType::File));
        }
        for (_, t, m) in &dt.dirs {
            set.insert((*m, ObjectType::DirMeta));
            if set.insert((*t, ObjectType::DirTree)) {
                stack.push((*t, *m));
            }
        }
    }
    Ok(set)
}
