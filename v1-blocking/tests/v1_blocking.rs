//! v1 over real sockets: transcripts of both protocols, bad input, and v1's own limit.

use common::testkit::{Client, TIMEOUT, TestServer, starvation, wait_until};
use v1_blocking::{Config, SERVER, run};

fn v1() -> TestServer {
    TestServer::start(SERVER, Config::default(), run)
}

#[test]
fn line_protocol_session_like_the_article() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.line("GET /hello").unwrap(), "200 Hello, World!");
    assert_eq!(c.line("GET /echo?msg=hi%20there").unwrap(), "200 hi there");
    let bad = c.line("hello?").unwrap();
    assert!(bad.starts_with("400 "), "{bad}");
    assert_eq!(c.line("GET /nowhere").unwrap(), "404 no route for /nowhere");
    c.check_exit();
}

#[test]
fn http_keep_alive_serves_two_requests_on_one_connection() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    for _ in 0..2 {
        let r = c.get("/hello").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
        assert_eq!(r.header("server"), Some(SERVER));
        assert!(r.header("date").is_some_and(|d| d.ends_with(" GMT")), "{r:?}");
        assert_eq!(r.header("connection"), None);
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    let request = |msg: &str| format!("GET /echo?msg={msg} HTTP/1.1\r\nHost: t\r\n\r\n");
    c.send(format!("{}{}{}", request("one"), request("two"), request("three")).as_bytes()).unwrap();
    for expected in ["one", "two", "three"] {
        assert_eq!(c.read_response().unwrap().text(), expected);
    }
}

#[test]
fn connection_close_and_http10_close_after_the_response() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    c.send(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let r = c.read_response().unwrap();
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(c.is_closed_by_server());

    let mut c = Client::connect(server.addr()).unwrap();
    c.send(b"GET /hello HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(c.read_response().unwrap().text(), "Hello, World!");
    assert!(c.is_closed_by_server());
}

#[test]
fn post_body_is_echoed() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello\nworld").unwrap();
    assert_eq!(c.read_response().unwrap().text(), "hello\nworld");
}

#[test]
fn bad_input_gets_an_error_and_the_server_keeps_serving() {
    let server = v1();
    let garbage: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\n\r\n",                     // no Host
        b"GET / HTTP/1.1\r\nHost: a\r\nX: \0\r\n\r\n", // NUL
        b"\xff\xfe GET /x HTTP/1.1\r\n\r\n",           // not even a method
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    ];
    for bytes in garbage {
        let mut c = Client::connect(server.addr()).unwrap();
        c.send(bytes).unwrap();
        let r = c.read_response().unwrap();
        assert!((400..=505).contains(&r.status), "{:?} got {r:?}", String::from_utf8_lossy(bytes));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.is_closed_by_server());
    }
    let mut c = Client::connect(server.addr()).unwrap();
    assert_eq!(c.get("/hello").unwrap().status, 200);
}

#[test]
fn an_oversized_upload_gets_its_413_before_the_close() {
    let server = v1();
    let mut c = Client::connect(server.addr()).unwrap();
    let length = 4 * 1024 * 1024;
    c.send(
        format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {length}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    c.send(&vec![b'x'; 64 * 1024]).unwrap();
    // Once the reply can be peeked at, keep uploading into the connection the server has
    // given up on, as a real client does; the 413 must still be readable. (On loopback the
    // reply is always in our buffer before any reset, so this checks the behaviour, not
    // the lingering close that protects slower networks.)
    let mut byte = [0u8; 1];
    assert!(wait_until(TIMEOUT, || c.stream().peek(&mut byte).is_ok_and(|n| n > 0)));
    let _ = c.send(&vec![b'x'; 256 * 1024]);
    assert_eq!(c.read_response().unwrap().status, 413);
}

// ANCHOR: limit
/// v1's limit: while client A stays connected, client B's request sits unanswered; it is
/// answered once A leaves.
#[test]
fn limit_a_connected_client_blocks_everyone_else() {
    let server = v1();
    let seen = starvation(server.addr(), 1).unwrap();
    assert!(!seen.answered_while_held, "v1 answered a second client while the first stayed");
    assert!(seen.answered_after_release, "v1 never answered once the first client left");
}
// ANCHOR_END: limit

/// v1's limit seen from the kernel: while v1 waits on its one client, the kernel completes
/// the others' handshakes and queues them, up to the backlog; past it, it drops their SYNs
/// (a listen overflow each time), and they resend them until they give up.
#[test]
fn idle_clients_fill_the_accept_queue_and_the_kernel_drops_the_rest() {
    use common::cli::{Sharing, listen};
    use std::time::Duration;

    const BACKLOG: u32 = 16;
    let listener = listen("127.0.0.1:0".parse().unwrap(), BACKLOG as i32, Sharing::Exclusive);
    let server = TestServer::on_listener(
        listener.unwrap(),
        common::Dispatcher::with_builtin_routes(SERVER),
        Config::default(),
        run,
    );
    let kernel = || server.stats().kernel();
    let (held, failed) =
        common::testkit::connect_all(server.addr(), 200, Duration::from_secs(3)).unwrap();
    // Linux queues one connection past the cap before it refuses.
    let full = || kernel().accept_queue.map(|q| (q.queued, q.cap)) == Some((BACKLOG + 1, BACKLOG));
    assert!(wait_until(TIMEOUT, full), "accept queue: {:?}", kernel().accept_queue);
    // v1 took one and the queue holds the next 17. How many clients *think* they are
    // connected depends on the machine's load (one whose SYN got in while there was room,
    // and whose last ACK then met the full queue, is connected on its side only), so the
    // kernel's count is what is asserted: each of the other 182 was dropped at least once
    // (namespace-wide, so other tests' overflows can only add).
    assert!(failed.iter().all(|e| e.kind() == std::io::ErrorKind::TimedOut), "{failed:?}");
    let overflows = kernel().listen.unwrap().overflows;
    let others = 200 - u64::from(BACKLOG + 2);
    assert!(overflows >= others, "{overflows} overflows, {} held", held.len());
    drop(held);
}
