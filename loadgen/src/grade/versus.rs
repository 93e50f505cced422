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
/// Server CPU time below which a run's CPU per request is not given (ten of /proc's 10 ms units).
const MEASURABLE_CPU_MS: u64 = 100;
/// Keep-alive connections: `compare`'s throughput scenario.
const CONNECTIONS: usize = 64;

/// One scenario, both servers.
#[derive(Debug, Clone, Serialize)]
pub struct Versus {
    pub scenario: &'static str,
    pub graded: Run,
    pub version: Run,
}

/// The idle-clients scenario, both servers: how long a newcomer waited beside
/// [`IDLE`] silent connections (none: not answered within [`NEWCOMER_WAIT`]).
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    pub graded_us: Option<u64>,
    pub version_us: Option<u64>,
}

/// Silent connections in the idle-clients scenario, as `compare --quick` holds.
pub const IDLE: usize = 100;
/// How long its newcomer waits.
pub const NEWCOMER_WAIT: Duration = Duration::from_secs(1);

/// One server's run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub requests_per_sec: f64,
    /// Server CPU time per request answered, in microseconds (none without /proc, with
    /// nothing answered, or with under [`MEASURABLE_CPU_MS`] of CPU in all).
    pub cpu_us_per_request: Option<f64>,
    pub clients_answered: usize,
    pub clients: usize,
    pub errors: u64,
    /// loadgen's busiest thread was near a full core: the rate may be its ceiling, not
    /// the server's.
    pub generator_bound: bool,
}

/// What a scenario asks for: its name, the path, connections, and whether each request
/// has a connection of its own.
struct Scenario {
    name: &'static str,
    path: &'static str,
    connections: usize,
    close: bool,
}

/// The throughput scenarios; the slow handler's only where `/sleep` is served.
const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "keep-alive: 64 connections, GET /hello",
        path: "/hello",
        connections: CONNECTIONS,
        close: false,
    },
    Scenario {
        name: "a new connection per request: 64 clients, GET /hello",
        path: "/hello",
        connections: CONNECTIONS,
        close: true,
    },
    Scenario {
        name: "a slow handler: 50 connections, GET /sleep?ms=100",
        path: "/sleep?ms=100",
        connections: 50,
        close: false,
    },
];

/// Runs each scenario against a fresh `target` and a fresh `version` (with `options`),
/// by turns.
pub fn run(
    target: &Target,
    version: Version,
    options: &[String],
    http: bool,
    sleeps: bool,
    log: &Path,
) -> anyhow::Result<(Vec<Versus>, Option<Idle>)> {
    // HTTP where it answers HTTP, as `compare` drives the versions; else lines. A new
    // connection per request needs HTTP's `Connection: close`.
    let wire = if http { Wire::Http } else { Wire::Line };
    let theirs = Target::Version(version, options.to_vec());
    let mut results = Vec::new();
    for scenario in SCENARIOS {
        if (scenario.close && !http) || (scenario.path.starts_with("/sleep") && !sleeps) {
            continue;
        }
        let graded = drive(target, scenario, wire, log)?;
        let version = drive(&theirs, scenario, wire, log)?;
        results.push(Versus { scenario: scenario.name, graded, version });
    }
    // The newcomer asks over HTTP, as `compare` does.
    let idle = if http {
        Some(Idle { graded_us: newcomer(target, log)?, version_us: newcomer(&theirs, log)? })
    } else {
        None
    };
    Ok((results, idle))
}

/// Starts a fresh server of `target`, holds [`IDLE`] silent connections to it, and
/// times a newcomer's `GET /hello`.
fn newcomer(target: &Target, log: &Path) -> anyhow::Result<Option<u64>> {
    let server = launch(target, Launch::Grade, log)?;
    let config = crate::hold::HoldConfig {
        addr: server.addr(),
        connections: IDLE,
        path: "/hello".into(),
        timeout: NEWCOMER_WAIT,
    };
    let (result, idle) = crate::hold::run(&config)?;
    drop(idle);
    Ok(result.answered_in_us.filter(|_| result.status == Some(200)))
}

/// Starts a fresh server of `target` and drives it for [`RUN`].
fn drive(target: &Target, scenario: &Scenario, wire: Wire, log: &Path) -> anyhow::Result<Run> {
    let server = launch(target, Launch::Grade, log)?;
    let mut config = BenchConfig::new(server.addr(), scenario.connections, RUN, scenario.path);
    config.wire = if scenario.close { Wire::Http } else { wire };
    config.close = scenario.close;
    config.timeout = Duration::from_secs(2);
    config.warm_up = Duration::from_secs(2);
    let pid = server.pid();
    let before = crate::sample::cpu_ms(pid, true);
    let summary = bench::run(&config)?;
    let cpu_ms = crate::sample::cpu_ms(pid, true).saturating_sub(before);
    drop(server);
    // /proc reports CPU time in 10 ms units (USER_HZ): below ten of them, a quotient
    // would be mostly rounding, so none is given.
    let cpu_us_per_request = (summary.requests > 0 && cpu_ms >= MEASURABLE_CPU_MS)
        .then(|| cpu_ms as f64 * 1000.0 / summary.requests as f64);
    Ok(Run {
        requests_per_sec: summary.requests_per_sec,
        cpu_us_per_request,
        clients_answered: summary.clients_answered,
        clients: summary.clients,
        errors: summary.errors.total(),
        generator_bound: summary.generator_bound(),
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
