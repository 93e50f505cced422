//! The `v6-async` binary: parse the command line, serve.

use clap::Parser;
use v6_async::{Args, DEFAULT_ADDR};

/// v6-async: the same server on tokio. A task per connection, written as straight as
/// v2's thread per connection; tokio's runtime (worker threads with work stealing, over
/// one epoll-based I/O driver) does what v4 and v5 do by hand.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Watch the tasks: curl -s http://{addr}/stats\n\
                  Blocking inside async: --workers 2, then two /sleep?ms=3000 beside a /hello; \
                  then the same with --blocking spawn"
)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

fn main() -> anyhow::Result<()> {
    let cli: Cli = common::cli::parse(DEFAULT_ADDR);
    v6_async::serve(&cli.args)?;
    Ok(())
}
