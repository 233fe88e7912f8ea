//! `log` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `log`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `log`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("log: not yet available")
}
