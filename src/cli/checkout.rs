//! `checkout`: check out a commit into a filesystem tree, as `ostree checkout` 2022.7.

use super::util::open_repo;
use anyhow::bail;
use rostree_store::checkout::{CheckoutOptions, OverwriteMode, checkout};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Options of `checkout`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The commit or ref to check out.
    #[arg(value_name = "COMMIT")]
    commit: Option<String>,
    /// Where to check it out (default: a directory named like COMMIT).
    #[arg(value_name = "DESTINATION")]
    destination: Option<PathBuf>,
    /// Extra arguments, ignored as ostree ignores them.
    #[arg(hide = true)]
    extra: Vec<String>,
    /// Do not change file ownership or initialize extended attributes.
    #[arg(short = 'U', long)]
    user_mode: bool,
    /// Do not update or use the internal repository uncompressed object cache.
    #[arg(long)]
    disable_cache: bool,
    /// Checkout sub-directory PATH.
    #[arg(long, value_name = "PATH")]
    subpath: Option<String>,
    /// Keep existing directories, overwrite existing files.
    #[arg(long)]
    union: bool,
    /// Keep existing files/directories, only add new.
    #[arg(long)]
    union_add: bool,
    /// When layering checkouts, error out if a file would be replaced with a different
    /// version, but add new files and directories.
    #[arg(long)]
    union_identical: bool,
    /// Do nothing if specified path does not exist.
    #[arg(long)]
    allow_noent: bool,
    /// Specify how to invoke fsync().
    #[arg(long, value_name = "POLICY")]
    fsync: Option<String>,
    /// Do not fall back to full copies if hardlinking fails.
    #[arg(short = 'H', long)]
    require_hardlinks: bool,
    /// Never hardlink (but may reflink if available).
    #[arg(short = 'C', long)]
    force_copy: bool,
    /// Do not hardlink zero-sized files (they never are).
    #[arg(short = 'z', long, hide = true)]
    force_copy_zerosized: bool,
    /// Suppress mode bits outside of 0775 for directories (suid, world writable, etc.).
    #[arg(short = 'M', long)]
    bareuseronly_dirs: bool,
}

/// glib's `ot_parse_boolean`.
fn parse_boolean(value: &str) -> anyhow::Result<bool> {
    let v = value.to_ascii_lowercase();
    match v.as_str() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "none" => Ok(false),
        _ => bail!("Invalid boolean argument '{value}'"),
    }
}

/// `g_canonicalize_filename(path, g_get_current_dir())`: absolute, with `.`, `..` and repeated
/// slashes removed lexically (exactly two leading slashes are kept, as POSIX allows).
fn glib_canonical(path: &Path) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let mut full = Vec::new();
    if !bytes.starts_with(b"/") {
        full.extend_from_slice(glib_current_dir().as_os_str().as_bytes());
        full.push(b'/');
    }
    full.extend_from_slice(bytes);
    let leading = full.iter().take_while(|&&b| b == b'/').count();
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in full.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out: Vec<u8> = if leading == 2 {
        b"/".to_vec()
    } else {
        Vec::new()
    };
    for p in &parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if parts.is_empty() {
        out.push(b'/');
    }
    PathBuf::from(std::ffi::OsStr::from_bytes(&out))
}

/// `g_get_current_dir`: `$PWD` when it names the current directory, else `getcwd`.
fn glib_current_dir() -> PathBuf {
    use std::os::unix::fs::MetadataExt;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from)
        && pwd.is_absolute()
        && let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata("."))
        && (a.dev(), a.ino()) == (b.dev(), b.ino())
    {
        return pwd;
    }
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"))
}

/// Runs `checkout`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    // Parsed with the options, before anything else, as glib's option callback is.
    let fsync = match &args.fsync {
        Some(v) => parse_boolean(v)?,
        None => true,
    };
    let repo = open_repo(repo)?;
    let Some(rev) = args.commit.as_deref() else {
        bail!("COMMIT must be specified");
    };
    let dest = args
        .destination
        .clone()
        .unwrap_or_else(|| PathBuf::from(rev));
    let commit = repo.resolve_rev(rev)?;

    // Like ostree, any of these options selects `ostree_repo_checkout_at` (no uncompressed
    // cache, `--allow-noent` ignored); otherwise the legacy `ostree_repo_checkout_tree` path,
    // which only honours -U and --union.
    let at_path = args.disable_cache
        || args.require_hardlinks
        || args.union_add
        || args.force_copy
        || args.force_copy_zerosized
        || args.bareuseronly_dirs
        || args.union_identical;
    let mut opts = CheckoutOptions {
        user_mode: args.user_mode,
        subpath: args.subpath.clone().unwrap_or_else(|| "/".into()),
        fsync,
        ..CheckoutOptions::default()
    };
    if at_path {
        if args.union && args.union_add {
            bail!("Cannot specify both --union and --union-add");
        }
        if args.union && args.union_identical {
            bail!("Cannot specify both --union and --union-identical");
        }
        if args.union_add && args.union_identical {
            bail!("Cannot specify both --union-add and --union-identical");
        }
        if args.require_hardlinks && args.force_copy {
            bail!("Cannot specify both --require-hardlinks and --force-copy");
        }
        opts.overwrite = if args.union {
            OverwriteMode::UnionFiles
        } else if args.union_add {
            OverwriteMode::AddFiles
        } else if args.union_identical {
            if !args.require_hardlinks {
                bail!("--union-identical requires --require-hardlinks");
            }
            OverwriteMode::UnionIdentical
        } else {
            OverwriteMode::None
        };
        opts.require_hardlinks = args.require_hardlinks;
        opts.force_copy = args.force_copy;
        opts.bareuseronly_dirs = args.bareuseronly_dirs;
    } else {
        opts.overwrite = if args.union {
            OverwriteMode::UnionFiles
        } else {
            OverwriteMode::None
        };
        opts.uncompressed_cache = true;
        opts.allow_noent = args.allow_noent;
    }
    // The legacy path takes DESTINATION through a GFile, which makes it absolute and removes
    // `.` and `..` lexically (`missing/../x` is `./x`); checkout_at passes it to mkdirat as is.
    let dest = if at_path { dest } else { glib_canonical(&dest) };
    let root = repo.read_commit(&commit)?.root();
    checkout(&repo, root, &dest, &opts)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::{glib_canonical, parse_boolean};
    use std::path::Path;

    #[test]
    fn destinations_canonicalize_like_gfile() {
        assert_eq!(glib_canonical(Path::new("/a/./b/../c/")), Path::new("/a/c"));
        assert_eq!(glib_canonical(Path::new("/../x//y")), Path::new("/x/y"));
        assert_eq!(glib_canonical(Path::new("//net/x")), Path::new("//net/x"));
        assert_eq!(glib_canonical(Path::new("///x")), Path::new("/x"));
        assert_eq!(glib_canonical(Path::new("/")), Path::new("/"));
        let rel = glib_canonical(Path::new("missing/../x"));
        assert!(rel.is_absolute() && rel.ends_with("x") && !rel.to_string_lossy().contains(".."));
    }

    #[test]
    fn booleans_parse_like_glib_tools() {
        assert!(parse_boolean("TRUE").unwrap());
        assert!(parse_boolean("1").unwrap());
        assert!(!parse_boolean("None").unwrap());
        assert!(parse_boolean("off").is_err());
        assert_eq!(
            parse_boolean("bad").unwrap_err().to_string(),
            "Invalid boolean argument 'bad'"
        );
    }
}
