//! v1's timeline, read from its `--trace` file: the model is in the trace. One thread runs
//! every handler, no two at once, and a connection's requests are all served before the
//! next connection's first, even when the clients come at once.

use std::collections::BTreeMap;

use common::testkit::Client;
use common::testkit::trace::{TracedServer, check_no_overlap};

#[test]
fn one_thread_serves_connections_one_after_another_and_handlers_never_overlap() {
    let server = TracedServer::start(env!("CARGO_BIN_EXE_v1-blocking"), &[]);
    // Three clients at once, each with a request that takes a while and a quick one.
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let addr = server.addr();
            std::thread::spawn(move || {
                let mut client = Client::connect(addr).expect("connect");
                client.send(b"GET /sleep?ms=20\nGET /hello\n").expect("send");
                let answers = [client.read_line(), client.read_line()];
                answers.map(|answer| answer.expect("an answer"))
            })
        })
        .collect();
    for client in clients {
        let answers = client.join().expect("a client thread");
        assert_eq!(answers, ["200 slept 20 ms".to_owned(), "200 Hello, World!".to_owned()]);
    }
    let trace = server.stop().expect("a trace in the format");
    assert_eq!(trace.other["version"], "v1-blocking");

    let handlers: Vec<_> = trace.spans("handle").collect();
    assert_eq!(handlers.len(), 6, "{handlers:#?}");
    check_no_overlap(&handlers).expect("v1's handlers overlap");
    let threads = trace.handler_threads();
    assert_eq!(threads.len(), 1, "handlers ran on {threads:?}");
    let thread = *threads.first().expect("one thread");
    assert_eq!(trace.thread_name(thread), Some("main"));

    // Each connection's handlers, first to last, never interleave with another's.
    let mut served: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for handler in &handlers {
        let conn = handler.conn().expect("a handler's span names its connection");
        let (first, last) = served.entry(conn).or_insert((handler.ts, handler.end()));
        *first = first.min(handler.ts);
        *last = last.max(handler.end());
    }
    assert_eq!(served.len(), 3, "{served:?}");
    let mut spans: Vec<_> = served.values().collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two connections served at once: {served:?}");
    }
    // And each was accepted, and its wait for it recorded, on the same thread.
    assert!(trace.instants("accept").filter(|a| a.thread() == thread).count() >= 3);
    assert!(trace.spans("wait").any(|w| w.name == "accept" && w.thread() == thread));
}

/// The time bound: with `--trace-for 300ms` the server writes its trace by itself, while it
/// goes on serving, and says why it stopped.
#[test]
fn the_trace_is_written_when_its_time_is_up() {
    let server = TracedServer::start(env!("CARGO_BIN_EXE_v1-blocking"), &["--trace-for", "300ms"]);
    let mut client = Client::connect(server.addr()).expect("connect");
    assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
    let trace = server.trace_written(common::testkit::TIMEOUT).expect("a trace in the format");
    let limit = trace.other["limit"].as_str().unwrap_or_default();
    assert!(limit.starts_with("time"), "recording stopped for {limit:?}");
    // The request before the bound is in it; the server still serves after it.
    assert_eq!(trace.spans("handle").count(), 1);
    assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
}
