//! The `v2-thread-per-conn` binary: parse the command line, open the socket, serve.

use clap::Parser;
use common::cli::ServerArgs;
use v2_thread_per_conn::{DEFAULT_ADDR, SERVER};

/// v2-thread-per-conn: a new thread for every connection. No client waits for another,
/// but every open connection, even an idle one, costs a thread.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Try it: curl -v http://127.0.0.1:8082/hello, or nc 127.0.0.1 8082 and type GET /hello\n\
                  Watch the threads grow: curl -s http://127.0.0.1:8082/stats"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    let (listener, dispatcher, config) = common::cli::start(SERVER, &cli.server)?;
    v2_thread_per_conn::run(listener, dispatcher, config)?;
    Ok(())
}
