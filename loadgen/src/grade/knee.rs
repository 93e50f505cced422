//! Stage 5: where does it stop keeping up? The graded server and the closest version,
//! started with the settings the fingerprint found (a pool of the size seen), swept one
//! after the other through the same rising rates, open loop, as `compare`'s overload
//! experiment sweeps the versions: the knee of each (the highest rate whose p99 stays
//! within the SLO) beside what Little's law predicts for the version.
//!
//! Bounded: at most [`MAX_STEPS`] steps of [`STEP`] each per server, from [`START`] of the
//! version's predicted capacity, stopping once a step has missed the SLO at twice the knee.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{Launch, Target, launch};
use crate::bench::Wire;
use crate::compare::overload::model::{Concurrency, Prediction, curve_generator_bound_steps};
use crate::compare::overload::{OverloadConfig, Server, Until, Workload, sweep_rates, window};
use crate::compare::suite::grid;
use crate::serve::Version;
use crate::sweep::Step;

/// How long each step offers load.
pub const STEP: Duration = Duration::from_secs(1);
/// The most steps each server is swept through.
pub const MAX_STEPS: usize = 6;
/// Where the sweep starts, as a share of the version's predicted knee: with
/// [`MAX_STEPS`] rates 26% apart, it reaches twice a knee found near the prediction.
pub const START: f64 = 0.6;
/// The SLO the knee is measured against.
pub const SLO: Duration = Duration::from_millis(100);

/// Both servers' knees on one workload.
#[derive(Debug, Clone, Serialize)]
pub struct Knees {
    /// What was asked, in words.
    pub workload: String,
    pub slo_us: u64,
    /// The closest version as it was started: its name and options.
    pub against: String,
    pub graded: Knee,
    pub version: Knee,
    /// What Little's law predicts for the version with these settings, if it can.
    pub predicted: Option<f64>,
    pub predicted_from: String,
}

/// One server's sweep.
#[derive(Debug, Clone, Serialize)]
pub struct Knee {
    /// The highest offered rate whose p99 stayed within the SLO; none if none did.
    pub knee: Option<f64>,
    pub steps: Vec<Step>,
    /// loadgen, not the server, may have set where the curve bends.
    pub generator_bound: bool,
}

impl Knee {
    /// The knee in words: `320 req/s (p99 24.0 ms)`, or why there is none.
    pub fn describe(&self) -> String {
        let at = self.knee.and_then(|k| self.steps.iter().find(|s| s.offered == k));
        let mut text = match (at, self.steps.first()) {
            (Some(s), _) => {
                format!("{:.0} req/s (p99 {})", s.offered, crate::measure::fmt_us(s.latency_us.p99))
            }
            (None, Some(first)) => {
                format!("none: already over the SLO at {:.0} req/s", first.offered)
            }
            (None, None) => "none: no step measured".to_owned(),
        };
        if let Some(last) = self.steps.last() {
            text += &format!("; {} steps up to {:.0} req/s", self.steps.len(), last.offered);
        }
        if self.generator_bound {
            text += "; generator-bound: the knee may be loadgen's";
        }
        text
    }
}

/// Sweeps a fresh server of `target` and a fresh `version` with
/// `options`: `/sleep?ms=20` with a new connection per request where the server sleeps
/// and speaks HTTP (over kept-alive line-protocol connections where it does not), else
/// keep-alive `/hello`.
pub fn run(
    target: &Target,
    version: Version,
    options: &[String],
    http: bool,
    sleeps: bool,
    log: &Path,
) -> anyhow::Result<Knees> {
    let (path, service, low, steps) = if sleeps {
        ("/sleep?ms=20", Some(Duration::from_millis(20)), 20.0, 25)
    } else {
        ("/hello", None, 2000.0, 16)
    };
    let workload = Workload {
        name: "grade",
        path,
        close: http,
        wire: if http { Wire::Http } else { Wire::Line },
        service,
        grid: grid(low, steps),
        lines: Vec::new(),
    };
    let config = OverloadConfig {
        workloads: Vec::new(),
        step: STEP,
        pause: STEP,
        slo: SLO,
        timeout: Duration::from_millis(500),
        max_steps: MAX_STEPS,
        start: START,
        cut: String::new(),
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let args: Vec<&str> = options.iter().map(String::as_str).collect();
    let prediction =
        Prediction::from_count(&Concurrency::of(version.entry(), &args, cores), service);
    // Where a server per job has no count to predict from: the highest a version's
    // defaults predict, the pools'.
    let highest = registry::VERSIONS
        .iter()
        .filter_map(|v| Prediction::from_count(&Concurrency::of(v, &[], cores), service).rate)
        .fold(0.0, f64::max);
    let rates = window(&workload.grid, (prediction.rate, highest), START, MAX_STEPS);
    let theirs = Target::Version(version, options.to_vec());
    eprint!("  knee: it ");
    let graded = sweep(target, &config, &workload, &rates, log)?;
    eprint!("  {} ", version.name());
    let version_knee = sweep(&theirs, &config, &workload, &rates, log)?;
    eprintln!();
    let connecting = if http { "a new connection per request" } else { "kept-alive connections" };
    Ok(Knees {
        workload: format!("GET {path}, {connecting}, open loop, {STEP:?} a step"),
        slo_us: SLO.as_micros() as u64,
        against: std::iter::once(version.name()).chain(args).collect::<Vec<_>>().join(" "),
        graded,
        version: version_knee,
        predicted: prediction.rate,
        predicted_from: prediction.from,
    })
}

/// A fresh server of `target`, swept.
fn sweep(
    target: &Target,
    config: &OverloadConfig,
    workload: &Workload,
    rates: &[f64],
    log: &Path,
) -> anyhow::Result<Knee> {
    let child = launch(target, Launch::Grade, log)?;
    // Its children's CPU counts, should it be a server that forks.
    let server = Server { addr: child.addr(), pid: Some(child.pid()), processes: true };
    let swept = sweep_rates(config, workload, &server, rates, Until::TwiceTheKnee)?;
    let slo_us = config.slo.as_micros() as u64;
    Ok(Knee {
        knee: swept.knee,
        generator_bound: curve_generator_bound_steps(&swept.steps, slo_us),
        steps: swept.steps,
    })
}
