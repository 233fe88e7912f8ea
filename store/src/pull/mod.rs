//! Pulling commits from a remote archive repository over HTTP(S) (or `file://`), as
//! `ostree pull` does: read the remote's `config` and `summary` (else `refs/heads/<ref>`),
//! then each commit's `.commitmeta` and `.commit`, then the dirtrees and dirmetas level by
//! level and the missing content, many fetches at once over keep-alive connections.
//!
//! Every commit the pull takes must carry the signatures the remote asks for (`gpg-verify`,
//! `sign-verify`), checked before anything of it is stored. Every object is verified before
//! it is stored (see [`objects`]). While a commit's objects
//! arrive it is marked partial (`state/<csum>.commitpartial`) and what arrived is published
//! level by level, so an interrupted pull keeps it and the next one fetches only the rest.
//! Refs move last, in the transaction's commit, after every object is durable.

mod fetch;
mod local;
pub mod objects;
mod parallel;
mod remote;
mod subpath;
mod summary;

pub use fetch::{Fetcher, TlsOptions};
pub use local::{LocalPullOptions, LocalPullReport, pull_local};
pub use remote::{Remote, RemoteOptions, is_valid_remote_name};
pub use subpath::Subpaths;
pub use summary::{SummaryRef, SummaryUse, parse_summary, verify_remote_summary};

use crate::config::KeyFile;
use crate::format::Commit;
use crate::gvariant::Value;
use crate::{Error, ObjectId, ObjectType, Repo, Result};
use objects::ObjectFetcher;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// What to pull and how.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Refs (or commit checksums) to pull; empty means the remote's configured branches.
    pub refs: Vec<String>,
    /// How many parents to pull too: 0 none, -1 all.
    pub depth: i64,
    /// Fetch only the commit objects, leaving them marked partial.
    pub commit_metadata_only: bool,
    /// Write refs as local branches (`refs/heads/`) rather than under `refs/remotes/`;
    /// without refs or configured branches, take every ref of the remote's summary and
    /// copy its `summary` and `summary.sig`.
    pub mirror: bool,
    /// Only these parts of the trees (`--subpath`); the commits stay marked partial.
    pub subpaths: Subpaths,
    /// Concurrent fetches.
    pub connections: usize,
    /// Refuse a requested commit older (by timestamp) than this local commit, before any
    /// of its objects is stored (ostree's `timestamp-check-from-rev`).
    pub timestamp_check_from_rev: Option<ObjectId>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            refs: Vec::new(),
            depth: 0,
            commit_metadata_only: false,
            mirror: false,
            subpaths: Subpaths::default(),
            connections: 8,
            timestamp_check_from_rev: None,
        }
    }
}

/// Progress counters, readable while a pull runs.
#[derive(Debug, Default)]
pub struct PullStats {
    /// Metadata objects fetched.
    pub metadata: AtomicU64,
    /// Content objects fetched.
    pub content: AtomicU64,
    /// Content objects the pull found it needs (known once the trees are walked).
    pub content_needed: AtomicU64,
    /// Bytes received.
    pub bytes: AtomicU64,
    /// Bytes of content written to the repository.
    pub content_bytes_written: AtomicU64,
}

/// One ref a pull updated (or found current).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledRef {
    /// The ref's name (without the remote).
    pub name: String,
    /// Where it pointed before.
    pub old: Option<ObjectId>,
    /// The commit pulled.
    pub new: ObjectId,
}

/// The requested refs resolved against the remote: (ref name, or None for a bare
/// checksum; commit).
fn resolve_refs(
    fetcher: &Fetcher,
    remote: &Remote,
    summary: Option<&[SummaryRef]>,
    requested: &[String],
) -> Result<Vec<(Option<String>, ObjectId)>> {
    let wanted: Vec<String> = if requested.is_empty() {
        if remote.branches.is_empty() {
            return Err(Error::Pull(format!(
                "No configured branches for remote {}",
                remote.name
            )));
        }
        remote.branches.clone()
    } else {
        requested.to_vec()
    };
    let mut out = Vec::new();
    for r in wanted {
        if let Ok(id) = ObjectId::from_hex(&r) {
            out.push((None, id));
            continue;
        }
        if !crate::refs::is_valid_ref_name(&r) {
            return Err(Error::InvalidRefName(r));
        }
        let id = match summary {
            Some(refs) => refs
                .iter()
                .find(|s| s.name == r)
                .map(|s| s.commit)
                .ok_or_else(|| {
                    Error::Pull(format!("No such branch '{r}' in repository summary"))
                })?,
            None => {
                let rel = format!("refs/heads/{r}");
                let bytes = fetcher.get(&rel, 4096)?.ok_or_else(|| Error::Fetch {
                    url: fetcher.url(&rel),
                    why: "Server returned HTTP 404".into(),
                })?;
                crate::refs::parse_ref_file(&bytes).map_err(|why| Error::Fetch {
                    url: fetcher.url(&rel),
                    why: format!("invalid ref: {why}"),
                })?
            }
        };
        out.push((Some(r), id));
    }
    Ok(out)
}

