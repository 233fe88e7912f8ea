//! `rostree`: OSTree's command line, rebuilt on rostree-store.

mod cli;
mod sysroot;

use clap::Parser;
use std::process::ExitCode;

/// Raises the soft limit on open files to the hard one: commits hold written objects open
/// until one sync publishes them, and fewer early publishes mean fewer syncs.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

fn main() -> ExitCode {
    raise_fd_limit();
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
