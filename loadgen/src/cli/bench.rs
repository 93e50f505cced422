//! `loadgen bench`: drive one server with many connections, then print what it did.

use anyhow::Context;
use loadgen::bench::{self, BenchConfig};
use loadgen::measure::{Summary, fmt_us};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: BenchConfig,
    /// Print one JSON object on the last line instead of the table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = BenchConfig { progress: !args.json, ..args.config };
    super::raise_fd_limit(config.connections)?;
    config.validate().map_err(anyhow::Error::msg)?;
    let summary =
        bench::run(&config).with_context(|| format!("load against {} failed", config.addr))?;
    if summary.connections_opened > 0 && summary.requests == 0 && summary.errors.refused > 0 {
        eprintln!("every connection was refused: is a server listening on {}?", config.addr);
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    let l = &s.latency_us;
    println!(
        "requests:    {} answered of {} sent in {:.1} s, {:.0} answered per second",
        s.requests, s.sent, s.elapsed_secs, s.requests_per_sec
    );
    println!(
        "latency:     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        s.fmt_latency(l.p50),
        s.fmt_latency(l.p90),
        s.fmt_latency(l.p99),
        s.fmt_latency(l.p999),
        s.fmt_latency(l.max)
    );
    if s.errors.timeout > 0 {
        println!(
            "             (the {} requests never answered are in it at the {} timeout)",
            s.errors.timeout,
            fmt_us(s.timeout_us)
        );
    }
    println!("errors:      {}", s.errors.describe());
    println!(
        "connections: {} opened; {} of {} clients had an answer",
        s.connections_opened, s.clients_answered, s.clients
    );
    let bound = if s.generator_bound() {
        ": near a full core, so the generator may be the limit; try --threads 2"
    } else {
        ""
    };
    println!(
        "generator:   {} thread(s), the busiest at {:.0}% of a core{bound}",
        s.generator_threads,
        100.0 * s.generator_busiest_share
    );
}
