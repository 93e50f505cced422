//! The load sweep: one server driven open loop at a rising series of offered rates, from
//! well under its capacity to about twice it, to find where it stops keeping up (the
//! knee) and what happens after (goodput).
//!
//! Each step offers requests on a schedule that does not wait for answers: a request is
//! due at its time whether or not the server has answered the last one, as real clients
//! arrive. (A closed loop, `bench` without `--rate`, slows down with the server and so
//! hides the queue that overload builds.) A step's latencies count from each request's due
//! time; its **goodput** counts only the 2xx answers that came within the SLO; the
//! **knee** is the highest offered rate whose p99 stayed within it, a refusal or a timeout
//! counting as a miss ([`knee`]).
//!
//! This file holds what a sweep is asked and what it finds, and [`run`], which goes
//! through the steps: `schedule` says when each request is due, `arrivals` offers them
//! (open loop, one thread on mio), `server` reads what the server says of itself.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::bench::{self, BenchConfig, Wire};
use crate::measure::{Errors, Percentiles, parse_duration};

mod arrivals;
mod schedule;
mod server;

/// How requests arrive within a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arrivals {
    /// Evenly spaced, one every 1/rate seconds (as `bench --rate` and wrk2 send): no queue
    /// forms below the capacity, so the knee is the capacity itself.
    Uniform,
    /// A Poisson process (exponential gaps, as independent users arrive): queues form by
    /// chance well below the capacity, the case queueing theory's M/M/c and M/D/c formulas
    /// describe.
    Poisson,
}

/// What to sweep; also `loadgen sweep`'s options, whose help is the doc of each field.
#[derive(Debug, Clone, clap::Args)]
pub struct SweepConfig {
    /// The server. Not an option of its own here: `loadgen sweep` takes either `--addr` or
    /// a version to start, and sets it.
    #[arg(skip = SocketAddr::from(([127, 0, 0, 1], 0)))]
    pub addr: SocketAddr,
    /// What to request
    #[arg(long, default_value = "/sleep?ms=50")]
    pub path: String,
    #[arg(long = "protocol", value_name = "PROTOCOL", value_enum, default_value_t = Wire::Http)]
    pub wire: Wire,
    /// A new connection for every request (each arrival is a new client, the classic
    /// queueing setup); otherwise requests go over kept-alive connections, a new one
    /// opened when every open one is busy, up to --max-connections
    #[arg(long)]
    pub close: bool,
    /// The offered rates to step through, in requests per second (e.g. 10,20,40), every
    /// one; by default, fractions of the capacity, from a quarter to twice it, stopping
    /// after two steps whose goodput collapsed
    #[arg(long, value_delimiter = ',', value_name = "REQ_PER_SEC")]
    pub rates: Option<Vec<f64>>,
    /// The capacity the default steps are fractions of, in requests per second; by
    /// default estimated first by a short closed-loop probe
    #[arg(long, value_name = "REQ_PER_SEC")]
    pub capacity: Option<f64>,
    /// How long each step offers load
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub step: Duration,
    /// The most time to wait between steps for the server's queues to drain
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub pause: Duration,
    /// The latency an answer must come within to count as goodput; the knee is the
    /// highest offered rate at which 99 in 100 requests are answered 2xx within it
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub slo: Duration,
    /// How long a client waits for its answer before giving up (closing its connection)
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Most connections open at once; an arrival that finds none free waits in the
    /// generator, which the result reports (the curve is then the generator's)
    #[arg(long, default_value_t = 2000)]
    pub max_connections: usize,
    #[arg(long, value_enum, default_value_t = Arrivals::Uniform)]
    pub arrivals: Arrivals,
    /// Seed for Poisson arrivals, so a sweep can be repeated
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// What the server's own `/stats` said during a step, where it answers `/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerSide {
    /// Server CPU time (user + system) per answered request, in microseconds: the
    /// process's (and its children's) from `/proc` before and after the step where it
    /// runs on this machine, else `/stats`'s `cpu_us`; less what the sweep's own `/stats`
    /// readings during the step cost it.
    pub cpu_per_request_us: Option<f64>,
    /// The most each of the server's queues held at a reading during the step: the
    /// kernel's accept queue (`accept_queue`, every 200 ms), the `model` gauges whose name
    /// says queued (`queued_connections`, `queued_jobs`…, once a second, where `/stats`
    /// answers within a second).
    pub queues_max: Vec<(String, u64)>,
    /// Requests the server refused at once (`shed`), answered 503 after waiting past its
    /// deadline (`expired`), or skipped because the client had gone (`departed`), during
    /// the step: `/stats`'s counters of that name, where it has them.
    pub shed: Option<u64>,
    pub expired: Option<u64>,
    pub departed: Option<u64>,
}

