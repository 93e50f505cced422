//! The epoll program answers `GET /hello`, and one thread serves them all: a newcomer is
//! answered while 100 clients hold idle connections, and the first of those is still
//! served afterwards.

mod support;

use support::{Server, ask_hello, assert_hello, idle_clients, read_reply, threads};

#[test]
fn one_thread_serves_a_hundred_idle_clients_and_a_newcomer() {
    let server = Server::start(env!("CARGO_BIN_EXE_epoll"), &[]);
    let mut idle = idle_clients(&server, 100);
    let _newcomer = server.client_answered_twice();
    ask_hello(&mut idle[0]);
    assert_hello(&read_reply(&mut idle[0]).unwrap());
    assert_eq!(threads(server.pid()).len(), 1, "one thread for 101 connections");
}

/// Two requests in one write are two replies, in order: the loop answers every whole head
/// in its buffer, not only the first.
#[test]
fn pipelined_requests_are_each_answered() {
    let server = Server::start(env!("CARGO_BIN_EXE_epoll"), &[]);
    let mut client = server.connect();
    let request = "GET /hello HTTP/1.1\r\nHost: test\r\n\r\n";
    std::io::Write::write_all(&mut client, request.repeat(2).as_bytes()).unwrap();
    assert_hello(&read_reply(&mut client).unwrap());
    assert_hello(&read_reply(&mut client).unwrap());
}
