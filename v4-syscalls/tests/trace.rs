//! v4-syscalls' timeline on every API, read from its `--trace` file: one thread accepts,
//! waits in the API's own call and serves every connection, each wait saying how many
//! descriptors it found ready; on io_uring, completions are reaped in counted batches.

use std::collections::BTreeSet;

use common::testkit::Client;
use common::testkit::serving::{one_thread_per_conn, threads_waiting_in};
use common::testkit::trace::{Trace, TraceEvent, TracedServer, check_no_overlap};

const BINARY: &str = env!("CARGO_BIN_EXE_v4-syscalls");
const CLIENTS: usize = 3;

/// Three clients at once, each asking twice in the line protocol and once over HTTP, with
/// the server waiting with `api`; the trace it wrote.
fn traced(api: &str) -> Trace {
    let server = TracedServer::start(BINARY, &["--api", api]);
    let mut clients: Vec<Client> =
        (0..CLIENTS).map(|_| Client::connect(server.addr()).expect("connect")).collect();
    for client in &mut clients {
        assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
    }
    for client in &mut clients {
        assert_eq!(client.line("GET /echo?msg=hi").expect("an answer"), "200 hi");
        assert_eq!(client.get("/hello").expect("an answer").status, 200);
    }
    drop(clients);
    let trace = server.stop().expect("a trace in the format");
    assert_eq!(trace.other["version"], "v4-syscalls");
    trace
}

/// One loop on one thread: it accepted, served and closed every connection, ran every
/// handler (one at a time), and waited in `call`.
fn check_one_loop(trace: &Trace, call: &str) {
    let owners = one_thread_per_conn(trace).expect("a connection on two threads");
    // The clients', and perhaps the shutdown's own connect, which wakes the loop.
    let handled: BTreeSet<_> = trace.spans("handle").filter_map(|h| h.conn()).collect();
    assert_eq!(handled.len(), CLIENTS, "connections served: {owners:?}");
    let threads: BTreeSet<_> = owners.values().copied().collect();
    assert_eq!(threads.len(), 1, "one loop serves everyone: {owners:?}");
    assert_eq!(trace.handler_threads(), threads);
    let handlers: Vec<_> = trace.spans("handle").collect();
    assert_eq!(handlers.len(), 3 * CLIENTS, "{handlers:#?}");
    check_no_overlap(&handlers).expect("one thread, one handler at a time");
    assert_eq!(threads_waiting_in(trace, call), threads, "the loop waits in {call}");
    // Each wait that ended says how many descriptors (or completions) it found ready.
    let ended = |w: &&TraceEvent| w.name == call && !w.args.contains_key("unfinished");
    let waits: Vec<_> = trace.spans("wait").filter(ended).collect();
    assert!(waits.iter().all(|w| w.count("ready").is_some()), "{waits:#?}");
    let closed: BTreeSet<_> = trace.instants("close").filter_map(|c| c.conn()).collect();
    assert!(closed.is_superset(&handled), "every connection's close is recorded: {closed:?}");
}

#[test]
fn select_loop() {
    check_one_loop(&traced("select"), "select");
}

#[test]
fn poll_loop() {
    check_one_loop(&traced("poll"), "poll");
}

#[test]
fn epoll_loop() {
    check_one_loop(&traced("epoll"), "epoll_wait");
}

#[test]
fn epoll_edge_triggered_loop() {
    let trace = traced("epoll-et");
    check_one_loop(&trace, "epoll_wait");
    // Every read and write call is a span with its bytes, for its connection.
    for cat in ["read", "write"] {
        let calls: Vec<_> = trace.spans(cat).collect();
        assert!(calls.iter().all(|c| c.conn().is_some() && c.count("bytes").is_some()));
        let conns: BTreeSet<_> = calls.iter().filter_map(|c| c.conn()).collect();
        assert!(conns.len() >= CLIENTS, "{cat}: {calls:#?}");
    }
}

#[test]
fn io_uring_loop() {
    let trace = traced("io-uring");
    check_one_loop(&trace, "io_uring_enter");
    // What each connection received and sent is recorded with the bytes, and every
    // completion was taken in by a counted reap.
    let reaps: Vec<_> = trace.spans("reap").collect();
    assert!(reaps.iter().all(|r| r.count("count").is_some()), "{reaps:#?}");
    assert!(reaps.iter().map(|r| r.count("count").unwrap_or(0)).sum::<u64>() > 0);
    for (cat, name) in [("read", "recv"), ("write", "send")] {
        let conns: BTreeSet<_> =
            trace.instants(cat).filter(|i| i.name == name).filter_map(|i| i.conn()).collect();
        assert!(conns.len() >= CLIENTS, "{cat}: {conns:?}");
    }
}
