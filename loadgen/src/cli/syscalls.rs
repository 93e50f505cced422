//! `loadgen syscalls`: a running server's system calls per request, by name, counted while
//! keep-alive load drives it.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use loadgen::bench::{self, BenchConfig};
use loadgen::census::{self, Counting, Tool};
use loadgen::measure::{parse_addr, parse_duration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server, e.g. 127.0.0.1:8088 (v6-async's default)
    #[arg(long, value_parser = parse_addr)]
    addr: SocketAddr,
    /// Keep-alive connections to drive it with
    #[arg(long, short = 'c', default_value_t = 16)]
    connections: usize,
    /// How long to count
    #[arg(long, short = 'd', default_value = "3s", value_parser = parse_duration)]
    duration: Duration,
    /// What to request
    #[arg(long, default_value = "/hello")]
    path: String,
    /// Count with strace even where perf works (slower, and it hides reads that find
    /// nothing: see the Measuring chapter)
    #[arg(long)]
    strace: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let tool = if args.strace { Tool::Strace } else { Tool::find().map_err(anyhow::Error::msg)? };
    let pid = census::listener_pid(args.addr.port())?.with_context(|| {
        format!(
            "no process on this machine listens on port {}: the census attaches to the \
             server's process, so start the server here first",
            args.addr.port()
        )
    })?;
    super::raise_fd_limit(args.connections)?;
    let counting = Counting::start(tool, pid)
        .with_context(|| format!("{} could not attach to process {pid}", tool.name()))?;
    let config = BenchConfig::new(args.addr, args.connections, args.duration, &args.path);
    let summary = bench::run(&config);
    let census = counting.finish(summary.as_ref().map_or(0, |s| s.requests))?;
    let summary = summary.with_context(|| format!("load against {} failed", args.addr))?;
    println!(
        "{} answered in {:.1} s by process {pid}, counted by {}: {:.2} system calls per request",
        summary.requests,
        summary.elapsed_secs,
        tool.name(),
        census.per_request()
    );
    let requests = census.requests.max(1) as f64;
    for (name, calls) in &census.calls {
        println!("  {name:<16} {:>10} {:>8.2} per request", calls, *calls as f64 / requests);
    }
    Ok(())
}
