//! A repository's `summary` file: `(a(s(taya{sv}))a{sv})`, every ref with its commit's
//! size, checksum and metadata, sorted by name, then the summary's own metadata.

use super::{Fetcher, Remote};
use crate::gvariant::{Type, Value};
use crate::sign::RemoteVerifier;
use crate::{ObjectId, Repo};

/// One ref listed in a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRef {
    /// The ref's name.
    pub name: String,
    /// The commit it names.
    pub commit: ObjectId,
    /// The commit object's size in bytes.
    pub commit_size: u64,
}

/// Parses untrusted summary bytes; the error says what is malformed.
pub fn parse_summary(data: &[u8]) -> Result<Vec<SummaryRef>, String> {
    let ty = Type::parse("(a(s(taya{sv}))a{sv})").map_err(|e| e.to_string())?;
    let v = Value::from_bytes(&ty, data).map_err(|e| format!("Invalid summary: {e}"))?;
    let items = v.items().ok_or("Invalid summary: not a tuple")?;
    let refs = items[0].as_array().ok_or("Invalid summary: no ref list")?;
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let pair = r.items().ok_or("Invalid summary: bad ref entry")?;
        let name = pair[0].as_str().ok_or("Invalid summary: bad ref name")?;
        let data = pair[1].items().ok_or("Invalid summary: bad ref data")?;
        let size = data[0].as_u64().ok_or("Invalid summary: bad commit size")?;
        let commit = data[1]
            .as_bytes()
            .and_then(ObjectId::from_bytes)
            .ok_or_else(|| format!("Invalid summary: bad checksum for ref {name}"))?;
        crate::refs::is_valid_ref_name(name)
            .then_some(())
            .ok_or_else(|| format!("Invalid summary: invalid ref name {name}"))?;
        out.push(SummaryRef {
            name: name.to_string(),
            commit,
            // Unlike commit fields, ostree stores the size in native (little-endian) order.
            commit_size: size,
        });
    }
    Ok(out)
}

/// A summary's own metadata keys, as ostree writes them.
const LAST_MODIFIED: &str = "ostree.summary.last-modified";
const MODE: &str = "ostree.summary.mode";
const TOMBSTONE_COMMITS: &str = "ostree.summary.tombstone-commits";
const INDEXED_DELTAS: &str = "ostree.summary.indexed-deltas";

/// Builds an `a{sv}` as ostree's `GVariantDict` writes it, so the bytes match ostree's.
fn dict_in_hash_order(pairs: Vec<(&str, Value)>) -> Value {
    let pairs = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    crate::format::metadata_value(&crate::format::metadata_in_dict_order(pairs))
}

impl crate::Repo {
    /// The bytes of a summary for this repository's local refs (`summary -u`): each ref
    /// with its commit's size, checksum, version and timestamp, sorted by name; then the
    /// repository mode, `last_modified` (seconds since the epoch), whether tombstone
    /// commits are on, and `indexed-deltas` (no static deltas are written).
    pub fn build_summary(&self, last_modified: u64) -> crate::Result<Vec<u8>> {
        let mut refs: Vec<(String, ObjectId)> = Vec::new();
        for (name, _) in self.list_refs(None)? {
            if let Some(id) = self.read_ref(None, &name)? {
                refs.push((name, id));
            }
        }
        refs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut entries = Vec::with_capacity(refs.len());
        for (name, id) in refs {
            let bytes = self.read_meta_bytes(&id, crate::ObjectType::Commit)?;
            let commit = crate::format::Commit::parse(&bytes)
                .map_err(|why| crate::Error::corrupt(id, crate::ObjectType::Commit, why))?;
            let mut meta = Vec::new();
            if let Some(v) = commit.version() {
                meta.push(("ostree.commit.version", Value::str(v)));
            }
            // Big-endian like every ostree integer but the commit size below.
            let ts = Value::Uint64(commit.timestamp.to_be());
            meta.push(("ostree.commit.timestamp", ts));
            entries.push(Value::Tuple(vec![
                Value::str(name),
                Value::Tuple(vec![
                    Value::Uint64(bytes.len() as u64),
                    Value::Bytes(id.0.to_vec()),
                    dict_in_hash_order(meta),
                ]),
            ]));
        }
        let tombstones = self
            .config()
            .get_bool("core", "tombstone-commits")
            .map_err(crate::Error::Config)?
            .unwrap_or(false);
        let meta = dict_in_hash_order(vec![
            (MODE, Value::str(self.mode().to_string())),
            (LAST_MODIFIED, Value::Uint64(last_modified.to_be())),
            (TOMBSTONE_COMMITS, Value::Bool(tombstones)),
            (INDEXED_DELTAS, Value::Bool(true)),
        ]);
        let entry_ty = Type::parse("(s(taya{sv}))").map_err(crate::Error::Variant)?;
        Ok(Value::Tuple(vec![Value::Array(entry_ty, entries), meta]).to_bytes())
    }

