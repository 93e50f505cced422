//! The `loadgen` binary: the load scripts' command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use loadgen::bench::{self, BenchConfig, Wire};
use loadgen::census::{self, Counting, Tool};
use loadgen::compare::{self, ScenarioId};
use loadgen::hold::{self, HoldConfig};
use loadgen::measure::{Summary, fmt_us, parse_duration};
use loadgen::peers::Peer;
use loadgen::report;
use loadgen::serve::{self, Serve, Version};

/// Load scripts for the versioned servers: measure one server, starve one, or compare
/// them all side by side.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Start here: cargo run --release -p loadgen -- compare --quick\n\
                  Then read target/compare/report.html (or report.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive one server with many connections and report throughput, latency, errors
    Bench(BenchArgs),
    /// Hold idle connections open, then time a new client's request
    Hold(HoldArgs),
    /// Serve a live page for a server on this machine, read from the kernel by its port
    /// (accept queue, listen overflows, connections, TIME_WAIT) and from /proc (threads,
    /// memory, context switches), without asking the server: it goes on drawing while the
    /// server cannot answer (v1 busy with one client, a loop whose handler blocks)
    Watch(WatchArgs),
    /// Run every version through the scenario suite and write a report
    Compare(CompareArgs),
    /// Set select, poll, epoll and io_uring side by side: v4-syscalls on each --api,
    /// a few busy clients beside a growing crowd of idle ones, and the time per wait
    Waits(WaitsArgs),
    /// Count a running server's system calls per request, by name, while keep-alive load
    /// drives it (perf in the kernel; strace if perf cannot); the server must run on this
    /// machine, since its process is found from the port
    Syscalls(SyscallsArgs),
    /// Grade a server: does it speak the protocol, and what model is it (serial, a thread
    /// or process per connection, a pool of how many, an event loop), told from how it
    /// behaves, whatever its language; and which version it is closest to
    #[command(after_help = GRADE_EXAMPLES)]
    Grade(GradeArgs),
    /// Run one version in this process, with the options its own binary takes (how
    /// `compare` starts each server)
    /// (`--help` after the server's name is the server's own)
    #[command(hide = true, disable_help_flag = true)]
    Serve(Serve),
}

const GRADE_EXAMPLES: &str = "Examples:\n  \
    loadgen grade -- python3 my_server.py --port {port}\n  \
    loadgen grade -- ./target/release/my-server --addr {addr}\n  \
    loadgen grade --version v3-thread-pool -- --threads 4\n  \
    loadgen grade --addr 127.0.0.1:9000   (running already: no /proc, no crash test)";

