//! v2's limit, gone, in v2's own straight-line style: 10,000 idle connections cost v6 no
//! thread, where v2 pays one per connection. The server runs as a child process, so the
//! 10,000 connections' two ends do not share one descriptor limit. Alone in its test
//! binary, so the thread counts from /proc are the servers' alone.

use common::procfs;
use common::testkit::{
    Client, TIMEOUT, TestServer, hold_idle, spawn_binary, threads_grown_per_connection, wait_until,
};
use v2_thread_per_conn as v2;

const IDLE: usize = 10_000;

/// Raises this process's descriptor limit to its hard limit, for the client ends.
fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
    hard
}

// ANCHOR: vs_v2
#[test]
fn ten_thousand_idle_connections_cost_v6_no_thread_where_v2_pays_one_each() {
    let v2 = TestServer::start(v2::SERVER, v2::Config::default(), v2::run);
    let grew = threads_grown_per_connection(&v2, 100, "connection_threads");
    assert_eq!(grew, 100, "v2: a thread per idle connection");
    drop(v2);

    let limit = raise_descriptor_limit();
    assert!(limit > IDLE as u64 + 100, "the descriptor limit ({limit}) is below {IDLE}");
    let v6 = spawn_binary(env!("CARGO_BIN_EXE_v6-async"), &["--workers", "2", "--backlog", "4096"]);
    let threads = || procfs::status(Some(v6.pid())).map(|s| s.threads).unwrap_or(0);
    // Two runtime workers, main (accepting) and the signal thread; the runtime is built
    // just after the address is announced.
    let expected = 2 + 2;
    assert!(wait_until(TIMEOUT, || threads() == expected), "threads: {}", threads());
    let idle = hold_idle(v6.addr(), IDLE).unwrap();
    let mut newcomer = Client::connect(v6.addr()).unwrap();
    let mut tasks = || -> u64 {
        let stats = newcomer.get("/stats").expect("/stats");
        let stats: serde_json::Value = serde_json::from_slice(&stats.body).expect("JSON");
        stats["model"]["tasks"].as_u64().unwrap_or(0)
    };
    assert!(
        wait_until(TIMEOUT, || tasks() == IDLE as u64 + 1),
        "not every connection became a task"
    );
    assert_eq!(threads(), expected, "v6's threads changed with {IDLE} idle connections");
    drop(idle);
}
// ANCHOR_END: vs_v2
