//! `loadgen soak`: one version, every version at once, or a server already running, held
//! under the mixed load with faults for a set time; a table per server, or `--json`, and a
//! failing exit when anything kept growing or did not come back.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use common::testkit::ChildServer;
use loadgen::measure::parse_addr;
use loadgen::serve::Version;
use loadgen::soak::{self, Resource, Sample, Soak, SoakConfig, Target};
use serde::Serialize;

/// What `--help` says after the options.
pub const EXPLAINED: &str = "\
The mix, a client of each kind, repeating until the time is up: kept-alive requests open
loop (--rate a second), connections closed by FIN, by reset and by half-close, two
slowloris clients, a non-reader, bad heads, GET /panic, and 512 KiB echoes (each pausing
--pause between visits). Read every --every from /proc and the kernel: memory (RSS; the
fork version's whole tree, as PSS), descriptors, threads, processes, open connections.
Fails when one keeps growing after --warm-up (a robust slope and the last third's median
against the first's both past the tolerance), or is not back within --settle once the load
stops (counts to their baseline, memory to its level after the warm-up).

Examples:
  loadgen soak --version v3-thread-pool -d 2m
  loadgen soak --all -d 10m                    (every version at once, each on its port)
  loadgen soak --addr 127.0.0.1:8080 --pid $(pgrep -n myserver) -d 30m";

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["server", "all", "addr"])))]
pub struct Args {
    /// Start this version of the workspace on a free port and soak it
    #[arg(id = "server", long = "version", value_parser = Version::parser())]
    pub version: Option<Version>,
    /// The version's own options, as one string (e.g. "--threads 4")
    #[arg(long, requires = "server", allow_hyphen_values = true)]
    pub server_args: Option<String>,
    /// Soak every version of the registry (v4-syscalls once per --api), all at once
    #[arg(long)]
    pub all: bool,
    /// With --all: how many servers to soak at once (0: all of them)
    // Not `requires = "all"`: a flag is present with its default, false, so that would
    // let --jobs through with --version.
    #[arg(long, default_value_t = 0, conflicts_with_all = ["server", "addr"])]
    pub jobs: usize,
    /// A server already running on this machine, e.g. 127.0.0.1:8080 (with --pid)
    #[arg(long, value_parser = parse_addr, requires = "pid")]
    pub addr: Option<SocketAddr>,
    /// Its process
    #[arg(long, requires = "addr")]
    pub pid: Option<u32>,
    /// Count the process's children as part of it (a server that forks per connection)
    #[arg(long, requires = "addr")]
    pub tree: bool,
    #[command(flatten)]
    pub config: SoakConfig,
    /// Print every soak as one JSON array on stdout (the progress stays on stderr)
    #[arg(long)]
    pub json: bool,
}

/// A server to soak and what it is called in the tables.
#[derive(Debug, Clone)]
struct Subject {
    name: String,
    version: Option<Version>,
    args: Vec<String>,
}

/// One server's soak as reported: its name, and what the soak saw or why it could not run.
#[derive(Debug, Serialize)]
struct Report {
    name: String,
    #[serde(flatten)]
    soak: Option<Soak>,
    error: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    args.config.validate().map_err(anyhow::Error::msg)?;
    let reports = match (args.addr, args.pid) {
        (Some(addr), Some(pid)) => {
            let target = Target { addr, pid, tree: args.tree };
            let name = addr.to_string();
            vec![report(name.clone(), soak_one(&name, target, &args.config))]
        }
        _ => soak_versions(subjects(&args), &args.config, args.jobs)?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&reports)?);
    } else {
        for report in &reports {
            print_report(report);
        }
    }
    let failed: Vec<&str> = reports
        .iter()
        .filter(|r| !r.soak.as_ref().is_some_and(|s| s.passed))
        .map(|r| r.name.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("the soak failed for {}", failed.join(", "));
    }
    Ok(())
}

fn report(name: String, soak: anyhow::Result<Soak>) -> Report {
    match soak {
        Ok(soak) => Report { name, soak: Some(soak), error: None },
        Err(e) => Report { name, soak: None, error: Some(format!("{e:#}")) },
    }
}

/// The versions asked for: one, or every one with v4-syscalls once per kernel interface.
fn subjects(args: &Args) -> Vec<Subject> {
    if let Some(version) = args.version {
        let words = args.server_args.as_deref().unwrap_or_default();
        let args: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
        let name = [version.name(), words].join(" ").trim().to_owned();
        return vec![Subject { name, version: Some(version), args }];
    }
    let mut all = Vec::new();
    for version in Version::all() {
        let variants = version.entry().variants;
        if variants.is_empty() {
            all.push(Subject { name: version.name().into(), version: Some(version), args: vec![] });
        }
        for variant in variants {
            all.push(Subject {
                name: format!("{} {}", version.name(), variant.args.join(" ")),
                version: Some(version),
                args: variant.args.iter().map(|a| (*a).to_owned()).collect(),
            });
        }
    }
    all
}

