//! The `v1-blocking` binary: parse the command line, serve.

use clap::Parser;
use v1_blocking::{Args, DEFAULT_ADDR};

/// v1-blocking: the iterative server. It serves one client until that client leaves,
/// then accepts the next; everyone else waits in the listen backlog.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v1_blocking::serve(&cli.args)?;
    Ok(())
}