/// One step of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    /// Requests per second asked for.
    pub offered: f64,
    /// Requests due in the step (what was offered, in number).
    pub due: u64,
    /// Requests actually written to a socket: fewer than `due` when the generator fell
    /// behind or ran out of connections.
    pub sent: u64,
    /// Answers (any status) per second, those that came during the step.
    pub throughput: f64,
    /// The step's requests answered 2xx within the SLO, per second of step.
    pub goodput: f64,
    /// The same requests in number: the knee asks that 99 in 100 of those due be among them.
    pub good: u64,
    /// Latency of every request due, from its due time: answered at its latency,
    /// unanswered at the timeout (a lower bound), so a refused or starved request raises
    /// the tail instead of vanishing from it. 503s are in it at their (short) latency.
    pub latency_us: Percentiles,
    pub errors: Errors,
    /// 503 answers (load shed by the server), also counted in `errors.bad_status`.
    pub unavailable: u64,
    /// How late the generator wrote its requests behind their due times, p99, in
    /// microseconds: large, and the generator, not the server, shaped the curve.
    pub send_lag_p99_us: u64,
    /// CPU of the generator's thread over the step, as a share of one core.
    pub generator_share: f64,
    /// Most connections the generator had open at once.
    pub connections_max: usize,
    /// The generator, not the server, may have shaped this step: it sent late, ran out of
    /// connections, or used nearly a core (see [`generator_bound`]).
    pub generator_bound: bool,
    /// Why, in words, when it is.
    pub generator_bound_reason: Option<String>,
    pub server: ServerSide,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SweepResult {
    /// The capacity the steps were fractions of (given, or estimated by the probe).
    pub capacity: Option<f64>,
    /// Whether `capacity` was measured by the probe rather than given.
    pub probed: bool,
    pub slo_us: u64,
    pub timeout_us: u64,
    pub close: bool,
    pub arrivals: Arrivals,
    pub steps: Vec<Step>,
    /// The highest offered rate at which 99 in 100 requests were answered 2xx within the
    /// SLO, if any step's were ([`knee`]).
    pub knee: Option<f64>,
    /// Why the sweep stopped before its last step, if it did: two steps in a row whose
    /// goodput fell below a tenth of the best so far (higher rates only bury the server
    /// deeper, and cost a timeout each).
    pub stopped_early: Option<String>,
}

/// The fractions of the capacity the default steps offer: dense around the capacity,
/// where the knee is, and on to twice it, where goodput collapses or holds.
pub const DEFAULT_FRACTIONS: [f64; 9] = [0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6, 2.0];

/// The knee of `steps`: the highest offered rate whose p99 was within `slo_us`, among the
/// steps below the first that missed it (a lucky step after the collapse is not a knee).
///
/// A refusal is a miss, however fast it came: the p99 that counts is that of requests
/// *served*, so at least 99 in 100 of the requests due must have been answered 2xx within
/// the SLO. Otherwise a server shedding load would "keep" any rate: its 503s come back in
/// microseconds and hold the latency percentiles down while nobody is served.
pub fn knee(steps: &[Step], slo_us: u64) -> Option<f64> {
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    sorted.iter().take_while(|step| within_slo(step, slo_us)).map(|step| step.offered).last()
}

/// Whether `step` met the SLO: its p99 within it, 503s and failures counted as misses.
pub fn within_slo(step: &Step, slo_us: u64) -> bool {
    step.sent > 0 && step.latency_us.p99 <= slo_us && step.good * 100 >= step.due * 99
}

/// The rates to step through: those given, or [`DEFAULT_FRACTIONS`] of `capacity`.
pub fn rates(config: &SweepConfig, capacity: f64) -> Vec<f64> {
    match &config.rates {
        Some(rates) => rates.clone(),
        None => DEFAULT_FRACTIONS.iter().map(|f| f * capacity).collect(),
    }
}

