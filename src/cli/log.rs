//! `log`: a commit and its ancestors, as ot-builtin-log.c and ot-dump.c print them.

use super::util::{civil_from_days, format_timestamp, open_repo, usage_error, with_stdout};
use rostree_store::format::Commit;
use rostree_store::gvariant::{Type, Value};
use rostree_store::time::for_console;
use rostree_store::{Error, ObjectId, ObjectType};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Options of `log`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Show raw variant data.
    #[arg(long)]
    raw: bool,
    /// The commit to start from.
    rev: Option<String>,
}

/// `ostree log`'s help, printed on stderr before a usage error.
const USAGE: &str = "\
Usage:\n\
\x20 ostree log [OPTION…] REV\n\
\n\
Show log starting at commit or ref\n\
\n\
Help Options:\n\
\x20 -h, --help        Show help options\n\
\n\
Application Options:\n\
\x20 --repo=PATH       Path to OSTree repository (defaults to current directory or /sysroot/ostree/repo)\n\
\x20 --raw             Show raw variant data\n\
\x20 -v, --verbose     Print debug information during command processing\n\
\x20 --version         Print version information and exit\n\
\n\
\n\
";

/// Runs `log`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let Some(rev) = args.rev else {
        return Err(usage_error(USAGE, "A rev argument is required"));
    };
    let id = repo.resolve_rev(&rev)?;
    let flags = DumpFlags {
        raw: args.raw,
        unswapped: false,
    };
    with_stdout(|out| {
        let mut next = Some(id);
        let mut first = true;
        while let Some(id) = next {
            let bytes = match repo.read_meta_bytes(&id, ObjectType::Commit) {
                Ok(b) => b,
                Err(Error::MissingObject { .. }) if !first => {
                    out.write_all(b"<< History beyond this commit not fetched >>\n")?;
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            first = false;
            next = dump_object(out, ObjectType::Commit, &id, &bytes, flags)?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// How `ot_dump_object` prints an object.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct DumpFlags {
    /// `--raw`: the byteswapped variant instead of the formatted commit.
    pub raw: bool,
    /// `show -B`: the variant as stored, then the formatted commit.
    pub unswapped: bool,
}

/// The GVariant type of a metadata object.
pub(super) fn object_type(ty: ObjectType) -> Option<Type> {
    let s = match ty {
        ObjectType::Commit => "(a{sv}aya(say)sstayay)",
        ObjectType::DirTree => "(a(say)a(sayay))",
        ObjectType::DirMeta => "(uuua(ayay))",
        ObjectType::CommitMeta => "a{sv}",
        _ => return None,
    };
    Type::parse(s).ok()
}

/// Decodes a metadata object as a [`Value`], naming it on failure.
pub(super) fn decode_object(id: &ObjectId, ty: ObjectType, bytes: &[u8]) -> anyhow::Result<Value> {
    let vty = object_type(ty).ok_or_else(|| anyhow::anyhow!("Invalid object type {ty}"))?;
    Value::from_bytes(&vty, bytes).map_err(|e| Error::corrupt(*id, ty, e).into())
}

/// `ot_dump_object`: the `TYPE CHECKSUM` line, then the variant and/or the formatted commit.
/// Returns the commit's parent.
pub(super) fn dump_object(
    out: &mut dyn Write,
    ty: ObjectType,
    id: &ObjectId,
    bytes: &[u8],
    flags: DumpFlags,
) -> anyhow::Result<Option<ObjectId>> {
    writeln!(out, "{ty} {id}")?;
    if flags.unswapped || flags.raw {
        let v = decode_object(id, ty, bytes)?;
        let v = if flags.unswapped { v } else { v.byteswapped() };
        writeln!(out, "{}", for_console(&v.print(true)))?;
        if !flags.unswapped {
            return parent_of(ty, id, bytes);
        }
    }
    if ty != ObjectType::Commit {
        return Ok(None);
    }
    let commit = Commit::parse(bytes).map_err(|why| Error::corrupt(*id, ty, why))?;
    dump_commit(out, &commit)?;
    Ok(commit.parent)
}

fn parent_of(ty: ObjectType, id: &ObjectId, bytes: &[u8]) -> anyhow::Result<Option<ObjectId>> {
    if ty != ObjectType::Commit {
        return Ok(None);
    }
    let commit = Commit::parse(bytes).map_err(|why| Error::corrupt(*id, ty, why))?;
    Ok(commit.parent)
}

/// `dump_commit`: Parent, ContentChecksum, Date, Version, subject and body; text goes through
/// [`for_console`] as ostree's `g_print` converts it to the locale's character set.
pub(super) fn dump_commit(out: &mut dyn Write, commit: &Commit) -> anyhow::Result<()> {
    let Some(date) = format_date(commit.timestamp) else {
        // ostree exits through errx() here, after flushing what it printed.
        out.flush()?;
        eprintln!(
            "ostree: Failed to read commit: Invalid timestamp: {}",
            commit.timestamp
        );
        std::process::exit(1);
    };
    if let Some(parent) = &commit.parent {
        writeln!(out, "Parent:  {parent}")?;
    }
    writeln!(out, "ContentChecksum:  {}", commit.content_checksum())?;
    writeln!(out, "Date:  {date}")?;
    if let Some(version) = version(commit) {
        writeln!(out, "Version: {}", for_console(version))?;
    }
    if commit.subject.is_empty() {
        out.write_all(b"(no subject)\n")?;
    } else {
        out.write_all(b"\n")?;
        indented(out, &for_console(&commit.subject))?;
    }
    if !commit.body.is_empty() {
        out.write_all(b"\n")?;
        indented(out, &for_console(&commit.body))?;
    }
    out.write_all(b"\n")?;
    Ok(())
}

/// `g_variant_lookup (metadata, "version", "&s")`: the first `version` key, if a string.
fn version(commit: &Commit) -> Option<&str> {
    match commit.metadata.iter().find(|(k, _)| k == "version") {
        Some((_, Value::String(s))) => Some(s),
        _ => None,
    }
}

/// `dump_indented_lines`: every line prefixed by four spaces; no line for a final newline.
fn indented(out: &mut dyn Write, text: &str) -> std::io::Result<()> {
    let mut rest = text;
    while let Some(i) = rest.find('\n') {
        out.write_all(b"    ")?;
        out.write_all(&rest.as_bytes()[..=i])?;
        rest = &rest[i + 1..];
    }
    if !rest.is_empty() {
        out.write_all(b"    ")?;
        out.write_all(rest.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `g_date_time_format (g_date_time_new_from_unix_utc (t), "%Y-%m-%d %H:%M:%S +0000")`; the
/// timestamp is reinterpreted as signed, and GLib only represents years 1 to 9999.
pub(super) fn format_date(timestamp: u64) -> Option<String> {
    let t = timestamp as i64;
    if !(-62_135_596_800..=253_402_300_799).contains(&t) {
        return None;
    }
    if t >= 0 {
        return Some(format_timestamp(t as u64));
    }
    // Before 1970 (a timestamp of 2^63 or more): GLib pads the year to no width.
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    let (y, m, d) = civil_from_days(days);
    Some(format!(
        "{y}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_indentation() {
        assert_eq!(format_date(0).unwrap(), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_date(u64::MAX).unwrap(), "1969-12-31 23:59:59 +0000");
        assert!(format_date(253_402_300_800).is_none());
        let mut out = Vec::new();
        indented(&mut out, "a\n\nb\n").unwrap();
        assert_eq!(out, b"    a\n    \n    b\n");
        let mut out = Vec::new();
        indented(&mut out, "x\ny").unwrap();
        assert_eq!(out, b"    x\n    y\n");
    }
}
