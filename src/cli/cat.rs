//! `cat` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `cat`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `cat`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("cat: not yet available")
}
