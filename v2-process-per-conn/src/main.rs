//! The `v2-process-per-conn` binary: parse the command line, serve.

use clap::Parser;
use v2_process_per_conn::{Args, DEFAULT_ADDR};

/// v2-process-per-conn: the parent accepts and forks; a child process serves each
/// connection and exits. No client waits for another, each costs a process, and the
/// children share nothing: /stats shows only the answering child's counters.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "See the children: ps --ppid $(pgrep -o -x v2-process-per-) -o pid,comm"
)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v2_process_per_conn::serve(&cli.args)?;
    Ok(())
}
