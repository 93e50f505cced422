//! v7's load shedding, off by default and shown by tests that fail without it: the
//! deadline on a request's wait, timed from the ring's wake-up (all a ring can see), and
//! not serving a client that has gone.

use std::net::TcpListener;
use std::time::Duration;

use common::cli::{Sharing, listen};
use common::overload::Shedding;
use common::testkit::TestServer;
use common::testkit::shedding::{
    check_a_half_closed_client_is_not_served,
    check_a_request_behind_a_slow_handler_expires_in_its_turn,
};
use v7_uring_per_core::{Config, Model, SERVER, run};

fn one_ring(shedding: Shedding) -> TestServer {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort).expect("bind");
    let mut config = Config::new(Model { rings: 1, ..Model::default() });
    config.shedding = shedding;
    TestServer::on_listener(listener, common::Dispatcher::with_builtin_routes(SERVER), config, run)
}

/// As v5's: a request queued on the ring behind a slow handler, past 50 ms, is refused
/// unserved.
#[test]
fn a_request_behind_a_slow_handler_on_its_ring_expires_unserved() {
    let wait = Shedding { max_queue_wait: Some(Duration::from_millis(50)), ..Shedding::default() };
    check_a_request_behind_a_slow_handler_expires_in_its_turn(&one_ring(wait));
}

#[test]
fn a_client_that_closed_while_the_ring_was_busy_is_not_served() {
    let skip = Shedding { skip_departed: true, ..Shedding::default() };
    check_a_half_closed_client_is_not_served(&one_ring(skip));
}
