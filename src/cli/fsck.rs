//! `fsck` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `fsck`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `fsck`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("fsck: not yet available")
}
