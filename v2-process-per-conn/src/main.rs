//! The `v2-process-per-conn` binary: parse the command line, open the socket, serve.

use clap::Parser;
use common::cli::ServerArgs;
use v2_process_per_conn::{DEFAULT_ADDR, SERVER};

/// v2-process-per-conn: the parent accepts and forks; a child process serves each
/// connection and exits. No client waits for another, each costs a process, and the
/// children share nothing: /stats shows only the answering child's counters.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Try it: curl -v http://127.0.0.1:8083/hello, or nc 127.0.0.1 8083 and type GET /hello\n\
                  See the children: ps --ppid $(pgrep -of v2-process-per-conn) -o pid,comm"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    // Single-threaded: no signal thread here; `run` handles SIGINT and SIGTERM itself.
    let (listener, dispatcher, config) = common::cli::start_single_threaded(SERVER, &cli.server)?;
    v2_process_per_conn::run(listener, dispatcher, config)?;
    Ok(())
}
