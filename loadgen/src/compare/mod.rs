//! `loadgen compare`: every version, one scenario at a time, side by side.
//!
//! For each scenario and each version, a fresh server is started in a process of its own
//! (`loadgen serve`), sampled from /proc while the load runs, and stopped. Each scenario
//! says what it teaches; each outcome says whether the version hit a limit, and which.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use common::testkit::ChildServer;
use serde::Serialize;

use crate::bench::{self, BenchConfig};
use crate::census;
use crate::hold::{self, HoldConfig, HoldResult};
use crate::measure::{Summary, fmt_us};
use crate::peers::Peer;
use crate::sample::{self, Listen, ListenWatch, Peak, Sampler, Timed, Watched};
use crate::serve::{self, Subject, Version};
use crate::waits::{self, WaitsConfig};

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioId {
    KeepAlive,
    ConnPerRequest,
    IdleClients,
    SlowHandler,
    CpuHandler,
    C10k,
    Pipelining,
    /// Keep-alive load with every system call the server makes counted (perf, or strace).
    Syscalls,
    /// v4-syscalls' kernel interfaces under growing idle crowds (not one run per version).
    KernelWaits,
}

/// What a scenario does to a server.
#[derive(Debug, Clone)]
pub enum Load {
    Bench(BenchConfig),
    Hold(HoldConfig),
    /// The sweep of `loadgen waits`, run once whatever the versions.
    Waits(WaitsConfig),
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: ScenarioId,
    pub title: &'static str,
    /// What the scenario teaches, in one or two sentences.
    pub lesson: &'static str,
    pub load: Load,
}

impl Scenario {
    /// The scenario's part of its result, with nothing measured yet.
    fn result(&self) -> ScenarioResult {
        ScenarioResult {
            id: self.id,
            title: self.title.to_owned(),
            lesson: self.lesson.to_owned(),
            settings: self.settings(),
            outcomes: Vec::new(),
            peers: Vec::new(),
            waits: Vec::new(),
            skipped: None,
        }
    }

    /// The settings, as the report prints them.
    pub fn settings(&self) -> String {
        match &self.load {
            Load::Bench(b) => {
                let mut text =
                    format!("{} connections, GET {}, {:?}", b.connections, b.path, b.duration);
                if b.pipeline > 1 {
                    text += &format!(", {} pipelined per connection", b.pipeline);
                }
                if b.close {
                    text += ", a new connection per request";
                }
                text += &format!(", timeout {:?}", b.timeout);
                match b.rate {
                    Some(rate) => {
                        text += &format!(
                            ". Open loop at {rate} requests/s in all: each latency counts from \
                             when its request was due, so a stall shows in full"
                        );
                    }
                    None => {
                        text += ". Closed loop: each connection sends its next request when \
                                 the last is answered, so a server that stalls is sent fewer \
                                 requests, and its percentiles understate what a client on a \
                                 schedule would see (coordinated omission)";
                    }
                }
                text + ". A request never answered is in the percentiles at the timeout (≥)"
            }
            Load::Hold(h) => format!(
                "{} idle connections held, then one new client's GET {} given {:?}",
                h.connections, h.path, h.timeout
            ),
            Load::Waits(w) => format!(
                "v4-syscalls with each --api; {:?} idle connections held; {} keep-alive clients \
                 for {:?} beside them",
                w.idle, w.active, w.duration
            ),
        }
    }
}

