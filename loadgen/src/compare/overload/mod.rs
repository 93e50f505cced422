//! The overload experiment of `compare`'s suite: every version swept, open loop, through
//! a rising series of offered rates ([`crate::sweep`]), to find where each model stops
//! keeping up (its knee) and what its goodput does after.
//!
//! A workload is a path and a way of connecting, with one grid of rates that every line
//! of it steps through, so the curves share an x axis; each line (a version, with options:
//! `v3 + shedding`) takes the part of the grid around its own capacity, from about half
//! what Little's law predicts to twice the knee it finds, so a slow model is not driven
//! for minutes at rates it gave up on long before. A fresh server per line.
//!
//! This file holds what the experiment is asked and finds, and the runner; [`model`]
//! predicts each knee from the version's settings and says why a measured one differs;
//! [`show`] draws the tables, the sentences and the two charts per workload.

pub mod model;
pub mod show;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::bench::Wire;
use crate::sample;
use crate::serve::{self, Version};
use crate::sweep::{self, Arrivals, Step, SweepConfig};
use model::{Concurrency, Prediction};

/// The most connections a step opens at once: past it, arrivals wait in the generator
/// (which the step reports as lateness).
pub const MAX_CONNECTIONS: usize = 4000;

/// What to sweep.
#[derive(Debug, Clone)]
pub struct OverloadConfig {
    pub workloads: Vec<Workload>,
    /// How long each step offers load.
    pub step: Duration,
    /// The most time to wait before a step for the server to finish what the last left.
    pub pause: Duration,
    /// Goodput counts 2xx answers within it; the knee is the highest rate at which 99 in
    /// 100 requests were (see [`sweep::knee`]).
    pub slo: Duration,
    /// How long a client waits before giving up.
    pub timeout: Duration,
    /// The most steps one line may take (the time budget's cap).
    pub max_steps: usize,
    /// Where a line starts, as a share of its predicted knee (0.45: the grid's first rate
    /// at or above 45% of it).
    pub start: f64,
    /// What the run leaves out to fit its time, said in the report; empty when nothing.
    pub cut: String,
}

/// A path, a way of connecting, the rates every line of it shares, and its lines.
#[derive(Debug, Clone)]
pub struct Workload {
    pub name: &'static str,
    pub path: &'static str,
    /// A new connection per request (each arrival a new client).
    pub close: bool,
    /// How requests are written: HTTP (a new connection per request needs it), or lines.
    pub wire: Wire,
    /// What the handler takes, for Little's law; none where the work is the CPU's.
    pub service: Option<Duration>,
    /// The rates a line may offer, rising.
    pub grid: Vec<f64>,
    pub lines: Vec<Line>,
}

/// One curve to draw: a version with options.
#[derive(Debug, Clone)]
pub struct Line {
    pub version: Version,
    pub args: Vec<&'static str>,
    /// Whether `args` turn load shedding on: the line is then labelled and drawn apart.
    pub shedding: bool,
}

impl Line {
    pub fn plain(version: Version) -> Self {
        Line { version, args: Vec::new(), shedding: false }
    }

    /// Its name in tables and legends: the version, and what its options change.
    pub fn label(&self) -> String {
        let mut label = self.version.name().to_owned();
        if self.shedding {
            label += " + shedding";
        } else if !self.args.is_empty() {
            label += &format!(" {}", self.args.join(" "));
        }
        label
    }
}

/// One workload's curves.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadResult {
    pub name: String,
    pub path: String,
    pub close: bool,
    pub service_us: Option<u64>,
    pub slo_us: u64,
    pub timeout_us: u64,
    pub grid: Vec<f64>,
    pub curves: Vec<Curve>,
}

/// One line's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    pub label: String,
    pub version: Version,
    pub args: Vec<String>,
    pub shedding: bool,
    /// How many requests it serves at once, and why, from its registry entry and options.
    pub concurrency: Concurrency,
    pub prediction: Prediction,
    pub steps: Vec<Step>,
    /// The server's CPU time per step, in milliseconds, from /proc (children included
    /// for the fork version), in the order of `steps`.
    pub server_cpu_ms: Vec<u64>,
    pub knee: Option<f64>,
    /// Why it did not run, if it did not.
    pub skipped: Option<String>,
}

