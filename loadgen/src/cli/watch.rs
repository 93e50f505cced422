//! `loadgen watch`: the live page for a server on this machine, read from the kernel.

use std::net::SocketAddr;

use loadgen::measure::parse_addr;
use loadgen::watch;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example, v1's queue filling:\n  \
    v1-blocking --backlog 16 &\n  \
    loadgen watch --addr 127.0.0.1:8081      (open http://127.0.0.1:9090/)\n  \
    loadgen hold --addr 127.0.0.1:8081 -c 200 --keep 60s")]
pub struct Args {
    /// The server to watch, e.g. 127.0.0.1:8081 (v1-blocking's default); it must run on
    /// this machine
    #[arg(long, value_parser = parse_addr)]
    addr: SocketAddr,
    /// Where to serve the page
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let watch = watch::Watch::new(args.addr.port())?;
    let listener = watch::bind(args.listen)?;
    let pid = watch.pid().map_or_else(|| "not found".to_owned(), |p| p.to_string());
    let page = listener.local_addr()?;
    // The first line as every version prints it, so scripts and tests wait for it alike.
    println!("loadgen-watch listening on {page}");
    println!("watching port {} (process {pid}): open http://{page}/", args.addr.port());
    watch::serve(watch, listener)
}
