//! v2 (threads) against v1, and the basics over real sockets.

use common::testkit::{Client, TIMEOUT, TestServer, speaks_both_protocols, starvation, wait_for};
use v2_thread_per_conn::{Config, SERVER, run};

// ANCHOR: vs_v1
/// v1's limit, gone: while client A stays connected, client B is answered at once by v2,
/// and not at all by v1.
#[test]
fn a_connected_client_no_longer_blocks_the_next_one() {
    let v1 = TestServer::start(v1_blocking::SERVER, Config::default(), v1_blocking::run);
    let v2 = TestServer::start(SERVER, Config::default(), run);

    let on_v1 = starvation(v1.addr(), 1).unwrap();
    let on_v2 = starvation(v2.addr(), 1).unwrap();
    assert!(!on_v1.answered_while_held, "v1 should make the second client wait");
    assert!(on_v2.answered_while_held, "v2 made the second client wait");
    assert!(on_v1.answered_after_release && on_v2.answered_after_release);
}
// ANCHOR_END: vs_v1

#[test]
fn answers_both_protocols_and_names_itself() {
    let server = TestServer::start(SERVER, Config::default(), run);
    speaks_both_protocols(&mut Client::connect(server.addr()).unwrap(), SERVER);
}

#[test]
fn connection_threads_gauge_follows_open_connections() {
    let server = TestServer::start(SERVER, Config::default(), run);
    let gauge = || server.model_once_registered("connection_threads");
    let clients: Vec<Client> = (0..3).map(|_| Client::connect(server.addr()).unwrap()).collect();
    wait_for(TIMEOUT, "three connection threads", || gauge() == 3).unwrap();
    drop(clients);
    wait_for(TIMEOUT, "no connection thread", || gauge() == 0).unwrap();
}