/// The suite. `quick` keeps the same shapes with less time and fewer connections, so the
/// whole comparison runs in under a minute.
pub fn suite(quick: bool) -> Vec<Scenario> {
    let addr = ([127, 0, 0, 1], 0).into();
    let secs = |full: u64, quick_ms: u64| {
        if quick { Duration::from_millis(quick_ms) } else { Duration::from_secs(full) }
    };
    let bench = |connections, path: &str, duration, timeout| BenchConfig {
        timeout,
        progress: true,
        ..BenchConfig::new(addr, connections, duration, path)
    };
    vec![
        Scenario {
            id: ScenarioId::KeepAlive,
            title: "Keep-alive throughput",
            lesson: "Many clients, each keeping its connection open and asking again at once. \
                     A model that gives each connection a thread for its whole life serves only \
                     as many clients at a time as it has threads; the others wait.",
            load: Load::Bench(bench(64, "/hello", secs(5, 1000), secs(2, 500))),
        },
        Scenario {
            id: ScenarioId::ConnPerRequest,
            title: "A new connection per request",
            lesson: "Every request pays for a connection: a spawn, a fork or a hand-off per \
                     client. The server's CPU time per connection ranks the models, as in \
                     Stevens' UNIX Network Programming (chapter 30 of the third edition).",
            load: Load::Bench(BenchConfig {
                close: true,
                ..bench(16, "/hello", secs(5, 1000), secs(2, 500))
            }),
        },
        Scenario {
            id: ScenarioId::IdleClients,
            title: "Idle clients and a newcomer",
            lesson: "Clients that connect and say nothing. Where a connection holds a thread, \
                     more idle clients than threads leave a newcomer waiting: starvation.",
            load: Load::Hold(HoldConfig {
                addr,
                connections: 100,
                path: "/hello".into(),
                timeout: secs(3, 1000),
            }),
        },
        Scenario {
            id: ScenarioId::SlowHandler,
            title: "A slow handler (/sleep?ms=100)",
            lesson: "A handler that blocks, like a database call, holds its thread whatever the \
                     model: throughput is at most threads / 100 ms. Multiplexing frees threads \
                     from idle connections, not from blocking work.",
            load: Load::Bench(bench(50, "/sleep?ms=100", secs(5, 1000), secs(2, 500))),
        },
        Scenario {
            id: ScenarioId::CpuHandler,
            title: "A CPU-heavy handler (/cpu?ms=10)",
            lesson: "Work that computes is bound by cores, not by the concurrency model: past \
                     one thread per core, more threads only take turns.",
            load: Load::Bench(bench(8, "/cpu?ms=10", secs(5, 1000), secs(2, 500))),
        },
        Scenario {
            id: ScenarioId::C10k,
            title: if quick {
                "Many connections, a low rate each (C1k)"
            } else {
                "C10k: 10,000 connections, a low rate each"
            },
            lesson: "The C10k problem: thousands of connections, each mostly idle. A thread or a \
                     process per connection multiplies its cost by ten thousand; a pool starves; \
                     an event loop watches them all from one thread.",
            load: Load::Bench(BenchConfig {
                rate: Some(if quick { 500.0 } else { 2000.0 }),
                ..bench(if quick { 1000 } else { 10_000 }, "/hello", secs(10, 2000), secs(3, 1000))
            }),
        },
        Scenario {
            id: ScenarioId::Pipelining,
            title: "Pipelining, 16 requests per write",
            lesson: "Sixteen requests sent before reading any answer: fewer reads, writes and \
                     wake-ups per request, for every model that serves the connection at all.",
            load: Load::Bench(BenchConfig {
                pipeline: 16,
                ..bench(16, "/hello", secs(5, 1000), secs(2, 500))
            }),
        },
        Scenario {
            id: ScenarioId::Syscalls,
            title: "System calls per request",
            lesson: "Every system call the server makes while it answers keep-alive requests, \
                     by name: one read and one write per request is the floor for a server \
                     that reads and writes sockets; what a model adds above it (a wait, a \
                     hand-off's futex, a re-arm's epoll_ctl) is its overhead, and a count that \
                     a noisy machine does not blur.",
            load: Load::Bench(bench(16, "/hello", secs(2, 1000), secs(2, 500))),
        },
        Scenario {
            id: ScenarioId::KernelWaits,
            title: "How the kernel waits: select, poll, epoll, io_uring",
            lesson: "One event loop, five ways of waiting, a few busy clients beside a growing \
                     crowd of idle ones. select and poll copy and scan every watched descriptor \
                     on every wait, so each wait grows with the crowd; epoll and io_uring hand \
                     back only what is ready, and do not notice it. select cannot watch past \
                     descriptor 1,023 at all.",
            load: Load::Waits(WaitsConfig {
                apis: v4_syscalls::Api::ALL.to_vec(),
                idle: if quick { vec![0, 1000, 5000] } else { vec![0, 500, 1000, 5000, 10_000] },
                active: 4,
                duration: secs(3, 1000),
            }),
        },
    ]
}

/// Whether a version hit a limit in a scenario, and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub limit_hit: bool,
    pub text: String,
}

