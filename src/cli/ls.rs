//! `ls` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `ls`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `ls`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("ls: not yet available")
}
