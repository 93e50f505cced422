//! v4-nio's timeline, read from its `--trace` file: the poller waits in `epoll_wait` and
//! hands each ready connection to a worker; reads (recorded by the shared turn in
//! `common::evented`) and handlers run on the workers, and
//! every request is handed over by the poller (an arrow from the poller's lane to the
//! worker's) before its handler runs.

use common::testkit::Client;
use common::testkit::trace::TracedServer;

#[test]
fn workers_read_and_handle_and_every_request_is_handed_over_by_the_poller() {
    let server = TracedServer::start(env!("CARGO_BIN_EXE_v4-nio"), &["--workers", "2"]);
    let mut clients: Vec<Client> =
        (0..3).map(|_| Client::connect(server.addr()).expect("connect")).collect();
    // One request at a time on each, so that each is a readiness of its own, read and
    // handled by a worker.
    for _ in 0..3 {
        for client in &mut clients {
            assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
        }
    }
    drop(clients);
    let trace = server.stop().expect("a trace in the format");
    let name = |thread| trace.thread_name(thread).unwrap_or_default().to_owned();

    let handlers: Vec<_> = trace.spans("handle").collect();
    assert_eq!(handlers.len(), 9, "{handlers:#?}");
    for handler in &handlers {
        assert!(
            name(handler.thread()).starts_with("worker"),
            "{handler:?} on {}",
            name(handler.thread())
        );
    }
    let reads: Vec<_> = trace.events.iter().filter(|e| e.cat == "read").collect();
    assert!(reads.len() >= 9, "{reads:#?}");
    for read in &reads {
        assert!(name(read.thread()).starts_with("worker"), "{read:?} on {}", name(read.thread()));
    }
    let polls = trace.spans("wait").filter(|w| w.name == "epoll_wait");
    assert!(polls.into_iter().all(|w| name(w.thread()) == "poller"));

    // Every handler: the last arrow that reached its thread before it came from the
    // poller, for its connection.
    let handoffs = trace.handoffs();
    for handler in &handlers {
        let arrived = handoffs
            .iter()
            .filter(|(_, end)| end.thread() == handler.thread() && end.ts <= handler.ts)
            .max_by(|a, b| a.1.ts.total_cmp(&b.1.ts));
        let (start, _) = arrived.unwrap_or_else(|| panic!("no hand-off before {handler:?}"));
        assert_eq!(name(start.thread()), "poller", "{handler:?} was handed over by another");
        assert_eq!(start.conn(), handler.conn(), "{handler:?} came with another connection");
    }
}
