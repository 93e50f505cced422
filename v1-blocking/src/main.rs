//! The `v1-blocking` binary: parse the command line, open the socket, serve.

use clap::Parser;
use common::cli::ServerArgs;
use v1_blocking::{DEFAULT_ADDR, SERVER};

/// v1-blocking: the iterative server. It serves one client until that client leaves,
/// then accepts the next; everyone else waits in the listen backlog.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Try it: curl -v http://127.0.0.1:8081/hello, or nc 127.0.0.1 8081 and type GET /hello"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    let (listener, dispatcher, config) = common::cli::start(SERVER, &cli.server)?;
    v1_blocking::run(listener, dispatcher, config)?;
    Ok(())
}
