//! `peer-hyper`: the reference hyper server on its own (see the library for what it is).

use clap::Parser;

/// A hyper server answering `GET /hello`, to measure the versions against.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: peer_hyper::Args,
}

fn main() -> anyhow::Result<()> {
    peer_hyper::serve(&Cli::parse().args)
}
