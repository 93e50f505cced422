//! The soak: one server held under a mixed load with faults for a set time, read from
//! outside every few seconds, and judged on what it keeps. The tests that last seconds
//! catch a fault that breaks a request; a leak of one descriptor per thousand resets, or a
//! buffer kept per closed connection, passes them all and shows only here, as a resource
//! that keeps growing.
//!
//! A soak has three phases: a **baseline** read while the server is idle; the **load**
//! ([`load`]: kept-alive requests open loop, connections closed by FIN, by reset and by
//! half-close, slowloris clients, non-readers, bad heads, handler panics, large echoes),
//! read every `every` ([`probe`]); and the **return**, read twice a second after the load
//! stops until every resource is back or `settle` has passed. The [`verdict`] fails a
//! resource that grows after the warm-up, or that does not come back.

use std::io;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::measure::parse_duration;

pub mod load;
pub mod probe;
pub mod verdict;

pub use load::{Kind, Pace, Tally};
pub use probe::{Resource, Sample, Target};
use verdict::{Growth, Tolerance};

/// How long and how hard to soak; also `loadgen soak`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakConfig {
    /// How long the load runs: 10m, 60s
    #[arg(long, short = 'd', default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// How often the server is read under load
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub every: Duration,
    /// The start of the load left out of the growth test, while caches, pools and the
    /// allocator's arenas fill (default: a quarter of --duration)
    #[arg(long, value_parser = parse_duration)]
    pub warm_up: Option<Duration>,
    /// How long the server has, once the load stops, to come back to its baseline
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Kept-alive requests per second (open loop)
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Pause between two visits of each of the other clients
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub pause: Duration,
}

impl SoakConfig {
    pub fn warm_up(&self) -> Duration {
        self.warm_up.unwrap_or(self.duration / 4)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.warm_up() >= self.duration {
            return Err("--warm-up must be shorter than --duration".into());
        }
        if self.every > self.duration / 6 {
            return Err("--every must fit six times in --duration, for the growth test".into());
        }
        if !(self.rate.is_finite() && self.rate > 0.0) {
            return Err("--rate must be a positive number of requests per second".into());
        }
        Ok(())
    }
}

// ANCHOR: tolerance
/// How much each resource may move (see [`verdict`]). Counts are allowed a few units, or a
/// tenth of their level: a burst of slowloris clients or a non-reader's connection held a
/// little longer moves them by that much without anything leaking. Memory is allowed
/// 8 MiB or a fifth: a reading can land while a non-reader's 2 MiB wait in each direction
/// and a 512 KiB echo is held twice (request and answer), and allocators grow and trim in
/// steps of arenas (one per thread, up to eight per core, in glibc) and pages. A leak of a
/// kilobyte per request at this mix's pace still passes that within a few minutes.
pub fn tolerance(resource: Resource) -> Tolerance {
    match resource {
        Resource::Rss => Tolerance { absolute: 8.0 * 1024.0 * 1024.0, relative: 0.2 },
        Resource::Descriptors | Resource::Connections => Tolerance { absolute: 4.0, relative: 0.1 },
        Resource::Threads | Resource::Processes => Tolerance { absolute: 3.0, relative: 0.1 },
    }
}
// ANCHOR_END: tolerance

/// One resource's figures and what the verdict found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Judged {
    pub resource: Resource,
    /// The median of the idle readings before the load.
    pub baseline: f64,
    /// The median of the first third after the warm-up.
    pub warmed: f64,
    /// The last reading under load.
    pub end_of_load: f64,
    /// The last reading after the load.
    pub after: f64,
    pub growth: Growth,
    /// What it must come back to: the baseline for counts; for memory, the warmed level
    /// (an allocator keeps the pages it was given for reuse, so a server's memory after its
    /// first load is its working size, not a leak; more than that, kept, would be).
    pub reference: f64,
    /// Seconds after the load stopped when it was back and stayed; `None`: it was not.
    pub returned_in: Option<f64>,
    /// Why it fails, with the figures and where to look; `None` if it passes.
    pub finding: Option<String>,
}

/// Everything a soak saw.
#[derive(Debug, Clone, Serialize)]
pub struct Soak {
    pub target: Target,
    pub duration_secs: f64,
    pub warm_up_secs: f64,
    pub samples: Vec<Sample>,
    /// Where the load began and ended, in the samples' seconds.
    pub load_from: f64,
    pub load_until: f64,
    pub tallies: Vec<Tally>,
    /// What `/stats` said of open connections before and after, where the server says.
    pub stats_active: [Option<u64>; 2],
    /// Whether the server answered `GET /hello` after it all.
    pub still_serves: bool,
    pub judged: Vec<Judged>,
    pub passed: bool,
}

