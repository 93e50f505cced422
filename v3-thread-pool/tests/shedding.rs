//! v3's load shedding, each mechanism off by default and shown by a test that fails
//! without it: the bounded queue, the deadline on a connection's wait, and not serving a
//! client that has gone.

use std::time::Duration;

use common::overload::Shedding;
use common::testkit::TestServer;
use common::testkit::shedding::{
    check_a_full_queue_refuses_at_once, check_a_late_request_expires_unserved,
    check_a_reset_client_is_not_served,
};
use v3_thread_pool::{Config, Model, SERVER, run};

fn one_worker(max_queue: Option<usize>, shedding: Shedding) -> TestServer {
    let mut config = Config::new(Model { threads: 1, max_queue });
    config.shedding = shedding;
    TestServer::start(SERVER, config, run)
}

#[test]
fn past_max_queue_a_newcomer_is_refused_at_once() {
    let server = one_worker(Some(1), Shedding::default());
    check_a_full_queue_refuses_at_once(&server, "queued_connections");
}

#[test]
fn a_connection_that_waited_past_max_queue_wait_is_refused_unserved() {
    let wait = Shedding { max_queue_wait: Some(Duration::from_millis(50)), ..Shedding::default() };
    check_a_late_request_expires_unserved(&one_worker(None, wait));
}

#[test]
fn a_client_that_reset_while_queued_never_reaches_its_handler() {
    let skip = Shedding { skip_departed: true, ..Shedding::default() };
    check_a_reset_client_is_not_served(&one_worker(None, skip), "queued_connections");
}
