//! v5's load shedding, off by default and shown by tests that fail without it: the
//! deadline on a request's wait, timed from the loop's wake-up (all a loop can see), and
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
use v5_reactor_per_core::{Config, Model, SERVER, run};

fn one_loop(shedding: Shedding) -> TestServer {
    let listener: TcpListener =
        listen("127.0.0.1:0".parse().expect("an address"), 128, Sharing::ReusePort).expect("bind");
    let mut config = Config::new(Model { loops: 1, ..Model::default() });
    config.shedding = shedding;
    TestServer::on_listener(listener, common::Dispatcher::with_builtin_routes(SERVER), config, run)
}

/// A request queued on the loop behind a slow handler, past 50 ms, is refused unserved
/// (the scenario in `testkit::shedding`).
#[test]
fn a_request_behind_a_slow_handler_on_its_loop_expires_unserved() {
    let wait = Shedding { max_queue_wait: Some(Duration::from_millis(50)), ..Shedding::default() };
    check_a_request_behind_a_slow_handler_expires_in_its_turn(&one_loop(wait));
}

#[test]
fn a_client_that_closed_while_the_loop_was_busy_is_not_served() {
    let skip = Shedding { skip_departed: true, ..Shedding::default() };
    check_a_half_closed_client_is_not_served(&one_loop(skip));
}
