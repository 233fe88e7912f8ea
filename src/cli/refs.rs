//! `refs`: list, create, delete and alias refs. Listings come in GLib hash-table order, as
//! ostree prints them.

use super::util::open_repo;
use rostree_store::ghash::ghash_order;
use rostree_store::refs::{RefTarget, is_valid_ref_name, parse_refspec};
use std::path::Path;
use std::process::ExitCode;

/// Options of `refs`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ref prefixes to list (or, with --delete, to delete).
    prefixes: Vec<String>,
    /// Do not remove the prefix from the refs.
    #[arg(long)]
    list: bool,
    /// If used with --create, create an alias, otherwise just list aliases.
    #[arg(long = "alias", short = 'A')]
    alias: bool,
    /// Create a new ref for an existing commit.
    #[arg(long, value_name = "NEWREF")]
    create: Option<String>,
    /// Delete refs which match PREFIX, rather than listing them.
    #[arg(long)]
    delete: bool,
    /// When creating NEWREF, overwrite any existing ref.
    #[arg(long)]
    force: bool,
}

/// Runs `refs`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    if let Some(new) = &args.create {
        anyhow::ensure!(
            !args.prefixes.is_empty(),
            "You must specify a revision when creating a new ref"
        );
        anyhow::ensure!(
            args.prefixes.len() == 1,
            "You must specify only 1 existing ref when creating a new ref"
        );
        let target = &args.prefixes[0];
        if args.alias {
            anyhow::ensure!(is_valid_ref_name(new), "Invalid refspec {new}");
            anyhow::ensure!(
                repo.read_ref(None, target).ok().flatten().is_some(),
                "Cannot create alias to non-existent ref: {target}"
            );
            let _ = repo.write_ref(None, new, None);
            repo.write_alias(new, target)?;
            return Ok(ExitCode::SUCCESS);
        }
        // Like ostree, `--create` takes a refspec: `REMOTE:REF` creates a remote ref.
        let (remote, name) = parse_refspec(new)?;
        if !args.force && repo.read_ref(remote, name).ok().flatten().is_some() {
            anyhow::bail!("--create specified but ref {new} already exists");
        }
        let id = repo.resolve_rev(target)?;
        let tx = repo.begin()?;
        tx.set_ref(remote, name, Some(id));
        tx.commit()?;
        return Ok(ExitCode::SUCCESS);
    }
    let local = repo.list_refs(None)?;
    if args.delete {
        anyhow::ensure!(
            !args.prefixes.is_empty(),
            "At least one PREFIX is required when deleting refs"
        );
        for prefix in &args.prefixes {
            for (name, target) in &local {
                if !(name == prefix || name.starts_with(&format!("{prefix}/"))) {
                    continue;
                }
                if let Some((alias, _)) = local
                    .iter()
                    .find(|(_, t)| matches!(t, RefTarget::Alias(a) if a == name))
                    && matches!(target, RefTarget::Commit(_))
                {
                    anyhow::bail!("Ref '{name}' has an active alias: '{alias}'");
                }
                repo.write_ref(None, name, None)?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.alias {
        let aliases: Vec<(String, String)> = local
            .iter()
            .filter_map(|(n, t)| match t {
                RefTarget::Alias(a) => Some((n.clone(), a.clone())),
                RefTarget::Commit(_) => None,
            })
            .collect();
        let names: Vec<&str> = aliases.iter().map(|(n, _)| n.as_str()).collect();
        for name in ghash_order(&names) {
            if let Some((_, target)) = aliases.iter().find(|(n, _)| *n == name) {
                println!("{name} -> {target}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut all: Vec<String> = local.into_iter().map(|(n, _)| n).collect();
    all.extend(repo.list_remote_refs()?.into_iter().map(|(n, _)| n));
    if args.prefixes.is_empty() {
        for name in ghash_order(&all) {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    for prefix in &args.prefixes {
        anyhow::ensure!(
            is_valid_ref_name(prefix.trim_end_matches(':')) || prefix.ends_with(':'),
            "Listing refs: Invalid refspec {prefix}"
        );
        if all.iter().any(|n| n == prefix) {
            println!("{prefix}");
            continue;
        }
        let dir_prefix = if prefix.ends_with(':') {
            prefix.clone()
        } else {
            format!("{prefix}/")
        };
        let matched: Vec<String> = all
            .iter()
            .filter_map(|n| {
                n.strip_prefix(&dir_prefix).map(|rest| {
                    if args.list {
                        n.clone()
                    } else {
                        rest.to_string()
                    }
                })
            })
            .collect();
        for name in ghash_order(&matched) {
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
