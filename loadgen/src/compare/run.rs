//! The runner: for each scenario and each version, a fresh server in a process of its own
//! (`loadgen serve`), sampled from /proc while the load runs, checked against its registry
//! entry's promises, and stopped; then the experiments, once each; then the reference
//! servers; then the calibration against wrk.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::testkit::ChildServer;

use super::assumptions::{check_assumptions, fetch_stats};
use super::{
    Comparison, Load, Machine, Outcome, PeerNote, Scenario, ScenarioId, ScenarioResult, Suite,
    Verdict, calibrate, split, verdict,
};
use crate::bench::{self, BenchConfig};
use crate::census;
use crate::hold::{self, HoldConfig, HoldResult};
use crate::measure::Summary;
use crate::peers::Peer;
use crate::sample::{self, ListenWatch, Sampler, Timed, Watched};
use crate::serve::{self, Subject, Version};

/// How long a forking server's children may take to exit and be reaped after a run.
const CHILDREN_PATIENCE: Duration = Duration::from_secs(5);

/// Runs `suite` against `versions`, then against the `peers` that are installed,
/// logging each server to `out/logs/`.
pub fn run(
    suite: &Suite,
    versions: &[Version],
    peers: &[Peer],
    quick: bool,
    out: &Path,
) -> anyhow::Result<Comparison> {
    std::fs::create_dir_all(out.join("logs"))?;
    let started_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let notes = peer_notes(peers);
    let peers: Vec<Peer> = notes.iter().filter(|n| n.note.is_ok()).map(|n| n.peer).collect();
    let mut progress = Progress::new(&suite.scenarios, versions, &peers);
    let mut scenarios = Vec::new();
    for scenario in &suite.scenarios {
        scenarios.push(run_versions(scenario, versions, &peers, &mut progress, out)?);
    }
    let mut experiments = Vec::new();
    for experiment in &suite.experiments {
        eprintln!("\n{}: {}", experiment.title, experiment.settings());
        experiments.push(experiment.run(versions, out)?);
    }
    run_peers(&suite.scenarios, &mut scenarios, &peers, &mut progress, out)?;
    let calibration = calibrate::fastest(&suite.scenarios, &scenarios);
    Ok(Comparison {
        quick,
        machine: Machine::this(),
        started_at,
        scenarios,
        experiments,
        calibration,
        peers: notes,
    })
}

/// The reference servers asked for: what each is, or why it cannot run here (said now).
fn peer_notes(peers: &[Peer]) -> Vec<PeerNote> {
    let notes: Vec<PeerNote> = peers
        .iter()
        .map(|&peer| PeerNote { peer, note: peer.check().map(|()| peer.design()) })
        .collect();
    for PeerNote { note, .. } in &notes {
        if let Err(why) = note {
            eprintln!("{why}");
        }
    }
    notes
}

/// `[step/total]`: the rows run so far, of all the scenarios' rows.
struct Progress {
    step: usize,
    total: usize,
}

impl Progress {
    fn new(scenarios: &[Scenario], versions: &[Version], peers: &[Peer]) -> Self {
        let total = scenarios.iter().map(|s| rows(s, versions, peers)).sum();
        Progress { step: 0, total }
    }

    /// The next row's `[step/total]`.
    fn next(&mut self) -> String {
        self.step += 1;
        format!("[{}/{}]", self.step, self.total)
    }
}

/// The rows a scenario has: a version each, and each peer that serves its requests.
fn rows(scenario: &Scenario, versions: &[Version], peers: &[Peer]) -> usize {
    versions.len() + peers.iter().filter(|p| p.answers(scenario.path())).count()
}

/// The census tool the scenario needs, if any, or why there is none here.
fn census_tool(scenario: &Scenario) -> Result<Option<census::Tool>, String> {
    match scenario.id {
        ScenarioId::Syscalls => census::Tool::find().map(Some),
        _ => Ok(None),
    }
}

/// One scenario, a fresh server per version.
fn run_versions(
    scenario: &Scenario,
    versions: &[Version],
    peers: &[Peer],
    progress: &mut Progress,
    out: &Path,
) -> anyhow::Result<ScenarioResult> {
    eprintln!("\n{}: {}", scenario.title, scenario.settings());
    let census = match census_tool(scenario) {
        Ok(tool) => tool,
        Err(why) => {
            eprintln!("  skipped: {why}");
            progress.step += rows(scenario, versions, peers);
            return Ok(ScenarioResult { skipped: Some(why), ..scenario.result() });
        }
    };
    let mut result = scenario.result();
    for &version in versions {
        eprint!("  {} {:<20} ", progress.next(), version.name());
        let name = format!("{:?}-{}", scenario.id, version.name());
        let log = File::create(out.join("logs").join(format!("{name}.log")))?;
        let server = serve::spawn(version, Some(log))?;
        let outcome = run_one(scenario, version.into(), census, &server)?;
        eprintln!("{}", outcome.verdict.text);
        result.outcomes.push(outcome);
    }
    Ok(result)
}

