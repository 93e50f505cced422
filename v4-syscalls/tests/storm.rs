//! The Java article's level-triggered storm, reproduced (see `v4_syscalls::storm`): left
//! armed, one ready socket goes to several workers at once; masked with `EPOLLONESHOT`,
//! to one at a time, in order. v4-nio's regression test (`one_request_is_one_dispatch`)
//! asks the same question of v4; here it is shown able to fail.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use common::Dispatcher;
use common::testkit::Client;
use v4_syscalls::storm::{self, Masking, StormConfig};

fn storm(masking: Masking, chunk: usize) -> (storm::Storm, std::net::SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let dispatcher = Arc::new(Dispatcher::with_builtin_routes("storm"));
    // Workers slow to read by 200 ms: the poller waits again long before they read.
    let config =
        StormConfig { masking, workers: 4, provocation: Duration::from_millis(200), chunk };
    (storm::start(listener, dispatcher, config).expect("start the storm"), addr)
}

/// Sends line requests one at a time and returns the answers, and the client, still
/// connected (its close would be one more event to count).
fn ask(addr: std::net::SocketAddr, requests: &[&str]) -> (Vec<String>, Client) {
    let mut client = Client::connect(addr).expect("connect");
    let answers = requests
        .iter()
        .map(|r| client.line(r).unwrap_or_else(|e| format!("no answer: {e}")))
        .collect();
    (answers, client)
}

const MESSAGE: &str = "the-quick-brown-fox-jumps-over-the-lazy-dog-0123456789";

#[test]
fn left_armed_one_ready_socket_goes_to_several_workers() {
    // A 16-byte read per hand-off: each 69-byte request arrives in five pieces.
    let (storm, addr) = storm(Masking::None, 16);
    let request = format!("GET /echo?msg={MESSAGE}");
    let (answers, _client) = ask(addr, &[&request, &request]);
    // Several workers had the socket at once and read pieces of it; the pieces reached
    // the parser out of order.
    let right = format!("200 {MESSAGE}");
    assert!(answers.iter().any(|a| *a != right), "every answer right: {answers:?}");
    // v4-nio's check (one dispatch per piece, no dispatch finding nothing) fails here.
    let (dispatches, duplicates, empty) = storm.counters.read();
    assert!(dispatches > 10, "dispatches for 10 pieces: {dispatches}");
    assert!(duplicates > 0, "duplicates {duplicates}, empty reads {empty}");
}

#[test]
fn masked_each_request_is_one_dispatch_and_pieces_stay_in_order() {
    // A 16-byte read per hand-off: a 70-byte request arrives in five pieces, each read by
    // whichever worker gets the socket next. Masked, that is one worker at a time, so the
    // pieces reach the parser in order.
    let (storm, addr) = storm(Masking::OneShot, 16);
    let request = format!("GET /echo?msg={MESSAGE}");
    let (answers, _client) = ask(addr, &[&request, "GET /hello"]);
    assert_eq!(answers, [format!("200 {MESSAGE}"), "200 Hello, World!".into()]);
    let (dispatches, duplicates, empty) = storm.counters.read();
    // One dispatch per 16-byte piece: 69 bytes in 5, and 1 for "GET /hello\n".
    assert_eq!((duplicates, empty), (0, 0), "{dispatches} dispatches");
    assert_eq!(dispatches, 5 + 1);
}