/// Connections of the probe that estimates the capacity: enough that a server which
/// grows a thread per connection, or holds many in a pool, is kept busy.
pub const PROBE_CONNECTIONS: usize = 256;
/// How long the probe runs.
pub const PROBE_DURATION: Duration = Duration::from_secs(2);
/// The longest wait for the probe's requests to leave the server.
const MOST_DRAIN: Duration = Duration::from_secs(30);

/// How long a server of `capacity` takes to serve what the probe left in it.
fn probe_backlog(capacity: f64) -> Duration {
    Duration::from_secs_f64(PROBE_CONNECTIONS as f64 / capacity).min(MOST_DRAIN)
}

/// A step whose goodput is below this share of the best so far is a collapse; two in a
/// row end the sweep.
const COLLAPSED: f64 = 0.1;
/// Sending later than this share of the SLO behind schedule (p99) marks a step as
/// generator-bound: the lag alone would eat into the latency measured.
const LAG_SHARE_OF_SLO: f64 = 0.1;

impl SweepConfig {
    /// The sweep of the command line's defaults, against `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        use clap::{Args as _, FromArgMatches as _};
        let command = Self::augment_args(clap::Command::new("sweep"));
        // Cannot fail: every option has a default (a test parses them).
        let matches = command.try_get_matches_from(["sweep"]).expect("the defaults parse");
        Self { addr, ..Self::from_arg_matches(&matches).expect("the defaults parse") }
    }

    /// Says what is wrong with the settings, if anything.
    pub fn validate(&self) -> Result<(), String> {
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if let Some(rates) = &self.rates
            && (rates.is_empty() || !rates.iter().all(|&r| positive(r)))
        {
            return Err("--rates must be positive numbers of requests per second".into());
        }
        if self.capacity.is_some_and(|c| !positive(c)) {
            return Err("--capacity must be a positive number of requests per second".into());
        }
        if self.max_connections == 0 {
            return Err("--max-connections must be at least 1".into());
        }
        if self.close && self.wire == Wire::Line {
            return Err(
                "--close needs --protocol http (the line protocol has no close header)".into()
            );
        }
        if !self.path.starts_with('/') || self.path.contains([' ', '\r', '\n']) {
            return Err(format!("--path `{}` must start with / and have no spaces", self.path));
        }
        Ok(())
    }
}

/// The request every arrival sends.
fn request_bytes(config: &SweepConfig) -> Vec<u8> {
    match config.wire {
        Wire::Http => {
            let close = if config.close { "Connection: close\r\n" } else { "" };
            format!("GET {} HTTP/1.1\r\nHost: {}\r\n{close}\r\n", config.path, config.addr)
        }
        Wire::Line => format!("GET {}\n", config.path),
    }
    .into_bytes()
}

/// CPU time the calling thread has used, user and system.
fn thread_cpu() -> Duration {
    use nix::time::{ClockId, clock_gettime};
    // The thread CPU clock exists on every Linux; were it refused, the share reads 0.
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}

/// Sweeps the server: estimates its capacity if neither rates nor a capacity are given,
/// then runs each step in ascending order, draining the server between them, and calls
/// `on_step` after each.
pub fn run(config: &SweepConfig, on_step: &mut dyn FnMut(&Step)) -> io::Result<SweepResult> {
    config.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let server = server::Server::new(config.addr);
    let (capacity, probed) = match (&config.rates, config.capacity) {
        (None, None) => (Some(probe(config)?), true),
        (_, capacity) => (capacity, false),
    };
    // The probe leaves up to PROBE_CONNECTIONS requests in the server, which it serves at
    // its capacity: the first step waits for them, or it would measure them.
    let mut drain_bound =
        if probed { capacity.map_or(MOST_DRAIN, probe_backlog) } else { Duration::ZERO };
    let mut offered = rates(config, capacity.unwrap_or(0.0));
    offered.sort_by(f64::total_cmp);
    offered.dedup();
    let (mut steps, mut best, mut collapsed) = (Vec::new(), 0.0_f64, 0);
    let mut stopped_early = None;
    for (k, &rate) in offered.iter().enumerate() {
        server.drain(config.pause + drain_bound);
        drain_bound = Duration::ZERO;
        let step = run_step(config, server, rate, config.seed.wrapping_add(k as u64))?;
        on_step(&step);
        best = best.max(step.goodput);
        collapsed = if step.goodput < COLLAPSED * best { collapsed + 1 } else { 0 };
        steps.push(step);
        // Rates given are all run: whoever chose them wants each one measured.
        if collapsed >= 2 && k + 1 < offered.len() && config.rates.is_none() {
            stopped_early = Some(format!(
                "stopped after {rate:.0} req/s: two steps in a row had goodput under {:.0}% \
                 of the best ({best:.1} req/s)",
                100.0 * COLLAPSED
            ));
            break;
        }
    }
    let slo_us = config.slo.as_micros() as u64;
    Ok(SweepResult {
        capacity,
        probed,
        slo_us,
        timeout_us: config.timeout.as_micros() as u64,
        close: config.close,
        arrivals: config.arrivals,
        knee: knee(&steps, slo_us),
        steps,
        stopped_early,
    })
}

