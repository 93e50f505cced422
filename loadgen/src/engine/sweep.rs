//! The load sweep: one server driven open loop at a rising series of offered rates, from
//! well under its capacity to about twice it, to find where it stops keeping up (the
//! knee) and what happens after (goodput).
//!
//! Each step offers requests on a schedule that does not wait for answers: a request is
//! due at its time whether or not the server has answered the last one, as real clients
//! arrive. (A closed loop, `bench` without `--rate`, slows down with the server and so
//! hides the queue that overload builds.) A step's latencies count from each request's due
//! time; its **goodput** counts only the answers that came within the SLO; the **knee** is
//! the highest offered rate whose p99 stayed within it.
//!
//! This file holds what a sweep is asked and what it finds.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::bench::Wire;
use crate::measure::{Errors, Percentiles, parse_addr, parse_duration};

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
    /// The server, e.g. 127.0.0.1:8084
    #[arg(long, value_parser = parse_addr)]
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
    /// The offered rates to step through, in requests per second (e.g. 10,20,40);
    /// by default, fractions of the capacity, from a quarter to twice it
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
    /// highest offered rate whose p99 stays within it
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
    /// Server CPU time (user + system) per answered request, in microseconds, from
    /// `/stats`'s process CPU before and after the step.
    pub cpu_per_request_us: Option<f64>,
    /// The most each of the server's queues held at a reading during the step: the
    /// kernel's accept queue, and the `model` gauges whose name says queued
    /// (`queued_connections`, `queued_jobs`…).
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
    /// Answers (any status) per second.
    pub throughput: f64,
    /// 2xx answers within the SLO, per second.
    pub goodput: f64,
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
    /// The highest offered rate whose p99 stayed within the SLO, if any step's did.
    pub knee: Option<f64>,
}

/// The fractions of the capacity the default steps offer: dense around the capacity,
/// where the knee is, and on to twice it, where goodput collapses or holds.
pub const DEFAULT_FRACTIONS: [f64; 9] = [0.25, 0.5, 0.7, 0.85, 1.0, 1.15, 1.3, 1.6, 2.0];

/// The knee of `steps`: the highest offered rate whose p99 was within `slo_us`, among the
/// steps below the first that missed it (a lucky step after the collapse is not a knee).
pub fn knee(steps: &[Step], slo_us: u64) -> Option<f64> {
    let mut sorted: Vec<&Step> = steps.iter().collect();
    sorted.sort_by(|a, b| a.offered.total_cmp(&b.offered));
    sorted
        .iter()
        .take_while(|step| step.latency_us.p99 <= slo_us && step.sent > 0)
        .map(|step| step.offered)
        .last()
}

/// The rates to step through: those given, or [`DEFAULT_FRACTIONS`] of `capacity`.
pub fn rates(config: &SweepConfig, capacity: f64) -> Vec<f64> {
    match &config.rates {
        Some(rates) => rates.clone(),
        None => DEFAULT_FRACTIONS.iter().map(|f| f * capacity).collect(),
    }
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
            latency_us: Percentiles { p99: p99_ms * 1000, ..Percentiles::default() },
            errors: Errors::default(),
            unavailable: 0,
            send_lag_p99_us: 0,
            generator_share: 0.0,
            connections_max: 1,
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
}
