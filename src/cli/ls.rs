//! `ls`: list paths of a commit's tree, as ot-builtin-ls.c prints them.
//!
//! Paths are resolved as `OstreeRepoFile` resolves them: a chain of names from the root, one per
//! `/`-separated component, looked up without normalisation (`.`, `..` and empty components
//! are plain names that do not exist; a trailing `/` adds an empty name; `a//b` restarts at the
//! root). Printed paths are built from that chain.

use super::util::open_repo;
use super::util::{usage_error, with_stdout};
use rostree_store::format::{DirMeta, S_IFLNK, S_IFMT, S_IFREG, Xattrs};
use rostree_store::read::parse_dirtree;
use rostree_store::{Error, ObjectId, ObjectType, Repo, RepoMode, TreeEntry};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Options of `ls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Do not recurse into directory arguments.
    #[arg(short = 'd', long)]
    dironly: bool,
    /// Print directories recursively.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Print checksum.
    #[arg(short = 'C', long)]
    checksum: bool,
    /// Print extended attributes.
    #[arg(short = 'X', long)]
    xattrs: bool,
    /// Print only filenames, NUL separated.
    #[arg(long)]
    nul_filenames_only: bool,
    /// The commit.
    commit: Option<String>,
    /// Paths inside the commit (default `/`).
    paths: Vec<String>,
}

/// A path in a commit as `OstreeRepoFile` keeps it: the names from the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Chain(pub Vec<String>);

impl Chain {
    /// `ostree_repo_file_resolve_relative_path` from this file.
    pub fn resolve(&self, rel: &str) -> Chain {
        let mut chain = self.0.clone();
        let mut rel = rel;
        loop {
            if let Some(stripped) = rel.strip_prefix('/') {
                if rel == "/" {
                    chain.clear();
                    return Chain(chain);
                }
                let at_root = chain.is_empty();
                chain.clear();
                rel = stripped;
                if !at_root {
                    // Resolved again from the root, which may strip another `/`.
                    continue;
                }
            }
            match rel.find('/') {
                Some(i) => {
                    chain.push(rel[..i].to_string());
                    rel = &rel[i + 1..];
                }
                None => {
                    chain.push(rel.to_string());
                    return Chain(chain);
                }
            }
        }
    }

    /// The parent file (the root is its own parent).
    pub fn parent(&self) -> Chain {
        let mut c = self.0.clone();
        c.pop();
        Chain(c)
    }

    /// `ostree_repo_file_get_path`: `/` then the names joined by `/`.
    pub fn path(&self) -> String {
        if self.0.is_empty() {
            return "/".to_string();
        }
        let mut s = String::new();
        for n in &self.0 {
            s.push('/');
            s.push_str(n);
        }
        s
    }

    /// A child of this directory.
    pub fn child(&self, name: &str) -> Chain {
        let mut c = self.0.clone();
        c.push(name.to_string());
        Chain(c)
    }

    /// Looks the chain up from `root`, failing as `ostree_repo_file_ensure_resolved` does.
    pub fn lookup(&self, repo: &Repo, root: TreeEntry) -> anyhow::Result<TreeEntry> {
        let mut entry = root;
        for (i, name) in self.0.iter().enumerate() {
            let TreeEntry::Dir { tree, .. } = entry else {
                anyhow::bail!("Not a directory");
            };
            let bytes = repo.read_meta_bytes(&tree, ObjectType::DirTree)?;
            let dt = parse_dirtree(&tree, &bytes)?;
            entry = if let Some(f) = dt.file(name) {
                TreeEntry::File(f)
            } else if let Some((tree, meta)) = dt.dir(name) {
                // Resolving a directory loads its dirtree and dirmeta.
                repo.read_meta_bytes(&tree, ObjectType::DirTree)?;
                repo.read_meta_bytes(&meta, ObjectType::DirMeta)?;
                TreeEntry::Dir { tree, meta }
            } else {
                let missing = Chain(self.0[..=i].to_vec());
                anyhow::bail!("No such file or directory: {}", missing.path());
            };
        }
        Ok(entry)
    }
}

/// Opens a content object, failing as `ostree_repo_load_file` does when it is missing.
pub(super) fn open_content(
    repo: &Repo,
    id: &ObjectId,
) -> anyhow::Result<rostree_store::content::ContentObject> {
    repo.open_content(id).map_err(|e| content_error(repo, e))
}

/// ostree's wording of a missing content object; other errors unchanged.
pub(super) fn content_error(repo: &Repo, e: Error) -> anyhow::Error {
    match e {
        Error::MissingObject {
            id,
            ty: ObjectType::File,
        } => {
            if repo.mode() == RepoMode::Archive {
                anyhow::anyhow!("Couldn't find file object '{id}'")
            } else {
                anyhow::anyhow!("Opening content object {id}: Couldn't find file object '{id}'")
            }
        }
        e => e.into(),
    }
}

/// Resolves `rev` to its root tree, loading the root dirtree and dirmeta as
/// `ostree_repo_read_commit` does.
pub(super) fn read_root(repo: &Repo, rev: &str) -> anyhow::Result<TreeEntry> {
    let id = repo.resolve_rev(rev)?;
    let root = repo.read_commit(&id)?.root();
    if let TreeEntry::Dir { tree, meta } = root {
        repo.read_meta_bytes(&tree, ObjectType::DirTree)?;
        repo.read_meta_bytes(&meta, ObjectType::DirMeta)?;
    }
    Ok(root)
}

/// `ostree ls`'s help, printed on stderr before a usage error.
const USAGE: &str = "\
Usage:\n\
\x20 ostree ls [OPTION…] COMMIT [PATH...]\n\
\n\
List file paths\n\
\n\
Help Options:\n\
\x20 -h, --help               Show help options\n\
\n\
Application Options:\n\
\x20 --repo=PATH              Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)\n\
\x20 -d, --dironly            Do not recurse into directory arguments\n\
\x20 -R, --recursive          Print directories recursively\n\
\x20 -C, --checksum           Print checksum\n\
\x20 -X, --xattrs             Print extended attributes\n\
\x20 --nul-filenames-only     Print only filenames, NUL separated\n\
\x20 -v, --verbose            Print debug information during command processing\n\
\x20 --version                Print version information and exit\n\
\n\
\n\
";

/// Runs `ls`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let Some(rev) = args.commit.as_deref() else {
        return Err(usage_error(USAGE, "An COMMIT argument is required"));
    };
    let root = read_root(&repo, rev)?;
    let ls = Lister {
        repo: &repo,
        args: &args,
    };
    with_stdout(|out| {
        if args.paths.is_empty() {
            return ls.argument(out, root, "/");
        }
        for arg in &args.paths {
            ls.argument(out, root, arg)
                .map_err(|e| e.context(format!("Inspecting path '{arg}'")))?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

struct Lister<'a> {
    repo: &'a Repo,
    args: &'a Args,
}

/// What `ls` prints about an entry.
struct Info {
    type_char: char,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    target: Option<String>,
    xattrs: Xattrs,
}

impl Lister<'_> {
    fn argument(&self, out: &mut dyn Write, root: TreeEntry, arg: &str) -> anyhow::Result<()> {
        let chain = Chain::default().resolve(arg);
        let entry = chain.lookup(self.repo, root)?;
        self.print_one(out, &chain, entry)?;
        if let TreeEntry::Dir { tree, .. } = entry {
            if self.args.recursive {
                self.print_dir(out, &chain, &tree, true)?;
            } else if !self.args.dironly {
                self.print_dir(out, &chain, &tree, false)?;
            }
        }
        Ok(())
    }

    fn print_dir(
        &self,
        out: &mut dyn Write,
        chain: &Chain,
        tree: &ObjectId,
        recurse: bool,
    ) -> anyhow::Result<()> {
        let bytes = self.repo.read_meta_bytes(tree, ObjectType::DirTree)?;
        let dt = parse_dirtree(tree, &bytes)?;
        for (name, csum) in &dt.files {
            self.print_one(out, &chain.child(name), TreeEntry::File(*csum))?;
        }
        for (name, tree, meta) in &dt.dirs {
            let child = chain.child(name);
            let entry = TreeEntry::Dir {
                tree: *tree,
                meta: *meta,
            };
            self.print_one(out, &child, entry)?;
            if recurse {
                self.print_dir(out, &child, tree, true)?;
            }
        }
        Ok(())
    }

    fn info(&self, entry: TreeEntry) -> anyhow::Result<Info> {
        Ok(match entry {
            TreeEntry::Dir { meta, .. } => {
                let DirMeta {
                    uid,
                    gid,
                    mode,
                    xattrs,
                } = self.repo.read_dirmeta(&meta)?;
                Info {
                    type_char: 'd',
                    mode,
                    uid,
                    gid,
                    size: 0,
                    target: None,
                    xattrs,
                }
            }
            TreeEntry::File(id) => {
                let obj = open_content(self.repo, &id)?;
                let h = obj.header;
                let (type_char, size, target) = match h.mode & S_IFMT {
                    S_IFREG => ('-', obj.size, None),
                    S_IFLNK => ('l', 0, Some(h.symlink_target)),
                    _ => ('?', 0, None),
                };
                Info {
                    type_char,
                    mode: h.mode,
                    uid: h.uid,
                    gid: h.gid,
                    size,
                    target,
                    xattrs: h.xattrs,
                }
            }
        })
    }

    fn print_one(
        &self,
        out: &mut dyn Write,
        chain: &Chain,
        entry: TreeEntry,
    ) -> anyhow::Result<()> {
        let path = chain.path();
        // ostree queries every entry (loading content objects) before printing it.
        let info = self.info(entry)?;
        if self.args.nul_filenames_only {
            out.write_all(path.as_bytes())?;
            out.write_all(b"\0")?;
            return Ok(());
        }
        let mut line = format!(
            "{}0{:04o} {} {} {:6} ",
            info.type_char,
            info.mode & !S_IFMT,
            info.uid,
            info.gid,
            info.size
        );
        if self.args.checksum {
            match entry {
                TreeEntry::Dir { tree, meta } => {
                    // The root's "checksum" is its dirmeta checksum too.
                    line.push_str(&format!("{tree} {meta} "));
                }
                TreeEntry::File(id) => line.push_str(&format!("{id} ")),
            }
        }
        if self.args.xattrs {
            line.push_str("{ ");
            line.push_str(&info.xattrs.print());
            line.push_str(" } ");
        }
        line.push_str(&path);
        if let Some(target) = info.target {
            line.push_str(" -> ");
            line.push_str(&target);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(s: &str) -> String {
        Chain::default().resolve(s).path()
    }

    #[test]
    fn resolves_like_ostree_repo_file() {
        assert_eq!(resolve("/"), "/");
        assert_eq!(resolve("d"), "/d");
        assert_eq!(resolve("d/"), "/d/");
        assert_eq!(resolve("//d/"), "//d/");
        assert_eq!(resolve("d//e"), "/e");
        assert_eq!(resolve("d/e//g"), "/g");
        assert_eq!(resolve("a//"), "/");
        assert_eq!(resolve("a///b"), "/b");
        assert_eq!(resolve("./d"), "/./d");
        assert_eq!(resolve(""), "/");
        let c = Chain::default().resolve("/s/rel");
        assert_eq!(c.parent().resolve("../s/t").path(), "/s/../s/t");
        assert_eq!(c.parent().resolve("/etc/x").path(), "/etc/x");
    }
}
