//! `summary -u` writes the repository's `summary` file, as `ostree summary -u` does (and,
//! with `--gpg-sign` or `--sign`, its signatures in `summary.sig`);
//! `summary --view [--raw]` prints it as ostree does.

use super::util::{format_timestamp, open_repo};
use rostree_store::gvariant::{Type, Value};
use std::path::Path;
use std::process::ExitCode;

/// Options of `summary`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Update the summary.
    #[arg(short = 'u', long)]
    update: bool,
    /// View the local summary file.
    #[arg(short = 'v', long)]
    view: bool,
    /// With --view, print the summary as a GVariant.
    #[arg(long)]
    raw: bool,
    /// GPG Key ID to sign the summary with (with -u; repeatable).
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    /// GPG Homedir to use when looking for keyrings.
    #[arg(long, value_name = "HOMEDIR")]
    gpg_homedir: Option<std::path::PathBuf>,
    /// Key to sign the summary with (with -u; repeatable; an ed25519 secret key in base64).
    #[arg(long = "sign", value_name = "KEY-ID")]
    sign: Vec<String>,
    /// Signature type to use (defaults to 'ed25519').
    #[arg(long, value_name = "NAME")]
    sign_type: Option<String>,
}

/// Runs `summary`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    // Bad keys fail before the summary is rewritten.
    let signers = if args.sign.is_empty() {
        Vec::new()
    } else {
        let sign_type = rostree_store::sign::type_or_default(args.sign_type.as_deref())?;
        rostree_store::sign::signers(sign_type, &args.sign)?
    };
    if args.update {
        // ostree stamps the summary with the current time, not SOURCE_DATE_EPOCH.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        repo.update_summary(now)?;
        if !args.gpg_sign.is_empty() {
            rostree_store::gpg::sign_summary(&repo, &args.gpg_sign, args.gpg_homedir.as_deref())?;
        }
        if !signers.is_empty() {
            rostree_store::sign::sign_summary(&repo, &signers)?;
        }
    } else if args.view || args.raw {
        let path = repo.path().join("summary");
        let bytes = std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        print!(
            "{}",
            dump_summary(&bytes, args.raw, &path.display().to_string())?
        );
    } else {
        anyhow::bail!("No option specified; use -u to update summary");
    }
    Ok(ExitCode::SUCCESS)
}

/// A summary as ostree's `ot_dump_summary_bytes` prints it: the refs and metadata, or with
/// `raw` the whole variant; `name` names the summary in errors.
pub(super) fn dump_summary(bytes: &[u8], raw: bool, name: &str) -> anyhow::Result<String> {
    let ty = Type::parse("(a(s(taya{sv}))a{sv})")?;
    let summary = Value::from_bytes(&ty, bytes)
        .map_err(|e| anyhow::anyhow!("{name}: Invalid summary: {e}"))?;
    if !raw {
        return Ok(view(&summary));
    }
    // ostree prints the summary byteswapped to big-endian, as its integers mostly are:
    // timestamps read right, commit sizes (host order) do not.
    let shown = if cfg!(target_endian = "little") {
        summary.byteswapped()
    } else {
        summary
    };
    Ok(format!("{}\n", shown.print(true)))
}

/// A big-endian `t` as ostree's timestamps are, in ostree's ISO 8601 form.
fn iso_time(v: &Value) -> String {
    let secs = u64::from_be(v.as_u64().unwrap_or(0));
    format_timestamp(secs)
        .replacen(' ', "T", 1)
        .replace(" +0000", "+00")
}

/// One `a{sv}` entry as ostree's `summary --view` names it.
fn meta_line(key: &str, value: &Value) -> String {
    match key {
        "ostree.commit.timestamp" => format!("Timestamp ({key}): {}", iso_time(value)),
        "ostree.commit.version" => {
            format!("Version ({key}): {}", value.as_str().unwrap_or_default())
        }
        "ostree.summary.last-modified" => format!("Last-Modified ({key}): {}", iso_time(value)),
        "ostree.summary.mode" => format!(
            "Repository Mode ({key}): {}",
            value.as_str().unwrap_or_default()
        ),
        "ostree.summary.tombstone-commits" => format!(
            "Has Tombstone Commits ({key}): {}",
            if *value == Value::Bool(true) {
                "Yes"
            } else {
                "No"
            }
        ),
        _ => format!("{key}: {}", value.print(false)),
    }
}

/// The entries of an `a{sv}` value, variants unwrapped.
fn entries(dict: &Value) -> Vec<(String, Value)> {
    rostree_store::format::metadata_from_value(dict).unwrap_or_default()
}

/// The text of `ostree summary --view`.
fn view(summary: &Value) -> String {
    let mut out = String::new();
    let items = summary.items().unwrap_or_default();
    let (Some(refs), Some(meta)) = (items.first(), items.get(1)) else {
        return out;
    };
    for r in refs.as_array().unwrap_or_default() {
        let pair = r.items().unwrap_or_default();
        let (Some(name), Some(data)) = (pair.first(), pair.get(1)) else {
            continue;
        };
        let data = data.items().unwrap_or_default();
        let size = data.first().and_then(|v| v.as_u64()).unwrap_or(0);
        let csum = data
            .get(1)
            .and_then(|v| v.as_bytes())
            .map(hex_of)
            .unwrap_or_default();
        out += &format!(
            "* {}\n    Latest Commit ({size} bytes):\n      {csum}\n",
            name.as_str().unwrap_or_default()
        );
        if let Some(m) = data.get(2) {
            for (k, v) in entries(m) {
                out += &format!("    {}\n", meta_line(&k, &v));
            }
        }
        out.push('\n');
    }
    for (k, v) in entries(meta) {
        out += &format!("{}\n", meta_line(&k, &v));
    }
    out
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
