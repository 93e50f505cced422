//! The blocking program answers `GET /hello`, and serves one client at a time: a second
//! client waits, unanswered, while the first holds its connection, and is answered the
//! moment the first leaves.

mod support;

use std::time::Duration;

use support::{Server, ask_hello, assert_hello, assert_not_answered, read_reply};

#[test]
fn a_second_client_waits_until_the_first_leaves() {
    let server = Server::start(env!("CARGO_BIN_EXE_blocking"), &[]);
    let first = server.client_answered_twice();
    // The kernel completes the second handshake (the accept queue), but no one reads.
    let mut second = server.connect();
    ask_hello(&mut second);
    assert_not_answered(&mut second, Duration::from_millis(300));
    drop(first);
    assert_hello(&read_reply(&mut second).unwrap());
}
