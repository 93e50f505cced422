//! `loadgen sweep`: one server, open loop, at a rising series of offered rates; a line
//! per step as it completes, then the knee.

use anyhow::Context;
use loadgen::measure::{fmt_us, parse_addr};
use loadgen::serve::{self, Version};
use loadgen::sweep::{self, Step, SweepConfig, SweepResult};

/// What `--help` says after the options.
pub const EXPLAINED: &str = "\
Open loop: requests are due on a schedule whatever the server does, as independent
clients arrive; each latency counts from its due time, so a queue shows as latency
instead of slowing the generator down (a closed loop, `bench` without --rate, hides it).
Goodput: answers that came back 2xx within the SLO, per second; past the knee the
server may stay busy (throughput) while answering too late to be of use (goodput).
SLO: the latency an answer must come within (--slo). Knee: the highest offered rate
at which 99 in 100 requests were answered 2xx within the SLO (its p99 within it, a 503
or a timeout counting as a miss, however fast it came).";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server, e.g. 127.0.0.1:8084
    #[arg(long, value_parser = parse_addr, required_unless_present = "server")]
    pub addr: Option<std::net::SocketAddr>,
    /// Instead of --addr: start this version of the workspace on a free port, sweep it,
    /// stop it
    #[arg(id = "server", long = "version", value_parser = Version::parser(), conflicts_with = "addr")]
    pub version: Option<Version>,
    /// The version's own options, as one string (e.g. "--threads 4")
    #[arg(long, requires = "server", conflicts_with = "addr", allow_hyphen_values = true)]
    pub server_args: Option<String>,
    #[command(flatten)]
    pub config: SweepConfig,
    /// Print the whole result as one JSON object on the last line
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::raise_fd_limit(args.config.max_connections)?;
    // Kept until the sweep ends: dropped, the server stops.
    let mut _server = None;
    let addr = match (args.addr, args.version) {
        (Some(addr), _) => addr,
        (None, Some(version)) => {
            let words: Vec<&str> =
                args.server_args.as_deref().unwrap_or_default().split_whitespace().collect();
            let server = serve::spawn_with(version, &words, None)
                .with_context(|| format!("starting {}", version.name()))?;
            let addr = server.addr();
            _server = Some(server);
            addr
        }
        (None, None) => anyhow::bail!("give --addr or --version"),
    };
    let config = SweepConfig { addr, ..args.config };
    config.validate().map_err(anyhow::Error::msg)?;
    if !args.json && config.rates.is_none() && config.capacity.is_none() {
        println!(
            "estimating the capacity first: a closed loop of {} connections for {:?}",
            sweep::PROBE_CONNECTIONS,
            sweep::PROBE_DURATION
        );
    }
    if !args.json {
        println!("sweeping {addr}: {} every request, SLO {}", what(&config), fmt_us(slo(&config)));
        println!("{}", header());
    }
    let mut print = |step: &Step| {
        if !args.json {
            println!("{}", row(step));
        }
    };
    let result =
        sweep::run(&config, &mut print).with_context(|| format!("sweep of {addr} failed"))?;
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        print_end(&result);
    }
    Ok(())
}

fn slo(config: &SweepConfig) -> u64 {
    config.slo.as_micros() as u64
}

fn what(config: &SweepConfig) -> String {
    let connection =
        if config.close { "a new connection for" } else { "kept-alive connections for" };
    format!("GET {}, {connection}", config.path)
}

fn header() -> String {
    format!(
        "{:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>6} {:>16} {:>9}  {}",
        "offered/s",
        "sent",
        "answers/s",
        "goodput/s",
        "p50",
        "p99",
        "p99.9",
        "errors",
        "503s",
        "queue max",
        "CPU/req",
        "generator"
    )
}

fn row(step: &Step) -> String {
    let l = &step.latency_us;
    let queue = step
        .server
        .queues_max
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {}", short(name)))
        .collect::<Vec<_>>()
        .join(", ");
    let cpu = step.server.cpu_per_request_us.map_or("-".into(), |us| fmt_us(us.round() as u64));
    let bound = step.generator_bound_reason.as_deref().map_or(String::new(), |r| format!("* {r}"));
    format!(
        "{:>9.1} {:>7} {:>9.1} {:>9.1} {:>9} {:>9} {:>9} {:>7} {:>6} {:>16} {:>9}  {bound}",
        step.offered,
        step.sent,
        step.throughput,
        step.goodput,
        fmt_us(l.p50),
        fmt_us(l.p99),
        fmt_us(l.p999),
        step.errors.total() - step.unavailable,
        step.unavailable,
        if queue.is_empty() { "0".into() } else { queue },
        cpu,
    )
}

/// `accept_queue` → `accept`, `queued_connections` → `connections`: room in the table.
fn short(name: &str) -> &str {
    name.strip_suffix("_queue").or_else(|| name.strip_prefix("queued_")).unwrap_or(name)
}

fn print_end(result: &SweepResult) {
    if let Some(capacity) = result.capacity {
        let how = if result.probed { "estimated by a closed-loop probe" } else { "given" };
        println!("capacity: {capacity:.1} req/s ({how})");
    }
    if let Some(why) = &result.stopped_early {
        println!("{why}");
    }
    if result.steps.iter().any(|s| s.generator_bound) {
        println!("*: the generator, not the server, may have shaped that step");
    }
    if result.steps.iter().any(|s| s.errors.timeout > 0) {
        println!(
            "(requests never answered are in the latencies at the {} timeout)",
            fmt_us(result.timeout_us)
        );
    }
    match result.knee {
        Some(knee) => println!(
            "knee: {knee:.1} req/s, the highest offered rate at which 99 in 100 requests were \
             answered 2xx within the {} SLO",
            fmt_us(result.slo_us)
        ),
        None => {
            println!(
                "knee: none, no step had 99 in 100 requests answered 2xx within the {} SLO",
                fmt_us(result.slo_us)
            )
        }
    }
}
