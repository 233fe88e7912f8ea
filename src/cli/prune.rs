//! `prune` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `prune`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `prune`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("prune: not yet available")
}
