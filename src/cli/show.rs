//! `show`: one object, as ot-builtin-show.c prints it.

use super::log::{DumpFlags, dump_object};
use super::ls::open_content;
use super::signatures::{GpgArgs, print_signatures};
use super::util::{format_size, open_repo, usage_error, with_stdout};
use rostree_store::format::parse_sizes;
use rostree_store::{ObjectId, ObjectType, Repo};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Options of `show`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show the "related" commits.
    #[arg(long)]
    print_related: bool,
    /// Print string value of metadata key.
    #[arg(long, value_name = "KEY")]
    print_metadata_key: Option<String>,
    /// Print string value of detached metadata key.
    #[arg(long, value_name = "KEY")]
    print_detached_metadata_key: Option<String>,
    /// Show the commit size metadata.
    #[arg(long)]
    print_sizes: bool,
    /// Show raw variant data.
    #[arg(long)]
    raw: bool,
    /// Do not automatically convert variant data from big endian.
    #[arg(short = 'B', long)]
    no_byteswap: bool,
    /// Keys to check a commit's signatures with.
    #[command(flatten)]
    gpg: GpgArgs,
    /// The object: a rev, or the checksum of a commit, dirmeta, dirtree or file object.
    object: Option<String>,
    /// Further arguments, ignored as ostree ignores them.
    #[arg(hide = true)]
    rest: Vec<String>,
}

/// `ostree show`'s help, printed on stderr before a usage error.
const USAGE: &str = "\
Usage:\n\
\x20 ostree show [OPTION…] OBJECT\n\
\n\
Output a metadata object\n\
\n\
Help Options:\n\
\x20 -h, --help                            Show help options\n\
\n\
Application Options:\n\
\x20 --repo=PATH                           Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)\n\
\x20 --print-related                       Show the \"related\" commits\n\
\x20 --print-variant-type=TYPE             Memory map OBJECT (in this case a filename) to the GVariant type string\n\
\x20 --print-metadata-key=KEY              Print string value of metadata key\n\
\x20 --print-detached-metadata-key=KEY     Print string value of detached metadata key\n\
\x20 --print-sizes                         Show the commit size metadata\n\
\x20 --raw                                 Show raw variant data\n\
\x20 -B, --no-byteswap                     Do not automatically convert variant data from big endian\n\
\x20 --gpg-homedir=HOMEDIR                 GPG Homedir to use when looking for keyrings\n\
\x20 --gpg-verify-remote=REMOTE            Use REMOTE name for GPG configuration\n\
\x20 -v, --verbose                         Print debug information during command processing\n\
\x20 --version                             Print version information and exit\n\
\n\
\n\
";

/// Runs `show`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let Some(rev) = args.object.as_deref() else {
        return Err(usage_error(USAGE, "An object argument is required"));
    };
    let flags = DumpFlags {
        raw: args.raw,
        unswapped: args.no_byteswap,
    };
    let key = args
        .print_detached_metadata_key
        .as_deref()
        .map(|k| (k, true))
        .or(args.print_metadata_key.as_deref().map(|k| (k, false)));
    with_stdout(|out| {
        if let Some((key, detached)) = key {
            let id = repo.resolve_rev(rev)?;
            print_metadata_key(out, &repo, &id, detached, key, args.no_byteswap)
        } else if args.print_related {
            let id = repo.resolve_rev(rev)?;
            for (name, csum) in repo.read_commit(&id)?.related {
                writeln!(out, "{name} {csum}")?;
            }
            Ok(())
        } else if args.print_sizes {
            print_sizes(out, &repo, &repo.resolve_rev(rev)?)
        } else if let Ok(id) = ObjectId::from_hex(rev) {
            for ty in [ObjectType::Commit, ObjectType::DirMeta, ObjectType::DirTree] {
                if repo.has_object(&id, ty)? {
                    return print_object(out, &repo, ty, &id, flags, &args.gpg);
                }
            }
            print_file(out, &repo, &id)
        } else {
            let id = repo.resolve_rev(rev)?;
            print_object(out, &repo, ObjectType::Commit, &id, flags, &args.gpg)
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn print_object(
    out: &mut dyn Write,
    repo: &Repo,
    ty: ObjectType,
    id: &ObjectId,
    flags: DumpFlags,
    gpg: &GpgArgs,
) -> anyhow::Result<()> {
    let bytes = repo.read_meta_bytes(id, ty)?;
    dump_object(out, ty, id, &bytes, flags)?;
    if ty == ObjectType::Commit {
        print_signatures(out, repo, id, &bytes, gpg)?;
    }
    Ok(())
}

fn print_metadata_key(
    out: &mut dyn Write,
    repo: &Repo,
    id: &ObjectId,
    detached: bool,
    key: &str,
    no_byteswap: bool,
) -> anyhow::Result<()> {
    let metadata = if detached {
        repo.read_detached_metadata(id)?
            .ok_or_else(|| anyhow::anyhow!("No detached metadata for commit {id}"))?
    } else {
        repo.read_commit(id)?.metadata
    };
    // `g_variant_lookup_value`: the first entry with that key.
    let Some((_, value)) = metadata.iter().find(|(k, _)| k == key) else {
        anyhow::bail!("No such metadata key '{key}'");
    };
    let value = if no_byteswap {
        value.clone()
    } else {
        value.byteswapped()
    };
    writeln!(out, "{}", value.print(true))?;
    Ok(())
}

/// The commit's `ostree.sizes` summed: all its objects, and those this repo lacks.
fn print_sizes(out: &mut dyn Write, repo: &Repo, id: &ObjectId) -> anyhow::Result<()> {
    let commit = repo.read_commit(id)?;
    let Some((_, value)) = commit.metadata.iter().find(|(k, _)| k == "ostree.sizes") else {
        anyhow::bail!("No metadata key ostree.sizes in commit");
    };
    let entries = parse_sizes(value).map_err(|why| anyhow::anyhow!("commit {id}: {why}"))?;
    let (mut total, mut needed) = ((0u64, 0u64, 0usize), (0u64, 0u64, 0usize));
    for e in &entries {
        total = (total.0 + e.archived, total.1 + e.unpacked, total.2 + 1);
        if !repo.has_object(&e.id, e.object_type)? {
            needed = (needed.0 + e.archived, needed.1 + e.unpacked, needed.2 + 1);
        }
    }
    writeln!(
        out,
        "Compressed size (needed/total): {}/{}",
        format_size(needed.0),
        format_size(total.0)
    )?;
    writeln!(
        out,
        "Unpacked size (needed/total): {}/{}",
        format_size(needed.1),
        format_size(total.1)
    )?;
    writeln!(
        out,
        "Number of objects (needed/total): {}/{}",
        needed.2, total.2
    )?;
    Ok(())
}

/// A content object: its type, size or target, mode, owner and xattrs.
fn print_file(out: &mut dyn Write, repo: &Repo, id: &ObjectId) -> anyhow::Result<()> {
    let obj = open_content(repo, id)?;
    let h = &obj.header;
    writeln!(out, "Object: {id}\nType: file")?;
    if h.is_symlink() {
        writeln!(out, "File Type: symlink\nTarget: {}", h.symlink_target)?;
    } else {
        writeln!(out, "File Type: regular\nSize: {}", obj.size)?;
    }
    writeln!(out, "Mode: 0{:04o}", h.mode)?;
    writeln!(out, "Uid: {}\nGid: {}", h.uid, h.gid)?;
    writeln!(out, "Extended Attributes: {{ {} }}", h.xattrs.print())?;
    Ok(())
}
