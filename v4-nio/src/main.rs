//! The `v4-nio` binary: parse the command line, serve.

use clap::Parser;
use v4_nio::{Args, DEFAULT_ADDR};

/// v4-nio: I/O multiplexing like Tomcat's NIO connector. An acceptor thread accepts, a
/// poller thread watches every connection with epoll (through mio), and a pool of workers
/// serves only the connections that have something to read. Idle clients cost no thread.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Watch the machinery: curl -s http://{addr}/stats\n\
                  See the event loop's weakness: --workers 0, then /cpu?ms=2000 beside /hello"
)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v4_nio::serve(&cli.args)?;
    Ok(())
}