#[derive(Debug, clap::Args)]
struct GradeArgs {
    /// Grade a workspace version, started on a free port (options for it after `--`)
    #[arg(long, value_parser = Version::parser(), conflicts_with = "addr")]
    version: Option<Version>,
    /// Grade a server already running there; what needs its /proc, or would crash it, is
    /// skipped and said so
    #[arg(long, value_parser = serve::parse_addr)]
    addr: Option<SocketAddr>,
    /// Print the grade as JSON instead of the scorecard
    #[arg(long)]
    json: bool,
    /// Leave out the fault matrix (a fresh server per fault: a minute or two)
    #[arg(long)]
    no_matrix: bool,
    /// Leave out the runs against the closest version (two scenarios, a few seconds each)
    #[arg(long)]
    no_versus: bool,
    /// Also write the scorecard as a page that needs nothing else to open
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The command that starts your server (after `--`), with {addr} or {port} where its
    /// listening address or port goes; or a version's options, with --version
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct BenchArgs {
    /// The server, e.g. 127.0.0.1:8085 (v4-nio's default)
    #[arg(long, value_parser = serve::parse_addr)]
    addr: SocketAddr,
    /// Connections to keep busy
    #[arg(long, short = 'c', default_value_t = 64)]
    connections: usize,
    /// How long to run: 10s, 500ms, 1m
    #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// What to request
    #[arg(long, default_value = "/hello")]
    path: String,
    #[arg(long, value_enum, default_value_t = Wire::Http)]
    protocol: Wire,
    /// Requests written at once per connection before reading the answers
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// A new connection for every request
    #[arg(long)]
    close: bool,
    /// Open loop: this many requests per second in all, on a fixed schedule, each
    /// latency counted from when its request was due (so stalls are not hidden)
    #[arg(long, value_name = "REQ_PER_SEC")]
    rate: Option<f64>,
    /// A request unanswered this long counts as a timeout
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Driver threads (1 or 2); one thread drives thousands of connections
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print one JSON object on the last line instead of the table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct HoldArgs {
    /// The server, e.g. 127.0.0.1:8084 (v3-thread-pool's default)
    #[arg(long, value_parser = serve::parse_addr)]
    addr: SocketAddr,
    /// Idle connections to hold
    #[arg(long, short = 'c', default_value_t = 100)]
    connections: usize,
    /// What the new client asks for
    #[arg(long, default_value = "/hello")]
    path: String,
    /// How long the idle connections may take to be established (all at once), and the new
    /// client to be answered
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    timeout: Duration,
    /// Keep the idle connections open this much longer afterwards, to look at the server;
    /// meanwhile, once a second, the server's accept queue and the handshakes the kernel
    /// refused (when the server runs on this machine)
    #[arg(long, value_parser = parse_duration)]
    keep: Option<Duration>,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example, v1's queue filling:\n  \
    v1-blocking --backlog 16 &\n  \
    loadgen watch --addr 127.0.0.1:8081      (open http://127.0.0.1:9090/)\n  \
    loadgen hold --addr 127.0.0.1:8081 -c 200 --keep 60s")]
struct WatchArgs {
    /// The server to watch, e.g. 127.0.0.1:8081 (v1-blocking's default); it must run on
    /// this machine
    #[arg(long, value_parser = serve::parse_addr)]
    addr: SocketAddr,
    /// Where to serve the page
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: SocketAddr,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Shorter runs and 1,000 instead of 10,000 connections: under a minute in all
    #[arg(long)]
    quick: bool,
    /// Only these scenarios (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<ScenarioId>,
    /// Only these versions (comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = Version::parser())]
    versions: Vec<Version>,
    /// Also run the reference servers through the scenarios they answer, apart from the
    /// versions: nginx (v5's design), Tomcat's NIO connector with 10 and with 200 threads
    /// (v4's), hyper (v6's). Alone, all four; or a comma-separated list. One not installed
    /// is skipped, with the package to install
    #[arg(long, value_enum, value_delimiter = ',', num_args = 0.., value_name = "PEERS")]
    peers: Option<Vec<Peer>>,
    /// Where to write the report [default: target/compare]
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
struct SyscallsArgs {
    /// The server, e.g. 127.0.0.1:8088 (v6-async's default)
    #[arg(long, value_parser = serve::parse_addr)]
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

#[derive(Debug, clap::Args)]
struct WaitsArgs {
    /// The interfaces to measure (comma-separated) [default: all five]
    #[arg(long, value_enum, value_delimiter = ',')]
    apis: Vec<v4_syscalls::Api>,
    /// Idle connections to hold in each run (comma-separated)
    #[arg(long, value_delimiter = ',', default_value = "0,500,1000,5000,10000")]
    idle: Vec<usize>,
    /// Keep-alive clients driving the server beside the idle ones
    #[arg(long, default_value_t = 4)]
    active: usize,
    /// How long each run drives the server
    #[arg(long, short = 'd', default_value = "3s", value_parser = parse_duration)]
    duration: Duration,
    /// One second per run instead of the --duration
    #[arg(long)]
    quick: bool,
    /// Where to write the report [default: target/waits]
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(version) => Ok(version.run()?),
        Command::Grade(args) => grade(args),
        Command::Bench(args) => run_bench(args),
        Command::Hold(args) => run_hold(args),
        Command::Watch(args) => run_watch(args),
        Command::Compare(args) => run_compare(args),
        Command::Waits(args) => run_waits(args),
        Command::Syscalls(args) => run_syscalls(args),
    }
}

fn run_bench(args: BenchArgs) -> anyhow::Result<()> {
    raise_fd_limit(args.connections)?;
    let config = BenchConfig {
        addr: args.addr,
        connections: args.connections,
        duration: args.duration,
        path: args.path,
        wire: args.protocol,
        pipeline: args.pipeline,
        close: args.close,
        rate: args.rate,
        timeout: args.timeout,
        threads: args.threads,
        progress: !args.json,
        ..BenchConfig::new(args.addr, args.connections, args.duration, "/")
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let summary =
        bench::run(&config).with_context(|| format!("load against {} failed", args.addr))?;
    if summary.connections_opened > 0 && summary.requests == 0 && summary.errors.refused > 0 {
        eprintln!("every connection was refused: is a server listening on {}?", args.addr);
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

fn run_hold(args: HoldArgs) -> anyhow::Result<()> {
    raise_fd_limit(args.connections)?;
    let config = HoldConfig {
        addr: args.addr,
        connections: args.connections,
        path: args.path,
        timeout: args.timeout,
    };
    let listen_before = common::kernel::listen_counters().unwrap_or_default();
    let (result, idle) =
        hold::run(&config).with_context(|| format!("hold against {} failed", args.addr))?;
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
    let port = args.addr.port();
    if let Some(line) = hold::kernel_line(port, listen_before) {
        println!("{line}");
    }
    if let Some(keep) = args.keep {
        eprintln!("keeping {} idle connections open for {keep:?}", idle.len());
        let until = std::time::Instant::now() + keep;
        while let Some(left) = until.checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(left.min(Duration::from_secs(1)));
            if let Some(line) = hold::kernel_line(port, listen_before) {
                eprintln!("{line}");
            }
        }
    }
    Ok(())
}

fn run_watch(args: WatchArgs) -> anyhow::Result<()> {
    let watch = loadgen::watch::Watch::new(args.addr.port())?;
    let listener = loadgen::watch::bind(args.listen)?;
    let pid = watch.pid().map_or_else(|| "not found".to_owned(), |p| p.to_string());
    let page = listener.local_addr()?;
    // The first line as every version prints it, so scripts and tests wait for it alike.
    println!("loadgen-watch listening on {page}");
    println!("watching port {} (process {pid}): open http://{page}/", args.addr.port());
    loadgen::watch::serve(watch, listener)
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let mut scenarios = compare::suite(args.quick);
    if !args.only.is_empty() {
        scenarios.retain(|s| args.only.contains(&s.id));
    }
    let versions = if args.versions.is_empty() { Version::all() } else { args.versions.clone() };
    let most = scenarios
        .iter()
        .map(|s| match &s.load {
            compare::Load::Bench(b) => b.connections,
            compare::Load::Hold(h) => h.connections,
            compare::Load::Waits(w) => w.idle.iter().max().copied().unwrap_or(0) + w.active,
        })
        .max()
        .unwrap_or(0);
    raise_fd_limit(most)?;
    let out = match args.out {
        Some(out) => out,
        None => default_out_dir(),
    };
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let peers = match args.peers {
        Some(peers) if peers.is_empty() => Peer::ALL.to_vec(),
        Some(peers) => peers,
        None => Vec::new(),
    };
    let comparison = compare::run(&scenarios, &versions, &peers, args.quick, &out)?;
    print!("{}", report::terminal(&comparison));
    let written = report::write_all(&comparison, &format!("loadgen {command}"), &out)?;
    println!();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `target/compare` beside the `loadgen` binary, wherever the command was run from.
fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|target| target.join("compare")))
        .unwrap_or_else(|| PathBuf::from("target/compare"))
}

/// Each connection is a file descriptor, on our side and the server's (whose process
/// inherits our limit). Raise the soft limit as far as the hard one allows.
fn run_waits(args: WaitsArgs) -> anyhow::Result<()> {
    let config = loadgen::waits::WaitsConfig {
        apis: if args.apis.is_empty() { v4_syscalls::Api::ALL.to_vec() } else { args.apis },
        idle: args.idle,
        active: args.active,
        duration: if args.quick { Duration::from_secs(1) } else { args.duration },
    };
    raise_fd_limit(config.idle.iter().copied().max().unwrap_or(0) + config.active)?;
    let command = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let command = format!("loadgen {command}");
    eprintln!(
        "v4-syscalls, {} clients beside the idle ones, {:?} per run:",
        config.active, config.duration
    );
    let points = loadgen::waits::run(&config)?;
    let out = args.out.unwrap_or_else(|| PathBuf::from("target/waits"));
    std::fs::create_dir_all(&out)?;
    let markdown = loadgen::waits::markdown(&points, &config, &command);
    println!("{markdown}");
    for (name, text) in [
        ("results.json", serde_json::to_string_pretty(&points)?),
        ("report.md", markdown),
        ("report.html", loadgen::waits::html(&points, &config, &command)),
    ] {
        std::fs::write(out.join(name), text)?;
        eprintln!("wrote {}", out.join(name).display());
    }
    Ok(())
}

fn run_syscalls(args: SyscallsArgs) -> anyhow::Result<()> {
    let tool = if args.strace { Tool::Strace } else { Tool::find().map_err(anyhow::Error::msg)? };
    let pid = census::listener_pid(args.addr.port())?.with_context(|| {
        format!(
            "no process on this machine listens on port {}: the census attaches to the \
             server's process, so start the server here first",
            args.addr.port()
        )
    })?;
    raise_fd_limit(args.connections)?;
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

fn raise_fd_limit(connections: usize) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let needed = connections as u64 + 256;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= needed {
        return Ok(());
    }
    if hard < needed {
        bail!(
            "{connections} connections need about {needed} file descriptors, but the limit is \
             {hard}; raise it (ulimit -n {needed}) or use fewer connections"
        );
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    Ok(())
}

fn grade(args: GradeArgs) -> anyhow::Result<()> {
    use loadgen::grade::{self, Target};
    let target = match (args.version, args.addr) {
        (Some(version), _) => Target::Version(version, args.command),
        (None, Some(addr)) if args.command.is_empty() => Target::Running(addr),
        (None, Some(_)) => bail!("give either --addr or a command to start, not both"),
        (None, None) if args.command.is_empty() => {
            bail!(
                "what should be graded? Give a command after `--` (with {{addr}} or {{port}}), --version NAME, or --addr HOST:PORT"
            )
        }
        (None, None) => Target::Command(args.command),
    };
    let grade =
        grade::grade(&target, grade::Options { matrix: !args.no_matrix, versus: !args.no_versus })?;
    if let Some(path) = &args.html {
        std::fs::write(path, grade::scorecard::html(&grade))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&grade)?);
    } else {
        let color = std::io::IsTerminal::is_terminal(&std::io::stdout());
        print!("{}", grade::scorecard::terminal(&grade, color));
    }
    if !grade.passed() {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_takes_lists_of_scenarios_and_versions() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "compare",
            "--quick",
            "--only",
            "keep-alive,c10k",
            "--versions",
            "v1-blocking,v4-nio",
        ])
        .unwrap();
        let Command::Compare(args) = cli.command else { panic!("not compare") };
        assert!(args.quick);
        assert_eq!(args.only, [ScenarioId::KeepAlive, ScenarioId::C10k]);
        assert_eq!(args.versions, [Version::V1_BLOCKING, Version::V4_NIO]);
        assert!(Cli::try_parse_from(["loadgen", "compare", "--only", "nonsense"]).is_err());
    }

    #[test]
    fn bench_parses_durations_and_rejects_bad_addresses() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "bench",
            "--addr",
            "127.0.0.1:8085",
            "-d",
            "500ms",
            "--rate",
            "100",
        ])
        .unwrap();
        let Command::Bench(args) = cli.command else { panic!("not bench") };
        assert_eq!(args.duration, Duration::from_millis(500));
        assert_eq!(args.rate, Some(100.0));
        let error = Cli::try_parse_from(["loadgen", "bench", "--addr", "localhost"]).unwrap_err();
        assert!(error.to_string().contains("is not an address"), "{error}");
    }

    #[test]
    fn every_scenario_of_both_suites_is_valid() {
        for quick in [true, false] {
            for scenario in compare::suite(quick) {
                if let compare::Load::Bench(config) = &scenario.load {
                    assert_eq!(config.validate(), Ok(()), "{:?}", scenario.id);
                }
                assert!(!scenario.lesson.is_empty());
            }
        }
    }
}
