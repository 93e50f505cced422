//! v7's load shedding, off by default and shown by tests that fail without it: the
//! deadline on a request's wait, timed from the ring's wake-up (all a ring can see), and
//! not serving a client that has gone.

use std::net::TcpListener;
use std::time::Duration;

use common::cli::{Sharing, listen};
use common::overload::Shedding;
use common::testkit::shedding::{
    assert_refused, check_a_half_closed_client_is_not_served, hold_with_sleeper,
};
use common::testkit::{Client, TIMEOUT, TestServer, wait_until};
use v7_uring_per_core::{Config, Model, SERVER, run};

fn one_ring(shedding: Shedding) -> TestServer {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort).expect("bind");
    let mut config = Config::new(Model { rings: 1, ..Model::default() });
    config.shedding = shedding;
    TestServer::on_listener(listener, common::Dispatcher::with_builtin_routes(SERVER), config, run)
}

/// As v5's: two requests that arrive while the ring's thread is held by a sleeper come
/// back from one wait, in the order they arrived, a second sleeper and then a `/hello`
/// that must wait 300 ms behind it, past the 50 ms allowed.
#[test]
fn a_request_behind_a_slow_handler_on_its_ring_expires_unserved() {
    let wait = Shedding { max_queue_wait: Some(Duration::from_millis(50)), ..Shedding::default() };
    let server = one_ring(wait);
    let mut second = Client::connect(server.addr()).expect("connect");
    let mut late = Client::connect(server.addr()).expect("connect");
    assert!(wait_until(TIMEOUT, || server.stats().accepted() == 2), "never accepted");
    let before = server.stats().requests();
    let mut first = hold_with_sleeper(&server, 300);
    second
        .send(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .expect("send");
    late.send(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    assert_refused(&late.read_response().expect("a refusal"));
    for sleeper in [&mut first, &mut second] {
        assert_eq!(sleeper.read_response().expect("a sleeper's reply").status, 200);
    }
    assert_eq!(server.stats().shedding().expired.get(), 1);
    assert_eq!(server.stats().requests(), before + 2, "the late request's handler ran");
}

#[test]
fn a_client_that_closed_while_the_ring_was_busy_is_not_served() {
    let skip = Shedding { skip_departed: true, ..Shedding::default() };
    check_a_half_closed_client_is_not_served(&one_ring(skip));
}
