//! `prune`: search for unreachable objects and delete them, printing what `ostree prune` prints.

use super::datetime::parse_datetime;
use super::util::{format_size, open_repo};
use rostree_store::prune::{PruneOptions, delete_commit, prune};
use std::path::Path;
use std::process::ExitCode;

/// Options of `prune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only display unreachable objects; don't delete
    #[arg(long)]
    no_prune: bool,
    /// Only compute reachability via refs
    #[arg(long)]
    refs_only: bool,
    /// Only traverse DEPTH parents for each commit (default: -1=infinite)
    #[arg(long, value_name = "DEPTH", default_value_t = -1, allow_negative_numbers = true)]
    depth: i32,
    /// Specify a commit to delete
    #[arg(long, value_name = "COMMIT")]
    delete_commit: Option<String>,
    /// Prune all commits older than the specified date
    #[arg(long, value_name = "DATE")]
    keep_younger_than: Option<String>,
    /// Change the behavior of delete-commit and keep-younger-than to prune only static deltas
    #[arg(long)]
    static_deltas_only: bool,
    /// Additionally retain BRANCH=DEPTH commits
    #[arg(long, value_name = "BRANCH=DEPTH")]
    retain_branch_depth: Vec<String>,
    /// Only prune BRANCH (may be specified multiple times)
    #[arg(long, value_name = "BRANCH")]
    only_branch: Vec<String>,
    /// Only traverse and delete commit objects.
    #[arg(long)]
    commit_only: bool,
}

/// `g_ascii_strtoll` base 10: the leading integer, or `None` when there are no digits.
fn strtoll(s: &str) -> Option<i64> {
    let t = s.trim_start();
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let v = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if neg { -v } else { v })
}

/// Runs `prune`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    if let Some(commit) = &args.delete_commit {
        if args.no_prune {
            anyhow::bail!("Cannot specify both --delete-commit and --no-prune");
        }
        if args.static_deltas_only {
            anyhow::bail!("--static-deltas-only with --delete-commit is not supported");
        }
        delete_commit(&mut repo, commit)?;
    } else if args.static_deltas_only {
        anyhow::bail!(
            "--static-deltas-only requires --delete-commit; see https://github.com/ostreedev/ostree/issues/1479"
        );
    }
    let keep_younger_than = match &args.keep_younger_than {
        Some(date) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Some(
                parse_datetime(date, now)
                    .ok_or_else(|| anyhow::anyhow!("Could not parse '{date}'"))?,
            )
        }
        None => None,
    };
    let mut retain_branch_depth = Vec::new();
    for bd in &args.retain_branch_depth {
        let Some((branch, depth)) = bd.split_once('=') else {
            anyhow::bail!("Invalid value {bd}, must specify BRANCH=DEPTH");
        };
        let Some(d) = strtoll(depth) else {
            anyhow::bail!("Invalid depth {depth}");
        };
        retain_branch_depth.push((branch.to_string(), d as i32));
    }
    let opts = PruneOptions {
        refs_only: args.refs_only,
        no_prune: args.no_prune,
        depth: args.depth,
        commit_only: args.commit_only,
        keep_younger_than,
        only_branches: args.only_branch,
        retain_branch_depth,
    };
    let stats = prune(&repo, &opts)?;
    if args.commit_only {
        println!("Total (commit only) objects: {}", stats.total);
    } else {
        println!("Total objects: {}", stats.total);
    }
    if stats.pruned == 0 {
        println!("No unreachable objects");
    } else if args.no_prune {
        println!(
            "Would delete: {} objects, freeing {}",
            stats.pruned,
            format_size(stats.freed_bytes)
        );
    } else {
        println!(
            "Deleted {} objects, {} freed",
            stats.pruned,
            format_size(stats.freed_bytes)
        );
    }
    Ok(ExitCode::SUCCESS)
}
