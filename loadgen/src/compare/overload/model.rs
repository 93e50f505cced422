//! What each model should do under the sweep, from its settings alone, and why a measured
//! knee is elsewhere.
//!
//! Little's law, L = λW: a server that can serve c requests at once, each for a service
//! time S, completes at most c / S a second; offered more, its queue grows without end and
//! so does every latency behind it. c comes from the version's registry entry and its
//! options (v1: one; v3: its pool; v4-nio: its workers; v4-syscalls: its one loop; v5 and
//! v7: a loop or ring per core; v6: its runtime's workers when handlers run inline). A
//! thread or process per connection (v2) and `spawn_blocking` (v6 `--blocking spawn`) add a
//! server per job: no count bounds them, only the CPU, so their prediction is the cores
//! over the CPU each request cost, measured.

use std::time::Duration;

use serde::Serialize;

use registry::{Count, Handlers};

use super::Curve;
use crate::sweep::Step;

/// How many requests a line serves at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Concurrency {
    /// None: a server per job, bounded by the CPU, not by a count.
    pub count: Option<usize>,
    /// What the count is, in words: `10 threads (--threads)`.
    pub what: String,
    /// Whether its servers each take a share of the connections by hash (a loop or ring
    /// per core), not the next free one: queues then form below the capacity.
    pub by_hash: bool,
    /// Whether each of its threads serves a whole connection, for as long as it stays open
    /// (v1, v3): kept-alive connections past the count wait, however idle the others.
    pub whole_connections: bool,
}

impl Concurrency {
    /// From `entry` and the options `args` it is started with, on `cores` cores.
    pub fn of(entry: &registry::Version, args: &[&str], cores: usize) -> Self {
        let option = |name: &str| -> Option<usize> {
            let at = args.iter().position(|a| *a == name)?;
            args.get(at + 1)?.parse().ok()
        };
        let size = |figure: &str| -> usize {
            entry.promises.sizes.iter().find(|(name, _)| *name == figure).map_or(1, |(_, count)| {
                match count {
                    Count::Exactly(n) => *n as usize,
                    Count::Cores => cores,
                }
            })
        };
        let (count, what, by_hash) = if entry.per_connection.is_some() {
            (None, "a thread or process per connection: bounded by the CPU".to_owned(), false)
        } else if args.windows(2).any(|w| w == ["--blocking", "spawn"]) {
            (None, "a thread of the blocking pool per request: bounded by the CPU".into(), false)
        } else {
            match entry.handlers {
                Handlers::OnItsConnection if entry.serial() => {
                    (Some(1), "one at a time".into(), false)
                }
                Handlers::OnItsConnection => {
                    let n = option("--threads").unwrap_or_else(|| size("pool_size"));
                    (Some(n), format!("{n} pool threads"), false)
                }
                Handlers::OneLoop => (Some(1), "one loop, handlers inline".into(), false),
                Handlers::HandedToWorkers => {
                    let n = option("--workers").unwrap_or_else(|| size("workers"));
                    (Some(n), format!("{n} workers"), false)
                }
                Handlers::LoopPerCore => {
                    let n = option("--loops").or(option("--rings")).unwrap_or(cores);
                    (Some(n), format!("{n} loops (one per core), handlers inline"), true)
                }
                Handlers::RuntimeWorkers => {
                    let n = option("--workers").unwrap_or_else(|| size("runtime_workers"));
                    (Some(n), format!("{n} runtime workers, handlers inline"), false)
                }
            }
        };
        let whole_connections = entry.handlers == Handlers::OnItsConnection && count.is_some();
        Concurrency { count, what, by_hash, whole_connections }
    }
}

/// What Little's law predicts for a line's knee, and from what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Requests per second; none when nothing was measured to predict it from.
    pub rate: Option<f64>,
    /// How: `10 / 20 ms`, or `2 cores / 310 µs of CPU per request`.
    pub from: String,
}

impl Prediction {
    /// c / S, where both are known.
    pub fn from_count(concurrency: &Concurrency, service: Option<Duration>) -> Self {
        match (concurrency.count, service) {
            (Some(c), Some(s)) if !s.is_zero() => Prediction {
                rate: Some(c as f64 / s.as_secs_f64()),
                from: format!("{c} / {} ms", s.as_millis()),
            },
            _ => Prediction { rate: None, from: String::new() },
        }
    }

