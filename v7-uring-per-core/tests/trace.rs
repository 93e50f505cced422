//! v7's timeline, read from its `--trace` file: each ring waits in `io_uring_enter` on a
//! lane of its own, every connection is accepted, served and closed by one ring for its
//! whole life, and under load one wait brings back many completions, reaped together.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use common::testkit::Client;
use common::testkit::serving::every_connection_stays_on_one_of_two;
use common::testkit::trace::TracedServer;

const BINARY: &str = env!("CARGO_BIN_EXE_v7-uring-per-core");
/// Clients at once, so one wait finds many completions.
const CLIENTS: usize = 16;

#[test]
fn every_connection_lives_on_the_ring_that_accepted_it() {
    let (trace, owners) =
        every_connection_stays_on_one_of_two(BINARY, &["--rings", "2"], "ring", "io_uring_enter");
    assert_eq!(trace.other["version"], "v7-uring-per-core");
    // What each connection received and sent is recorded as its own, with the bytes.
    for conn in owners.keys() {
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