/// The capacity, estimated by a short closed-loop run with many connections: what the
/// server answers per second when every answer brings the next request.
fn probe(config: &SweepConfig) -> io::Result<f64> {
    let bench = BenchConfig {
        wire: config.wire,
        close: config.close,
        timeout: config.timeout,
        warm_up: Duration::ZERO,
        ..BenchConfig::new(config.addr, PROBE_CONNECTIONS, PROBE_DURATION, &config.path)
    };
    let summary = bench::run(&bench)?;
    if summary.requests == 0 {
        return Err(io::Error::other(format!(
            "the probe of {} got no answer ({}); give --capacity or --rates",
            config.addr,
            summary.errors.describe()
        )));
    }
    Ok(summary.requests_per_sec)
}

/// One step: the load offered while the server's queues are read.
fn run_step(
    config: &SweepConfig,
    server: server::Server,
    rate: f64,
    seed: u64,
) -> io::Result<Step> {
    let before = server.counters();
    let watcher = server.watch(before.queue_gauges)?;
    let measured = arrivals::run_step(config, rate, seed);
    let seen = watcher.stop();
    let measured = measured?;
    let after = server.counters();
    let secs = config.step.as_secs_f64();
    let since = |a: Option<u64>, b: Option<u64>| Some(a?.saturating_sub(b?));
    let cpu_per_request_us = since(after.cpu_us, before.cpu_us)
        .map(|us| us.saturating_sub(seen.stats_cpu_us))
        .filter(|_| measured.answered > 0)
        .map(|us| us as f64 / measured.answered as f64);
    let mut step = Step {
        offered: rate,
        due: measured.due,
        sent: measured.sent,
        throughput: measured.answered_in_step as f64 / secs,
        goodput: measured.good as f64 / secs,
        good: measured.good,
        latency_us: Percentiles::of(&measured.histogram),
        errors: measured.errors,
        unavailable: measured.unavailable,
        send_lag_p99_us: measured.send_lag.value_at_quantile(0.99),
        generator_share: measured.cpu.as_secs_f64() / measured.elapsed.as_secs_f64().max(1e-9),
        connections_max: measured.connections_max,
        generator_bound: false,
        generator_bound_reason: None,
        server: ServerSide {
            cpu_per_request_us,
            queues_max: seen.queues_max.into_iter().collect(),
            shed: since(after.shed, before.shed),
            expired: since(after.expired, before.expired),
            departed: since(after.departed, before.departed),
        },
    };
    let slo_us = config.slo.as_micros() as u64;
    step.generator_bound_reason =
        generator_bound(&step, slo_us, config.max_connections, measured.hit_max_connections);
    step.generator_bound = step.generator_bound_reason.is_some();
    Ok(step)
}

