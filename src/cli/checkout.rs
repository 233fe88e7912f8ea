//! `checkout` (being written).

use std::path::Path;
use std::process::ExitCode;

/// Options of `checkout`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `checkout`.
pub fn run(_repo: Option<&Path>, _args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("checkout: not yet available")
}
