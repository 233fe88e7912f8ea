//! `show` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `show`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `show`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("show: not yet available")
}
