//! What a reader of a row takes for granted about a version, checked after the run against
//! the server's own `/stats`: the promises its registry entry declares
//! ([`registry::Promises`]: a pool's size, a worker per core, every loop or ring taking
//! connections). Nothing here names a version, so a new one is checked by its entry alone.

use std::net::SocketAddr;
use std::time::Duration;

use common::testkit::Client;
use registry::{Count, Spread};
use serde_json::Value;

use crate::serve::Version;

/// How long the server may take to answer `/stats` after a run: a loop still working
/// through `/sleep` requests whose clients timed out can take seconds.
pub const STATS_PATIENCE: Duration = Duration::from_secs(10);

/// The server's `/stats`, asked once over a connection of its own (read by its
/// `Content-Length`); None if it does not answer within [`STATS_PATIENCE`].
pub fn fetch_stats(addr: SocketAddr) -> Option<Value> {
    let stream = std::net::TcpStream::connect_timeout(&addr, STATS_PATIENCE).ok()?;
    let mut client = Client::from_stream(stream);
    client.set_timeout(STATS_PATIENCE).ok()?;
    client.send(b"GET /stats HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n").ok()?;
    let answer = client.read_response().ok()?;
    serde_json::from_slice(&answer.body).ok()
}

/// Checks, from the server's `/stats` after a run with `connections` open at once, what
/// `version`'s registry entry promises. Each promise broken is returned, said plainly.
pub fn check_assumptions(version: Version, addr: SocketAddr, connections: usize) -> Vec<String> {
    let promises = version.entry().promises;
    if promises == registry::Promises::NONE {
        return Vec::new();
    }
    let Some(stats) = fetch_stats(addr) else {
        return vec![format!(
            "not checked: /stats did not answer within {STATS_PATIENCE:?} after the run"
        )];
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    assumptions_from(version, &stats, connections, cores)
}

/// [`check_assumptions`]' reading of one `/stats` document, on a machine of `cores`.
pub fn assumptions_from(
    version: Version,
    stats: &Value,
    connections: usize,
    cores: u64,
) -> Vec<String> {
    let promises = version.entry().promises;
    let model = &stats["model"];
    let mut wrong = Vec::new();
    for &(name, count) in promises.sizes {
        match count {
            Count::Exactly(value) if model[name].as_u64() != Some(value) => {
                wrong.push(format!("not as assumed: {name} was {}, not {value}", model[name]));
            }
            Count::Cores if model[name].as_u64() != Some(cores) => wrong.push(format!(
                "not as assumed: {} {} on {cores} cores",
                model[name],
                name.replace('_', " ")
            )),
            _ => {}
        }
    }
    if let Some(spread) = promises.spread {
        wrong.extend(unspread(version, spread, model, connections, cores));
    }
    wrong
}

/// What is wrong with how the connections spread over the threads that accept their own:
/// fewer of them than promised, or one that took none.
fn unspread(
    version: Version,
    spread: Spread,
    model: &Value,
    connections: usize,
    cores: u64,
) -> Vec<String> {
    let Some(units) = model[spread.list].as_array() else {
        return vec![format!("not as assumed: /stats has no model.{}", spread.list)];
    };
    let mut wrong = Vec::new();
    let want = match spread.count {
        Count::Exactly(n) => n,
        Count::Cores => cores,
    };
    if units.len() as u64 != want {
        let on =
            if spread.count == Count::Cores { format!(" on {cores} cores") } else { String::new() };
        wrong.push(format!("not as assumed: {} {}{on}", units.len(), spread.list));
    }
    let taken: Vec<u64> = units.iter().map(|u| u[spread.taken].as_u64().unwrap_or(0)).collect();
    // With at least two connections per unit, one that took none means the others served
    // everything: the row measured fewer of them than the server has.
    let idle = taken.iter().filter(|&&n| n == 0).count();
    if connections >= 2 * units.len() && idle > 0 {
        let total: u64 = taken.iter().sum();
        let short = version.name().split('-').next().unwrap_or(version.name());
        wrong.push(format!(
            "not as assumed: {total} connections on {} of {} {list}, so the row measures \
             fewer {list} than {short} has",
            units.len() - idle,
            units.len(),
            list = spread.list,
        ));
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v5_row_on_one_of_its_loops_is_flagged() {
        let loops =
            |a: u64, b: u64| json!({"model": {"loops": [{"accepted": a}, {"accepted": b}]}});
        let v5 = Version::V5_REACTOR_PER_CORE;
        assert!(assumptions_from(v5, &loops(5, 4), 8, 2).is_empty());
        let one = assumptions_from(v5, &loops(9, 0), 8, 2);
        assert_eq!(one.len(), 1, "{one:?}");
        assert_eq!(
            one[0],
            "not as assumed: 9 connections on 1 of 2 loops, so the row measures fewer loops \
             than v5 has"
        );
        // Fewer connections than two per loop may fairly all land on one.
        assert!(assumptions_from(v5, &loops(3, 0), 3, 2).is_empty());
        let four = assumptions_from(v5, &loops(5, 4), 8, 4);
        assert_eq!(four, ["not as assumed: 2 loops on 4 cores"]);
    }

    #[test]
    fn v7_s_rings_are_checked_as_v5_s_loops() {
        let rings = json!({"model": {"rings": [{"accepted": 0}, {"accepted": 7}]}});
        let said = assumptions_from(Version::V7_URING_PER_CORE, &rings, 64, 2);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("7 connections on 1 of 2 rings"), "{said:?}");
        assert!(said[0].ends_with("than v7 has"), "{said:?}");
    }

    #[test]
    fn pool_and_runtime_sizes_are_checked() {
        let v3 = json!({"model": {"pool_size": 4}});
        let said = assumptions_from(Version::V3_THREAD_POOL, &v3, 64, 2);
        assert_eq!(said, ["not as assumed: pool_size was 4, not 10"]);
        let v6 = json!({"model": {"runtime_workers": 2}});
        assert!(assumptions_from(Version::V6_ASYNC, &v6, 64, 2).is_empty());
        assert_eq!(
            assumptions_from(Version::V6_ASYNC, &v6, 64, 8),
            ["not as assumed: 2 runtime workers on 8 cores"]
        );
        let v4 = json!({"model": {"workers": 10}});
        assert!(assumptions_from(Version::V4_NIO, &v4, 64, 2).is_empty());
    }

    #[test]
    fn a_version_that_promises_nothing_is_not_asked() {
        for version in Version::all() {
            let promises = version.entry().promises;
            if promises == registry::Promises::NONE {
                let unreachable: SocketAddr = "127.0.0.1:1".parse().unwrap();
                assert!(check_assumptions(version, unreachable, 64).is_empty(), "{version:?}");
            }
        }
    }
}