/// The reference servers, one at a time with no other server running, each through the
/// scenarios it serves.
fn run_peers(
    scenarios: &[Scenario],
    results: &mut [ScenarioResult],
    peers: &[Peer],
    progress: &mut Progress,
    out: &Path,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    for &peer in peers {
        eprintln!("\nReference server {}: {}", peer.name(), peer.design());
        // A peer that needs a warm-up (a JVM) is started once and kept for all of them.
        let mut kept: Option<ChildServer> = None;
        for (scenario, result) in scenarios.iter().zip(&mut *results) {
            if result.skipped.is_some() || !peer.answers(scenario.path()) {
                continue;
            }
            let step = progress.next();
            eprint!("  {step} {:<20} {:<28} ", peer.name(), format!("{:?}", scenario.id));
            let fresh;
            let server = if peer.warm_up().is_some() {
                if kept.is_none() {
                    kept = Some(start_warm(peer, out)?);
                }
                kept.as_ref().ok_or_else(|| anyhow::anyhow!("{} did not start", peer.name()))?
            } else {
                let name = format!("{:?}-{}", scenario.id, peer.name());
                let log = File::create(out.join("logs").join(format!("{name}.log")))?;
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
        eprintln!("\nThe reference servers took {:.0?}.", started.elapsed());
    }
    Ok(())
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

/// What the load itself yielded, before the server is read again.
#[derive(Default)]
struct Driven {
    bench: Option<Summary>,
    hold: Option<HoldResult>,
    /// The server read while a hold's idle clients were still there, and when.
    held: Option<(Instant, sample::Reading)>,
    syscalls: Option<census::Census>,
    /// Why the census was not taken, if it was asked for and was not.
    uncounted: Vec<String>,
}

/// Runs the scenario's load against `server`, counting its system calls with `census` if
/// given.
fn drive(
    scenario: &Scenario,
    server: &ChildServer,
    census: Option<census::Tool>,
    processes: bool,
) -> anyhow::Result<Driven> {
    let mut driven = Driven::default();
    match &scenario.load {
        Load::Bench(config) => {
            let config = BenchConfig { addr: server.addr(), ..config.clone() };
            // A census that cannot be taken is said in the row, and the load runs anyway.
            let counting = census.and_then(|tool| {
                census::Counting::start(tool, server.pid())
                    .map_err(|e| driven.uncounted.push(format!("not counted: {e}")))
                    .ok()
            });
            let summary = bench::run(&config)?;
            if let Some(counting) = counting {
                match counting.finish(summary.requests) {
                    Ok(census) => driven.syscalls = Some(census),
                    Err(e) => driven.uncounted.push(format!("not counted: {e}")),
                }
            }
            driven.bench = Some(summary);
        }
        Load::Hold(config) => {
            let config = HoldConfig { addr: server.addr(), ..config.clone() };
            let (result, idle) = hold::run(&config)?;
            // Read the server while the idle clients are still there: the sampler's
            // interval can miss so short a peak.
            let reading = sample::read(server.pid(), server.addr().port(), processes);
            driven.held = Some((Instant::now(), reading));
            drop(idle);
            driven.hold = Some(result);
        }
    }
    Ok(driven)
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
    let sampling_since = Instant::now();
    let sampler = Sampler::start(pid, port, processes, every);
    let cpu_before = sample::cpu_ms(pid, processes);
    let switches_before = switches_now(subject, server.addr(), pid);
    let split_before = split::before(scenario, subject, server.addr());
    let driven = drive(scenario, server, census, processes)?;
    // Switches first: those of children are lost once they exit.
    let switches_after = switches_now(subject, server.addr(), pid);
    let split = split::after(scenario, subject, server.addr(), split_before);
    let switches_from_stats = switches_before.1 && switches_after.1;
    let switches = switches_after.0.saturating_sub(switches_before.0);
    if subject.version().is_some_and(Version::forks) {
        // The run's connections are closed; their children exit and are reaped, which is
        // when the kernel adds their CPU time to the parent's. Read it after that, or the
        // work of a child caught between its exit and its reaping is lost.
        let reaped = || common::procfs::children(pid).is_ok_and(|c| c.is_empty());
        common::testkit::wait_until(CHILDREN_PATIENCE, reaped);
    }
    let cpu_ms = sample::cpu_ms(pid, processes).saturating_sub(cpu_before);
    let mut watched = sampler.stop();
    if let Some((at, reading)) = driven.held {
        include_held(&mut watched, at.duration_since(sampling_since).as_secs_f64(), reading);
    }
    let Watched { peak, series } = watched;
    let mut outcome = Outcome {
        subject,
        bench: driven.bench,
        hold: driven.hold,
        server: peak,
        listen: listen.stop(),
        series,
        cpu_ms,
        cpu_us_per_connection: None,
        switches_per_request: None,
        switches_from_stats,
        cpu_us_per_request: None,
        syscalls: driven.syscalls,
        assumptions: assumptions(scenario, subject, server.addr(), driven.uncounted),
        verdict: Verdict { limit_hit: false, text: String::new() },
        split,
    };
    per_unit(&mut outcome, scenario, switches);
    outcome.verdict = verdict(&outcome);
    Ok(outcome)
}

/// What the version's registry entry promises and its `/stats` denies, and any census not
/// taken.
fn assumptions(
    scenario: &Scenario,
    subject: Subject,
    addr: SocketAddr,
    uncounted: Vec<String>,
) -> Vec<String> {
    let connections = match &scenario.load {
        Load::Bench(config) if !config.close => config.connections,
        _ => 0,
    };
    let mut assumptions = match subject {
        Subject::Version(version) => check_assumptions(version, addr, connections),
        Subject::Peer(_) => Vec::new(),
    };
    assumptions.extend(uncounted);
    assumptions
}

/// The server's CPU per connection (a new connection per request), and its CPU and
/// `switches` per request answered.
fn per_unit(outcome: &mut Outcome, scenario: &Scenario, switches: u64) {
    let cpu_ms = outcome.cpu_ms as f64;
    outcome.cpu_us_per_connection = match (&scenario.load, &outcome.bench) {
        (Load::Bench(config), Some(summary)) if config.close && summary.connections_opened > 0 => {
            Some(cpu_ms * 1000.0 / summary.connections_opened as f64)
        }
        _ => None,
    };
    let answered = outcome.bench.as_ref().filter(|b| b.requests > 0);
    outcome.switches_per_request = answered.map(|b| switches as f64 / b.requests as f64);
    outcome.cpu_us_per_request = answered.map(|b| cpu_ms * 1000.0 / b.requests as f64);
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

// ANCHOR: include_held
/// Adds the reading taken while a hold's idle clients were all there, `secs` into the
/// sampling, to the peaks and to the series both: the table shows the peaks and the chart
/// the series, and a climb shorter than the sampler's interval (the fork version's, whose
/// every reading of a hundred processes is slow) was in the table and not the chart.
fn include_held(watched: &mut Watched, secs: f64, reading: sample::Reading) {
    watched.peak.include(reading);
    watched.series.push(Timed { secs, reading });
    watched.series.sort_by(|a, b| a.secs.total_cmp(&b.secs));
}
// ANCHOR_END: include_held

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Peak, Reading};

    /// The fork version's idle-clients run as it was stored: two samples, both before the
    /// children, and the held reading of 101 processes (a thread each).
    #[test]
    fn the_chart_counts_the_processes_the_table_counts() {
        let at_rest = Reading { processes: 1, threads: 1, rss_bytes: 2 << 20, accept_queue: 0 };
        let held = Reading { processes: 101, threads: 101, rss_bytes: 12 << 20, ..at_rest };
        let series = [0.0, 0.25].map(|secs| Timed { secs, reading: at_rest }).to_vec();
        let mut watched = Watched { peak: Peak { before: at_rest, ..Peak::default() }, series };
        include_held(&mut watched, 0.4, held);
        let (peak, series) = (&watched.peak, &watched.series);
        let most = |pick: fn(&Reading) -> u64| series.iter().map(|t| pick(&t.reading)).max();
        assert_eq!(most(|r| r.processes), Some(peak.max_processes));
        assert_eq!(most(|r| r.threads), Some(peak.max_threads));
        assert_eq!(peak.max_processes, 101);
        assert!(series.windows(2).all(|w| w[0].secs <= w[1].secs), "{series:?}");
    }
}