/// Why the generator, not the server, may have shaped `step`, if it may: it sent more
/// than a tenth of the SLO behind schedule (p99), its thread was near a full core, or
/// arrivals found every one of `max_connections` busy and waited for one.
pub fn generator_bound(
    step: &Step,
    slo_us: u64,
    max_connections: usize,
    waited_for_a_connection: bool,
) -> Option<String> {
    let mut reasons = Vec::new();
    if step.send_lag_p99_us as f64 > LAG_SHARE_OF_SLO * slo_us as f64 {
        reasons.push(format!(
            "sent {} behind schedule (p99), over a tenth of the SLO",
            crate::measure::fmt_us(step.send_lag_p99_us)
        ));
    }
    if step.generator_share > crate::measure::GENERATOR_BOUND {
        reasons.push(format!("its thread used {:.0}% of a core", 100.0 * step.generator_share));
    }
    if waited_for_a_connection || step.connections_max >= max_connections {
        reasons.push(format!(
            "all {max_connections} connections were busy, so arrivals waited in the generator"
        ));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(offered: f64, p99_ms: u64) -> Step {
        Step {
            offered,
            due: 10,
            sent: 10,
            throughput: offered,
            goodput: offered,
            good: 10,
            latency_us: Percentiles { p99: p99_ms * 1000, ..Percentiles::default() },
            errors: Errors::default(),
            unavailable: 0,
            send_lag_p99_us: 0,
            generator_share: 0.0,
            connections_max: 1,
            generator_bound: false,
            generator_bound_reason: None,
            server: ServerSide::default(),
        }
    }

    #[test]
    fn the_knee_is_the_last_step_within_the_slo_before_the_first_that_missed_it() {
        let steps =
            [step(40.0, 60), step(10.0, 55), step(20.0, 58), step(30.0, 400), step(50.0, 90)];
        assert_eq!(knee(&steps, 100_000), Some(20.0));
        assert_eq!(knee(&steps[3..4], 100_000), None);
        assert_eq!(knee(&steps, 1_000_000), Some(50.0));
    }

    #[test]
    fn fast_refusals_are_misses_not_a_knee() {
        // Twice the capacity, shedding: every p99 short, but half the requests got a 503.
        let shedding = Step { good: 5, unavailable: 5, ..step(80.0, 2) };
        let steps = [step(20.0, 50), step(40.0, 60), shedding];
        assert!(!within_slo(&steps[2], 100_000));
        assert_eq!(knee(&steps, 100_000), Some(40.0));
    }
    #[test]
    fn a_step_is_generator_bound_when_it_sent_late_ran_hot_or_ran_out_of_connections() {
        let slo_us = 100_000;
        let calm = Step { send_lag_p99_us: 9_000, generator_share: 0.5, ..step(50.0, 60) };
        assert_eq!(generator_bound(&calm, slo_us, 10, false), None);
        let late = Step { send_lag_p99_us: 11_000, ..calm.clone() };
        assert!(generator_bound(&late, slo_us, 10, false).unwrap().contains("behind schedule"));
        let hot = Step { generator_share: 0.95, ..calm.clone() };
        assert!(generator_bound(&hot, slo_us, 10, false).unwrap().contains("95% of a core"));
        let full = Step { connections_max: 10, ..calm.clone() };
        assert!(generator_bound(&full, slo_us, 10, false).unwrap().contains("all 10"));
        assert!(generator_bound(&calm, slo_us, 10, true).is_some());
    }

    #[test]
    fn the_defaults_are_the_command_line_s_and_bad_settings_are_refused() {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let config = SweepConfig::new(addr);
        assert_eq!(config.addr, addr);
        assert_eq!((config.slo, config.step), (Duration::from_millis(100), Duration::from_secs(3)));
        assert_eq!(
            (config.arrivals, config.close, config.rates.clone()),
            (Arrivals::Uniform, false, None)
        );
        assert!(config.validate().is_ok());
        assert_eq!(rates(&config, 100.0), DEFAULT_FRACTIONS.map(|f| f * 100.0));
        let bad = [
            SweepConfig { rates: Some(vec![10.0, -1.0]), ..config.clone() },
            SweepConfig { rates: Some(vec![]), ..config.clone() },
            SweepConfig { capacity: Some(f64::NAN), ..config.clone() },
            SweepConfig { max_connections: 0, ..config.clone() },
            SweepConfig { close: true, wire: Wire::Line, ..config.clone() },
            SweepConfig { path: "sleep".into(), ..config.clone() },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        let close = SweepConfig { close: true, path: "/sleep?ms=5".into(), ..config };
        assert_eq!(
            request_bytes(&close),
            b"GET /sleep?ms=5 HTTP/1.1\r\nHost: 127.0.0.1:1\r\nConnection: close\r\n\r\n"
        );
    }
}
