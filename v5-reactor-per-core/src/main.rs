//! The `v5-reactor-per-core` binary: parse the command line, serve.

use clap::Parser;
use v5_reactor_per_core::{Args, DEFAULT_ADDR};

/// v5-reactor-per-core: an event loop per core, as nginx and Netty do it. Each loop
/// thread has its own listening socket (SO_REUSEPORT) and serves the connections it
/// accepted, handlers included, with no hand-off to another thread.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "See how the kernel spread the connections: curl -s http://{addr}/stats\n\
                  See a loop stall: --loops 2, then /cpu?ms=3000 beside a few /hello"
)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v5_reactor_per_core::serve(&cli.args)?;
    Ok(())
}