/// One version (or reference server) in one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Written `version` in `results.json`, a peer's name where it is one.
    #[serde(rename = "version")]
    pub subject: Subject,
    pub bench: Option<Summary>,
    pub hold: Option<HoldResult>,
    pub server: Peak,
    /// The accept queues' cap, and the handshakes refused on a full queue during the run.
    pub listen: Option<Listen>,
    /// The server's threads, processes and memory over the run, sampled from /proc.
    pub series: Vec<Timed>,
    /// Server CPU time during the run (user + system, reaped children included).
    pub cpu_ms: u64,
    /// Server CPU time per connection opened, for the connection-per-request scenario.
    pub cpu_us_per_connection: Option<f64>,
    /// Context switches of the server's threads during the run, per request answered:
    /// from the version's own `/stats` (`getrusage`, which keeps the counts of threads
    /// that have exited), or else from /proc, which loses them (the fork version's
    /// children, a reference server's threads).
    pub switches_per_request: Option<f64>,
    /// Whether the switches were counted by `/stats` (none lost) or from /proc.
    pub switches_from_stats: bool,
    /// Server CPU time per request answered, in microseconds: the cost that survives a
    /// noisy machine, where requests per second do not.
    pub cpu_us_per_request: Option<f64>,
    /// Every system call the server made during the run, for the census scenario.
    pub syscalls: Option<census::Census>,
    /// What a reader takes for granted about this version and `/stats` said was false
    /// (v5's loops all used, pool sizes): each one makes the row misleading.
    pub assumptions: Vec<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioResult {
    pub id: ScenarioId,
    pub title: String,
    pub lesson: String,
    pub settings: String,
    pub outcomes: Vec<Outcome>,
    /// The reference servers' outcomes (`--peers`), apart from the versions': only those
    /// that answer the scenario's requests.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Outcome>,
    /// The kernel-waits sweep's points (that scenario has no outcome per version).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waits: Vec<waits::Point>,
    /// Why the scenario was not run here, if it was not (no census tool).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

impl ScenarioResult {
    /// Every outcome: the versions', then the reference servers'.
    pub fn rows(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().chain(&self.peers)
    }
}

/// The machine the numbers come from: they mean little without it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
}

impl Machine {
    pub fn this() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
                .unwrap_or_else(|| "unknown".into())
        };
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
        }
    }
}

/// Everything a comparison measured; written as `results.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub quick: bool,
    pub machine: Machine,
    /// Seconds since the Unix epoch when the comparison started.
    pub started_at: u64,
    pub scenarios: Vec<ScenarioResult>,
    /// The load generator checked against wrk in this run, or why it was not.
    pub calibration: Result<Calibration, String>,
    /// The reference servers asked for (`--peers`): what each is, or why it did not run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerNote>,
}

/// A reference server in a comparison: what it is, or why it was left out.
#[derive(Debug, Clone, Serialize)]
pub struct PeerNote {
    pub peer: Peer,
    pub note: Result<&'static str, String>,
}

/// loadgen against wrk on the same server, one run each, in this comparison: whether the
/// instrument, and not the server, set the fastest rates.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub version: Version,
    pub connections: usize,
    pub wrk_requests_per_sec: f64,
    pub loadgen_requests_per_sec: f64,
    /// loadgen's busiest thread over its run, as a share of a core.
    pub loadgen_busiest_share: f64,
}

impl Calibration {
    /// One sentence for the report.
    pub fn describe(&self) -> String {
        format!(
            "Calibration: against {} with {} keep-alive connections, two rounds each by \
             turns, loadgen drove {:.0} requests per second and wrk {:.0}, one thread each \
             ({:.2} of wrk's rate; loadgen's thread was busy at most {:.0}% of a round).",
            self.version.name(),
            self.connections,
            self.loadgen_requests_per_sec,
            self.wrk_requests_per_sec,
            self.loadgen_requests_per_sec / self.wrk_requests_per_sec.max(1.0),
            100.0 * self.loadgen_busiest_share
        )
    }
}

