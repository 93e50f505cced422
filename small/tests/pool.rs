//! The pool program answers `GET /hello`, and with two threads serves two clients at once:
//! a third waits, unanswered, while both hold their connections, and is answered as soon
//! as one leaves; the threads stay two however many clients come.

mod support;

use std::time::Duration;

use support::{Server, ask_hello, assert_hello, assert_not_answered, read_reply, threads};

#[test]
fn a_third_client_waits_for_one_of_two_threads() {
    let server = Server::start(env!("CARGO_BIN_EXE_pool"), &["2"]);
    let first = server.client_answered_twice();
    let _second = server.client_answered_twice(); // answered while the first holds
    let mut third = server.connect();
    ask_hello(&mut third);
    assert_not_answered(&mut third, Duration::from_millis(300));
    assert_eq!(threads(server.pid()).len(), 1 + 2, "the accepting thread and the pool's two");
    drop(first);
    assert_hello(&read_reply(&mut third).unwrap());
}
