//! `cat`: the content of files in a commit, concatenated, as ot-builtin-cat.c writes it.
//!
//! Symlinks are followed inside the commit as `OstreeRepoFile` follows them: the target is
//! resolved from the link's parent directory (absolute targets from the commit's root), name by
//! name, without `..` handling.

use super::ls::{Chain, open_content, read_root};
use super::util::open_repo;
use super::util::{usage_error, with_stdout};
use rostree_store::TreeEntry;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

/// Options of `cat`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The commit.
    commit: Option<String>,
    /// Paths of files inside the commit.
    paths: Vec<String>,
}

/// How many symlinks one path may traverse (ostree recurses without limit and crashes).
const MAX_LINKS: usize = 256;

/// `ostree cat`'s help, printed on stderr before a usage error.
const USAGE: &str = "\
Usage:\n\
\x20 ostree cat [OPTION…] COMMIT PATH...\n\
\n\
Concatenate contents of files\n\
\n\
Help Options:\n\
\x20 -h, --help        Show help options\n\
\n\
Application Options:\n\
\x20 --repo=PATH       Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)\n\
\x20 -v, --verbose     Print debug information during command processing\n\
\x20 --version         Print version information and exit\n\
\n\
\n\
";

/// Runs `cat`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let (Some(rev), false) = (args.commit.as_deref(), args.paths.is_empty()) else {
        return Err(usage_error(
            USAGE,
            "A COMMIT and at least one PATH argument are required",
        ));
    };
    let root = read_root(&repo, rev)?;
    with_stdout(|out| {
        for arg in &args.paths {
            let mut chain = Chain::default().resolve(arg);
            let mut links = 0;
            loop {
                let TreeEntry::File(id) = chain.lookup(&repo, root)? else {
                    anyhow::bail!("Can't open directory");
                };
                let obj = open_content(&repo, &id)?;
                if obj.header.is_symlink() {
                    links += 1;
                    anyhow::ensure!(links <= MAX_LINKS, "Too many levels of symbolic links");
                    chain = chain.parent().resolve(&obj.header.symlink_target);
                    continue;
                }
                let mut body = obj.body.take(obj.size);
                std::io::copy(&mut body, out)?;
                break;
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