/// Runs loadgen and wrk by turns against a fresh `version`, as the keep-alive scenario
/// drives it. wrk must be installed; otherwise the reason is returned.
fn calibrate(version: Version, config: &BenchConfig) -> Result<Calibration, String> {
    let wrk = std::process::Command::new("wrk").arg("--version").output();
    if wrk.is_err() {
        return Err("loadgen was not checked against wrk in this run: wrk is not installed \
                    (apt-get install wrk)"
            .into());
    }
    let fail = |e: &dyn std::fmt::Display| format!("the calibration against wrk failed: {e}");
    let server = serve::spawn(version, None).map_err(|e| fail(&e))?;
    let config = BenchConfig { addr: server.addr(), progress: false, ..config.clone() };
    // Two rounds each, by turns: one round of either moves by a fifth on this machine.
    const ROUNDS: usize = 2;
    let (mut ours, mut wrks, mut busiest) = (0.0, 0.0, 0.0f64);
    for _ in 0..ROUNDS {
        let loadgen = bench::run(&config).map_err(|e| fail(&e))?;
        ours += loadgen.requests_per_sec / ROUNDS as f64;
        busiest = busiest.max(loadgen.generator_busiest_share);
        let output = std::process::Command::new("wrk")
            .args(["-t1", &format!("-c{}", config.connections)])
            .arg(format!("-d{}s", config.duration.as_secs().max(1)))
            .arg(format!("http://{}{}", server.addr(), config.path))
            .output()
            .map_err(|e| fail(&e))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let rate = text
            .lines()
            .find_map(|line| line.strip_prefix("Requests/sec:")?.trim().parse::<f64>().ok())
            .ok_or_else(|| fail(&format!("no rate in wrk's output: {text}")))?;
        wrks += rate / ROUNDS as f64;
    }
    Ok(Calibration {
        version,
        connections: config.connections,
        wrk_requests_per_sec: wrks,
        loadgen_requests_per_sec: ours,
        loadgen_busiest_share: busiest,
    })
}

