//! The `v3-thread-pool` binary: parse the command line, serve.

use clap::Parser;
use v3_thread_pool::{Args, DEFAULT_ADDR};

/// v3-thread-pool: a fixed pool of worker threads, each serving one whole connection at a
/// time. Threads stay flat however many clients connect, but as many idle clients as
/// there are workers leave every newcomer waiting in the queue.
#[derive(Debug, Parser)]
#[command(version, after_help = "See the pool: curl -s http://{addr}/stats")]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v3_thread_pool::serve(&cli.args)?;
    Ok(())
}
