//! v4 over real sockets: the edge cases an event loop must get right, the article's bug
//! as a regression test, the connection cap, and v4's own limit.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use common::testkit::{
    AFTER_CPU_BURN, CPU_BURN_MS, Client, TIMEOUT, TestServer, check_pipelined_echoes, reset,
    speaks_both_protocols_then_exits, starvation, wait_until,
};
use v4_nio::{Config, Model, SERVER, run};

fn v4(workers: usize) -> TestServer {
    TestServer::start(SERVER, Config::new(Model { workers, ..Model::default() }), run)
}

/// A body of `len` bytes that shows where any byte was lost or moved.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

fn post_echo(body: &[u8]) -> Vec<u8> {
    let head = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", body.len());
    [head.as_bytes(), body].concat()
}

#[test]
fn answers_both_protocols_and_names_itself() {
    speaks_both_protocols_then_exits(v4(2).addr(), SERVER);
}

#[test]
fn a_request_written_one_byte_at_a_time() {
    let server = v4(2);
    let mut c = Client::connect(server.addr()).unwrap();
    for byte in b"GET /echo?msg=trickle HTTP/1.1\r\nHost: t\r\n\r\n" {
        c.send(&[*byte]).unwrap();
    }
    assert_eq!(c.read_response().unwrap().text(), "trickle");
}

#[test]
fn many_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = v4(2);
    let mut c = Client::connect(server.addr()).unwrap();
    check_pipelined_echoes(&mut c, 150);
}

/// A client that reads slowly makes the server's writes come up short. The worker must
/// not wait for it: with a single worker, another client is served meanwhile, and the
/// slow client still gets every byte.
#[test]
fn a_large_response_to_a_slow_reader_arrives_intact_without_holding_a_worker() {
    let server = v4(1);
    let mut slow = Client::connect(server.addr()).unwrap();
    // Six echoes of 1 MiB: more than the server's send buffer (at most 4 MiB on Linux by
    // default) and this client's receive buffer (which does not grow while we do not
    // read) can hold. The server stops reading while its replies wait, so the upload
    // blocks until this client reads; it goes on a thread of its own.
    let body = pattern(1024 * 1024);
    let mut upload = slow.stream().try_clone().unwrap();
    let requests = post_echo(&body).repeat(6);
    let uploader = std::thread::spawn(move || upload.write_all(&requests));

    // Answers are written until the socket is full, then left waiting for WRITABLE.
    assert!(wait_until(TIMEOUT, || server.model("write_waits") >= 1), "no write came up short");
    let mut other = Client::connect(server.addr()).unwrap();
    assert_eq!(other.line("GET /hello").unwrap(), "200 Hello, World!", "the one worker was stuck");

    for _ in 0..6 {
        let r = slow.read_response().unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == body, "the echoed body came back altered");
    }
    uploader.join().unwrap().unwrap();
}