/// Soaks `subjects`, `jobs` at a time (0: all at once), each on a thread and a port of
/// its own: the soak is bound by its duration, not by the machine, so running them side
/// by side costs the wall time of one.
fn soak_versions(
    subjects: Vec<Subject>,
    config: &SoakConfig,
    jobs: usize,
) -> anyhow::Result<Vec<Report>> {
    let jobs = if jobs == 0 { subjects.len() } else { jobs };
    let mut reports = Vec::new();
    for batch in subjects.chunks(jobs.max(1)) {
        let handles: Vec<_> = batch
            .iter()
            .cloned()
            .map(|subject| {
                let config = config.clone();
                std::thread::spawn(move || {
                    let soak = start_and_soak(&subject, &config);
                    report(subject.name, soak)
                })
            })
            .collect();
        for handle in handles {
            reports.push(handle.join().map_err(|_| anyhow::anyhow!("a soak thread panicked"))?);
        }
    }
    Ok(reports)
}

fn start_and_soak(subject: &Subject, config: &SoakConfig) -> anyhow::Result<Soak> {
    let version = subject.version.context("no version to start")?;
    // As `serve::spawn_with` starts a version, but without RUST_BACKTRACE: with it, the
    // first `/panic` symbolizes a backtrace, which maps the binary's debug information into
    // the server for good (over 100 MiB in a debug build), a step in its memory that is the
    // soak's own doing; and each of the fork version's children would pay it again.
    let mut command = Command::new(std::env::current_exe()?);
    command.args(["serve", version.name(), "--addr", "127.0.0.1:0"]).args(&subject.args);
    command.env_remove("RUST_BACKTRACE").env_remove("RUST_LIB_BACKTRACE");
    command.stderr(Stdio::null());
    // Kept until the soak ends: dropped, the server stops.
    let server =
        ChildServer::spawn(command).with_context(|| format!("starting {}", subject.name))?;
    let target = Target { addr: server.addr(), pid: server.pid(), tree: version.forks() };
    soak_one(&subject.name, target, config)
}

fn soak_one(name: &str, target: Target, config: &SoakConfig) -> anyhow::Result<Soak> {
    eprintln!(
        "soaking {name} on {} (pid {}) for {:?}, warm-up {:?}",
        target.addr,
        target.pid,
        config.duration,
        config.warm_up()
    );
    let mut progress = |s: &Sample| {
        let line = format!(
            "{name:>28} {:>6.0}s  memory {:>9}  descriptors {:>4}  threads {:>4}  processes {:>4}  \
             connections {:>4}",
            s.secs,
            soak::show(Resource::Rss, s.rss_bytes as f64),
            s.descriptors,
            s.threads,
            s.processes,
            s.connections
        );
        // Progress only: a closed stderr must not stop the soak.
        let _ = writeln!(std::io::stderr(), "{line}");
    };
    soak::run(target, config, &mut progress).with_context(|| format!("soak of {name} failed"))
}

fn print_report(report: &Report) {
    let Some(soak) = &report.soak else {
        println!("\n{}: NOT SOAKED: {}", report.name, report.error.as_deref().unwrap_or("?"));
        return;
    };
    let verdict = if soak.passed { "PASS" } else { "FAIL" };
    println!(
        "\n{} (pid {}, {}): {verdict}, {:.0} s of load, {} samples, warm-up {:.0} s",
        report.name,
        soak.target.pid,
        soak.target.addr,
        soak.load_until - soak.load_from,
        soak.samples.len(),
        soak.warm_up_secs
    );
    println!(
        "{:<12} {:>10} {:>10} {:>10} {:>10} {:>14} {:>10}",
        "", "baseline", "warmed", "end load", "after", "slope/min", "back in"
    );
    for j in &soak.judged {
        let show = |v| soak::show(j.resource, v);
        println!(
            "{:<12} {:>10} {:>10} {:>10} {:>10} {:>14} {:>10}",
            j.resource.name(),
            show(j.baseline),
            show(j.warmed),
            show(j.end_of_load),
            show(j.after),
            show(j.growth.slope_per_min),
            j.returned_in.map_or("no".into(), |t| format!("{t:.1} s")),
        );
    }
    let mix: Vec<String> = soak
        .tallies
        .iter()
        .map(|t| format!("{} {} ({} failed)", t.kind.name(), t.visits, t.failed))
        .collect();
    println!("visits: {}", mix.join(", "));
    let [before, after] = soak.stats_active;
    let say = |n: Option<u64>| n.map_or("-".into(), |n| n.to_string());
    println!("/stats active connections: {} before, {} after", say(before), say(after));
    if !soak.still_serves {
        println!("FAIL: the server did not answer GET /hello after the soak");
    }
    for finding in soak.judged.iter().filter_map(|j| j.finding.as_deref()) {
        println!("FAIL: {finding}");
    }
}
