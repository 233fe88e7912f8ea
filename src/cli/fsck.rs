//! `fsck`: check the repository for consistency, printing what `ostree fsck` prints.

use super::util::open_repo;
use rostree_store::fsck::{FsckOptions, FsckSink, fsck};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// Options of `fsck`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only print error messages
    #[arg(short, long)]
    quiet: bool,
    /// Don't stop on first error
    #[arg(short, long)]
    all: bool,
    /// Remove corrupted objects
    #[arg(long)]
    delete: bool,
}

/// Prints as ostree does: progress lines `fsck objects (i/n) p%` at most once a second when
/// standard output is not a terminal (the first and the last always), a bar on a terminal.
struct Console {
    last: Option<Instant>,
    tty: bool,
}

impl FsckSink for Console {
    fn out(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn err(&mut self, line: &str) {
        let _ = std::io::stdout().flush();
        eprintln!("{line}");
    }

    fn progress(&mut self, done: usize, total: usize) {
        let pct = if done == total {
            100
        } else {
            (done as f64 / total as f64 * 100.0) as u32
        };
        let min_gap_ms = if self.tty { 200 } else { 1000 };
        if pct != 100
            && self
                .last
                .is_some_and(|t| t.elapsed().as_millis() < min_gap_ms)
        {
            return;
        }
        self.last = Some(Instant::now());
        let text = format!("fsck objects ({done}/{total})");
        let mut out = std::io::stdout().lock();
        if self.tty {
            let width = 20usize;
            let filled = width * pct as usize / 100;
            let _ = write!(
                out,
                "\r{text} [{}{}] {pct:3}%",
                "=".repeat(filled),
                " ".repeat(width - filled)
            );
            if done == total {
                let _ = writeln!(out);
            }
        } else {
            let _ = writeln!(out, "{text} {pct}%");
        }
        let _ = out.flush();
    }
}

/// Runs `fsck`.
pub fn run(repo: Option<&Path>, args: Args) -> anyhow::Result<ExitCode> {
    let repo = open_repo(repo)?;
    let opts = FsckOptions {
        quiet: args.quiet,
        all: args.all,
        delete: args.delete,
    };
    let mut console = Console {
        last: None,
        tty: std::io::stdout().is_terminal(),
    };
    fsck(&repo, &opts, &mut console)?;
    Ok(ExitCode::SUCCESS)
}
