//! v3's timeline, read from its `--trace` file and from its live window (`GET /trace`): a
//! pool of two runs every handler on exactly two threads, and a third connection waits in
//! the queue, accepted, until one of the first two leaves.

use common::testkit::trace::{Trace, TraceEvent, TracedServer};
use common::testkit::{Client, TIMEOUT, spawn_binary, wait_until};

const BINARY: &str = env!("CARGO_BIN_EXE_v3-thread-pool");

/// Two clients, each served once and then held; a third that asks and waits. Returns them
/// once the third is accepted (queued in the pool), in accept order.
fn two_held_and_one_queued(addr: std::net::SocketAddr) -> [Client; 3] {
    let held = |_| {
        let mut client = Client::connect(addr).expect("connect");
        assert_eq!(client.line("GET /hello").expect("an answer"), "200 Hello, World!");
        client
    };
    let (first, second) = (held(0), held(1));
    let mut third = Client::connect(addr).expect("connect");
    third.send(b"GET /hello\n").expect("send");
    let accepted = wait_until(TIMEOUT, || {
        common::kernel::accept_queue(addr.port()).is_ok_and(|queue| queue.queued == 0)
    });
    assert!(accepted, "the third connection was never accepted");
    [first, second, third]
}

fn first_of<'a>(spans: impl Iterator<Item = &'a TraceEvent>, conn: u64) -> Option<&'a TraceEvent> {
    spans.filter(|s| s.conn() == Some(conn)).min_by(|a, b| a.ts.total_cmp(&b.ts))
}

#[test]
fn a_pool_of_two_runs_handlers_on_two_threads_and_a_third_connection_waits_for_one() {
    let server = TracedServer::start(BINARY, &["--threads", "2"]);
    let [first, second, mut third] = two_held_and_one_queued(server.addr());
    drop(first);
    assert_eq!(third.read_line().expect("an answer once a thread is free"), "200 Hello, World!");
    drop((second, third));
    let trace = server.stop().expect("a trace in the format");

    let threads = trace.handler_threads();
    assert_eq!(threads.len(), 2, "handlers ran on {threads:?}");
    for thread in &threads {
        let name = trace.thread_name(*thread).unwrap_or_default();
        assert!(name.starts_with("pool"), "a handler ran on {name}");
    }
    let closed = first_of(trace.instants("close"), 1).expect("the first connection closed");
    let served = first_of(trace.spans("handle"), 3).expect("the third connection was served");
    assert!(
        served.ts >= closed.ts,
        "the third connection's first handler ({}) began before the first closed ({})",
        served.ts,
        closed.ts
    );
    // It waited in the queue: queued by the acceptor before that close, taken after it.
    let queued = first_of(trace.instants("handoff").filter(|h| h.name == "queued"), 3);
    let taken = first_of(trace.instants("handoff").filter(|h| h.name == "taken"), 3);
    let (queued, taken) = (queued.expect("queued"), taken.expect("taken"));
    assert!(queued.ts < closed.ts && taken.ts >= closed.ts, "{queued:?} {taken:?} {closed:?}");
    assert!(
        trace.handoffs().iter().any(|(s, f)| s.conn() == Some(3) && threads.contains(&f.thread()))
    );
}

/// The live page's source: a server started with `--trace-live` answers `GET /trace` with
/// its last moments, in which the pool's threads are seen blocked on their clients and
/// the newcomer queued, not taken.
#[test]
fn the_live_window_shows_the_pool_full_and_the_newcomer_queued() {
    let server = spawn_binary(BINARY, &["--threads", "2", "--trace-live"]);
    // The page's own connection holds a thread too, as a browser's keep-alive one does.
    let [mut page, _held, _queued] = two_held_and_one_queued(server.addr());
    let answer = page.get("/trace?ms=3000").expect("the window");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let window = Trace::parse(&answer.text()).expect("a window in the trace format");
    assert_eq!(window.other["version"], "v3-thread-pool");
    let blocked = window
        .spans("wait")
        .any(|w| w.name == "read" && w.conn() == Some(2) && w.args.contains_key("unfinished"));
    assert!(blocked, "the held client's thread is not seen blocked in read");
    let newcomer: Vec<_> = window.instants("handoff").filter(|h| h.conn() == Some(3)).collect();
    assert!(newcomer.iter().any(|h| h.name == "queued"), "{newcomer:?}");
    assert!(!newcomer.iter().any(|h| h.name == "taken"), "the newcomer was taken: {newcomer:?}");
}

#[test]
fn a_server_not_recording_says_how_to_start_it() {
    let server = spawn_binary(BINARY, &[]);
    let mut client = Client::connect(server.addr()).expect("connect");
    let answer = client.get("/trace").expect("an answer");
    assert_eq!(answer.status, 404);
    assert!(answer.text().contains("--trace-live"), "{}", answer.text());
}
