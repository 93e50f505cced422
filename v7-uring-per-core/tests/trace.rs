//! v7's timeline, read from its `--trace` file: each ring waits in `io_uring_enter` on a
//! lane of its own, every connection is accepted, served and closed by one ring for its
//! whole life, and under load one wait brings back many completions, reaped together.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::sync::{Arc, Barrier};

use common::testkit::Client;
use common::testkit::serving::{one_thread_per_conn, threads_waiting_in};
use common::testkit::trace::TracedServer;

const BINARY: &str = env!("CARGO_BIN_EXE_v7-uring-per-core");
/// Connections hashed over two rings' sockets all land on one with odds of 1 in 2^15.
const CLIENTS: usize = 16;
const ROUNDS: usize = 3;

#[test]
fn every_connection_lives_on_the_ring_that_accepted_it() {
    let server = TracedServer::start(BINARY, &["--rings", "2"]);
    // All at once, as a load generator opens them, so both rings' sockets get some.
    let streams: Vec<TcpStream> =
        (0..CLIENTS).map(|_| TcpStream::connect(server.addr()).expect("connect")).collect();
    let mut clients: Vec<Client> = streams.into_iter().map(Client::from_stream).collect();
    for _ in 0..ROUNDS {
        for client in &mut clients {
            assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
        }
    }
    drop(clients);
    let trace = server.stop().expect("a trace in the format");
    assert_eq!(trace.other["version"], "v7-uring-per-core");

    let mut owners = one_thread_per_conn(&trace).expect("a connection left its ring");
    // The clients', not the shutdown's own connect, which may reach a ring.
    owners.retain(|&conn, _| trace.spans("handle").any(|h| h.conn() == Some(conn)));
    assert_eq!(owners.len(), CLIENTS, "connections served: {owners:?}");
    let rings: BTreeSet<_> = owners.values().copied().collect();
    let names: BTreeSet<_> = rings.iter().filter_map(|&r| trace.thread_name(r)).collect();
    assert_eq!(names, BTreeSet::from(["ring-0", "ring-1"]), "both rings serve connections");
    assert_eq!(threads_waiting_in(&trace, "io_uring_enter"), rings, "each ring waits alone");
    for (conn, ring) in &owners {
        let handled = trace.spans("handle").filter(|h| h.conn() == Some(*conn));
        let names: Vec<_> = handled.map(|h| (h.name.as_str(), h.thread())).collect();
        assert_eq!(names, vec![("GET /hello", *ring); ROUNDS], "connection {conn}");
        // What it received and sent is recorded as its own, with the bytes.
        for (cat, name) in [("read", "recv"), ("write", "send")] {
            let moved = trace.instants(cat).filter(|i| i.conn() == Some(*conn) && i.name == name);
            assert!(moved.map(|i| i.count("bytes").unwrap_or(0)).sum::<u64>() > 0, "{cat}");
        }
    }
}

#[test]
fn under_load_a_wait_brings_back_several_completions() {
    let server = TracedServer::start(BINARY, &["--rings", "1"]);
    let start = Arc::new(Barrier::new(CLIENTS));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, start) = (server.addr(), Arc::clone(&start));
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connect");
                start.wait();
                for _ in 0..50 {
                    assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client");
    }
    let trace = server.stop().expect("a trace in the format");
    let reaps: Vec<u64> = trace.spans("reap").filter_map(|r| r.count("count")).collect();
    let most = reaps.iter().copied().max().unwrap_or(0);
    // Sixteen clients each waiting for its answer before asking again: a turn's sends and
    // the next requests complete together (seen: 32 per wait, a send and a receive each).
    assert!(most >= CLIENTS as u64 / 2, "no wait brought back many completions: {reaps:?}");
    // And the ring's one lane did it all: waits, reaps and handlers.
    let lanes: BTreeSet<_> = trace.spans("reap").map(|r| r.thread()).collect();
    assert_eq!(lanes, trace.handler_threads());
    assert_eq!(lanes.len(), 1);
}
