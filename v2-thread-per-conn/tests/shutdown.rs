//! Graceful shutdown of the `v2-thread-per-conn` binary: SIGTERM lets the request in flight finish,
//! closes idle clients and exits; a second SIGTERM exits at once.

use common::testkit::{check_graceful_shutdown, check_second_signal_exits_at_once, spawn_binary};

const BINARY: &str = env!("CARGO_BIN_EXE_v2-thread-per-conn");

#[test]
fn sigterm_finishes_the_request_in_flight_and_closes_idle_clients() {
    assert_eq!(check_graceful_shutdown(spawn_binary(BINARY, &[])), Ok(()));
}

#[test]
fn a_second_sigterm_exits_at_once() {
    assert_eq!(check_second_signal_exits_at_once(spawn_binary(BINARY, &[])), Ok(()));
}