    /// The cores over the server's CPU per request: what a server bounded by the CPU could
    /// complete with every core its own (the generator shares them, so the measured knee
    /// is lower). The CPU per request is the marginal one, between the first step and the
    /// last that kept the SLO: a server spends some CPU whatever the load (answering the
    /// sweep's `/stats`, its timers), which a quotient at one low rate would count as the
    /// requests'.
    pub fn from_cpu(curve: &Curve, cores: usize, step: Duration, slo_us: u64) -> Self {
        let answered = |s: &Step| s.throughput * step.as_secs_f64();
        let kept = curve.steps.iter().zip(&curve.server_cpu_ms);
        let first = kept.clone().next();
        let last = kept.rev().find(|(s, _)| crate::sweep::within_slo(s, slo_us));
        let per_request = match (first, last) {
            (Some((a, &cpu_a)), Some((b, &cpu_b))) if answered(b) - answered(a) >= 100.0 => {
                let cpu_ms = cpu_b.saturating_sub(cpu_a) as f64;
                Some(cpu_ms * 1000.0 / (answered(b) - answered(a))).filter(|us| *us > 0.0)
            }
            _ => None,
        };
        match per_request {
            Some(us) => Prediction {
                rate: Some(cores as f64 * 1e6 / us),
                from: format!(
                    "{cores} cores / {us:.0} µs of CPU per request, the CPU's bound: no count \
                     bounds it"
                ),
            },
            None => Prediction {
                rate: None,
                from: "bounded by the CPU, not by a count; too little measured to say where".into(),
            },
        }
    }
}

/// Whether the generator, not the server, shaped a step: its thread was near a full core,
/// or the step missed the SLO only by how late loadgen sent (its p99 less its send lag
/// would have kept it). The sweep also marks a step whose sends were late at all, which
/// on a busy machine happens below any knee; that lateness is in the table of steps.
pub fn generator_bound(step: &Step, slo_us: u64) -> bool {
    step.generator_share >= crate::measure::GENERATOR_BOUND
        || (step.latency_us.p99 > slo_us
            && step.latency_us.p99.saturating_sub(step.send_lag_p99_us) <= slo_us)
}

/// Whether a curve's knee is the generator's: the step that first missed the SLO (or the
/// last step, if none did) was generator-bound.
pub fn curve_generator_bound(curve: &Curve, slo_us: u64) -> bool {
    curve_generator_bound_steps(&curve.steps, slo_us)
}

/// [`curve_generator_bound`], for steps that are not a [`Curve`]'s.
pub fn curve_generator_bound_steps(steps: &[Step], slo_us: u64) -> bool {
    let first_miss = steps.iter().find(|s| !crate::sweep::within_slo(s, slo_us));
    first_miss.or(steps.last()).is_some_and(|s| generator_bound(s, slo_us))
}

/// How far the measured knee is from the prediction: measured / predicted.
pub fn ratio(curve: &Curve) -> Option<f64> {
    Some(curve.knee? / curve.prediction.rate.filter(|r| *r > 0.0)?)
}

/// Why the measured knee is more than 25% from the prediction, in a sentence; none when
/// it is within 25% (or there is nothing to compare). `close`: a connection per request.
pub fn why_it_differs(curve: &Curve, slo_us: u64, close: bool, cores: usize) -> Option<String> {
    let predicted = curve.prediction.rate?;
    let ratio = ratio(curve);
    if ratio.is_some_and(|r| (0.75..=1.25).contains(&r)) {
        return None;
    }
    let miss = curve.first_miss(slo_us);
    if miss.is_none() && curve.knee.is_some() {
        return Some(format!(
            "not reached: every step kept the SLO, up to the {} the sweep had time for; the \
             knee is higher",
            if curve.steps.len() > 1 { "rates" } else { "rate" }
        ));
    }
    if curve_generator_bound(curve, slo_us) {
        return Some(
            "generator-bound: where the SLO was first missed, loadgen's thread was near a full \
             core or its own lateness was the miss, so the curve stops where the generator \
             did, not the server"
                .into(),
        );
    }
    let Some(knee) = curve.knee else {
        if let Some(starved) = starved(curve, miss, close) {
            return Some(starved);
        }
        return Some(match curve.steps.first() {
            Some(first) => format!(
                "even the lowest step ({:.0} req/s) missed the SLO (p99 {}): the queue formed \
                 below the predicted {predicted:.0}",
                first.offered,
                crate::measure::fmt_us(first.latency_us.p99)
            ),
            None => "no step was measured".into(),
        });
    };
    if knee > predicted {
        return Some(
            "above the prediction: a step is short, and a queue that grows only a little past \
             the capacity stays under the SLO until the step ends"
                .into(),
        );
    }
    Some(below(curve, miss, close, cores))
}