/// Runs `scenarios` against `versions`, then against the `peers` that are installed,
/// logging each server to `out/logs/`.
pub fn run(
    scenarios: &[Scenario],
    versions: &[Version],
    peers: &[Peer],
    quick: bool,
    out: &Path,
) -> anyhow::Result<Comparison> {
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs)?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let notes: Vec<PeerNote> = peers
        .iter()
        .map(|&peer| PeerNote { peer, note: peer.check().map(|()| peer.design()) })
        .collect();
    for PeerNote { note, .. } in &notes {
        if let Err(why) = note {
            eprintln!("{why}");
        }
    }
    let peers: Vec<Peer> = notes.iter().filter(|n| n.note.is_ok()).map(|n| n.peer).collect();
    // The requests a scenario sends, so a peer that does not serve them sits it out.
    let path = |scenario: &Scenario| match &scenario.load {
        Load::Bench(b) => Some(b.path.clone()),
        Load::Hold(h) => Some(h.path.clone()),
        Load::Waits(_) => None,
    };
    let serves =
        |peer: &Peer, scenario: &Scenario| path(scenario).is_some_and(|p| peer.answers(&p));
    let total: usize = scenarios
        .iter()
        .filter(|s| path(s).is_some())
        .map(|s| versions.len() + peers.iter().filter(|p| serves(p, s)).count())
        .sum();
    let census_tool = |scenario: &Scenario| match scenario.id {
        ScenarioId::Syscalls => census::Tool::find().map(Some),
        _ => Ok(None),
    };
    let mut results = Vec::new();
    let mut step = 0;
    for scenario in scenarios {
        eprintln!("\n{}: {}", scenario.title, scenario.settings());
        if let Load::Waits(config) = &scenario.load {
            results.push(ScenarioResult { waits: waits::run(config)?, ..scenario.result() });
            continue;
        }
        let census = match census_tool(scenario) {
            Ok(tool) => tool,
            Err(why) => {
                eprintln!("  skipped: {why}");
                results.push(ScenarioResult { skipped: Some(why), ..scenario.result() });
                step += versions.len() + peers.iter().filter(|p| serves(p, scenario)).count();
                continue;
            }
        };
        let mut result = scenario.result();
        for &version in versions {
            step += 1;
            eprint!("  [{step}/{total}] {:<20} ", version.name());
            let name = format!("{:?}-{}", scenario.id, version.name());
            let log = File::create(logs.join(format!("{name}.log")))?;
            let server = serve::spawn(version, Some(log))?;
            let outcome = run_one(scenario, version.into(), census, &server)?;
            eprintln!("{}", outcome.verdict.text);
            result.outcomes.push(outcome);
        }
        results.push(result);
    }
    // Then the reference servers, one at a time with no other server running, each
    // through the scenarios it serves.
    let peers_started = std::time::Instant::now();
    for &peer in &peers {
        eprintln!("\nReference server {}: {}", peer.name(), peer.design());
        // A peer that needs a warm-up (a JVM) is started once and kept for all of them.
        let mut kept: Option<ChildServer> = None;
        for (scenario, result) in scenarios.iter().zip(&mut results) {
            if result.skipped.is_some() || !serves(&peer, scenario) {
                continue;
            }
            step += 1;
            eprint!("  [{step}/{total}] {:<20} {:<28} ", peer.name(), format!("{:?}", scenario.id));
            let fresh;
            let server = if peer.warm_up().is_some() {
                if kept.is_none() {
                    kept = Some(start_warm(peer, out)?);
                }
                kept.as_ref().ok_or_else(|| anyhow::anyhow!("{} did not start", peer.name()))?
            } else {
                let name = format!("{:?}-{}", scenario.id, peer.name());
                let log = File::create(logs.join(format!("{name}.log")))?;
                fresh = peer.spawn(&out.join("peers").join(&name), log)?;
                &fresh
            };
            let census = census_tool(scenario).map_err(anyhow::Error::msg)?;
            let outcome = run_one(scenario, peer.into(), census, server)?;
            eprintln!("{}", outcome.verdict.text);
            result.peers.push(outcome);
        }
    }
    if !peers.is_empty() {
        eprintln!("\nThe reference servers took {:.0?}.", peers_started.elapsed());
    }
    // The fastest keep-alive version, measured again by loadgen and by wrk.
    let keep_alive = scenarios.iter().find(|s| s.id == ScenarioId::KeepAlive);
    let fastest = results.iter().find(|r| r.id == ScenarioId::KeepAlive).and_then(|r| {
        r.outcomes
            .iter()
            .filter_map(|o| Some((o.subject.version()?, o.bench.as_ref()?.requests_per_sec)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    });
    let calibration = match (keep_alive.map(|s| &s.load), fastest) {
        (Some(Load::Bench(config)), Some((version, _))) => {
            eprintln!("\nCalibration: loadgen and wrk by turns against {}", version.name());
            calibrate(version, config)
        }
        _ => Err("no calibration: the keep-alive scenario did not run".into()),
    };
    match &calibration {
        Ok(c) => eprintln!("  {}", c.describe()),
        Err(why) => eprintln!("  {why}"),
    }
    Ok(Comparison {
        quick,
        machine: Machine::this(),
        started_at,
        scenarios: results,
        calibration,
        peers: notes,
    })
}

/// Starts `peer` once for the whole comparison, its log and files under `out`, and loads it
/// for its [`Peer::warm_up`], unmeasured.
fn start_warm(peer: Peer, out: &Path) -> anyhow::Result<ChildServer> {
    let log = File::create(out.join("logs").join(format!("{}.log", peer.name())))?;
    let server = peer.spawn(&out.join("peers").join(peer.name()), log)?;
    if let Some(warm_up) = peer.warm_up() {
        eprint!("(warming up for {warm_up:?}) ");
        bench::run(&BenchConfig::new(server.addr(), 16, warm_up, "/hello"))?;
    }
    Ok(server)
}

/// One version or peer in one scenario, on `server`; with every system call it makes
/// counted by `census`, if given.
fn run_one(
    scenario: &Scenario,
    subject: Subject,
    census: Option<census::Tool>,
    server: &ChildServer,
) -> anyhow::Result<Outcome> {
    let pid = server.pid();
    let processes = subject.processes();
    // The fork version has many processes; reading them all costs more, so less often.
    let every = Duration::from_millis(if processes { 250 } else { 100 });
    let port = server.addr().port();
    let listen = ListenWatch::start(port);
    let sampler = Sampler::start(pid, port, processes, every);
    let cpu_before = sample::cpu_ms(pid, processes);
    let switches_before = switches_now(subject, server.addr(), pid);
    let mut held = None;
    let (mut syscalls, mut uncounted) = (None, Vec::new());
    let (bench, hold) = match &scenario.load {
        Load::Bench(config) => {
            let config = BenchConfig { addr: server.addr(), ..config.clone() };
            // A census that cannot be taken is said in the row, and the load runs anyway.
            let counting = census.and_then(|tool| {
                census::Counting::start(tool, pid)
                    .map_err(|e| uncounted.push(format!("not counted: {e}")))
                    .ok()
            });
            let summary = bench::run(&config)?;
            if let Some(counting) = counting {
                match counting.finish(summary.requests) {
                    Ok(census) => syscalls = Some(census),
                    Err(e) => uncounted.push(format!("not counted: {e}")),
                }
            }
            (Some(summary), None)
        }
        Load::Hold(config) => {
            let config = HoldConfig { addr: server.addr(), ..config.clone() };
            let (result, idle) = hold::run(&config)?;
            // Read the server while the idle clients are still there: the sampler's
            // interval can miss so short a peak.
            held = Some(sample::read(pid, port, processes));
            drop(idle);
            (None, Some(result))
        }
        // Run once by `run`, never per version.
        Load::Waits(_) => anyhow::bail!("the kernel-waits sweep is not run per version"),
    };
    // Switches first: those of children are lost once they exit.
    let switches_after = switches_now(subject, server.addr(), pid);
    let switches_from_stats = switches_before.1 && switches_after.1;
    let switches = switches_after.0.saturating_sub(switches_before.0);
    if subject == Subject::Version(Version::V2_PROCESS_PER_CONN) {
        // The run's connections are closed; their children exit and are reaped, which is
        // when the kernel adds their CPU time to the parent's. Read it after that, or the
        // work of a child caught between its exit and its reaping is lost.
        let reaped = || common::procfs::children(pid).is_ok_and(|c| c.is_empty());
        common::testkit::wait_until(CHILDREN_PATIENCE, reaped);
    }
    let cpu_ms = sample::cpu_ms(pid, processes).saturating_sub(cpu_before);
    let Watched { mut peak, series } = sampler.stop();
    let listen = listen.stop();
    if let Some(reading) = held {
        peak.include(reading);
    }
    let connections = match &scenario.load {
        Load::Bench(config) if !config.close => config.connections,
        _ => 0,
    };
    let mut assumptions = match subject {
        Subject::Version(version) => check_assumptions(version, server.addr(), connections),
        Subject::Peer(_) => Vec::new(),
    };
    assumptions.extend(uncounted);
    let cpu_us_per_connection = match (&scenario.load, &bench) {
        (Load::Bench(config), Some(summary)) if config.close && summary.connections_opened > 0 => {
            Some(cpu_ms as f64 * 1000.0 / summary.connections_opened as f64)
        }
        _ => None,
    };
    let answered = bench.as_ref().filter(|b| b.requests > 0);
    let switches_per_request = answered.map(|b| switches as f64 / b.requests as f64);
    let cpu_us_per_request = answered.map(|b| cpu_ms as f64 * 1000.0 / b.requests as f64);
    let mut outcome = Outcome {
        subject,
        bench,
        hold,
        server: peak,
        listen,
        series,
        cpu_ms,
        cpu_us_per_connection,
        switches_per_request,
        switches_from_stats,
        cpu_us_per_request,
        syscalls,
        assumptions,
        verdict: Verdict { limit_hit: false, text: String::new() },
    };
    outcome.verdict = verdict(&outcome);
    Ok(outcome)
}

// ANCHOR: switches_now
/// The server's context switches so far, and whether they came from its `/stats`. A
/// version of one process counts its own with `getrusage`, which keeps the switches of
/// threads that have exited: read from /proc instead, a thread per connection's would
/// vanish with its connection, and v2 would look as if it hardly switched. The fork
/// version's children, and the reference servers, are read from /proc.
fn switches_now(subject: Subject, addr: std::net::SocketAddr, pid: u32) -> (u64, bool) {
    let processes = subject.processes();
    let from_stats = match subject {
        Subject::Version(_) if !processes => fetch_stats(addr).and_then(|stats| {
            let c = &stats["kernel"]["context_switches"];
            Some(c["voluntary"].as_u64()? + c["involuntary"].as_u64()?)
        }),
        _ => None,
    };
    match from_stats {
        Some(switches) => (switches, true),
        None => (sample::context_switches(pid, processes), false),
    }
}
// ANCHOR_END: switches_now

/// How long a forking server's children may take to exit and be reaped after a run.
const CHILDREN_PATIENCE: Duration = Duration::from_secs(5);

/// How long the server may take to answer `/stats` after a run: a loop still working
/// through `/sleep` requests whose clients timed out can take seconds.
const STATS_PATIENCE: Duration = Duration::from_secs(10);

/// The server's `/stats`, asked once over a connection of its own; None if it does not
/// answer within [`STATS_PATIENCE`].
fn fetch_stats(addr: std::net::SocketAddr) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, STATS_PATIENCE).ok()?;
    stream.set_read_timeout(Some(STATS_PATIENCE)).ok()?;
    stream.write_all(b"GET /stats HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n").ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).ok()?;
    let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| &answer[at + 4..])?;
    serde_json::from_slice(body).ok()
}

