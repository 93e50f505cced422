//! v5's timeline, read from its `--trace` file: the model is in the trace. Each loop waits
//! in `epoll_wait` on a lane of its own, and every connection is accepted, served and
//! closed by one loop for its whole life, however many loops there are.

use std::collections::BTreeSet;
use std::net::TcpStream;

use common::testkit::Client;
use common::testkit::serving::{one_thread_per_conn, threads_waiting_in};
use common::testkit::trace::TracedServer;

const BINARY: &str = env!("CARGO_BIN_EXE_v5-reactor-per-core");
/// Connections hashed over two loops' sockets all land on one with odds of 1 in 2^15.
const CLIENTS: usize = 16;
const ROUNDS: usize = 3;

#[test]
fn every_connection_lives_on_the_loop_that_accepted_it() {
    let server = TracedServer::start(BINARY, &["--loops", "2"]);
    // All at once, as a load generator opens them, so both loops' sockets get some.
    let streams: Vec<TcpStream> =
        (0..CLIENTS).map(|_| TcpStream::connect(server.addr()).expect("connect")).collect();
    let mut clients: Vec<Client> = streams.into_iter().map(Client::from_stream).collect();
    // Round after round over every client: each loop serves its connections interleaved.
    for _ in 0..ROUNDS {
        for client in &mut clients {
            assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
        }
    }
    drop(clients);
    let trace = server.stop().expect("a trace in the format");
    assert_eq!(trace.other["version"], "v5-reactor-per-core");

    let mut owners = one_thread_per_conn(&trace).expect("a connection left its loop");
    // The clients', not the shutdown's own connect, which may wake a loop.
    owners.retain(|&conn, _| trace.spans("handle").any(|h| h.conn() == Some(conn)));
    assert_eq!(owners.len(), CLIENTS, "connections served: {owners:?}");
    let loops: BTreeSet<_> = owners.values().copied().collect();
    assert_eq!(loops.len(), 2, "both loops serve connections: {owners:?}");
    let names: BTreeSet<_> = loops.iter().filter_map(|&l| trace.thread_name(l)).collect();
    assert_eq!(names, BTreeSet::from(["loop-0", "loop-1"]));
    assert_eq!(threads_waiting_in(&trace, "epoll_wait"), loops, "each loop waits on its own");
    for (conn, loop_thread) in &owners {
        let handled = trace.spans("handle").filter(|h| h.conn() == Some(*conn));
        let names: Vec<_> = handled.map(|h| (h.name.as_str(), h.thread())).collect();
        assert_eq!(names, vec![("GET /hello", *loop_thread); ROUNDS], "connection {conn}");
    }
}
