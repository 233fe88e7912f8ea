//! `diff` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `diff`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `diff`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("diff: not yet available")
}
