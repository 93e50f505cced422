//! v1's timeline, read from its `--trace` file: the model is in the trace. One thread runs
//! every handler, no two at once, and a connection's requests are all served before the
//! next connection's first, even when the clients come at once.

use std::collections::BTreeMap;

use common::testkit::trace::{Trace, TracedServer, check_no_overlap};
use common::testkit::{Client, spawn_binary};

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

/// The live window's bound keeps the newest events: with room for 200, a client's 300
/// requests fill it, and the window then holds the last of them (it gave up its oldest
/// moments), not the first 200 with the rest refused.
#[test]
fn a_full_live_window_keeps_its_newest_events() {
    const ROOM: u64 = 200;
    let room = ROOM.to_string();
    let server =
        spawn_binary(env!("CARGO_BIN_EXE_v1-blocking"), &["--trace-live", "--trace-events", &room]);
    let mut client = Client::connect(server.addr()).expect("connect");
    for _ in 0..300 {
        assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
    }
    assert_eq!(client.line("GET /echo?msg=last").expect("an answer"), "200 last");
    let answer = client.get("/trace?ms=3000").expect("the window");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let window = Trace::parse(&answer.text()).expect("a window in the trace format");
    let held = window.other["events"].as_u64().expect("a count of events");
    assert!(held <= ROOM, "{held} events held, room for {ROOM}");
    let last = window.spans("handle").filter(|h| h.name.starts_with("GET /echo")).count();
    assert_eq!(last, 1, "the last request is not in the window");
    // It says it holds less than the 3 s asked.
    let span = &window.other["window"];
    let (from, to) = (span["from"].as_f64(), span["to"].as_f64());
    assert!(from.zip(to).is_some_and(|(from, to)| to - from < 3_000_000.0), "{span}");
}
