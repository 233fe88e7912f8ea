//! `commit`: record a tree (directories and other commits, overlaid) as a new commit.

use super::datetime::parse_datetime;
use super::util::open_repo;
use anyhow::{Context, bail, ensure};
use rostree_store::commit::{CommitFilter, filter_for_mode, write_commit, write_directory};
use rostree_store::detached::add_signatures;
use rostree_store::format::{Commit, metadata_value, sizes_value};
use rostree_store::ghash::ghash_order;
use rostree_store::gvariant::{Value, text};
use rostree_store::mtree::MutableTree;
use rostree_store::tar_import::write_tar;
use rostree_store::{ObjectId, RepoMode, Transaction};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

/// Options of `commit`, as `ostree commit --help` lists them.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The directory to commit (default: the current directory).
    path: Option<PathBuf>,
    /// Parent commit checksum, or "none".
    #[arg(long, value_name = "COMMIT")]
    parent: Option<String>,
    /// One line subject.
    #[arg(short = 's', long)]
    subject: Option<String>,
    /// Full description.
    #[arg(short = 'm', long)]
    body: Option<String>,
    /// Commit message from FILE path.
    #[arg(short = 'F', long, value_name = "FILE")]
    body_file: Option<PathBuf>,
    /// Branch.
    #[arg(short = 'b', long)]
    branch: Option<String>,
    /// Create a commit without writing a ref.
    #[arg(long)]
    orphan: bool,
    /// Do not write any ref bindings.
    #[arg(long)]
    no_bindings: bool,
    /// Add a ref to ref binding commit metadata.
    #[arg(long, value_name = "BRANCH")]
    bind_ref: Vec<String>,
    /// Start from the given commit as a base (no modifiers apply).
    #[arg(long, value_name = "REV")]
    base: Option<String>,
    /// Overlay the given argument as a tree: dir=PATH, tar=TARFILE or ref=COMMIT.
    #[arg(long, value_name = "dir=PATH|tar=TARFILE|ref=COMMIT")]
    tree: Vec<String>,
    /// When loading tar archives, automatically create parent directories as needed.
    #[arg(long)]
    tar_autocreate_parents: bool,
    /// Add a key/value pair to metadata.
    #[arg(long, value_name = "KEY=VALUE")]
    add_metadata_string: Vec<String>,
    /// Add a key/value pair to metadata, VALUE in GVariant text format.
    #[arg(long, value_name = "KEY=VALUE")]
    add_metadata: Vec<String>,
    /// Keep metadata KEY and its associated VALUE from parent.
    #[arg(long, value_name = "KEY")]
    keep_metadata: Vec<String>,
    /// Add a key/value pair to detached metadata.
    #[arg(long, value_name = "KEY=VALUE")]
    add_detached_metadata_string: Vec<String>,
    /// GPG Key ID to sign the commit with.
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    gpg_sign: Vec<String>,
    /// GPG Homedir to use when looking for keyrings.
    #[arg(long, value_name = "HOMEDIR")]
    gpg_homedir: Option<PathBuf>,
    /// Sign the commit with (a base64 ed25519 secret key).
    #[arg(long = "sign", value_name = "KEY_ID")]
    sign: Vec<String>,
    /// Signature type to use (defaults to 'ed25519').
    #[arg(long, value_name = "NAME")]
    sign_type: Option<String>,
    /// Set file ownership user id.
    #[arg(long, value_name = "UID")]
    owner_uid: Option<u32>,
    /// Set file ownership group id.
    #[arg(long, value_name = "GID")]
    owner_gid: Option<u32>,
    /// Canonicalize permissions in the same way bare-user does for hardlinked files.
    #[arg(long)]
    canonical_permissions: bool,
    /// Flag this commit as a bootable OSTree (e.g. contains a Linux kernel).
    #[arg(long)]
    bootable: bool,
    /// Ensure executable files are not writable.
    #[arg(long)]
    mode_ro_executables: bool,
    /// Do not import extended attributes.
    #[arg(long)]
    no_xattrs: bool,
    /// Optimize for commits of trees composed of hardlinks into the repository.
    #[arg(long)]
    link_checkout_speedup: bool,
    /// Assume hardlinked objects are unmodified. Implies --link-checkout-speedup.
    #[arg(short = 'I', long)]
    devino_canonical: bool,
    /// If the contents are unchanged from previous commit, do nothing.
    #[arg(long)]
    skip_if_unchanged: bool,
    /// File containing list of modifications to make to permissions.
    #[arg(long, value_name = "PATH")]
    statoverride: Option<PathBuf>,
    /// File containing list of files to skip.
    #[arg(long, value_name = "PATH")]
    skip_list: Option<PathBuf>,
    /// Consume (delete) content after commit (for local directories).
    #[arg(long)]
    consume: bool,
    /// Output more information in a KEY: VALUE format.
    #[arg(long)]
    table_output: bool,
    /// Generate size information along with commit metadata (archive repositories).
    #[arg(long)]
    generate_sizes: bool,
    /// Specify how to invoke fsync(): "false" skips it.
    #[arg(long, value_name = "POLICY")]
    fsync: Option<String>,
    /// Override the timestamp of the commit.
    #[arg(long)]
    timestamp: Option<String>,
}