#[test]
fn half_close_after_the_request_still_gets_the_response() {
    let server = v4(2);
    let mut c = std::net::TcpStream::connect(server.addr()).unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    c.write_all(b"GET /hello\nGET /echo?msg=last\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut everything = String::new();
    c.read_to_string(&mut everything).unwrap();
    assert_eq!(everything, "200 Hello, World!\n200 last\n");
}

#[test]
fn a_reset_in_the_middle_of_a_response_disturbs_nobody() {
    let server = v4(2);
    let mut c = std::net::TcpStream::connect(server.addr()).unwrap();
    // As in the slow-reader test: more answer than the sockets hold, uploaded from a thread.
    let mut upload = c.try_clone().unwrap();
    let requests = post_echo(&pattern(1024 * 1024)).repeat(6);
    let uploader = std::thread::spawn(move || upload.write_all(&requests));
    assert!(wait_until(TIMEOUT, || server.model("write_waits") >= 1));
    let mut first = [0u8; 1024];
    c.read_exact(&mut first).unwrap();
    assert!(first.starts_with(b"HTTP/1.1 200 OK\r\n"));
    reset(c);
    // The upload fails now, one way or another; that is the client's business.
    let _ = uploader.join();

    let mut other = Client::connect(server.addr()).unwrap();
    assert_eq!(other.get("/hello").unwrap().status, 200);
    drop(other);
    assert!(wait_until(TIMEOUT, || server.stats().active() == 0), "a connection was left open");
}

// ANCHOR: article_bug
/// The article's bug, as a regression test: its level-triggered poller handed one ready
/// socket to worker after worker until it masked the interest. Here one request must
/// cost one dispatch, and no dispatch may find nothing to do. mio's edge triggering and
/// v4's single owner per connection keep this true; v4-syscalls' `tests/storm.rs` runs
/// the same check against the article's unmasked level-triggered poller, where it fails.
#[test]
fn one_request_is_one_dispatch() {
    let server = v4(2);
    let mut c = Client::connect(server.addr()).unwrap();
    for round in 1..=5 {
        assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
        // The reply is written before the connection goes home; wait until it has.
        assert!(wait_until(TIMEOUT, || server.model("rearms") == round));
        assert_eq!(server.model("dispatches"), round, "dispatches after {round} requests");
    }
    assert_eq!(server.model("empty_dispatches"), 0);
}
// ANCHOR_END: article_bug

#[test]
fn bad_input_gets_its_error_then_the_close() {
    let server = v4(2);
    let mut c = Client::connect(server.addr()).unwrap();
    c.send(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("connection")), (400, Some("close")));
    assert!(c.is_closed_by_server());
    assert_eq!(Client::connect(server.addr()).unwrap().get("/hello").unwrap().status, 200);
}

#[test]
fn idle_connections_are_closed_after_the_timeout() {
    let mut config = Config::new(Model { workers: 2, ..Model::default() });
    config.idle_timeout = Duration::from_millis(300);
    let server = TestServer::start(SERVER, config, run);
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    assert!(c.is_closed_by_server());
    // The poller closes the socket before it counts the close: wait for the count.
    assert!(
        wait_until(TIMEOUT, || server.model("idle_closed") == 1),
        "idle_closed never reached 1"
    );
    assert_eq!(server.model("request_timeouts"), 0);
}

/// Tomcat's maxConnections: at the cap the acceptor waits, and the newcomer is served as
/// soon as a connection closes.
#[test]
fn at_the_connection_cap_newcomers_wait_for_a_close() {
    let config = Config::new(Model { workers: 2, max_connections: 2, ..Model::default() });
    let server = TestServer::start(SERVER, config, run);
    let seen = starvation(server.addr(), 2).unwrap();
    assert!(!seen.answered_while_held, "a third connection was served with a cap of two");
    assert!(seen.answered_after_release);
    assert!(server.model("accept_waits") >= 1);
}

// ANCHOR: overtakes
/// Whether `/hello` on a second connection is answered before a `/cpu` request that the
/// server started first.
fn hello_overtakes_cpu(server: &TestServer) -> bool {
    let mut cpu = Client::connect(server.addr()).expect("connect");
    cpu.send(format!("GET /cpu?ms={CPU_BURN_MS}\n").as_bytes()).expect("send /cpu");
    // The dispatcher counts a request before running its handler.
    assert!(wait_until(TIMEOUT, || server.stats().requests() == 1));
    let mut hello = Client::connect(server.addr()).expect("connect");
    hello.set_timeout(AFTER_CPU_BURN).expect("set timeout");
    assert_eq!(hello.line("GET /hello").expect("an answer to /hello"), "200 Hello, World!");
    let cpu_done = cpu.has_answer_waiting().expect("a look at the /cpu connection");
    !cpu_done
}
// ANCHOR_END: overtakes

// ANCHOR: limit
/// v4's own limit, pinned: with `--workers 0` the handlers run on the poller thread, and
/// one CPU-heavy request holds up every other connection. With workers it does not.
#[test]
fn limit_without_workers_one_cpu_heavy_request_stalls_everyone() {
    assert!(!hello_overtakes_cpu(&v4(0)), "with no workers, /hello overtook /cpu");
    assert!(hello_overtakes_cpu(&v4(2)), "with workers, /hello waited for /cpu");
}
// ANCHOR_END: limit
