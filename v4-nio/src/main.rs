//! The `v4-nio` binary: parse the command line, open the socket, serve.

use clap::Parser;
use common::cli::ServerArgs;
use v4_nio::{Config, DEFAULT_ADDR, DEFAULT_MAX_CONNECTIONS, DEFAULT_WORKERS, SERVER};

/// v4-nio: I/O multiplexing like Tomcat's NIO connector. An acceptor thread accepts, a
/// poller thread watches every connection with epoll (through mio), and a pool of workers
/// serves only the connections that have something to read. Idle clients cost no thread.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Try it: curl -v http://127.0.0.1:8085/hello, or nc 127.0.0.1 8085 and type GET /hello\n\
                  Watch the machinery: curl -s http://127.0.0.1:8085/stats\n\
                  See the event loop's weakness: --workers 0, then /cpu?ms=2000 beside /hello"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Worker threads; 0 runs every handler on the poller thread (a single-threaded
    /// event loop, where one slow handler stalls every connection)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WORKERS)]
    workers: usize,

    /// Most connections open at once; at the cap the acceptor waits for one to close
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    let (listener, dispatcher, server) = common::cli::start(SERVER, &cli.server)?;
    let config = Config { server, workers: cli.workers, max_connections: cli.max_connections };
    v4_nio::run(listener, dispatcher, config)?;
    Ok(())
}
