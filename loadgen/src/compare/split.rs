//! How a version that spreads its connections by the kernel's hash (`SO_REUSEPORT`: v5's
//! loops, v7's rings) split the slow-handler scenario's clients between its threads: read
//! from its `/stats` before and after the load, for the report to say beside the table.
//!
//! Measured (`scripts/v7-slow-split.py`): with 50 clients on two loops and a 2 s timeout,
//! what a run answers turns on that split, which the hash draws again at every reconnect;
//! a count compared between two such versions in one run is partly the hash's luck.

use std::net::SocketAddr;

use serde::Serialize;
use serde_json::Value;

use super::assumptions::fetch_stats;
use super::{Load, Scenario, ScenarioId};
use crate::serve::Subject;

/// One run's split: what each loop (ring) took, and the scenario's edge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopSplit {
    /// What the version calls its threads in `/stats` (`loops`, `rings`).
    pub list: String,
    /// Connections each accepted during the run: the clients, their reconnects after a
    /// timeout, and compare's own two `/stats` requests after the load. (Not the requests
    /// each handled: the reading after the load waits for a loop that is still running
    /// handlers for clients that gave up, so that count runs on past the load.)
    pub accepted: Vec<u64>,
    /// The scenario's clients, its handler's time and its timeout, in milliseconds.
    pub clients: usize,
    pub handler_ms: u64,
    pub timeout_ms: u64,
}

/// Before the load: the `/stats` to subtract, for the slow-handler scenario of a version
/// whose registry entry says it spreads by hash; `None` for every other run (which
/// fetches nothing more than before).
pub fn before(scenario: &Scenario, subject: Subject, addr: SocketAddr) -> Option<Value> {
    wanted(scenario, subject)?;
    fetch_stats(addr)
}

/// After the load: the split, from `before` and a second reading.
pub fn after(
    scenario: &Scenario,
    subject: Subject,
    addr: SocketAddr,
    before: Option<Value>,
) -> Option<LoopSplit> {
    let list = wanted(scenario, subject)?;
    let (Load::Bench(config), before) = (&scenario.load, before?) else { return None };
    let after = fetch_stats(addr)?;
    let handler_ms = config.path.split_once("ms=")?.1.parse().ok()?;
    Some(LoopSplit {
        list: list.to_owned(),
        accepted: deltas(&before, &after, list, "accepted")?,
        clients: config.connections,
        handler_ms,
        timeout_ms: config.timeout.as_millis() as u64,
    })
}

/// The `/stats` list to read, if this run is one to read it for.
fn wanted(scenario: &Scenario, subject: Subject) -> Option<&'static str> {
    if scenario.id != ScenarioId::SlowHandler {
        return None;
    }
    Some(subject.version()?.entry().promises.spread?.list)
}

/// Each entry's `field` in `after` less its value in `before`.
fn deltas(before: &Value, after: &Value, list: &str, field: &str) -> Option<Vec<u64>> {
    let (then, now) = (before["model"][list].as_array()?, after["model"][list].as_array()?);
    if then.len() != now.len() {
        return None;
    }
    then.iter()
        .zip(now)
        .map(|(a, b)| Some(b[field].as_u64()?.saturating_sub(a[field].as_u64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_loop_s_counts_over_the_run_are_read_and_a_changed_list_is_not() {
        let stats = |a: u64, b: u64| {
            json!({"model": {"loops": [{"accepted": a, "requests": 2 * a},
                                       {"accepted": b, "requests": 2 * b}]}})
        };
        let (before, after) = (stats(1, 2), stats(30, 24));
        assert_eq!(deltas(&before, &after, "loops", "accepted"), Some(vec![29, 22]));
        assert_eq!(deltas(&before, &after, "loops", "requests"), Some(vec![58, 44]));
        assert_eq!(deltas(&before, &after, "rings", "accepted"), None);
        let three =
            json!({"model": {"loops": [{"accepted": 1}, {"accepted": 1}, {"accepted": 1}]}});
        assert_eq!(deltas(&before, &three, "loops", "accepted"), None);
    }
}
