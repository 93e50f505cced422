//! The instrument checked against wrk in the same run: loadgen and wrk by turns against
//! the fastest keep-alive version, so a reader sees whether loadgen, and not the server,
//! set the fastest rates.

use serde::Serialize;

use super::{Load, Scenario, ScenarioId, ScenarioResult};
use crate::bench::{self, BenchConfig};
use crate::serve::{self, Version};

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
pub fn calibrate(version: Version, config: &BenchConfig) -> Result<Calibration, String> {
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

/// The fastest version of the keep-alive scenario, measured again by loadgen and by wrk;
/// or why not.
pub fn fastest(scenarios: &[Scenario], results: &[ScenarioResult]) -> Result<Calibration, String> {
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
    calibration
}