    /// Writes `summary` (replacing it atomically) and removes a stale `summary.sig`, as
    /// `ostree summary -u` does without signing keys.
    pub fn update_summary(&self, last_modified: u64) -> crate::Result<()> {
        let bytes = self.build_summary(last_modified)?;
        let sig = self.path().join("summary.sig");
        match std::fs::remove_file(&sig) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::io(&sig, e)),
        }
        crate::fsutil::replace_file_at(
            &self.root,
            "summary",
            &bytes,
            0o644,
            self.fsync_enabled(),
            &self.path().join("summary"),
        )
    }
}

/// What a summary is fetched for: ostree words its refusals differently for a pull and for
/// `remote summary` / `remote refs` (`ostree_repo_remote_fetch_summary`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryUse {
    /// `pull`.
    Pull,
    /// Reading the remote's summary.
    Fetch,
}

/// Checks a remote's summary as its options ask, before anything it lists is fetched:
/// with `gpg-verify-summary=true`, one of the GPG signatures in `summary.sig` must be good
/// and made by a key the remote trusts; with `sign-verify-summary` (`sign`, from
/// [`crate::sign::RemoteVerifier::for_remote_summary`]), one of the signatures of the
/// types it names must verify with the remote's keys. The errors are ostree's. Returns the
/// GPG verification, for printing.
pub fn verify_remote_summary(
    repo: &Repo,
    remote: &Remote,
    sign: Option<&RemoteVerifier>,
    fetcher: &Fetcher,
    summary: Option<&[u8]>,
    usage: SummaryUse,
) -> crate::Result<Option<crate::gpg::VerifyResult>> {
    if !remote.gpg_verify_summary && sign.is_none() {
        return Ok(None);
    }
    let sig = fetcher.get(crate::gpg::SUMMARY_SIG, super::objects::MAX_METADATA_SIZE)?;
    let gpg = if remote.gpg_verify_summary {
        Some(verify_gpg(repo, remote, summary, sig.as_deref(), usage)?)
    } else {
        None
    };
    if let Some(sign) = sign {
        verify_signapi(sign, summary, sig.as_deref(), usage)?;
    }
    Ok(gpg)
}

fn refuse<T>(msg: &str) -> crate::Result<T> {
    Err(crate::Error::Pull(msg.to_string()))
}

/// `gpg-verify-summary`: ostree's words for each way it fails.
fn verify_gpg(
    repo: &Repo,
    remote: &Remote,
    summary: Option<&[u8]>,
    sig: Option<&[u8]>,
    usage: SummaryUse,
) -> crate::Result<crate::gpg::VerifyResult> {
    let Some(summary) = summary else {
        return refuse(match usage {
            SummaryUse::Pull => {
                "GPG verification enabled, but no summary found (use gpg-verify-summary=false in remote config to disable)"
            }
            SummaryUse::Fetch => {
                "GPG verification enabled, but no summary found (check that the configured URL in remote config is correct)"
            }
        });
    };
    let Some(sig) = sig else {
        return refuse(match usage {
            SummaryUse::Pull => {
                "GPG verification enabled, but no summary.sig found (use gpg-verify-summary=false in remote config to disable)"
            }
            SummaryUse::Fetch => {
                "GPG verification enabled, but no summary signatures found (use gpg-verify-summary=false in remote config to disable)"
            }
        });
    };
    let result = crate::gpg::verify_summary(repo, &remote.name, summary, sig)?;
    result.require_valid().map_err(crate::Error::Pull)?;
    Ok(result)
}

/// `sign-verify-summary`: ostree's words for each way it fails. As in ostree, a pull from
/// a server with `summary.sig` but no `summary` goes on (it then reads `refs/heads/`).
fn verify_signapi(
    sign: &RemoteVerifier,
    summary: Option<&[u8]>,
    sig: Option<&[u8]>,
    usage: SummaryUse,
) -> crate::Result<()> {
    if summary.is_none() && usage == SummaryUse::Fetch {
        return refuse(
            "Signature verification enabled, but no summary found (check that the configured URL in remote config is correct)",
        );
    }
    let Some(sig) = sig else {
        return refuse(match usage {
            SummaryUse::Pull => {
                "Signatures verification enabled, but no summary.sig found (use sign-verify-summary=false in remote config to disable)"
            }
            SummaryUse::Fetch => {
                "Signature verification enabled, but no summary signatures found (use sign-verify-summary=false in remote config to disable)"
            }
        });
    };
    let Some(summary) = summary else {
        return Ok(());
    };
    let meta = crate::detached::parse_summary_sig(sig).map_err(crate::Error::Pull)?;
    sign.verify(summary, &meta).map(drop)
}
