//! `rostree`: OSTree's command line, rebuilt on rostree-store.

mod cli;
mod sysroot;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