/// Checks, from the server's `/stats` after a run with `connections` open at once, what
/// the row's reader assumes of `version`: that v5 used every loop, that the pools and
/// runtimes had the sizes their chapters name. Each false one is returned, said plainly.
pub fn check_assumptions(
    version: Version,
    addr: std::net::SocketAddr,
    connections: usize,
) -> Vec<String> {
    let checked =
        [Version::V3_THREAD_POOL, Version::V4_NIO, Version::V5_REACTOR_PER_CORE, Version::V6_ASYNC];
    if !checked.contains(&version) {
        return Vec::new();
    }
    let Some(stats) = fetch_stats(addr) else {
        return vec![format!(
            "not checked: /stats did not answer within {STATS_PATIENCE:?} after the run"
        )];
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    assumptions_from(version, &stats, connections, cores)
}

/// [`check_assumptions`]' reading of one `/stats` document, on a machine of `cores`.
fn assumptions_from(
    version: Version,
    stats: &serde_json::Value,
    connections: usize,
    cores: u64,
) -> Vec<String> {
    let wanted: &[(&str, u64)] = if version == Version::V3_THREAD_POOL {
        &[("pool_size", 10)]
    } else if version == Version::V4_NIO {
        &[("workers", 10)]
    } else {
        &[]
    };
    let model = &stats["model"];
    let mut wrong: Vec<String> = wanted
        .iter()
        .filter(|(name, value)| model[*name].as_u64() != Some(*value))
        .map(|(name, value)| format!("not as assumed: {name} was {}, not {value}", model[*name]))
        .collect();
    if version == Version::V6_ASYNC && model["runtime_workers"].as_u64() != Some(cores) {
        wrong.push(format!(
            "not as assumed: {} runtime workers on {cores} cores",
            model["runtime_workers"]
        ));
    }
    if let Some(loops) = model["loops"].as_array() {
        let accepted: Vec<u64> =
            loops.iter().map(|l| l["accepted"].as_u64().unwrap_or(0)).collect();
        if loops.len() as u64 != cores {
            wrong.push(format!("not as assumed: {} loops on {cores} cores", loops.len()));
        }
        // With at least two connections per loop, a loop that accepted none means the
        // others served everything: the row measured fewer loops than the server has.
        let idle: Vec<usize> = (0..accepted.len()).filter(|&i| accepted[i] == 0).collect();
        if connections >= 2 * loops.len() && !idle.is_empty() {
            let total: u64 = accepted.iter().sum();
            wrong.push(format!(
                "not as assumed: {total} connections on {} of {} loops, so the row measures \
                 fewer loops than v5 has",
                loops.len() - idle.len(),
                loops.len()
            ));
        }
    }
    wrong
}

/// Growth in threads or processes past this many counts as "exploded".
const GROWTH_LIMIT: u64 = 100;

/// Reads the limits off an outcome (timeouts, refusals, starvation, threads or processes
/// that grew with the connections), and says what about the run was not as assumed.
pub fn verdict(outcome: &Outcome) -> Verdict {
    let mut verdict = limits(outcome);
    if !outcome.assumptions.is_empty() {
        verdict.text += &format!(" ⚠ {}", outcome.assumptions.join("; "));
    }
    verdict
}

// ANCHOR: never_accepted
/// What a connection that "timed out connecting" was, from the kernel's counts: a handshake
/// that never completed. When the accept queue is full, the kernel drops the client's SYN
/// (or its last ACK) and counts a listen overflow; the client sends it again, a second
/// apart for the first five retries on Linux 6.5 and later (`tcp_syn_linear_timeouts`),
/// then doubling, and gives up when its own timeout comes first.
fn never_accepted(connections: u64, outcome: &Outcome) -> String {
    let what = format!("{connections} connections never accepted in time");
    match &outcome.listen {
        Some(l) if l.overflows > 0 => format!(
            "{what}: their handshakes never completed, because the accept queue (cap {}) was \
             full and the kernel dropped {} SYNs or ACKs (listen overflows), which the \
             clients kept resending until their connect timeout",
            l.cap, l.overflows
        ),
        Some(_) => format!("{what}; the kernel counted no listen overflow, so not a full queue"),
        None => what,
    }
}
// ANCHOR_END: never_accepted

fn limits(outcome: &Outcome) -> Verdict {
    let mut limits = Vec::new();
    if let Some(b) = &outcome.bench {
        let e = &b.errors;
        if e.timeout > 0 {
            limits.push(format!("{} requests timed out", e.timeout));
        }
        if e.connect_timeout > 0 {
            limits.push(never_accepted(e.connect_timeout, outcome));
        }
        if e.refused > 0 {
            limits.push(format!("{} connections refused", e.refused));
        }
        if e.reset + e.closed > 0 {
            limits.push(format!("{} connections reset or closed", e.reset + e.closed));
        }
        if e.bad_status + e.other > 0 {
            limits.push(format!("{} bad answers", e.bad_status + e.other));
        }
    }
    let p = &outcome.server;
    if p.max_processes.saturating_sub(p.before.processes) >= GROWTH_LIMIT {
        limits.push(format!("processes grew to {}", p.max_processes));
    } else if p.max_threads.saturating_sub(p.before.threads) >= GROWTH_LIMIT {
        limits.push(format!("threads grew to {}", p.max_threads));
    }
    if let Some(h) = &outcome.hold {
        let answer = match h.answered_in_us {
            None => format!("starved: no answer in {}", fmt_us(h.timeout_us)),
            Some(us) => format!("answered in {}", fmt_us(us)),
        };
        let limit_hit = h.starved() || !limits.is_empty();
        limits.insert(0, answer);
        return Verdict { limit_hit, text: limits.join("; ") };
    }
    match (limits.is_empty(), &outcome.bench) {
        (true, Some(b)) => {
            Verdict { limit_hit: false, text: format!("ok, {:.0} req/s", b.requests_per_sec) }
        }
        (true, None) => Verdict { limit_hit: false, text: "ok".into() },
        (false, _) => Verdict { limit_hit: true, text: limits.join("; ") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v5_row_on_one_of_its_loops_is_flagged() {
        let loops =
            |a: u64, b: u64| json!({"model": {"loops": [{"accepted": a}, {"accepted": b}]}});
        let v5 = Version::V5_REACTOR_PER_CORE;
        assert!(assumptions_from(v5, &loops(5, 4), 8, 2).is_empty());
        let one = assumptions_from(v5, &loops(9, 0), 8, 2);
        assert_eq!(one.len(), 1, "{one:?}");
        assert!(one[0].contains("9 connections on 1 of 2 loops"), "{one:?}");
        // Fewer connections than two per loop may fairly all land on one.
        assert!(assumptions_from(v5, &loops(3, 0), 3, 2).is_empty());
        assert_eq!(assumptions_from(v5, &loops(5, 4), 8, 4).len(), 1, "2 loops on 4 cores");
    }

    #[test]
    fn pool_and_runtime_sizes_are_checked() {
        let v3 = json!({"model": {"pool_size": 4}});
        let said = assumptions_from(Version::V3_THREAD_POOL, &v3, 64, 2);
        assert_eq!(said, ["not as assumed: pool_size was 4, not 10"]);
        let v6 = json!({"model": {"runtime_workers": 2}});
        assert!(assumptions_from(Version::V6_ASYNC, &v6, 64, 2).is_empty());
        assert_eq!(assumptions_from(Version::V6_ASYNC, &v6, 64, 8).len(), 1);
        let v4 = json!({"model": {"workers": 10}});
        assert!(assumptions_from(Version::V4_NIO, &v4, 64, 2).is_empty());
    }
}