/// Soaks `target`, calling `on_sample` with every reading as it is taken.
pub fn run(
    target: Target,
    config: &SoakConfig,
    on_sample: &mut dyn FnMut(&Sample),
) -> io::Result<Soak> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut take = |samples: &mut Vec<Sample>| -> io::Result<()> {
        let sample = probe::read(&target, started.elapsed().as_secs_f64())
            .ok_or_else(|| io::Error::other(format!("the server (pid {}) is gone", target.pid)))?;
        on_sample(&sample);
        samples.push(sample);
        Ok(())
    };
    let quiet = Duration::from_secs(2);
    let stats_before = probe::stats_active(target.addr, quiet);
    for _ in 0..4 {
        take(&mut samples)?;
        std::thread::sleep(Duration::from_millis(250));
    }
    let load_from = started.elapsed().as_secs_f64();
    let load = load::Load::start(target.addr, Pace { rate: config.rate, pause: config.pause })?;
    let until = Instant::now() + config.duration;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::sleep(left.min(config.every));
        take(&mut samples)?;
    }
    let tallies = load.stop();
    let load_until = started.elapsed().as_secs_f64();
    settle(config, &mut samples, load_from, &mut take)?;
    let stats_after = probe::stats_active(target.addr, quiet);
    let still_serves = matches!(probe::get(target.addr, "/hello", quiet), Ok((200, _)));
    let warm_from = load_from + config.warm_up().as_secs_f64();
    let judged = Resource::ALL
        .into_iter()
        .map(|r| judge(r, &samples, [load_from, warm_from, load_until], target.pid))
        .collect::<Vec<_>>();
    let passed = still_serves && judged.iter().all(|j| j.finding.is_none());
    Ok(Soak {
        target,
        duration_secs: config.duration.as_secs_f64(),
        warm_up_secs: config.warm_up().as_secs_f64(),
        samples,
        load_from,
        load_until,
        tallies,
        stats_active: [stats_before, stats_after],
        still_serves,
        judged,
        passed,
    })
}

/// Reads the server twice a second after the load until every resource has been back for
/// a second, or `settle` has passed.
fn settle(
    config: &SoakConfig,
    samples: &mut Vec<Sample>,
    load_from: f64,
    take: &mut dyn FnMut(&mut Vec<Sample>) -> io::Result<()>,
) -> io::Result<()> {
    let warm_from = load_from + config.warm_up().as_secs_f64();
    let deadline = Instant::now() + config.settle;
    let mut back_since: Option<Instant> = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        take(samples)?;
        let back = Resource::ALL.into_iter().all(|r| {
            let reference = reference(r, samples, load_from, warm_from);
            let last = samples.last().map_or(0.0, |s| s.get(r));
            last <= reference + tolerance(r).at(reference)
        });
        back_since = if back { back_since.or(Some(Instant::now())) } else { None };
        if back_since.is_some_and(|since| since.elapsed() >= Duration::from_secs(1)) {
            break;
        }
    }
    Ok(())
}

/// The samples of `resource` taken between `from` and `until` seconds, as (secs, value).
fn between(samples: &[Sample], resource: Resource, from: f64, until: f64) -> Vec<(f64, f64)> {
    samples
        .iter()
        .filter(|s| s.secs >= from && s.secs <= until)
        .map(|s| (s.secs, s.get(resource)))
        .collect()
}

/// What `resource` must come back to: see [`Judged::reference`].
fn reference(resource: Resource, samples: &[Sample], load_from: f64, warm_from: f64) -> f64 {
    let baseline = verdict::median(
        &between(samples, resource, 0.0, load_from).iter().map(|s| s.1).collect::<Vec<_>>(),
    );
    if resource != Resource::Rss {
        return baseline;
    }
    let warmed = between(samples, resource, warm_from, f64::INFINITY);
    let third = (warmed.len() / 3).max(1).min(warmed.len());
    baseline.max(verdict::median(&warmed[..third].iter().map(|s| s.1).collect::<Vec<_>>()))
}

/// Judges one resource; `times` are the load's start, the warm-up's end and the load's end.
fn judge(resource: Resource, samples: &[Sample], times: [f64; 3], pid: u32) -> Judged {
    let [load_from, warm_from, load_until] = times;
    let tolerance = tolerance(resource);
    let values = |from, until| between(samples, resource, from, until);
    let baseline = verdict::median(&values(0.0, load_from).iter().map(|s| s.1).collect::<Vec<_>>());
    let growth = verdict::growth(&values(warm_from, load_until), tolerance);
    let after = values(load_until + 1e-9, f64::INFINITY);
    let reference = reference(resource, samples, load_from, warm_from);
    let returned_in = verdict::returned_after(&after, reference, tolerance).map(|t| t - load_until);
    let end_of_load = values(load_from, load_until).last().map_or(baseline, |s| s.1);
    let last = after.last().map_or(end_of_load, |s| s.1);
    let show = |v: f64| show(resource, v);
    let finding = if growth.grows {
        Some(format!(
            "{} kept growing after the warm-up: {} a minute (Theil–Sen slope), median {} in the \
             first third, {} in the last (allowed: {}). Look for {}",
            resource.name(),
            show(growth.slope_per_min),
            show(growth.first_third),
            show(growth.last_third),
            show(growth.allowed),
            resource.hint(pid)
        ))
    } else if returned_in.is_none() {
        Some(format!(
            "{} did not come back after the load: {} at the end, against {} to return to \
             (allowed: {}). Look for {}",
            resource.name(),
            show(last),
            show(reference),
            show(tolerance.at(reference)),
            resource.hint(pid)
        ))
    } else {
        None
    };
    Judged {
        resource,
        baseline,
        warmed: growth.first_third,
        end_of_load,
        after: last,
        growth,
        reference,
        returned_in,
        finding,
    }
}

/// A figure of `resource` as people read it: MiB for memory, a count otherwise.
pub fn show(resource: Resource, value: f64) -> String {
    match resource {
        Resource::Rss => format!("{:.1} MiB", value / (1024.0 * 1024.0)),
        _ if value.fract() == 0.0 => format!("{value:.0}"),
        _ => format!("{value:.1}"),
    }
}
