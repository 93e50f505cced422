//! The README's first demo, timed as it is written: an `nc` session holds v1, a `curl`
//! waits in the kernel's backlog, and `exit` in the `nc` (which stays open, as
//! netcat-openbsd does after the server closes) lets the `curl` through at once.

use std::time::{Duration, Instant};

use common::testkit::{Client, TIMEOUT, TestServer, wait_until};
use v1_blocking::{Config, SERVER, run};

/// How soon after `exit` README.md promises the waiting `curl` its answer ("at once"):
/// far below the 2 s a lingering close would hold v1's only thread.
const AT_ONCE: Duration = Duration::from_millis(500);

// ANCHOR: first_demo
#[test]
fn after_exit_the_waiting_curl_completes_at_once() {
    let server = TestServer::start(SERVER, Config::default(), run);
    let mut nc = Client::connect(server.addr()).unwrap();
    assert_eq!(nc.line("GET /hello").unwrap(), "200 Hello, World!");

    let mut curl = Client::connect(server.addr()).unwrap();
    curl.send(b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n\r\n").unwrap();
    // The curl's connection waits in the accept queue: v1 is serving the nc.
    let queued = || server.stats().kernel().accept_queue.is_some_and(|q| q.queued == 1);
    assert!(wait_until(TIMEOUT, queued), "{:?}", server.stats().kernel().accept_queue);
    assert!(!curl.has_answer_waiting().unwrap(), "v1 answered while serving the nc");

    let exit_sent = Instant::now();
    assert_eq!(nc.line("exit").unwrap(), "200 Bye! Closing the connection.");
    // The nc does not close its side; nothing more is sent.
    let answer = curl.read_response().unwrap();
    let waited = exit_sent.elapsed();
    assert_eq!((answer.status, answer.text().as_str()), (200, "Hello, World!"));
    assert!(waited < AT_ONCE, "the curl completed {waited:?} after exit");
    // v1 closed the nc's connection too, rather than only its own side of it.
    assert!(nc.is_closed_by_server());
}
// ANCHOR_END: first_demo

/// The lingering close still protects a client that goes on sending after its `exit`:
/// its pipelined lines are read and dropped, the goodbye arrives whole, and v1 is held
/// only until that client closes.
#[test]
fn exit_with_more_input_behind_it_still_lingers_until_the_client_closes() {
    let server = TestServer::start(SERVER, Config::default(), run);
    let mut nc = Client::connect(server.addr()).unwrap();
    nc.send(&[b"exit\n".as_slice(), &b"GET /hello\n".repeat(10_000)].concat()).unwrap();
    assert_eq!(nc.read_line().unwrap(), "200 Bye! Closing the connection.");
    let mut curl = Client::connect(server.addr()).unwrap();
    curl.set_timeout(Duration::from_millis(300)).unwrap();
    curl.send(b"GET /hello\n").unwrap();
    // v1 lingers on the nc: the curl is not answered while the nc stays.
    assert!(curl.read_line().is_err(), "v1 skipped the lingering close owed to the nc");
    drop(nc);
    curl.set_timeout(TIMEOUT).unwrap();
    assert_eq!(curl.read_line().unwrap(), "200 Hello, World!");
}
