//! The lingering close decided as nginx decides it, asked of a version in process: a
//! client that sends `exit` and nothing after it, and keeps its side open (as `nc` does),
//! is closed at once, not held for the linger's 2 s; one with more input behind its
//! `exit` still gets the lingering close. Each readiness or completion model calls these
//! on a [`TestServer`] of its own (v1 to v3 time it through the README's demo instead).

use std::time::{Duration, Instant};

use super::{Client, TIMEOUT, TestServer, wait_until};

/// How soon the connection must be gone: far below the linger's 2 s.
pub const AT_ONCE: Duration = Duration::from_millis(500);

/// `exit` with nothing behind it: the server's connection is gone within [`AT_ONCE`].
pub fn exit_with_nothing_behind_it_closes_at_once(server: &TestServer) {
    let mut nc = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().active() == 1), "never accepted");
    let exit_sent = Instant::now();
    assert_eq!(nc.line("exit").expect("a goodbye"), "200 Bye! Closing the connection.");
    // The client keeps its side open and sends nothing more.
    assert!(wait_until(TIMEOUT, || server.stats().active() == 0), "never closed");
    let took = exit_sent.elapsed();
    assert!(took < AT_ONCE, "the connection lingered {took:?} after exit");
}

/// `exit` with a thousand requests behind it: the server shuts its side (the client reads
/// the end of the stream) but keeps reading and dropping until the client closes.
pub fn exit_with_more_behind_it_lingers_until_the_client_closes(server: &TestServer) {
    let mut nc = Client::connect(server.addr()).expect("connect");
    nc.send(&[b"exit\n".as_slice(), &b"GET /hello\n".repeat(1000)].concat()).expect("send");
    assert_eq!(nc.read_line().expect("a goodbye"), "200 Bye! Closing the connection.");
    assert!(nc.is_closed_by_server(), "no end of stream after the goodbye");
    // Lingering, reading and dropping: still open while the client is.
    assert_eq!(server.stats().active(), 1, "closed while the client may still be sending");
    drop(nc);
    assert!(wait_until(TIMEOUT, || server.stats().active() == 0), "never closed");
}
