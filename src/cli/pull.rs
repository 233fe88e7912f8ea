//! `pull REMOTE [REF...]`: fetch commits from a remote archive repository.

use super::util::{format_size, open_repo};
use rostree_store::pull::{PullOptions, PullStats, Subpaths, pull};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Options of `pull`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Fetch only the commit metadata.
    #[arg(long)]
    commit_metadata_only: bool,
    /// Do not invoke fsync().
    #[arg(long)]
    disable_fsync: bool,
    /// Write refs suitable for a mirror and fetch all refs if none provided.
    #[arg(long)]
    mirror: bool,
    /// Only pull the provided subpath(s).
    #[arg(long = "subpath", value_name = "SUBPATH")]
    subpaths: Vec<String>,
    /// Traverse DEPTH parents (-1=infinite) (default: 0).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    depth: i64,
    /// The remote, or REMOTE:REF.
    remote: String,
    /// Refs or commit checksums to pull (default: the remote's configured branches).
    refs: Vec<String>,
}

/// Runs `pull`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let mut repo = open_repo(repo)?;
    if args.disable_fsync {
        repo.set_disable_fsync(true);
    }
    let (remote, mut refs) = match args.remote.split_once(':') {
        Some((r, branch)) => (r.to_string(), vec![branch.to_string()]),
        None => (args.remote.clone(), Vec::new()),
    };
    refs.extend(args.refs.iter().cloned());
    anyhow::ensure!(args.depth >= -1, "Invalid depth {}", args.depth);
    let options = PullOptions {
        refs,
        depth: args.depth,
        commit_metadata_only: args.commit_metadata_only,
        mirror: args.mirror,
        subpaths: Subpaths::new(&args.subpaths)?,
        ..PullOptions::default()
    };
    let stats = PullStats::default();
    let start = Instant::now();
    let done = std::sync::atomic::AtomicBool::new(false);
    let result = std::thread::scope(|scope| {
        if std::io::stdout().is_terminal() {
            scope.spawn(|| show_progress(&stats, &done));
        }
        let r = pull(&repo, &remote, &options, &stats);
        done.store(true, Ordering::Relaxed);
        r
    });
    result?;
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let (amount, unit) = if bytes < 1024 {
        (bytes, "B")
    } else {
        (bytes / 1024, "KiB")
    };
    println!(
        "{} metadata, {} content objects fetched; {amount} {unit} transferred in {} seconds; {} content written",
        stats.metadata.load(Ordering::Relaxed),
        stats.content.load(Ordering::Relaxed),
        start.elapsed().as_secs(),
        format_size(stats.content_bytes_written.load(Ordering::Relaxed)),
    );
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on the terminal: objects, bytes, rate and time left.
fn show_progress(stats: &PullStats, done: &std::sync::atomic::AtomicBool) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "Receiving objects: {percent:>3}% ({pos}/{len}) {msg} {elapsed_precise} ETA {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    while !done.load(Ordering::Relaxed) {
        let bytes = stats.bytes.load(Ordering::Relaxed);
        let rate = bytes as f64 / start.elapsed().as_secs_f64().max(0.001);
        bar.set_length(stats.content_needed.load(Ordering::Relaxed));
        bar.set_position(stats.content.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{} {}/s",
            format_size(bytes),
            format_size(rate as u64)
        ));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
}