fn split_kv(arg: &str) -> anyhow::Result<(&str, &str)> {
    let (k, v) = arg
        .split_once('=')
        .ok_or_else(|| anyhow::anyhow!("Missing '=' in KEY=VALUE metadata '{arg}'"))?;
    ensure!(!k.is_empty(), "Empty metadata key");
    Ok((k, v))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Runs `commit`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    if matches!(args.fsync.as_deref(), Some("false" | "no" | "0")) {
        repo.set_disable_fsync(true);
    }
    let mut filter = CommitFilter {
        owner_uid: args.owner_uid,
        owner_gid: args.owner_gid,
        canonical_permissions: args.canonical_permissions,
        mode_ro_executables: args.mode_ro_executables,
        no_xattrs: args.no_xattrs,
        link_checkout_speedup: args.link_checkout_speedup,
        devino_canonical: args.devino_canonical,
        consume: args.consume,
        ..Default::default()
    };
    if let Some(p) = &args.statoverride {
        let text = std::fs::read_to_string(p).map_err(|e| {
            anyhow::anyhow!("openat({}): {}", p.display(), rostree_store::io_message(&e))
        })?;
        filter.statoverride =
            CommitFilter::parse_statoverride(&text).map_err(anyhow::Error::msg)?;
    }
    if let Some(p) = &args.skip_list {
        let text = std::fs::read_to_string(p).map_err(|e| {
            anyhow::anyhow!("openat({}): {}", p.display(), rostree_store::io_message(&e))
        })?;
        filter.skip_list = CommitFilter::parse_skip_list(&text);
    }
    if args.canonical_permissions {
        ensure!(
            args.owner_uid.unwrap_or(0) == 0,
            "Cannot specify both --canonical-permissions and non-zero --owner-uid"
        );
        ensure!(
            args.owner_gid.unwrap_or(0) == 0,
            "Cannot specify both --canonical-permissions and non-zero --owner-gid"
        );
    }
    filter_for_mode(repo.mode(), &mut filter);
    if args.branch.is_none() && !args.orphan {
        bail!("A branch must be specified with --branch, or use --orphan");
    }
    if let Some(b) = &args.branch {
        ensure!(
            rostree_store::refs::is_valid_ref_name(b),
            "Invalid ref name {b}"
        );
    }
    let timestamp = match &args.timestamp {
        Some(t) => {
            parse_datetime(t, now()).ok_or_else(|| anyhow::anyhow!("Could not parse '{t}'"))?
        }
        None => match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v.trim().parse().context("Parsing SOURCE_DATE_EPOCH")?,
            Err(_) => now(),
        },
    };
    let parent: Option<ObjectId> = match args.parent.as_deref() {
        Some("none") => None,
        Some(p) => Some(ObjectId::from_hex(p).map_err(|_| anyhow::anyhow!("Invalid rev {p}"))?),
        None => match (&args.branch, args.orphan) {
            (Some(b), false) => repo.resolve_rev_opt(b).ok().flatten(),
            _ => None,
        },
    };
    let body = match (&args.body, &args.body_file) {
        (_, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("{}: {}", f.display(), rostree_store::io_message(&e)))?,
        (Some(b), None) => b.clone(),
        (None, None) => String::new(),
    };

    // Metadata, in ostree's order: strings, typed values, kept keys, bindings.
    let mut metadata: Vec<(String, Value)> = Vec::new();
    for kv in &args.add_metadata_string {
        let (k, v) = split_kv(kv)?;
        metadata.push((k.to_string(), Value::str(v)));
    }
    for kv in &args.add_metadata {
        let (k, v) = split_kv(kv)?;
        let value = text::parse(v, None).map_err(|e| anyhow::anyhow!("Parsing {kv}: {e}"))?;
        metadata.push((k.to_string(), value));
    }
    if !args.keep_metadata.is_empty() {
        let parent = parent.ok_or_else(|| {
            anyhow::anyhow!(
                "Either --branch or --parent must be specified when using --keep-metadata"
            )
        })?;
        let pc = repo.read_commit(&parent)?;
        for key in &args.keep_metadata {
            let v = pc.meta(key).ok_or_else(|| {
                anyhow::anyhow!("Missing metadata key '{key}' from commit '{parent}'")
            })?;
            metadata.push((key.clone(), v.clone()));
        }
    }
    if !args.no_bindings {
        let mut bindings: Vec<String> = args.branch.iter().cloned().collect();
        bindings.extend(args.bind_ref.iter().cloned());
        bindings.sort();
        metadata.push(("ostree.ref-binding".into(), Value::strv(&bindings)));
        if let Some(cid) = repo.config().get("core", "collection-id")
            && !metadata
                .iter()
                .any(|(k, _)| k == "ostree.collection-binding")
        {
            metadata.push(("ostree.collection-binding".into(), Value::str(cid)));
        }
    }
    let mut detached: Vec<(String, Value)> = Vec::new();
    for kv in &args.add_detached_metadata_string {
        let (k, v) = split_kv(kv)?;
        detached.push((k.to_string(), Value::str(v)));
    }
    // Bad keys fail the command before anything is written.
    let sign_keys = if args.sign.is_empty() {
        Vec::new()
    } else {
        let sign_type = rostree_store::sign::type_or_default(args.sign_type.as_deref())?;
        rostree_store::sign::signers(sign_type, &args.sign)?
    };

    let mut tx = repo.begin()?;
    if args.generate_sizes && repo.mode() == RepoMode::Archive {
        tx.record_sizes();
    }
    let mut root = match &args.base {
        Some(rev) => {
            let c = repo.read_commit(&repo.resolve_rev(rev)?)?;
            MutableTree::from_stored(c.root_tree, c.root_meta)
        }
        None => MutableTree::default(),
    };
    let sources: Vec<String> = if args.tree.is_empty() {
        vec![format!(
            "dir={}",
            args.path.clone().unwrap_or_else(|| ".".into()).display()
        )]
    } else {
        args.tree.clone()
    };
    for spec in &sources {
        let (kind, arg) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("Missing type in tree specification '{spec}'"))?;
        let layer = match kind {
            "dir" => write_directory(&tx, Path::new(arg), &filter)?,
            "tar" => write_tar(&tx, Path::new(arg), &filter, args.tar_autocreate_parents)?,
            "ref" => {
                let c = repo.read_commit(&repo.resolve_rev(arg)?)?;
                MutableTree::from_stored(c.root_tree, c.root_meta)
            }
            other => bail!("Invalid tree type specification '{other}'"),
        };
        root.overlay(&repo, layer, "")?;
    }
    if args.bootable {
        let release = find_kernel_release(&repo, &mut root)?;
        metadata = bootable_metadata(metadata, &release);
    }
    let (root_tree, root_meta) = root.write(&tx, "/")?;

    if args.skip_if_unchanged
        && let Some(p) = parent
        && let Ok(pc) = repo.read_commit(&p)
        && pc.root_tree == root_tree
        && pc.root_meta == root_meta
    {
        drop(tx);
        print_result(&args, &p, None);
        return Ok(ExitCode::SUCCESS);
    }
    let sizes = tx.sizes();
    if !sizes.is_empty() {
        metadata.push(("ostree.sizes".into(), sizes_value(&sizes)));
    }
    let commit = Commit {
        metadata,
        parent,
        related: Vec::new(),
        subject: args.subject.clone().unwrap_or_default(),
        body,
        timestamp: timestamp as u64,
        root_tree,
        root_meta,
    };
    let id = write_commit(&tx, &commit)?;
    // Signed before any ref names the commit, so nobody sees it unsigned; ed25519 first,
    // then GPG, as ostree adds them.
    if !sign_keys.is_empty() || !args.gpg_sign.is_empty() {
        let bytes = commit.to_bytes();
        for key in &sign_keys {
            add_signatures(
                &mut detached,
                key.sign_type().metadata_key(),
                &[key.sign(&bytes)?],
            );
        }
        let sigs = args
            .gpg_sign
            .iter()
            .map(|k| rostree_store::gpg::sign(&bytes, k, args.gpg_homedir.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        add_signatures(&mut detached, rostree_store::gpg::GPGSIGS_KEY, &sigs);
    }
    if !detached.is_empty() {
        tx.write_commit_detached(&id, &metadata_value(&detached).to_bytes())?;
    }
    if let (Some(b), false) = (&args.branch, args.orphan) {
        tx.set_ref(None, b, Some(id));
    }
    let stats = snapshot(&tx);
    tx.commit()?;
    print_result(&args, &id, Some(stats));
    Ok(ExitCode::SUCCESS)
}

fn snapshot(tx: &Transaction<'_>) -> [u64; 6] {
    let s = &tx.stats;
    [
        s.metadata_total.load(Ordering::Relaxed),
        s.metadata_written.load(Ordering::Relaxed),
        s.content_total.load(Ordering::Relaxed),
        s.content_written.load(Ordering::Relaxed),
        s.content_cache_hits.load(Ordering::Relaxed),
        s.content_bytes_written.load(Ordering::Relaxed),
    ]
}

fn print_result(args: &Args, id: &ObjectId, stats: Option<[u64; 6]>) {
    if !args.table_output {
        println!("{id}");
        return;
    }
    let s = stats.unwrap_or_default();
    println!("Commit: {id}");
    println!("Metadata Total: {}", s[0]);
    println!("Metadata Written: {}", s[1]);
    println!("Content Total: {}", s[2]);
    println!("Content Written: {}", s[3]);
    println!("Content Cache Hits: {}", s[4]);
    println!("Content Bytes Written: {}", s[5]);
}

/// The kernel release: the one folder of `/usr/lib/modules` holding a `vmlinuz`.
fn find_kernel_release(
    repo: &rostree_store::Repo,
    root: &mut MutableTree,
) -> anyhow::Result<String> {
    ensure!(
        root.subdir_mut(repo, "usr")?.is_some(),
        "No such file or directory: /usr"
    );
    let modules = root
        .subdir_mut(repo, "usr/lib/modules")?
        .ok_or_else(|| anyhow::anyhow!("Opening usr/lib/modules: No such file or directory"))?;
    let names: Vec<String> = modules.dirs.keys().cloned().collect();
    let mut found = Vec::new();
    for name in names {
        if let Some(dir) = modules.dirs.get_mut(&name) {
            dir.ensure_loaded(repo)?;
            if dir.files.contains_key("vmlinuz") {
                found.push(name);
            }
        }
    }
    match found.as_slice() {
        [] => bail!("No kernel found in /usr/lib/modules"),
        [one] => Ok(one.clone()),
        _ => bail!("Multiple kernels found in /usr/lib/modules"),
    }
}

/// ostree passes bootable metadata through a `GVariantDict`: duplicate keys collapse (the
/// last value wins, the first position stays) and keys come out in hash-table order.
fn bootable_metadata(metadata: Vec<(String, Value)>, release: &str) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    let mut insert = |k: String, v: Value| match entries.iter_mut().find(|(ek, _)| *ek == k) {
        Some(e) => e.1 = v,
        None => entries.push((k, v)),
    };
    for (k, v) in metadata {
        insert(k, v);
    }
    insert("ostree.linux".into(), Value::str(release));
    insert("ostree.bootable".into(), Value::Bool(true));
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    ghash_order(&keys)
        .into_iter()
        .filter_map(|k| entries.iter().find(|(ek, _)| *ek == k).cloned())
        .collect()
}
