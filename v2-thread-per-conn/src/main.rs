//! The `v2-thread-per-conn` binary: parse the command line, serve.

use clap::Parser;
use v2_thread_per_conn::{Args, DEFAULT_ADDR};

/// v2-thread-per-conn: a new thread for every connection. No client waits for another,
/// but every open connection, even an idle one, costs a thread.
#[derive(Debug, Parser)]
#[command(version, after_help = "Watch the threads grow: curl -s http://{addr}/stats")]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v2_thread_per_conn::serve(&cli.args)?;
    Ok(())
}