/// Runs every workload's lines whose version is among `versions`, a fresh server each,
/// logging them to `out/logs/`.
pub fn run(
    config: &OverloadConfig,
    versions: &[Version],
    out: &Path,
) -> anyhow::Result<Vec<WorkloadResult>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Vec::new();
    for workload in &config.workloads {
        eprintln!("  {} (GET {})", workload.name, workload.path);
        let mut curves = Vec::new();
        for line in workload.lines.iter().filter(|l| versions.contains(&l.version)) {
            eprint!("    {:<36} ", line.label());
            let curve = sweep_line(config, workload, line, cores, out)?;
            match (&curve.skipped, curve.knee) {
                (Some(why), _) => eprintln!("not run: {why}"),
                (None, Some(knee)) => eprintln!(" knee {knee:.0} req/s"),
                (None, None) => eprintln!(" no knee: p99 over the SLO from the first step"),
            }
            curves.push(curve);
        }
        results.push(WorkloadResult {
            name: workload.name.to_owned(),
            path: workload.path.to_owned(),
            close: workload.close,
            service_us: workload.service.map(|s| s.as_micros() as u64),
            slo_us: config.slo.as_micros() as u64,
            timeout_us: config.timeout.as_micros() as u64,
            grid: workload.grid.clone(),
            curves,
        });
    }
    Ok(results)
}

/// The settings, as the report prints them.
pub fn settings(config: &OverloadConfig) -> String {
    let workloads: Vec<String> = config
        .workloads
        .iter()
        .map(|w| {
            format!(
                "{} (GET {}{}; rates from {:.0} to {:.0} req/s)",
                w.name,
                w.path,
                if w.close { ", a new connection per request" } else { ", kept-alive connections" },
                w.grid.first().copied().unwrap_or(0.0),
                w.grid.last().copied().unwrap_or(0.0),
            )
        })
        .collect();
    format!(
        "{}; open loop, requests evenly spaced; each step {:?}, then up to {:?} for the server \
         to drain; SLO {:?} (goodput counts the 2xx answers within it; the knee is the highest \
         rate at which 99 in 100 requests were, a 503 counting as a miss); clients give up \
         after {:?}; a fresh server per line, at most {} steps each, from {:.0}% of its \
         predicted knee to twice the knee it shows (a line with shedding: every step)",
        workloads.join("; "),
        config.step,
        config.pause,
        config.slo,
        config.timeout,
        config.max_steps,
        config.start * 100.0
    )
}

/// The sweep's settings for one step at `rate` against `addr`.
pub fn step_config(
    config: &OverloadConfig,
    workload: &Workload,
    addr: SocketAddr,
    rate: f64,
) -> SweepConfig {
    SweepConfig {
        addr,
        path: workload.path.to_owned(),
        wire: workload.wire,
        close: workload.close,
        rates: Some(vec![rate]),
        capacity: None,
        step: config.step,
        // Before the step, up to this long for what the last one left to be served.
        pause: config.pause,
        slo: config.slo,
        timeout: config.timeout,
        max_connections: MAX_CONNECTIONS,
        arrivals: Arrivals::Uniform,
        seed: 1,
    }
}

/// Sweeps one line on a fresh server: the grid from about half its predicted capacity,
/// step by step, until a step has missed the SLO at twice the knee or more (or
/// `max_steps`).
fn sweep_line(
    config: &OverloadConfig,
    workload: &Workload,
    line: &Line,
    cores: usize,
    out: &Path,
) -> anyhow::Result<Curve> {
    let concurrency = Concurrency::of(line.version.entry(), &line.args, cores);
    let mut curve = Curve {
        label: line.label(),
        version: line.version,
        args: line.args.iter().map(|a| (*a).to_owned()).collect(),
        shedding: line.shedding,
        prediction: Prediction::from_count(&concurrency, workload.service),
        concurrency,
        steps: Vec::new(),
        server_cpu_ms: Vec::new(),
        knee: None,
        skipped: None,
    };
    let name = format!("overload-{}-{}", workload.path.trim_start_matches('/'), curve.label);
    let name: String = name.chars().map(|c| if c.is_alphanumeric() { c } else { '-' }).collect();
    let log = std::fs::File::create(out.join("logs").join(format!("{name}.log")))?;
    let server = match serve::spawn_with(line.version, &line.args, Some(log)) {
        Ok(server) => server,
        Err(e) => {
            curve.skipped = Some(format!("it did not start: {e}"));
            return Ok(curve);
        }
    };
    let highest = workload
        .lines
        .iter()
        .filter_map(|l| {
            let c = Concurrency::of(l.version.entry(), &l.args, cores);
            Prediction::from_count(&c, workload.service).rate
        })
        .fold(0.0, f64::max);
    let predicted = (curve.prediction.rate, highest);
    let rates = window(&workload.grid, predicted, config.start, config.max_steps);
    let at =
        Server { addr: server.addr(), pid: Some(server.pid()), processes: line.version.forks() };
    // A line that sheds goes on to the end of its window: twice the knee of the same
    // version without shedding is where its goodput is worth reading, whatever its own
    // steps did before.
    let until = if line.shedding { Until::AllRates } else { Until::TwiceTheKnee };
    let swept = sweep_rates(config, workload, &at, &rates, until)
        .with_context(|| format!("sweeping {}", curve.label))?;
    (curve.steps, curve.server_cpu_ms, curve.knee) = (swept.steps, swept.server_cpu_ms, swept.knee);
    if curve.prediction.rate.is_none() {
        let slo_us = config.slo.as_micros() as u64;
        curve.prediction = Prediction::from_cpu(&curve, cores, config.step, slo_us);
    }
    Ok(curve)
}