/// Why a knee came out below its prediction (and not for the generator), from what the
/// first step that missed the SLO, `miss`, saw.
fn below(curve: &Curve, miss: Option<&Step>, close: bool, cores: usize) -> String {
    let busy = miss.map(|s| cpu_cores_used(curve, s)).unwrap_or(0.0);
    if miss.is_some_and(|s| busy + s.generator_share >= 0.85 * cores as f64) {
        return format!(
            "CPU-bound: at the first step that missed the SLO the server kept {:.1} of the \
             {cores} cores busy (its drain before the step included) and the generator most \
             of the rest",
            busy.min(cores as f64)
        );
    }
    if let Some(starved) = starved(curve, miss, close) {
        return starved;
    }
    if curve.concurrency.by_hash {
        return "connections spread by hash, not by load: one loop queues behind a slow \
                handler while another idles, so the p99 passes the SLO before every loop is full"
            .into();
    }
    if let Some((_, held)) = miss.and_then(|s| {
        s.server.queues_max.iter().find(|(name, held)| name.contains("accept") && *held > 0)
    }) {
        return format!(
            "the kernel's backlog: up to {held} connections waited to be accepted, and the SLO \
             counts that wait"
        );
    }
    "the SLO counts queueing: near full utilisation a small delay (a context switch, the \
     generator's turn on a core) queues the requests behind it, and the p99 sees the queue \
     before the mean does"
        .into()
}

/// Why a pool that serves whole connections (`close` false: kept alive) missed the SLO,
/// if that is why: more connections were open at `miss` than it has threads.
fn starved(curve: &Curve, miss: Option<&Step>, close: bool) -> Option<String> {
    let held = miss.map_or(0, |s| s.connections_max);
    let n = curve.concurrency.count?;
    (!close && curve.concurrency.whole_connections && held > n).then(|| {
        format!(
            "each of its {n} threads serves one kept-alive connection for as long as it stays \
             open: the generator had {held} open, and the requests on the others waited for a \
             thread that never came free"
        )
    })
}

/// The cores a step's server kept busy, from its CPU time over the step.
pub fn cpu_cores_used(curve: &Curve, step: &Step) -> f64 {
    let at = curve.steps.iter().position(|s| std::ptr::eq(s, step));
    let cpu_ms = at.and_then(|i| curve.server_cpu_ms.get(i)).copied().unwrap_or(0);
    let secs = if step.offered > 0.0 { step.due as f64 / step.offered } else { 0.0 };
    if secs > 0.0 { cpu_ms as f64 / 1000.0 / secs } else { 0.0 }
}

/// The order the models predict, lowest knee first: one at a time; the loops with
/// handlers inline; the pools of ten; a server per job. Each line's rank, by its model.
pub fn rank(curve: &Curve) -> Option<usize> {
    if curve.shedding || !curve.args.iter().all(|a| a == "--blocking" || a == "spawn") {
        return None;
    }
    match curve.concurrency.count {
        None => Some(3),
        Some(1) => Some(0),
        Some(n) if n >= 10 => Some(2),
        Some(_) => Some(1),
    }
}

/// Whether the knees are ordered as the models predict (v1 < v5/v6/v7 inline < v3/v4-nio
/// < v2), in a sentence naming every pair out of order.
pub fn order(curves: &[Curve]) -> String {
    let ranked: Vec<(usize, &Curve)> = curves
        .iter()
        .filter_map(|c| Some((rank(c)?, c)))
        .filter(|(_, c)| !c.steps.is_empty())
        .collect();
    let knee = |c: &Curve| c.knee.unwrap_or(0.0);
    let mut wrong = Vec::new();
    for (rank_a, a) in &ranked {
        for (rank_b, b) in &ranked {
            if rank_a < rank_b && knee(a) > knee(b) {
                wrong.push(format!(
                    "{} ({:.0}) above {} ({:.0})",
                    a.label,
                    knee(a),
                    b.label,
                    knee(b)
                ));
            }
        }
    }
    if wrong.is_empty() {
        "The knees are in the order the models predict: one at a time, below the loops with \
         handlers inline, below the pools of ten, below a server per job."
            .into()
    } else {
        format!(
            "The knees are NOT all in the order the models predict (one at a time < loops \
             inline < pools of ten < a server per job): {}.",
            wrong.join("; ")
        )
    }
}
