//! The command line: a file per subcommand, each holding its options and its `run`. The
//! options of `bench`, `hold` and `waits` are the engine's own settings (they derive
//! `clap::Args`), with only what the command line adds beside them (`--json`, `--keep`,
//! `--quick`, `--out`).

mod bench;
mod compare;
mod grade;
mod hold;
mod soak;
mod sweep;
mod syscalls;
mod timeline;
mod waits;
mod watch;

use anyhow::bail;
use clap::{Parser, Subcommand};
use loadgen::serve::Serve;

/// Load scripts for the versioned servers: measure one server, starve one, or compare
/// them all side by side.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "Start here: cargo run --release -p loadgen -- compare --quick\n\
                  Then read target/compare/report.html (or report.md)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Drive one server with many connections and report throughput, latency, errors
    Bench(bench::Args),
    /// Hold idle connections open, then time a new client's request
    Hold(hold::Args),
    /// Serve a live page for a server on this machine, read from the kernel by its port
    /// (accept queue, listen overflows, connections, TIME_WAIT) and from /proc (threads,
    /// memory, context switches), without asking the server: it goes on drawing while the
    /// server cannot answer (v1 busy with one client, a loop whose handler blocks)
    Watch(watch::Args),
    /// Offer one server a rising series of request rates, open loop, and find its knee:
    /// the highest rate whose p99 stays within an SLO; and its goodput beyond
    #[command(after_help = sweep::EXPLAINED)]
    Sweep(sweep::Args),
    /// Run every version through the scenario suite and write a report
    Compare(compare::Args),
    /// Hold a server (a version, every version, or one running here) under a mixed load
    /// with faults for minutes, reading its memory, descriptors, threads and connections;
    /// fail if one keeps growing or does not come back once the load stops
    #[command(after_help = soak::EXPLAINED)]
    Soak(soak::Args),
    /// Set select, poll, epoll and io_uring side by side: v4-syscalls on each --api,
    /// a few busy clients beside a growing crowd of idle ones, and the time per wait
    Waits(waits::Args),
    /// Count a running server's system calls per request, by name, while keep-alive load
    /// drives it (perf in the kernel; strace if perf cannot); the server must run on this
    /// machine, since its process is found from the port
    Syscalls(syscalls::Args),
    /// Grade a server: does it speak the protocol, and what model is it (serial, a thread
    /// or process per connection, a pool of how many, an event loop), told from how it
    /// behaves, whatever its language; and which version it is closest to
    #[command(after_help = grade::EXAMPLES)]
    Grade(grade::Args),
    /// Draw what each thread of a server did over half a second of a small fixed workload,
    /// as an SVG: a lane per thread, a bar per wait, read, handler and write, an arrow per
    /// hand-off; from a version run with --trace, a trace file, or /proc for any server
    #[command(after_help = timeline::EXPLAINED)]
    Timeline(timeline::Args),
    /// Run one version in this process, with the options its own binary takes (how
    /// `compare` starts each server)
    /// (`--help` after the server's name is the server's own)
    #[command(hide = true, disable_help_flag = true)]
    Serve(Serve),
}

/// Runs the subcommand asked for.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(version) => Ok(version.run()?),
        Command::Grade(args) => grade::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Hold(args) => hold::run(args),
        Command::Watch(args) => watch::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Soak(args) => soak::run(args),
        Command::Waits(args) => waits::run(args),
        Command::Syscalls(args) => syscalls::run(args),
        Command::Timeline(args) => timeline::run(args),
    }
}

/// The command as typed, `loadgen …`, for a report to say how it was produced.
fn command_line() -> String {
    let words = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    format!("loadgen {words}")
}

