//! What a version's registry entry promises is checked against the real server, as
//! `compare` starts it (`loadgen serve`, through `serve.rs`'s runners): v7 with two rings,
//! one of which took no connection, is flagged; the same server once both rings took
//! connections is not. And every promise names a figure its version's `/stats` has, with the
//! value its default options give, so a renamed counter or a changed default fails here
//! rather than as a row flagged in every report.

use std::process::{Command, Stdio};

use common::testkit::{ChildServer, Client, TIMEOUT, wait_until};
use loadgen::compare::assumptions::{assumptions_from, fetch_stats};
use loadgen::serve::Version;
use serde_json::Value;

/// `version` with `args`, started as `compare` starts every version.
fn start(version: &str, args: &[&str]) -> ChildServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loadgen"));
    command.args(["serve", version, "--addr", "127.0.0.1:0"]).args(args);
    command.stderr(Stdio::null());
    ChildServer::spawn(command).expect("the version starts under loadgen serve")
}

fn v7_with_two_rings() -> ChildServer {
    start("v7-uring-per-core", &["--rings", "2"])
}

#[test]
fn every_promise_names_a_figure_of_its_version_s_stats() {
    for version in Version::all() {
        let promises = version.entry().promises;
        if promises == registry::Promises::NONE {
            continue;
        }
        let server = start(version.name(), &[]);
        let stats = fetch_stats(server.addr()).expect("/stats answers");
        let model = &stats["model"];
        // With its default options, as compare runs it: the promise is the default, so a
        // version whose default changed (v3's pool of 10) fails here, not in every report.
        let expected = |count| match count {
            registry::Count::Exactly(n) => n,
            registry::Count::Cores => common::server::cores() as u64,
        };
        for &(name, count) in promises.sizes {
            assert_eq!(
                model[name].as_u64(),
                Some(expected(count)),
                "{version:?} promises model.{name} = {count:?} by default: {stats}"
            );
        }
        if let Some(spread) = promises.spread {
            let units = model[spread.list].as_array();
            let units = units.unwrap_or_else(|| panic!("{version:?}: no model.{}", spread.list));
            assert_eq!(units.len() as u64, expected(spread.count), "{version:?}: {stats}");
            for unit in units {
                assert!(unit[spread.taken].is_u64(), "{version:?}: {}: {unit}", spread.taken);
            }
        }
    }
}

/// The connections each ring has taken, from a `/stats` document.
fn taken(stats: &Value) -> Vec<u64> {
    let rings = stats["model"]["rings"].as_array().expect("v7's /stats lists its rings");
    rings
        .iter()
        .map(|r| r["accepted"].as_u64().expect("each ring counts its connections"))
        .collect()
}

#[test]
fn a_v7_ring_that_took_no_connection_is_flagged() {
    let server = v7_with_two_rings();
    // One connection, and /stats asked on it: one ring has taken it, the other nothing.
    let mut client = Client::connect(server.addr()).expect("connect to v7");
    assert_eq!(client.get("/hello").expect("GET /hello").status, 200);
    let answer = client.get("/stats").expect("GET /stats on the same connection");
    let stats: Value = serde_json::from_slice(&answer.body).expect("/stats is JSON");
    let mut rings = taken(&stats);
    rings.sort_unstable();
    assert_eq!(rings, [0, 1], "one connection, so one ring idle: {stats}");
    // As if a run of 4 connections had left one ring idle: two per ring were enough for
    // both to take some.
    let said = assumptions_from(Version::V7_URING_PER_CORE, &stats, 4, 2);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("1 connections on 1 of 2 rings"), "{said:?}");
}

#[test]
fn a_v7_whose_rings_all_took_connections_passes() {
    let server = v7_with_two_rings();
    // New connections until the kernel's hash has given each ring some (each is a fresh
    // source port, so twenty leave a ring idle once in a million).
    let mut held = Vec::new();
    let spread = wait_until(TIMEOUT, || {
        let Ok(mut client) = Client::connect(server.addr()) else { return false };
        let answered = client.get("/hello").is_ok_and(|a| a.status == 200);
        held.push(client);
        answered && fetch_stats(server.addr()).is_some_and(|s| taken(&s).iter().all(|&n| n > 0))
    });
    assert!(spread, "the rings never all took a connection");
    let stats = fetch_stats(server.addr()).expect("/stats answers");
    let said = assumptions_from(Version::V7_URING_PER_CORE, &stats, held.len(), 2);
    assert!(said.is_empty(), "{said:?} from {stats}");
}
