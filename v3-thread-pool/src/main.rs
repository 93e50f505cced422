//! The `v3-thread-pool` binary: parse the command line, open the socket, serve.

use clap::Parser;
use clap::builder::TypedValueParser as _;
use common::cli::ServerArgs;
use v3_thread_pool::{Config, DEFAULT_ADDR, DEFAULT_THREADS, SERVER};

/// v3-thread-pool: a fixed pool of worker threads, each serving one whole connection at a
/// time. Threads stay flat however many clients connect, but as many idle clients as
/// there are workers leave every newcomer waiting in the queue.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Try it: curl -v http://127.0.0.1:8084/hello, or nc 127.0.0.1 8084 and type GET /hello\n\
                  See the pool: curl -s http://127.0.0.1:8084/stats"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Worker threads in the pool: the most connections served at once
    #[arg(long, value_name = "N", default_value_t = DEFAULT_THREADS,
          value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    let (listener, dispatcher, server) = common::cli::start(SERVER, &cli.server)?;
    let config = Config { server, threads: cli.threads };
    v3_thread_pool::run(listener, dispatcher, config)?;
    Ok(())
}