/// Each connection is a file descriptor, on our side and the server's (whose process
/// inherits our limit). Raise the soft limit as far as the hard one allows.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use loadgen::compare::ScenarioId;
    use loadgen::serve::Version;

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
        assert_eq!(args.config.duration, Duration::from_millis(500));
        assert_eq!(args.config.rate, Some(100.0));
        let error = Cli::try_parse_from(["loadgen", "bench", "--addr", "localhost"]).unwrap_err();
        assert!(error.to_string().contains("is not an address"), "{error}");
    }

    #[test]
    fn sweep_takes_an_address_or_a_version_with_its_options() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "sweep",
            "--version",
            "v3-thread-pool",
            "--server-args",
            "--threads 4",
            "--close",
            "--rates",
            "10,20",
            "--slo",
            "150ms",
        ])
        .unwrap();
        let Command::Sweep(args) = cli.command else { panic!("not sweep") };
        assert_eq!(
            (args.version, args.server_args.as_deref()),
            (Some(Version::V3_THREAD_POOL), Some("--threads 4"))
        );
        assert!(args.config.close && args.addr.is_none());
        assert_eq!(args.config.rates, Some(vec![10.0, 20.0]));
        assert_eq!(args.config.slo, Duration::from_millis(150));
        let cli = Cli::try_parse_from(["loadgen", "sweep", "--addr", "127.0.0.1:8084"]).unwrap();
        let Command::Sweep(args) = cli.command else { panic!("not sweep") };
        assert_eq!(args.addr, Some("127.0.0.1:8084".parse().unwrap()));
        for wrong in [
            &["loadgen", "sweep"][..],
            &["loadgen", "sweep", "--addr", "127.0.0.1:1", "--version", "v1-blocking"],
            &["loadgen", "sweep", "--addr", "127.0.0.1:1", "--server-args", "--threads 4"],
        ] {
            assert!(Cli::try_parse_from(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn timeline_takes_one_source_a_version_a_trace_or_an_address() {
        let parse = |words: &[&str]| {
            let argv = ["loadgen", "timeline"].iter().chain(words).copied();
            Cli::try_parse_from(argv).map(|cli| match cli.command {
                Command::Timeline(args) => args,
                _ => panic!("not timeline"),
            })
        };
        let args = parse(&["--version", "v3-thread-pool", "--server-args", "--threads 2"]).unwrap();
        assert_eq!(args.version, Some(Version::V3_THREAD_POOL));
        assert_eq!(args.server_args.as_deref(), Some("--threads 2"));
        assert_eq!(args.out, std::path::Path::new("timeline.svg"));
        let args = parse(&["--trace", "t.json", "--out", "t.svg"]).unwrap();
        assert_eq!(args.trace.as_deref(), Some(std::path::Path::new("t.json")));
        let args = parse(&["--addr", "127.0.0.1:8084", "--pid", "42"]).unwrap();
        assert_eq!((args.addr.map(|a| a.port()), args.pid), (Some(8084), Some(42)));
        for wrong in [
            &[][..],
            &["--version", "v1-blocking", "--trace", "t.json"],
            &["--trace", "t.json", "--addr", "127.0.0.1:1"],
            &["--pid", "42"],
            &["--trace", "t.json", "--server-args", "--threads 2"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn soak_takes_a_version_every_version_or_a_running_server() {
        let cli =
            Cli::try_parse_from(["loadgen", "soak", "--all", "-d", "90s", "--warm-up", "40s"])
                .unwrap();
        let Command::Soak(args) = cli.command else { panic!("not soak") };
        assert!(args.all && args.version.is_none() && args.addr.is_none());
        assert_eq!(args.config.duration, Duration::from_secs(90));
        assert_eq!(args.config.warm_up(), Duration::from_secs(40));
        let cli = Cli::try_parse_from(["loadgen", "soak", "--version", "v3-thread-pool"]).unwrap();
        let Command::Soak(args) = cli.command else { panic!("not soak") };
        assert_eq!(args.version, Some(Version::V3_THREAD_POOL));
        assert_eq!(args.config.warm_up(), Duration::from_secs(150), "a quarter of 10 minutes");
        for wrong in [
            &["loadgen", "soak"][..],
            &["loadgen", "soak", "--addr", "127.0.0.1:1"],
            &["loadgen", "soak", "--pid", "1"],
            &["loadgen", "soak", "--all", "--version", "v1-blocking"],
            &["loadgen", "soak", "--version", "v1-blocking", "--jobs", "2"],
        ] {
            assert!(Cli::try_parse_from(wrong).is_err(), "{wrong:?}");
        }
    }

    #[test]
    fn hold_and_waits_keep_their_defaults() {
        let cli = Cli::try_parse_from(["loadgen", "hold", "--addr", "127.0.0.1:8084"]).unwrap();
        let Command::Hold(args) = cli.command else { panic!("not hold") };
        assert_eq!((args.config.connections, args.config.path.as_str()), (100, "/hello"));
        assert_eq!(args.config.timeout, Duration::from_secs(3));
        let cli = Cli::try_parse_from(["loadgen", "waits", "--quick"]).unwrap();
        let Command::Waits(args) = cli.command else { panic!("not waits") };
        assert_eq!(args.config.idle, [0, 500, 1000, 5000, 10_000]);
        assert_eq!(args.config.apis().len(), 5);
        assert_eq!((args.config.active, args.config.duration), (4, Duration::from_secs(3)));
    }
}