/// A server to sweep: where it listens, and the process whose CPU it spends, if known.
#[derive(Debug, Clone, Copy)]
pub struct Server {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    /// Whether it is several processes (the fork version): its children's CPU counts.
    pub processes: bool,
}

/// What a sweep of one server found.
#[derive(Debug, Clone, Default)]
pub struct Swept {
    pub steps: Vec<Step>,
    /// The server's CPU time per step, in milliseconds (0 where its /proc is not readable).
    pub server_cpu_ms: Vec<u64>,
    pub knee: Option<f64>,
}

/// How far [`sweep_rates`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Until a step has missed the SLO at twice the knee or more.
    TwiceTheKnee,
    /// Through every rate given.
    AllRates,
}

/// Steps `server` through `rates`, one sweep step each (the sweep waits before each for
/// what the last left in the server), as far as `until` says.
pub fn sweep_rates(
    config: &OverloadConfig,
    workload: &Workload,
    server: &Server,
    rates: &[f64],
    until: Until,
) -> anyhow::Result<Swept> {
    let slo_us = config.slo.as_micros() as u64;
    let cpu = || server.pid.map_or(0, |pid| sample::cpu_ms(pid, server.processes));
    let mut swept = Swept::default();
    for &rate in rates {
        let cpu_before = cpu();
        let result = sweep::run(&step_config(config, workload, server.addr, rate), &mut |_| {})
            .with_context(|| format!("the step at {rate} req/s"))?;
        let Some(step) = result.steps.into_iter().next() else { continue };
        swept.server_cpu_ms.push(cpu().saturating_sub(cpu_before));
        eprint!("{}", if sweep::within_slo(&step, slo_us) { "✔" } else { "✘" });
        swept.steps.push(step);
        swept.knee = sweep::knee(&swept.steps, slo_us);
        if until == Until::TwiceTheKnee && past_the_knee(&swept.steps, swept.knee, config.slo) {
            break;
        }
    }
    Ok(swept)
}

/// The rates a line steps through: from the first of the grid at or above `start` (a
/// share) of its prediction, every one. A line with no prediction (a server per job,
/// bounded by the CPU) starts at that share of `highest`, the highest prediction of the
/// workload, and takes every third rate (doubling at each step): with no count to stop
/// it, it has far more ground to cover in as many steps.
pub fn window(
    grid: &[f64],
    (predicted, highest): (Option<f64>, f64),
    start: f64,
    max_steps: usize,
) -> Vec<f64> {
    let from = |rate: f64| grid.iter().position(|&r| r >= start * rate).unwrap_or(grid.len());
    match predicted {
        Some(rate) => grid[from(rate)..].iter().copied().take(max_steps).collect(),
        None => grid[from(highest)..].iter().copied().step_by(3).take(max_steps).collect(),
    }
}

/// Whether the sweep has seen enough: the last step missed the SLO and offered at least
/// twice the knee (or, with no knee, two steps missed it).
pub fn past_the_knee(steps: &[Step], knee: Option<f64>, slo: Duration) -> bool {
    let slo_us = slo.as_micros() as u64;
    let Some(last) = steps.last() else { return false };
    if sweep::within_slo(last, slo_us) {
        return false;
    }
    match knee {
        Some(knee) => last.offered >= 2.0 * knee * 0.99,
        None => steps.iter().filter(|s| !sweep::within_slo(s, slo_us)).count() >= 2,
    }
}

impl Curve {
    /// The step at the knee, if there is one.
    pub fn knee_step(&self) -> Option<&Step> {
        let knee = self.knee?;
        self.steps.iter().find(|s| s.offered == knee)
    }

    /// Whether a step missed the SLO, so that the knee is the curve's and not the highest
    /// rate the sweep offered.
    pub fn bent(&self, slo_us: u64) -> bool {
        self.first_miss(slo_us).is_some()
    }

    /// The first step that missed the SLO, if one did.
    pub fn first_miss(&self, slo_us: u64) -> Option<&Step> {
        self.steps.iter().find(|s| !sweep::within_slo(s, slo_us))
    }
}
