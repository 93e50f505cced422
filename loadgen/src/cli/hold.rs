//! `loadgen hold`: hold idle connections open, then time a new client's request; and,
//! asked to, keep them open while the kernel's view of the server's queue is printed.

use std::time::{Duration, Instant};

use anyhow::Context;
use loadgen::hold::{self, HoldConfig};
use loadgen::measure::{fmt_us, parse_duration};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: HoldConfig,
    /// Keep the idle connections open this much longer afterwards, to look at the server;
    /// meanwhile, once a second, the server's accept queue and the handshakes the kernel
    /// refused (when the server runs on this machine)
    #[arg(long, value_parser = parse_duration)]
    pub keep: Option<Duration>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = args.config;
    super::raise_fd_limit(config.connections)?;
    let listen_before = common::kernel::listen_counters().unwrap_or_default();
    let (result, idle) =
        hold::run(&config).with_context(|| format!("hold against {} failed", config.addr))?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        println!(
            "idle connections held: {} ({} failed: {})",
            result.held,
            result.failed.total(),
            result.failed.describe()
        );
        match result.answered_in_us {
            Some(us) => println!(
                "new client: answered in {} (status {})",
                fmt_us(us),
                result.status.unwrap_or(0)
            ),
            None => {
                println!("new client: no answer within {} (starved)", fmt_us(result.timeout_us))
            }
        }
    }
    let port = config.addr.port();
    if let Some(line) = hold::kernel_line(port, listen_before) {
        println!("{line}");
    }
    if let Some(keep) = args.keep {
        eprintln!("keeping {} idle connections open for {keep:?}", idle.len());
        let until = Instant::now() + keep;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            std::thread::sleep(left.min(Duration::from_secs(1)));
            if let Some(line) = hold::kernel_line(port, listen_before) {
                eprintln!("{line}");
            }
        }
    }
    Ok(())
}