/// Checks the remote repository's `config`: only archive repositories can be pulled.
fn check_remote_config(fetcher: &Fetcher) -> Result<()> {
    let bytes = fetcher.get_required("config", 1024 * 1024)?;
    let url = fetcher.url("config");
    let text = String::from_utf8(bytes).map_err(|_| Error::Fetch {
        url: url.clone(),
        why: "not UTF-8".into(),
    })?;
    let config = KeyFile::parse(&text).map_err(|why| Error::Fetch {
        url: url.clone(),
        why,
    })?;
    let mode = config.get("core", "mode").unwrap_or("bare");
    if mode != "archive-z2" && mode != "archive" {
        return Err(Error::Fetch {
            url,
            why: format!("Can't pull from archives with mode \"{mode}\""),
        });
    }
    Ok(())
}

/// Refuses a commit bound to other refs (`ostree.ref-binding`) than the one pulled, in
/// ostree's words.
fn check_ref_binding(id: &ObjectId, commit: &Commit, name: &str) -> Result<()> {
    let Some((_, bound)) = commit
        .metadata
        .iter()
        .find(|(k, _)| k == "ostree.ref-binding")
    else {
        return Ok(());
    };
    let refs: Vec<&str> = bound
        .as_array()
        .unwrap_or(&[])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if refs.contains(&name) {
        return Ok(());
    }
    let listed = if refs.is_empty() {
        "no refs".to_string()
    } else {
        refs.iter()
            .map(|r| format!("‘{r}’"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(Error::Pull(format!(
        "Commit {id}: Commit has no requested ref ‘{name}’ in ref binding metadata ({listed})"
    )))
}

/// With `timestamp_check_from_rev`, refuses a commit older than that commit.
fn check_not_older(
    repo: &Repo,
    options: &PullOptions,
    id: &ObjectId,
    commit: &Commit,
) -> Result<()> {
    let Some(from) = &options.timestamp_check_from_rev else {
        return Ok(());
    };
    let current = repo.read_commit(from).map_err(|e| {
        Error::Pull(format!(
            "Reading {} for timestamp-check-from-rev: {e}",
            from.to_hex()
        ))
    })?;
    check_timestamps(from, current.timestamp, id, commit.timestamp)
}

/// ostree's downgrade check: a newer or equally old commit (or the same one) is accepted; an
/// older one is refused with ostree's message.
pub fn check_timestamps(
    current: &ObjectId,
    current_ts: u64,
    new: &ObjectId,
    new_ts: u64,
) -> Result<()> {
    if new_ts >= current_ts || current == new {
        return Ok(());
    }
    Err(Error::Pull(format!(
        "Upgrade target revision '{}' with timestamp '{}' is chronologically older than current revision '{}' with timestamp '{}'; use --allow-downgrade to permit",
        new.to_hex(),
        crate::time::format_c_locale(new_ts),
        current.to_hex(),
        crate::time::format_c_locale(current_ts)
    )))
}

/// The signature checks a remote asks for (`gpg-verify`, `sign-verify`).
struct SignatureChecks<'a> {
    repo: &'a Repo,
    remote: &'a Remote,
    sign: Option<crate::sign::RemoteVerifier>,
}

impl SignatureChecks<'_> {
    /// Refuses a commit without a good signature from a trusted key of each kind the remote
    /// requires. As ostree, every commit the pull takes is checked, its parents too.
    fn check(
        &self,
        id: &ObjectId,
        commit_bytes: &[u8],
        detached: Option<&[(String, Value)]>,
    ) -> Result<()> {
        if self.remote.gpg_verify {
            crate::gpg::verify_commit(self.repo, &self.remote.name, id, commit_bytes, detached)?;
        }
        if let Some(sign) = &self.sign {
            sign.verify_commit(id, commit_bytes, detached)?;
        }
        Ok(())
    }
}

/// Pulls from the remote `remote_name` into `repo`.
pub fn pull(
    repo: &Repo,
    remote_name: &str,
    options: &PullOptions,
    stats: &PullStats,
) -> Result<Vec<PulledRef>> {
    let remote = repo.remote(remote_name)?;
    // A remote whose keys cannot be read fails before anything is fetched.
    let signatures = SignatureChecks {
        repo,
        remote: &remote,
        sign: crate::sign::RemoteVerifier::for_remote(repo, remote_name)?,
    };
    let summary_sign = crate::sign::RemoteVerifier::for_remote_summary(repo, remote_name)?;
    let fetcher = Fetcher::for_remote(&remote, options.connections)?;
    check_remote_config(&fetcher)?;
    let summary_bytes = fetcher.get("summary", objects::MAX_METADATA_SIZE)?;
    verify_remote_summary(
        repo,
        &remote,
        summary_sign.as_ref(),
        &fetcher,
        summary_bytes.as_deref(),
        SummaryUse::Pull,
    )?;
    let summary = match &summary_bytes {
        Some(bytes) => Some(parse_summary(bytes).map_err(|why| Error::Fetch {
            url: fetcher.url("summary"),
            why,
        })?),
        None => None,
    };
    // A mirror pull without refs or configured branches takes every ref the summary lists.
    let mirror_all = options.mirror && options.refs.is_empty() && remote.branches.is_empty();
    let requested = if mirror_all {
        let refs = summary.as_deref().ok_or_else(|| {
            Error::Pull(
                "Fetching all refs was requested in mirror mode, but remote repository does not have a summary"
                    .into(),
            )
        })?;
        refs.iter().map(|r| r.name.clone()).collect()
    } else {
        options.refs.clone()
    };
    let targets = resolve_refs(&fetcher, &remote, summary.as_deref(), &requested)?;

    let tx = repo.begin()?;
    let objects = ObjectFetcher {
        repo,
        tx: &tx,
        fetcher: &fetcher,
        stats,
    };
    let mut done: HashSet<ObjectId> = HashSet::new();
    for (name, id) in &targets {
        let mut next = Some(*id);
        let mut depth = options.depth;
        while let Some(commit_id) = next.take() {
            if !done.insert(commit_id) {
                break;
            }
            let complete = repo.has_object(&commit_id, ObjectType::Commit)?
                && !repo.is_commit_partial(&commit_id)?;
            let commit = if complete {
                let commit = repo.read_commit(&commit_id)?;
                if commit_id == *id {
                    check_not_older(repo, options, &commit_id, &commit)?;
                    if let Some(n) = name {
                        check_ref_binding(&commit_id, &commit, n)?;
                    }
                }
                let detached = repo.read_detached_metadata(&commit_id)?;
                let bytes = repo.read_meta_bytes(&commit_id, ObjectType::Commit)?;
                signatures.check(&commit_id, &bytes, detached.as_deref())?;
                commit
            } else {
                let fetched = objects.fetch_commit(&commit_id)?;
                // Checked before anything of the commit is stored.
                signatures.check(&commit_id, fetched.bytes(), fetched.detached.as_deref())?;
                if commit_id == *id
                    && let Some(n) = name
                {
                    check_ref_binding(&commit_id, &fetched.commit, n)?;
                }
                mark_partial(repo, &commit_id)?;
                fetched.store(&tx)?;
                // publish_all, not publish_written: the detached metadata (signatures) is
                // staged by name, and must not be lost if the pull fails after the commit
                // is complete (a complete commit is not fetched again).
                tx.publish_all()?;
                // As ostree, a commit refused as too old stays, marked partial: its tree is
                // not fetched and no ref moves to it.
                if commit_id == *id {
                    check_not_older(repo, options, &commit_id, &fetched.commit)?;
                }
                fetched.commit
            };
            if !complete && !options.commit_metadata_only {
                fetch_tree(&objects, &commit, &options.subpaths, options.connections)?;
                tx.publish_written()?;
                // As ostree, a commit pulled in part stays marked partial.
                if options.subpaths.is_whole_tree() {
                    crate::fsck::unmark_commit_partial(repo, &commit_id)
                        .map_err(|f| Error::Pull(f.0))?;
                }
            }
            if depth != 0 {
                depth -= 1;
                next = commit.parent;
            }
        }
    }
    let mut pulled = Vec::new();
    for (name, id) in &targets {
        let Some(name) = name else { continue };
        let (remote_part, old) = if options.mirror {
            (None, repo.read_ref(None, name)?)
        } else {
            (Some(remote_name), repo.read_ref(Some(remote_name), name)?)
        };
        tx.set_ref(remote_part, name, Some(*id));
        pulled.push(PulledRef {
            name: name.clone(),
            old,
            new: *id,
        });
    }
    if mirror_all && let Some(bytes) = &summary_bytes {
        copy_summary(repo, &fetcher, bytes)?;
    }
    let written = tx.stats.content_bytes_written.load(Ordering::Relaxed);
    stats
        .content_bytes_written
        .store(written, Ordering::Relaxed);
    tx.commit()?;
    Ok(pulled)
}

/// A mirror's copy of the remote's `summary` and `summary.sig` (when it has one), as
/// `ostree pull --mirror` keeps them.
fn copy_summary(repo: &Repo, fetcher: &Fetcher, summary: &[u8]) -> Result<()> {
    let sig = fetcher.get(crate::detached::SUMMARY_SIG, objects::MAX_METADATA_SIZE)?;
    let fsync = repo.fsync_enabled();
    for (name, bytes) in [
        ("summary", Some(summary)),
        (crate::detached::SUMMARY_SIG, sig.as_deref()),
    ] {
        if let Some(bytes) = bytes {
            let path = repo.path().join(name);
            crate::fsutil::replace_file_at(&repo.root, name, bytes, 0o644, fsync, &path)?;
        }
    }
    Ok(())
}

fn mark_partial(repo: &Repo, id: &ObjectId) -> Result<()> {
    crate::fsck::mark_commit_partial(repo, id, false).map_err(|f| Error::Pull(f.0))
}

/// Content objects published at once while a pull runs: a kill loses at most about this
/// many (plus those in flight), and each batch costs one `syncfs`.
const PUBLISH_BATCH: usize = 128;
/// The longest a fetched object waits for publication, for slow links.
const PUBLISH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Fetches a commit's tree: dirtrees and dirmetas level by level, then missing content.
/// Each level, and every batch of content, is published as it completes (the commit is
/// marked partial meanwhile), so an interrupted pull keeps what it fetched.
fn fetch_tree(
    objects: &ObjectFetcher<'_>,
    commit: &Commit,
    subpaths: &Subpaths,
    connections: usize,
) -> Result<()> {
    let mut seen_trees = HashSet::new();
    let mut seen_files = HashSet::new();
    // Each directory with its path ("/", "/usr/"), and whether everything below it is taken.
    let mut level = vec![(
        commit.root_tree,
        commit.root_meta,
        "/".to_string(),
        subpaths.covers("/"),
    )];
    let mut files = Vec::new();
    while !level.is_empty() {
        let trees = parallel::map(&level, connections, |(tree, meta, _, _)| {
            objects.ensure_dirmeta(meta)?;
            objects.ensure_dirtree(tree)
        })?;
        objects.tx.publish_written()?;
        let mut next = Vec::new();
        for (tree, (_, _, path, covered)) in trees.into_iter().zip(&level) {
            for (name, id) in &tree.files {
                let taken = *covered || subpaths.matches(&format!("{path}{name}"), false);
                if taken && seen_files.insert(*id) {
                    files.push(*id);
                }
            }
            for (name, &(t, m)) in &tree.dirs {
                let dir = format!("{path}{name}");
                let covers = *covered || subpaths.covers(&dir);
                if !covers && !subpaths.matches(&dir, true) {
                    continue;
                }
                // Same tree, other metadata (an empty dir and an empty sticky dir): both
                // count. A tree taken only in part is walked again wherever it appears.
                let key = (t, m, (!covers).then(|| dir.clone()));
                if seen_trees.insert(key) {
                    next.push((t, m, format!("{dir}/"), covers));
                }
            }
        }
        level = next;
    }
    objects
        .stats
        .content_needed
        .fetch_add(files.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let last_publish = parking_lot::Mutex::new(std::time::Instant::now());
    parallel::map(&files, connections, |id| {
        objects.ensure_content(id)?;
        let due = objects.tx.pending_len() >= PUBLISH_BATCH
            || last_publish.lock().elapsed() >= PUBLISH_INTERVAL;
        // One worker publishes; the others keep fetching.
        if due && let Some(mut last) = last_publish.try_lock() {
            objects.tx.publish_written()?;
            *last = std::time::Instant::now();
        }
        Ok(())
    })?;
    Ok(())
}
