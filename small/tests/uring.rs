//! The io_uring program answers `GET /hello`, and one thread serves them all through its
//! ring: a newcomer is answered while 100 clients hold idle connections.

mod support;

use support::{Server, ask_hello, assert_hello, idle_clients, read_reply, threads};

#[test]
fn one_thread_and_a_ring_serve_a_hundred_idle_clients_and_a_newcomer() {
    let server = Server::start(env!("CARGO_BIN_EXE_uring"), &[]);
    let mut idle = idle_clients(&server, 100);
    let _newcomer = server.client_answered_twice();
    ask_hello(&mut idle[0]);
    assert_hello(&read_reply(&mut idle[0]).unwrap());
    // The kernel may lend the ring worker threads of its own (named iou-wrk-*); they are
    // the kernel's, not the program's.
    let own: Vec<_> =
        threads(server.pid()).into_iter().filter(|t| !t.1.starts_with("iou-")).collect();
    assert_eq!(own.len(), 1, "{own:?}");
}

/// Two requests in one write are two replies, in order.
#[test]
fn pipelined_requests_are_each_answered() {
    let server = Server::start(env!("CARGO_BIN_EXE_uring"), &[]);
    let mut client = server.connect();
    let request = "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";
    std::io::Write::write_all(&mut client, request.repeat(2).as_bytes()).unwrap();
    assert_hello(&read_reply(&mut client).unwrap());
    assert_hello(&read_reply(&mut client).unwrap());
}
