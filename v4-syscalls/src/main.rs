//! The `v4-syscalls` binary: parse the command line, serve.

use clap::Parser;
use v4_syscalls::{Args, DEFAULT_ADDR};

/// v4-syscalls: one event loop on one thread, written directly on the kernel interface
/// --api names (select, poll, epoll, epoll-et, io-uring), handlers inline. The same
/// server five times; only the way it waits for sockets differs.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Compare the waits: curl -s http://{addr}/stats (model.waits, events_per_wait, wait_secs)\n\
                  See select's limit: more than 1,020 connections (python3 scripts/hold-idle.py {addr} 1100)"
)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v4_syscalls::serve(&cli.args)?;
    Ok(())
}
