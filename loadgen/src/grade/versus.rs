//! Stage 4: how does it compare? Two of `compare`'s scenarios, run against the graded
//! server and against the closest workspace version, by turns in the same run, so the
//! only figure worth quoting is their ratio on this machine: requests per second, and
//! the server's CPU time per request, which a noisy machine blurs less.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::{Launch, Target, launch};
use crate::bench::{self, BenchConfig, Wire};
use crate::serve::Version;

/// How long each scenario drives each server.
const RUN: Duration = Duration::from_secs(3);
/// Keep-alive connections: `compare`'s throughput scenario.
const CONNECTIONS: usize = 64;

/// One scenario, both servers.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    pub scenario: &'static str,
    pub graded: Run,
    pub version: Run,
}

/// One server's run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub requests_per_sec: f64,
    /// Server CPU time per request answered, in microseconds (none without /proc, or
    /// with nothing answered).
    pub cpu_us_per_request: Option<f64>,
    pub clients_answered: usize,
    pub clients: usize,
    pub errors: u64,
}

/// The scenarios: keep-alive, and a new connection per request.
const SCENARIOS: &[(&str, bool)] = &[
    ("keep-alive: 64 connections, GET /hello", false),
    ("a new connection per request: 64 clients, GET /hello", true),
];

/// Runs each scenario against a fresh `target` and a fresh `version` (with `options`),
/// by turns.
pub fn run(
    target: &Target,
    version: Version,
    options: &[String],
    http: bool,
    log: &Path,
) -> anyhow::Result<Vec<Versus>> {
    // HTTP where it answers HTTP, as `compare` drives the versions; else lines. A new
    // connection per request needs HTTP's `Connection: close`.
    let wire = if http { Wire::Http } else { Wire::Line };
    let theirs = Target::Version(version, options.to_vec());
    let mut results = Vec::new();
    for &(scenario, close) in SCENARIOS {
        if close && !http {
            continue;
        }
        let graded = drive(target, wire, close, log)?;
        let version = drive(&theirs, wire, close, log)?;
        results.push(Versus { scenario, graded, version });
    }
    Ok(results)
}

/// Starts a fresh server of `target` and drives it for [`RUN`].
fn drive(target: &Target, wire: Wire, close: bool, log: &Path) -> anyhow::Result<Run> {
    let server = launch(target, Launch::Grade, log)?;
    let mut config = BenchConfig::new(server.addr(), CONNECTIONS, RUN, "/hello");
    config.wire = wire;
    config.close = close;
    config.timeout = Duration::from_secs(2);
    config.warm_up = Duration::from_secs(2);
    let pid = server.pid();
    let before = crate::sample::cpu_ms(pid, true);
    let summary = bench::run(&config)?;
    let cpu_ms = crate::sample::cpu_ms(pid, true).saturating_sub(before);
    drop(server);
    let cpu_us_per_request = (summary.requests > 0 && cpu_ms > 0)
        .then(|| cpu_ms as f64 * 1000.0 / summary.requests as f64);
    Ok(Run {
        requests_per_sec: summary.requests_per_sec,
        cpu_us_per_request,
        clients_answered: summary.clients_answered,
        clients: summary.clients,
        errors: summary.errors.total(),
    })
}

/// `0.42×`, or `–` when there is nothing to divide by.
pub fn ratio(graded: f64, version: f64) -> String {
    if version > 0.0 && graded.is_finite() {
        format!("{:.2}×", graded / version)
    } else {
        "–".into()
    }
}
