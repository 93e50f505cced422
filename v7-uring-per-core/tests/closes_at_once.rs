//! The README's first demo on v7's rings: a client that sends `exit` and nothing after it, and
//! keeps its side open (as `nc` does), is closed at once, without the lingering close
//! that would hold its connection for 2 s; one with more input behind its `exit` still
//! gets the lingering close.

use std::time::{Duration, Instant};

use common::cli::{Sharing, listen};
use common::testkit::{Client, TIMEOUT, TestServer, wait_until};
use v7_uring_per_core::{Config, Model, SERVER, run};

/// How soon the connection must be gone: far below the linger's 2 s.
const AT_ONCE: Duration = Duration::from_millis(500);

fn server() -> TestServer {
    let listener = listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort);
    let dispatcher = common::Dispatcher::with_builtin_routes(SERVER);
    TestServer::on_listener(
        listener.expect("bind"),
        dispatcher,
        Config::new(Model { rings: 1, ..Model::default() }),
        run,
    )
}

#[test]
fn exit_with_nothing_behind_it_closes_at_once() {
    let server = server();
    let mut nc = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().active() == 1), "never accepted");
    let exit_sent = Instant::now();
    assert_eq!(nc.line("exit").expect("a goodbye"), "200 Bye! Closing the connection.");
    // The client keeps its side open and sends nothing more.
    assert!(wait_until(TIMEOUT, || server.stats().active() == 0), "never closed");
    let took = exit_sent.elapsed();
    assert!(took < AT_ONCE, "the connection lingered {took:?} after exit");
}

#[test]
fn exit_with_more_behind_it_lingers_until_the_client_closes() {
    let server = server();
    let mut nc = Client::connect(server.addr()).expect("connect");
    nc.send(&[b"exit\n".as_slice(), &b"GET /hello\n".repeat(1000)].concat()).expect("send");
    assert_eq!(nc.read_line().expect("a goodbye"), "200 Bye! Closing the connection.");
    assert!(nc.is_closed_by_server(), "no end of stream after the goodbye");
    // Lingering, reading and dropping: still open while the client is.
    assert_eq!(server.stats().active(), 1, "closed while the client may still be sending");
    drop(nc);
    assert!(wait_until(TIMEOUT, || server.stats().active() == 0), "never closed");
}
